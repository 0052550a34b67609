/**
 * An independent oracle: the exact rows pim-reporter must write for a SimTenant, computed straight from
 * docs/files.md and the team's binding decisions (group expansion, PIM for Groups, sorting), without any code
 * from src/. Tests compare the product's CSVs (read with parseCsv) with these rows.
 */
import type {
  SimDirectoryAudit,
  SimGroupEligibilitySchedule,
  SimRoleSchedule,
  SimScheduleInfo,
  SimTenant,
} from '../../tools/tenant/model';

export const ASSIGNMENT_COLUMNS = [
  'Assignment State',
  'User Group Name',
  'Role Name',
  'PrincipalName',
  'Member Type',
  'Assignment Start Time (UTC)',
  'Assignment End Time (UTC)',
  'Principal Type',
  'Principal Id',
  'Via Group',
  'Via Group Id',
  'Role Id',
  'Scope',
  'Scope Id',
  'Assignment Type',
  'Permanent',
  'Privileged',
  'Outside PIM',
  'Created (UTC)',
  'Schedule Id',
] as const;

export const ACTIVATION_COLUMNS = [
  'Activated (UTC)',
  'User Group Name',
  'PrincipalName',
  'Principal Id',
  'Role Name',
  'Role Id',
  'Scope Id',
  'Start Time (UTC)',
  'End Time (UTC)',
  'Justification',
  'Ticket Number',
  'Ticket System',
  'Request Id',
  'Audit Id',
  'Activation Type',
  'Group',
  'Group Id',
  'Group Roles',
  'Approved By',
  'Approved (UTC)',
  'Group Access',
] as const;

export type AssignmentColumn = (typeof ASSIGNMENT_COLUMNS)[number];
export type ActivationColumn = (typeof ACTIVATION_COLUMNS)[number];
export type AssignmentRow = Record<AssignmentColumn, string>;
export type ActivationRow = Record<ActivationColumn, string>;

export const ACTIVATION_ACTIVITY = 'Add member to role completed (PIM activation)';
export const APPROVAL_ACTIVITY = 'Add member to role request approved (PIM activation)';

// ---------------------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------------------

const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i;

/** Epoch ms plus the sub-millisecond digits, so instants order exactly at 100 ns. */
function instant(text: string | null | undefined): { ms: number; sub: number } | null {
  if (!text) return null;
  const m = ISO.exec(text.trim());
  if (!m) return null;
  const frac = (m[7] ?? '').padEnd(7, '0').slice(0, 7);
  let ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) + Number(frac.slice(0, 3));
  if (m[8].toUpperCase() !== 'Z') {
    const sign = m[8][0] === '-' ? -1 : 1;
    ms -= sign * (Number(m[8].slice(1, 3)) * 60 + Number(m[8].slice(4, 6))) * 60_000;
  }
  return { ms, sub: Number(frac.slice(3)) };
}

function compareInstants(a: { ms: number; sub: number }, b: { ms: number; sub: number }): number {
  return a.ms !== b.ms ? a.ms - b.ms : a.sub - b.sub;
}

/** `YYYY-MM-DD HH:MM:SS` in UTC, fractions truncated; blank when absent or unparsable. */
export function formatUtc(text: string | null | undefined): string {
  const t = instant(text);
  return t ? formatMs(t.ms) : '';
}

