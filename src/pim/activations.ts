/**
 * PIM activations from the audit log (docs/files.md, "activations.csv"; docs/guarantees.md): completed activations of Entra
 * roles, read by type and key (never by position), over a time window, sequentially.
 */
import type { GraphClient } from '../graph/client';
import { GraphRequestError } from '../graph/client';
import type { Log } from '../log';
import { isoTime, type ActivationRow, type ActivationType, type GroupAccess, type HarvestGap } from './model';
import { utcMoment } from '../util/time';

export const ACTIVATION_ACTIVITY = 'Add member to role completed (PIM activation)';
/** The approver's decision on an activation request that needed approval (same RoleAssignmentRequestId). */
export const APPROVAL_ACTIVITY = 'Add member to role request approved (PIM activation)';
const DIRECTORY_AUDITS = '/auditLogs/directoryAudits';
/** Graph keeps audit events 30 days: https://learn.microsoft.com/entra/identity/monitoring-health/reference-reports-data-retention */
export const AUDIT_RETENTION_MS = 30 * 24 * 3600 * 1000;

interface KeyValue {
  key?: string | null;
  value?: string | null;
}
interface TargetResource {
  id?: string | null;
  displayName?: string | null;
  type?: string | null;
  Type?: string | null;
  userPrincipalName?: string | null;
}
export interface DirectoryAudit {
  id: string;
  category?: string | null;
  activityDisplayName?: string | null;
  activityDateTime?: string | null;
  loggedByService?: string | null;
  resultReason?: string | null;
  initiatedBy?: {
    user?: { id?: string | null; displayName?: string | null; userPrincipalName?: string | null } | null;
  } | null;
  targetResources?: TargetResource[] | null;
  additionalDetails?: KeyValue[] | null;
}

/**
 * `Role` for a completed Entra-role activation, `Group` for a completed PIM-for-Groups activation
 * (same activity name, category GroupManagement), undefined for anything else: Core Directory logs
 * its own record of the change (`category` is not among the filterable properties:
 * https://learn.microsoft.com/graph/api/directoryaudit-list; activity names and categories:
 * https://learn.microsoft.com/entra/identity/monitoring-health/reference-audit-activities).
 */
export function activationTypeOf(record: DirectoryAudit): ActivationType | undefined {
  if ((record.activityDisplayName ?? '').toLowerCase() !== ACTIVATION_ACTIVITY.toLowerCase()) return undefined;
  if ((record.loggedByService ?? '').toLowerCase() !== 'pim') return undefined;
  const category = (record.category ?? '').toLowerCase();
  return category === 'rolemanagement' ? 'Role' : category === 'groupmanagement' ? 'Group' : undefined;
}

/** True for a completed Entra-role activation (not PIM for Groups, not Core Directory's copy). */
export function isRoleActivation(record: DirectoryAudit): boolean {
  return activationTypeOf(record) === 'Role';
}

/** An approval of an activation request: who approved it and when, keyed by the request it approves. */
export interface Approval {
  requestId: string;
  /** The approver's user principal name (the record's initiator). */
  by: string;
  at: string;
}

/**
 * The approval an "Add member to role request approved (PIM activation)" record tells, for Entra
 * roles and PIM for Groups alike; undefined for any other record. PIM approves and activates
 * asynchronously, so the two are joined by RoleAssignmentRequestId (or the Request target), never
 * by correlationId (https://github.com/MicrosoftDocs/entra-docs/pull/2037).
 */
export function approvalOf(record: DirectoryAudit): Approval | undefined {
  if ((record.activityDisplayName ?? '').toLowerCase() !== APPROVAL_ACTIVITY.toLowerCase()) return undefined;
  if ((record.loggedByService ?? '').toLowerCase() !== 'pim') return undefined;
  const requestId =
    (record.additionalDetails ?? []).find((kv) => kv?.key?.toLowerCase() === 'roleassignmentrequestid')?.value ||
    (record.targetResources ?? []).find((t) => (t?.type ?? t?.Type ?? '').toLowerCase() === 'request')?.id ||
    '';
  const by = record.initiatedBy?.user?.userPrincipalName ?? record.initiatedBy?.user?.displayName ?? '';
  const at = isoTime(record.activityDateTime);
  return requestId && at ? { requestId: requestId.toLowerCase(), by, at } : undefined;
}

/**
 * The record as an activation row; blanks (and a warning from the caller) where a field is missing.
 * `initiatorMismatch`: the User target is not the user who initiated the activation (kept, logged).
 */
export function activationOf(record: DirectoryAudit): {
  row: ActivationRow;
  missing: string[];
  initiatorMismatch?: boolean;
} {
  // Targets' order varies between records, and the docs sample spells the key `Type`: match by type,
  // case-insensitively (https://learn.microsoft.com/graph/api/resources/directoryaudit; README, "What we know of Graph").
  const targets = (record.targetResources ?? []).filter(Boolean);
  const typeOf = (t: TargetResource) => (t.type ?? t.Type ?? '').toLowerCase();
  const target = (...types: string[]) => targets.find((t) => types.includes(typeOf(t)));
  const details = new Map<string, string>();
  for (const kv of record.additionalDetails ?? []) {
    if (kv?.key && kv.value != null && !details.has(kv.key.toLowerCase()))
      details.set(kv.key.toLowerCase(), String(kv.value));
  }
  const detail = (...keys: string[]) => {
    for (const key of keys) {
      const value = details.get(key.toLowerCase());
      if (value) return value;
    }
    return '';
  };
  const type = activationTypeOf(record) ?? 'Role';
  const role = target('role');
  const user = record.initiatedBy?.user;
  // A user activating through a group's eligibility gets a record naming the group as well, and the
  // group may come first: the one who activated is the target of type User, checked against the
  // initiator (README, "What we know of Graph"). No User target: the initiator, then any principal.
  const users = targets.filter((t) => typeOf(t) === 'user');
  const initiatorId = (user?.id ?? '').toLowerCase();
  const principal =
    users.find((t) => initiatorId !== '' && (t.id ?? '').toLowerCase() === initiatorId) ??
    users[0] ??
    (user?.id ? undefined : target('serviceprincipal'));
  const initiatorMismatch =
    principal !== undefined && initiatorId !== '' && (principal.id ?? '').toLowerCase() !== initiatorId;
  // PIM for Groups: the group is the target of type Group; the access (member or owner,
  // https://learn.microsoft.com/graph/api/resources/privilegedaccessgroupeligibilityschedule) is
  // inferred from the Role target's name, and left blank when it is neither (README, "What we know
  // of Graph").
  const group = target('group');
  const row: ActivationRow = {
    activated: isoTime(record.activityDateTime) ?? '',
    principalDisplayName: principal?.displayName ?? user?.displayName ?? '',
    principalName: principal?.userPrincipalName ?? user?.userPrincipalName ?? '',
    principalId: principal?.id ?? user?.id ?? '',
    // A group activation's Role target is the access (Member or Owner), not an Entra role.
    roleName: type === 'Role' ? (role?.displayName ?? '') : '',
    roleId: type === 'Role' ? detail('RoleDefinitionOriginId', 'TemplateId') || role?.id || '' : '',
    // No public capture shows DirectoryScopeId, TicketNumber or TicketSystem: blank when absent; the
    // daily job fills the scope from the Activated schedule of the same request.
    scopeId: type === 'Role' ? detail('DirectoryScopeId') : '',
    start: isoTime(detail('StartTime')),
    end: isoTime(detail('ExpirationTime')),
    // PIM puts the user's justification in resultReason as well (README, "What we know of Graph").
    justification: detail('Justification') || record.resultReason || '',
    ticketNumber: detail('TicketNumber'),
    ticketSystem: detail('TicketSystem'),
    requestId: detail('RoleAssignmentRequestId') || target('request')?.id || '',
    auditId: record.id,
    activationType: type,
    groupName: type === 'Group' ? (group?.displayName ?? '') : '',
    groupId: type === 'Group' ? (group?.id ?? '') : '',
    groupRoles: '',
    approvedBy: '',
    approved: null,
    groupAccess: type === 'Group' ? accessOf(role?.displayName) : '',
  };
  const missing = (
    type === 'Role'
      ? (['activated', 'principalId', 'roleId'] as const)
      : (['activated', 'principalId', 'groupId'] as const)
  ).filter((k) => !row[k]);
  return { row, missing, ...(initiatorMismatch ? { initiatorMismatch } : {}) };
}