function formatMs(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/** ISO-8601 PnDTnHnMnS (weeks too) in ms; null when not of that form. */
export function durationMs(duration: string): number | null {
  const m = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(duration.trim());
  if (!m || duration.trim().toUpperCase() === 'P' || /T$/i.test(duration.trim())) return null;
  const [, w = '0', d = '0', h = '0', mi = '0', s = '0'] = m;
  return ((+w * 7 + +d) * 24 * 3600 + +h * 3600 + +mi * 60 + +s) * 1000;
}

interface Window {
  start: { ms: number; sub: number } | null;
  end: { ms: number; sub: number } | null;
}

/** Start and end of a schedule per the team rules (noExpiration/notSpecified: no end). */
function scheduleWindow(info: SimScheduleInfo): Window {
  const start = instant(info.startDateTime);
  const exp = info.expiration;
  let end: Window['end'] = null;
  if (exp.type === 'afterDateTime') end = instant(exp.endDateTime);
  else if (exp.type === 'afterDuration' && start && exp.duration) {
    const d = durationMs(exp.duration);
    end = d === null ? null : { ms: start.ms + d, sub: start.sub };
  }
  return { start, end };
}

// ---------------------------------------------------------------------------------------------------------
// Cells
// ---------------------------------------------------------------------------------------------------------

/** A leading `'` on cells a spreadsheet would run as a formula, also once NFKC-folded and trimmed, or behind `'` marks (docs/faults.md). */
export function neutralise(cell: string): string {
  // Behind any `'` already there: a value that starts `'=` gets a mark of its own (docs/files.md).
  const rest = cell.replace(/^'+/, '');
  return /^[=+\-@\t\r]/.test(rest) || /^[=+\-@]/.test(rest.normalize('NFKC').trimStart()) ? `'${cell}` : cell;
}

interface Lookups {
  principal(id: string): { name: string; principalName: string; type: '' | 'User' | 'Group' | 'ServicePrincipal' };
  roleName(id: string): string;
  scope(scopeId: string): string;
  groupName(id: string): string | null;
  transitiveMembers(groupId: string): string[];
  groupEligibilities(groupId: string): SimGroupEligibilitySchedule[];
}

function lookups(t: SimTenant): Lookups {
  const lc = (s: string) => s.toLowerCase();
  const users = new Map(t.users.map((u) => [lc(u.id), u]));
  const groups = new Map(t.groups.map((g) => [lc(g.id), g]));
  const sps = new Map(t.servicePrincipals.map((s) => [lc(s.id), s]));
  const aus = new Map(t.administrativeUnits.map((a) => [lc(a.id), a]));
  const roles = new Map(t.roleDefinitions.map((r) => [lc(r.id), r]));
  const exists = (id: string) => users.has(lc(id)) || groups.has(lc(id)) || sps.has(lc(id));
  const memberEligibility = new Map<string, SimGroupEligibilitySchedule[]>();
  for (const s of t.groupEligibilitySchedules) {
    if (lc(s.accessId) !== 'member') continue; // owners cannot obtain the group's role
    const list = memberEligibility.get(lc(s.groupId)) ?? [];
    list.push(s);
    memberEligibility.set(lc(s.groupId), list);
  }
  const transitive = new Map<string, string[]>();
  return {
    principal(id) {
      const u = users.get(lc(id));
      if (u) return { name: u.displayName, principalName: u.userPrincipalName, type: 'User' };
      const g = groups.get(lc(id));
      if (g) return { name: g.displayName, principalName: '', type: 'Group' };
      const s = sps.get(lc(id));
      if (s) return { name: s.displayName, principalName: s.appId, type: 'ServicePrincipal' };
      return { name: '', principalName: '', type: '' };
    },
    roleName: (id) => roles.get(lc(id))?.displayName ?? '',
    scope(scopeId) {
      if (scopeId === '/') return 'Directory';
      const m = /^\/administrativeUnits\/(.+)$/i.exec(scopeId);
      if (m) return aus.get(lc(m[1]))?.displayName ?? '';
      return scopeId;
    },
    groupName: (id) => groups.get(lc(id))?.displayName ?? null,
    transitiveMembers(groupId) {
      const hit = transitive.get(lc(groupId));
      if (hit) return hit;
      // Breadth-first over nested groups; every reachable existing object once, never the group itself.
      const seen = new Set<string>([lc(groupId)]);
      const out: string[] = [];
      const queue = [...(groups.get(lc(groupId))?.members ?? [])];
      for (let i = 0; i < queue.length; i++) {
        const id = queue[i];
        if (seen.has(lc(id))) continue;
        seen.add(lc(id));
        if (!exists(id)) continue;
        out.push(id);
        const nested = groups.get(lc(id));
        if (nested) queue.push(...nested.members);
      }
      transitive.set(lc(groupId), out);
      return out;
    },
    groupEligibilities: (groupId) => memberEligibility.get(lc(groupId)) ?? [],
  };
}

// ---------------------------------------------------------------------------------------------------------
// Assignment rows (docs/files.md)
// ---------------------------------------------------------------------------------------------------------

export interface ExpectedOptions {
  /** Role template ids treated as highly privileged (lowercase or not). */
  privilegedRoleIds: Set<string>;
}

export interface ExpectedAssignments {
  eligible: AssignmentRow[];
  active: AssignmentRow[];
}

export function expectedAssignmentRows(tenant: SimTenant, options: ExpectedOptions): ExpectedAssignments {
  const look = lookups(tenant);
  const privileged = new Set([...options.privilegedRoleIds].map((r) => r.toLowerCase()));
  const eligible: AssignmentRow[] = [];
  const active: AssignmentRow[] = [];

  const direct = (s: SimRoleSchedule, state: 'Eligible' | 'Active'): AssignmentRow => {
    const p = look.principal(s.principalId);
    const { start, end } = scheduleWindow(s.scheduleInfo);
    return {
      'Assignment State': state,
      'User Group Name': p.name,
      'Role Name': look.roleName(s.roleDefinitionId),
      PrincipalName: p.principalName,
      'Member Type': 'Direct',
      'Assignment Start Time (UTC)': start ? formatMs(start.ms) : '',
      'Assignment End Time (UTC)': end ? formatMs(end.ms) : '',
      'Principal Type': p.type,
      'Principal Id': s.principalId,
      'Via Group': '',
      'Via Group Id': '',
      'Role Id': s.roleDefinitionId,
      Scope: look.scope(s.directoryScopeId),
      'Scope Id': s.directoryScopeId,
      'Assignment Type': state === 'Active' ? (s.assignmentType ?? '') : '',
      Permanent: end ? 'No' : 'Yes',
      Privileged: privileged.has(s.roleDefinitionId.toLowerCase()) ? 'Yes' : 'No',
      'Outside PIM': state === 'Active' && s.createdUsing === null ? 'Yes' : 'No',
      'Created (UTC)': formatUtc(s.createdDateTime),
      'Schedule Id': s.id,
    };
  };

  const asMember = (row: AssignmentRow, memberId: string, groupId: string, groupName: string): AssignmentRow => {
    const p = look.principal(memberId);
    return {
      ...row,
      'User Group Name': p.name,
      PrincipalName: p.principalName,
      'Member Type': 'Group',
      'Principal Type': p.type,
      'Principal Id': memberId,
      'Via Group': groupName,
      'Via Group Id': groupId,
    };
  };

  const sources: [SimRoleSchedule[], 'Eligible' | 'Active', AssignmentRow[]][] = [
    [tenant.eligibilitySchedules, 'Eligible', eligible],
    [tenant.assignmentSchedules, 'Active', active],
  ];
  for (const [schedules, state, out] of sources) {
    for (const s of schedules) {
      // Graph's own group-derived rows: see derivedRows below.
      if (s.memberType.toLowerCase() !== 'direct') continue;
      const row = direct(s, state);
      out.push(row);
      const groupName = look.groupName(s.principalId);
      if (groupName === null) continue;
      for (const member of look.transitiveMembers(s.principalId))
        out.push(asMember(row, member, s.principalId, groupName));
      // PIM for Groups: eligible members can obtain the role only by activating membership -> eligible CSV.
      const roleWindow = scheduleWindow(s.scheduleInfo);
      for (const ge of look.groupEligibilities(s.principalId)) {
        const w = scheduleWindow(ge.scheduleInfo);
        const start = later(roleWindow.start, w.start);
        const end = earlier(roleWindow.end, w.end);
        eligible.push({
          ...asMember(row, ge.principalId, s.principalId, groupName),
          'Assignment State': 'Eligible',
          'Assignment Start Time (UTC)': start ? formatMs(start.ms) : '',
          'Assignment End Time (UTC)': end ? formatMs(end.ms) : '',
          'Assignment Type': '',
          Permanent: end ? 'No' : 'Yes',
          'Outside PIM': 'No',
        });
      }
    }
  }
  // A schedule Graph derived from a group is listed once, Member Type Group, unless the expansion of a
  // group holding the same role and scope in the same state already lists the principal; Via Group
  // when exactly one group that holds the role and scope has the principal as a member.
  const holders = (state: 'Eligible' | 'Active' | null, s: SimRoleSchedule) =>
    [
      ...tenant.eligibilitySchedules.map((x) => ['Eligible', x] as const),
      ...tenant.assignmentSchedules.map((x) => ['Active', x] as const),
    ]
      .filter(
        ([st, x]) =>
          x.memberType.toLowerCase() === 'direct' &&
          (state === null || st === state) &&
          x.roleDefinitionId === s.roleDefinitionId &&
          x.directoryScopeId === s.directoryScopeId &&
          look.groupName(x.principalId) !== null,
      )
      .map(([st, x]) => ({ state: st, groupId: x.principalId }));
  const isMember = (groupId: string, principalId: string, state: 'Eligible' | 'Active' | null) =>
    look.transitiveMembers(groupId).some((m) => m.toLowerCase() === principalId.toLowerCase()) ||
    (state !== 'Active' &&
      look.groupEligibilities(groupId).some((g) => g.principalId.toLowerCase() === principalId.toLowerCase()));
  for (const [schedules, state, out] of sources) {
    for (const s of schedules) {
      if (s.memberType.toLowerCase() === 'direct') continue;
      if (holders(state, s).some((h) => isMember(h.groupId, s.principalId, state))) continue;
      const groups = [
        ...new Set(
          holders(null, s)
            .filter((h) => isMember(h.groupId, s.principalId, null))
            .map((h) => h.groupId),
        ),
      ];
      const row = { ...direct(s, state), 'Member Type': 'Group' };
      out.push(
        groups.length === 1 ? { ...row, 'Via Group': look.groupName(groups[0]) ?? '', 'Via Group Id': groups[0] } : row,
      );
    }
  }
  return { eligible: finishAssignments(eligible), active: finishAssignments(active) };
}

type Instant = { ms: number; sub: number } | null;
/** The later start; a blank (unknown) start yields to the other. */
function later(a: Instant, b: Instant): Instant {
  if (!a) return b;
  if (!b) return a;
  return compareInstants(a, b) >= 0 ? a : b;
}
/** The earlier end; a blank end (no end) yields to the other. */
function earlier(a: Instant, b: Instant): Instant {
  if (!a) return b;
  if (!b) return a;
  return compareInstants(a, b) <= 0 ? a : b;
}

function ordinal(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function finishAssignments(rows: AssignmentRow[]): AssignmentRow[] {
  const keys: AssignmentColumn[] = ['Role Name', 'User Group Name', 'Principal Id', 'Via Group Id', 'Schedule Id'];
  // Joined with U+0000 (the lowest code unit), one ordinal comparison equals comparing field by field.
  const keyed = rows.map((r) => ({ r, k: keys.map((c) => r[c]).join('\u0000') }));
  keyed.sort((x, y) => ordinal(x.k, y.k));
  return keyed.map(({ r }) => neutraliseRow(r));
}

function neutraliseRow<T extends Record<string, string>>(row: T): T {
  const out = { ...row };
  for (const k of Object.keys(out) as (keyof T)[]) out[k] = neutralise(out[k] as string) as T[keyof T];
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Activation rows (docs/files.md, "activations.csv")
// ---------------------------------------------------------------------------------------------------------

function typeOf(target: Record<string, unknown>): string {
  for (const [k, v] of Object.entries(target))
    if (k.toLowerCase() === 'type' && typeof v === 'string') return v.toLowerCase();
  return '';
}

function detail(rec: SimDirectoryAudit, key: string): string | undefined {
  const found = (rec.additionalDetails ?? []).find((d) => d.key.toLowerCase() === key.toLowerCase());
  return found ? (found.value ?? '') : undefined;
}

const nonEmpty = (v: string | undefined | null) => (v === undefined || v === null || v === '' ? undefined : v);

/**
 * The roles each group holds, by group id: its own (Direct) eligible and active schedules, names
 * joined `; ` in ordinal order, as the product's Group Roles column.
 */
export function expectedGroupRoles(tenant: SimTenant): Map<string, string> {
  const groupIds = new Set(tenant.groups.map((g) => g.id.toLowerCase()));
  const roleNames = new Map(tenant.roleDefinitions.map((r) => [r.id.toLowerCase(), r.displayName]));
  const held = new Map<string, Set<string>>();
  for (const s of [...tenant.eligibilitySchedules, ...tenant.assignmentSchedules]) {
    const id = s.principalId.toLowerCase();
    if (!groupIds.has(id) || s.memberType !== 'Direct') continue;
    const name = roleNames.get(s.roleDefinitionId.toLowerCase());
    if (!name) continue;
    held.set(id, (held.get(id) ?? new Set()).add(name));
  }
  return new Map([...held].map(([id, names]) => [id, [...names].sort(ordinal).join('; ')]));
}

/**
 * Rows for every completed activation (Entra roles, category RoleManagement, and PIM for Groups,
 * category GroupManagement) with activityDateTime in [from, to). An approval joins the activation of
 * the same RoleAssignmentRequestId when it is at or after `approvalsFrom` (default `from`): the
 * product knows only the approvals it harvested. An approval logged after the completion joins it
 * only when the same run harvests both: no time of `runs` (each run's exclusive window end) lies
 * between them.
 */
export function expectedActivations(
  tenant: SimTenant,
  from: Date,
  to: Date,
  approvalsFrom: Date = from,
  runs: readonly Date[] = [],
): ActivationRow[] {
  const lo = instant(from.toISOString()) as { ms: number; sub: number };
  const hi = instant(to.toISOString()) as { ms: number; sub: number };
  const seen = new Set<string>();
  const picked: { rec: SimDirectoryAudit; at: { ms: number; sub: number } }[] = [];
  for (const rec of tenant.directoryAudits) {
    if (
      rec.activityDisplayName !== ACTIVATION_ACTIVITY ||
      (rec.category !== 'RoleManagement' && rec.category !== 'GroupManagement') ||
      rec.loggedByService !== 'PIM'
    )
      continue;
    const at = instant(rec.activityDateTime);
    if (!at || compareInstants(at, lo) < 0 || compareInstants(at, hi) >= 0 || seen.has(rec.id)) continue;
    seen.add(rec.id);
    picked.push({ rec, at });
  }
  picked.sort((a, b) => compareInstants(a.at, b.at) || ordinal(a.rec.id, b.rec.id));
  const activatedScope = new Map(
    tenant.assignmentSchedules
      .filter((s) => s.assignmentType === 'Activated' && s.createdUsing)
      .map((s) => [(s.createdUsing as string).toLowerCase(), s.directoryScopeId]),
  );
  const groupRoles = expectedGroupRoles(tenant);
  const approvalLo = instant(approvalsFrom.toISOString()) as { ms: number; sub: number };
  const approvals = new Map<string, SimDirectoryAudit>();
  for (const rec of tenant.directoryAudits) {
    if (rec.activityDisplayName !== APPROVAL_ACTIVITY || rec.loggedByService !== 'PIM') continue;
    const at = instant(rec.activityDateTime);
    const id = nonEmpty(detail(rec, 'RoleAssignmentRequestId'));
    if (at && id && compareInstants(at, approvalLo) >= 0 && compareInstants(at, hi) < 0)
      approvals.set(id.toLowerCase(), rec);
  }
  const runEnds = runs.map((r) => instant(r.toISOString()) as { ms: number; sub: number });
  const joins = (approval: SimDirectoryAudit, completion: SimDirectoryAudit) => {
    const approved = instant(approval.activityDateTime)!;
    const completed = instant(completion.activityDateTime)!;
    if (compareInstants(approved, completed) <= 0) return true;
    return !runEnds.some((end) => compareInstants(completed, end) < 0 && compareInstants(approved, end) >= 0);
  };
  return picked.map(({ rec }) => {
    const isGroup = rec.category === 'GroupManagement';
    const targets = (rec.targetResources ?? []) as unknown as Record<string, unknown>[];
    // The one who activated: the User target that is the initiator (a group may be named too, first).
    const initiator = rec.initiatedBy?.user?.id ?? '';
    const users = targets.filter((t) => typeOf(t) === 'user');
    const principal =
      users.find((t) => t.id === initiator) ??
      users[0] ??
      (initiator ? undefined : targets.find((t) => typeOf(t) === 'serviceprincipal'));
    const role = targets.find((t) => typeOf(t) === 'role');
    const request = targets.find((t) => typeOf(t) === 'request');
    const str = (v: unknown) => (typeof v === 'string' ? v : '');
    const requestId = nonEmpty(detail(rec, 'RoleAssignmentRequestId')) ?? str(request?.id);
    const group = isGroup ? targets.find((t) => typeOf(t) === 'group') : undefined;
    const access = isGroup
      ? (({ member: 'Member', owner: 'Owner' } as Record<string, string>)[str(role?.displayName).toLowerCase()] ?? '')
      : '';
    const approval = requestId ? approvals.get(requestId.toLowerCase()) : undefined;
    const approvedBefore = approval && joins(approval, rec) ? approval : undefined;
    const row: ActivationRow = {
      'Activated (UTC)': formatUtc(rec.activityDateTime),
      'User Group Name': str(principal?.displayName ?? rec.initiatedBy?.user?.displayName),
      PrincipalName: str(principal?.userPrincipalName ?? rec.initiatedBy?.user?.userPrincipalName),
      'Principal Id': str(principal?.id ?? rec.initiatedBy?.user?.id),
      'Role Name': isGroup ? '' : str(role?.displayName),
      'Role Id': isGroup
        ? ''
        : (nonEmpty(detail(rec, 'RoleDefinitionOriginId')) ?? nonEmpty(detail(rec, 'TemplateId')) ?? str(role?.id)),
      // Absent from the record (no capture shows it): the scope of the Activated schedule of the same request.
      'Scope Id': isGroup
        ? ''
        : (nonEmpty(detail(rec, 'DirectoryScopeId')) ??
          (requestId ? (activatedScope.get(requestId.toLowerCase()) ?? '') : '')),
      'Start Time (UTC)': formatUtc(detail(rec, 'StartTime')),
      'End Time (UTC)': formatUtc(detail(rec, 'ExpirationTime')),
      Justification: detail(rec, 'Justification') ?? rec.resultReason ?? '',
      'Ticket Number': detail(rec, 'TicketNumber') ?? '',
      'Ticket System': detail(rec, 'TicketSystem') ?? '',
      'Request Id': requestId,
      'Audit Id': rec.id,
      'Activation Type': isGroup ? 'Group' : 'Role',
      Group: str(group?.displayName),
      'Group Id': str(group?.id),
      'Group Roles': isGroup && access !== 'Owner' ? (groupRoles.get(str(group?.id).toLowerCase()) ?? '') : '',
      'Approved By': str(approvedBefore?.initiatedBy?.user?.userPrincipalName),
      'Approved (UTC)': approvedBefore ? formatUtc(approvedBefore.activityDateTime) : '',
      'Group Access': access,
    };
    return neutraliseRow(row);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Reading the product's CSVs
// ---------------------------------------------------------------------------------------------------------

/** RFC 4180: BOM, CRLF (or LF) line ends, quoted fields with doubled quotes and embedded line breaks. */
export function parseCsv(text: string): string[][] {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      i++;
    } else if (c === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (c === '\r' && s[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 2;
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else {
      field += c;
      i++;
    }
  }
  if (quoted) throw new Error('parseCsv: unterminated quoted field');
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Header + rows as records; throws if a row's width differs from the header's. */
export function csvRecords(text: string): { header: string[]; rows: Record<string, string>[] } {
  const [header = [], ...body] = parseCsv(text);
  const rows = body.map((cells, n) => {
    if (cells.length !== header.length)
      throw new Error(`csvRecords: row ${n + 2} has ${cells.length} cells, header has ${header.length}`);
    return Object.fromEntries(header.map((h, i) => [h, cells[i]]));
  });
  return { header, rows };
}

// ---------------------------------------------------------------------------------------------------------
// Unused eligibilities
// ---------------------------------------------------------------------------------------------------------

export const UNUSED_COLUMNS = [
  'Role Name',
  'User Group Name',
  'PrincipalName',
  'Principal Id',
  'Via Group',
  'Via Group Id',
  'Role Id',
  'Scope',
  'Scope Id',
  'Eligible Since (UTC)',
  'Last Activated (UTC)',
  'History Since (UTC)',
  'Days Unused',
] as const;
export type UnusedRow = Record<(typeof UNUSED_COLUMNS)[number], string>;

/**
 * What a reader works out by hand: each eligible row of a user or service principal (direct, or a
 * member row of a group) held at least `afterDays` before `now`, whose principal activated neither
 * the role (directly or through a group's eligibility) nor membership of a group that holds it (or
 * that the row comes through) in those days. Last use looked for from `historySince` (the app's
 * own history) on; days unused counted from the latest of that use, the eligibility's start and
 * `historySince`. Unordered (the caller sorts).
 */
export function expectedUnused(
  tenant: SimTenant,
  o: { now: Date; afterDays: number; historySince: Date; privilegedRoleIds: Set<string> },
): UnusedRow[] {
  const windowStart = o.now.getTime() - o.afterDays * 86_400_000;
  const ms = (cell: string) => Date.parse(`${cell.replace(' ', 'T')}Z`);
  const lastRole = new Map<string, number>();
  const lastGroup = new Map<string, number>();
  for (const a of expectedActivations(tenant, o.historySince, o.now)) {
    const at = ms(a['Activated (UTC)']);
    const map = a['Activation Type'] === 'Group' ? lastGroup : lastRole;
    if (a['Activation Type'] === 'Group' && a['Group Access'] === 'Owner') continue;
    const key = `${a['Principal Id']}|${a['Activation Type'] === 'Group' ? a['Group Id'] : a['Role Id']}`.toLowerCase();
    map.set(key, Math.max(map.get(key) ?? -Infinity, at));
  }
  const groupIds = new Set(tenant.groups.map((g) => g.id.toLowerCase()));
  const groupsByRole = new Map<string, Set<string>>();
  for (const s of [...tenant.eligibilitySchedules, ...tenant.assignmentSchedules]) {
    if (s.memberType !== 'Direct' || !groupIds.has(s.principalId.toLowerCase())) continue;
    const role = s.roleDefinitionId.toLowerCase();
    groupsByRole.set(role, (groupsByRole.get(role) ?? new Set()).add(s.principalId.toLowerCase()));
  }
  const since = o.historySince.getTime();
  const out: UnusedRow[] = [];
  for (const row of expectedAssignmentRows(tenant, { privilegedRoleIds: o.privilegedRoleIds }).eligible) {
    if (row['Principal Type'] === 'Group') continue;
    const start = row['Assignment Start Time (UTC)'] ? ms(row['Assignment Start Time (UTC)']) : undefined;
    if (start !== undefined && start > windowStart) continue;
    const pid = row['Principal Id'].toLowerCase();
    const groups = new Set([
      ...(groupsByRole.get(row['Role Id'].toLowerCase()) ?? []),
      ...(row['Via Group Id'] ? [row['Via Group Id'].toLowerCase()] : []),
    ]);
    let last = lastRole.get(`${pid}|${row['Role Id'].toLowerCase()}`) ?? -Infinity;
    for (const g of groups) last = Math.max(last, lastGroup.get(`${pid}|${g}`) ?? -Infinity);
    if (last >= windowStart) continue;
    const from = Math.max(last, start ?? -Infinity, since);
    out.push({
      'Role Name': row['Role Name'],
      'User Group Name': row['User Group Name'],
      PrincipalName: row.PrincipalName,
      'Principal Id': row['Principal Id'],
      'Via Group': row['Via Group'],
      'Via Group Id': row['Via Group Id'],
      'Role Id': row['Role Id'],
      Scope: row.Scope,
      'Scope Id': row['Scope Id'],
      'Eligible Since (UTC)': row['Assignment Start Time (UTC)'],
      'Last Activated (UTC)': Number.isFinite(last) ? formatMs(last) : '',
      'History Since (UTC)': formatMs(since),
      'Days Unused': String(Math.floor((o.now.getTime() - from) / 86_400_000)),
    });
  }
  return out;
}