/** `Member` or `Owner` as the record names the access; blank when it names neither (never guessed). */
function accessOf(name: string | null | undefined): GroupAccess {
  const n = (name ?? '').toLowerCase();
  return n === 'member' ? 'Member' : n === 'owner' ? 'Owner' : '';
}

export interface HarvestWindow {
  /** Inclusive start. */
  from: Date;
  /** Exclusive end (rounded up to the second in the query; the caller de-duplicates). */
  to: Date;
  /**
   * Where the time no earlier run harvested begins (the last run's end; the window starts earlier
   * by the overlap it re-reads): time Graph no longer keeps before it was lost, and recorded as
   * such, by an earlier run. The window's start when absent.
   */
  unharvestedFrom?: Date;
}

/**
 * Every completed activation in the window (Entra roles and PIM for Groups), oldest first, as Graph
 * pages it; each approval of the window is handed to `onApproval` before any completion is yielded,
 * so a completion is joined to an approval of the same window in whichever order the two were logged.
 * Two queries, each an `eq` on activityDisplayName (a documented filter of the list:
 * https://learn.microsoft.com/graph/api/directoryaudit-list): the approvals, then the completions.
 * `startswith(activityDisplayName,'Add member to role')` would take both in one query but also
 * every request, denial, cancellation and admin assignment, about as many records again as the
 * completions, each a page of the rate-limited log (docs/performance.md).
 * Sequential by design: the audit log allows 5 requests per 10 s per app and tenant:
 * https://learn.microsoft.com/graph/throttling-limits#identity-and-access-reports-service-limits
 * A skip token Graph no longer honours is not fatal: the query restarts from the last time seen,
 * not from the link (links are never checkpoints), and the caller de-duplicates by audit id.
 */
export async function* harvestActivations(
  graph: GraphClient,
  window: HarvestWindow,
  log: Log,
  onGap: (gap: HarvestGap) => void = () => undefined,
  onApproval: (approval: Approval) => void = () => undefined,
): AsyncGenerator<ActivationRow> {
  // Where the log starts for this window: moved up once Graph names its retention floor, so that the
  // second query starts there and the gap is recorded once.
  const start = { from: window.from };
  let approvals = 0;
  for await (const record of auditRecords(graph, APPROVAL_ACTIVITY, window, start, log, onGap, 'window')) {
    const approval = approvalOf(record);
    if (approval) {
      approvals++;
      onApproval(approval);
    }
  }
  let skipped = 0;
  let malformed = 0;
  let mismatched = 0;
  for await (const record of auditRecords(graph, ACTIVATION_ACTIVITY, window, start, log, onGap, 'read')) {
    if (!activationTypeOf(record)) {
      skipped++;
      continue;
    }
    const { row, missing, initiatorMismatch } = activationOf(record);
    if (initiatorMismatch) mismatched++;
    if (missing.length > 0) {
      malformed++;
      log.warn(`audit record ${record.id} lacks ${missing.join(', ')}; kept with blanks`);
    }
    yield row;
  }
  if (approvals > 0) log.info(`Read ${approvals} approval(s) of activation requests`);
  if (mismatched > 0)
    log.warn(
      `${mismatched} activation record(s) name a user other than the one who initiated them; the User target is reported`,
    );
  if (skipped > 0)
    log.info(
      `Ignored ${skipped} audit record(s) of the completed-activation name that are not PIM's own (Core Directory's copy, other categories)`,
    );
  if (malformed > 0) log.warn(`${malformed} activation record(s) were incomplete`);
}

/**
 * The PIM records of one activity in the window, oldest first. On a skip token Graph no longer
 * honours, the query restarts from the last time seen; on the retention refusal, from the floor
 * Graph names. What lies before the floor is a gap, recorded once for the window through `start`:
 * from the window's start when the completions are still to be read (`gapFrom` `window`, the
 * approvals' query), from the last record read when the refusal comes part way through the
 * completions (`read`), whose rows up to there were harvested.
 */
async function* auditRecords(
  graph: GraphClient,
  activity: string,
  window: HarvestWindow,
  start: { from: Date },
  log: Log,
  onGap: (gap: HarvestGap) => void,
  gapFrom: 'window' | 'read',
): AsyncGenerator<DirectoryAudit> {
  let from = start.from;
  let restarts = 0;
  for (;;) {
    // Nothing left to ask: Graph's floor is at or past the window's end (see below).
    if (from >= window.to) return;
    try {
      const pages = graph.pages<DirectoryAudit>(DIRECTORY_AUDITS, {
        $filter: `loggedByService eq 'PIM' and activityDisplayName eq '${activity}' and activityDateTime ge ${odataTime(from)} and activityDateTime lt ${odataTime(window.to, 'ceil')}`,
        $orderby: 'activityDateTime asc',
        $top: 999,
      });
      for await (const page of pages) {
        for (const record of page) {
          const at = isoTime(record.activityDateTime);
          if (at && new Date(at) > from) from = new Date(at);
          yield record;
        }
      }
      return;
    } catch (error) {
      if (isInvalidSkipToken(error) && restarts < 5) {
        restarts++;
        log.warn(`Graph no longer accepts the audit log's skip token; resuming from ${from.toISOString()}`);
        continue;
      }
      // Graph refuses a lower bound older than what it keeps, and names its floor: read from there,
      // and record what lies before it as a gap (never silently skipped).
      // A floor at or past the window's end (a backfill older than what Graph keeps): the whole
      // window, or what is left of it, is the gap.
      const floor = retentionFloor(error);
      if (floor && floor > from && restarts < 5) {
        restarts++;
        if (floor > start.from) {
          const lostFrom = Math.max(
            (gapFrom === 'read' ? from : start.from).getTime(),
            (window.unharvestedFrom ?? window.from).getTime(),
          );
          const lostTo = Math.min(floor.getTime(), window.to.getTime());
          if (lostFrom < lostTo) {
            const gap = {
              fromUtc: new Date(lostFrom).toISOString(),
              toUtc: new Date(lostTo).toISOString(),
              reason: `Graph's audit log now starts at ${floor.toISOString()} (retention)`,
            };
            log.warn(
              `Graph keeps audit events from ${floor.toISOString()} only; activations from ${gap.fromUtc} to ${gap.toUtc} are lost to this app`,
            );
            onGap(gap);
          }
          start.from = floor;
        }
        from = floor;
        continue;
      }
      throw error;
    }
  }
}

/**
 * The floor in Graph's refusal of an audit query older than retention, as quoted in
 * https://github.com/microsoftgraph/msgraph-beta-sdk-dotnet/issues/626: `(Parameter 'Minimum allowed
 * time for activityDateTime is 2/5/2023 12:00:00 AM')`. The time is M/D/YYYY h:mm:ss AM/PM with no
 * zone; read as UTC (the audit log's times are UTC). Any space before AM/PM: .NET on ICU 72 and
 * later writes U+202F there (https://github.com/dotnet/runtime/issues/102220). Undefined for any
 * other error.
 */
export function retentionFloor(error: unknown): Date | undefined {
  if (!(error instanceof GraphRequestError) || error.status !== 400) return undefined;
  const m =
    /Minimum allowed time for activityDateTime is (\d{1,2})\/(\d{1,2})\/(\d{4})\s(\d{1,2}):(\d{2}):(\d{2})\s?([AP]M)/i.exec(
      error.message,
    );
  if (!m) return undefined;
  const [month, day, year, hour12, minute, second] = m.slice(1, 7).map(Number);
  if (hour12 < 1 || hour12 > 12) return undefined;
  const hour = (hour12 % 12) + (m[7].toUpperCase() === 'PM' ? 12 : 0);
  return utcMoment(year, month, day, hour, minute, second);
}

function isInvalidSkipToken(error: unknown): boolean {
  return error instanceof GraphRequestError && error.status === 400 && /skip ?token/i.test(error.message);
}

/** OData DateTimeOffset literal: unquoted, UTC, whole seconds (rounded down, or up for an exclusive end). */
function odataTime(at: Date, round: 'floor' | 'ceil' = 'floor'): string {
  const ms = round === 'ceil' ? Math.ceil(at.getTime() / 1000) * 1000 : Math.floor(at.getTime() / 1000) * 1000;
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
