/**
 * The PIM domain: Graph's schedule and directory-object records turned into report rows.
 * Pure functions only; no I/O.
 */
import { optionalNumber, optionalYesNo, requiredUtcTime, rowTable, text, textOf, utcTime, yesNo } from '../util/table';

export type AssignmentState = 'Eligible' | 'Active';
export type PrincipalType = 'User' | 'Group' | 'ServicePrincipal' | '';

/** One line of eligible-assignments.csv or active-assignments.csv (docs/files.md). */
export interface AssignmentRow {
  state: AssignmentState;
  principalDisplayName: string;
  /** UPN for users, appId for service principals, blank for groups. */
  principalName: string;
  memberType: 'Direct' | 'Group';
  /** ISO times, or null when unknown / permanent. */
  start: string | null;
  end: string | null;
  principalType: PrincipalType;
  principalId: string;
  viaGroup: string;
  viaGroupId: string;
  roleId: string;
  roleName: string;
  scopeId: string;
  /** `Assigned` or `Activated` for active rows; blank for eligible rows. */
  assignmentType: string;
  privileged: boolean;
  outsidePim: boolean;
  created: string | null;
  scheduleId: string;
}

/** `Role`: an Entra role activated; `Group`: a PIM-for-Groups membership or ownership activated. */
export type ActivationType = 'Role' | 'Group';
/** A PIM-for-Groups activation's access, as its record names it; blank when it names neither. */
export type GroupAccess = 'Member' | 'Owner' | '';

/** One completed activation (of an Entra role, or of a PIM-for-Groups membership), from the audit log (docs/files.md, "activations.csv"). */
export interface ActivationRow {
  activated: string;
  principalDisplayName: string;
  principalName: string;
  principalId: string;
  roleName: string;
  roleId: string;
  scopeId: string;
  start: string | null;
  end: string | null;
  justification: string;
  ticketNumber: string;
  ticketSystem: string;
  requestId: string;
  auditId: string;
  activationType: ActivationType;
  /** The group of a PIM-for-Groups activation; blank for roles. */
  groupName: string;
  groupId: string;
  /** For a group activation: the Entra roles the group holds in the same run's snapshot, `; `-joined. */
  groupRoles: string;
  /** The approver's user principal name, from the approval record of the same request; blank when none. */
  approvedBy: string;
  approved: string | null;
  groupAccess: GroupAccess;
}

/** A row kept before the activation trail existed (state written by an earlier version): a role activation, nothing approved. */
export function withTrailDefaults(row: ActivationRow): ActivationRow {
  if (row.activationType !== undefined) return row;
  return {
    ...row,
    activationType: 'Role',
    groupName: '',
    groupId: '',
    groupRoles: '',
    approvedBy: '',
    approved: null,
    groupAccess: '',
  };
}

/**
 * One line of role-settings.csv: the PIM policy of one Entra role, or the member-activation policy
 * of a group that holds a highly privileged role (PIM for Groups). Read from the policy's rules by
 * their id (src/pim/roleSettings.ts); a value whose rule Graph did not return is null (blank).
 */
export interface RoleSettingsRow {
  /** The role's name, or `<group> (PIM for Groups membership)` for a group's policy. */
  roleName: string;
  /** The role definition id, or the group id. */
  roleId: string;
  privileged: boolean;
  maxActivationHours: number | null;
  activationRequiresMfa: boolean | null;
  /** The authentication context's claim value when one is required, blank otherwise. */
  activationAuthContext: string;
  activationRequiresJustification: boolean | null;
  activationRequiresTicket: boolean | null;
  approvalRequired: boolean | null;
  approvers: string;
  permanentEligibleAllowed: boolean | null;
  maxEligibleDays: number | null;
  permanentActiveAllowed: boolean | null;
  maxActiveDays: number | null;
  alertOnEligibleAssignment: string;
  alertOnActiveAssignment: string;
  alertOnActivation: string;
  defaultRecipientsOnActivationAlert: boolean | null;
  policyId: string;
  lastModified: string | null;
  lastModifiedBy: string;
}

/** A scope id as people read it: `Directory`, or the administrative unit's name. */
export type ScopeNamer = (scopeId: string) => string;

/**
 * The field tables: each row type's columns, in the files' order, and the value each shows. The
 * CSV header and cells, the JSON export's keys, the sorter's run files and the archive reader all
 * follow from these (src/util/table.ts); a new dataset is a row type and its table, here or beside it.
 *
 * The first seven assignment columns are the Entra admin center's PIM export header, so existing
 * sheets keep working.
 */
export const ASSIGNMENT_TABLE = rowTable<AssignmentRow, ScopeNamer>()([
  { column: 'Assignment State', key: 'state', format: textOf<AssignmentState>() },
  { column: 'User Group Name', key: 'principalDisplayName', format: text },
  { column: 'Role Name', key: 'roleName', format: text },
  { column: 'PrincipalName', key: 'principalName', format: text },
  { column: 'Member Type', key: 'memberType', format: textOf<AssignmentRow['memberType']>() },
  { column: 'Assignment Start Time (UTC)', key: 'start', format: utcTime },
  { column: 'Assignment End Time (UTC)', key: 'end', format: utcTime },
  { column: 'Principal Type', key: 'principalType', format: textOf<PrincipalType>() },
  { column: 'Principal Id', key: 'principalId', format: text },
  { column: 'Via Group', key: 'viaGroup', format: text },
  { column: 'Via Group Id', key: 'viaGroupId', format: text },
  { column: 'Role Id', key: 'roleId', format: text },
  { column: 'Scope', cell: (row, scopeName) => scopeName(row.scopeId) },
  { column: 'Scope Id', key: 'scopeId', format: text },
  { column: 'Assignment Type', key: 'assignmentType', format: text },
  { column: 'Permanent', cell: (row) => yesNo.write(row.end === null) },
  { column: 'Privileged', key: 'privileged', format: yesNo },
  { column: 'Outside PIM', key: 'outsidePim', format: yesNo },
  { column: 'Created (UTC)', key: 'created', format: utcTime },
  { column: 'Schedule Id', key: 'scheduleId', format: text },
]);

export const ACTIVATION_TABLE = rowTable<ActivationRow>()([
  { column: 'Activated (UTC)', key: 'activated', format: requiredUtcTime },
  { column: 'User Group Name', key: 'principalDisplayName', format: text },
  { column: 'PrincipalName', key: 'principalName', format: text },
  { column: 'Principal Id', key: 'principalId', format: text },
  { column: 'Role Name', key: 'roleName', format: text },
  { column: 'Role Id', key: 'roleId', format: text },
  { column: 'Scope Id', key: 'scopeId', format: text },
  { column: 'Start Time (UTC)', key: 'start', format: utcTime },
  { column: 'End Time (UTC)', key: 'end', format: utcTime },
  { column: 'Justification', key: 'justification', format: text },
  { column: 'Ticket Number', key: 'ticketNumber', format: text },
  { column: 'Ticket System', key: 'ticketSystem', format: text },
  { column: 'Request Id', key: 'requestId', format: text },
  { column: 'Audit Id', key: 'auditId', format: text },
  // Files written before these columns existed read back as role activations (a blank cell is `Role`).
  {
    column: 'Activation Type',
    key: 'activationType',
    format: {
      write: (v: ActivationType) => v,
      read: (cell: string): ActivationType => (cell === 'Group' ? 'Group' : 'Role'),
    },
  },
  { column: 'Group', key: 'groupName', format: text },
  { column: 'Group Id', key: 'groupId', format: text },
  { column: 'Group Roles', key: 'groupRoles', format: text },
  { column: 'Approved By', key: 'approvedBy', format: text },
  { column: 'Approved (UTC)', key: 'approved', format: utcTime },
  { column: 'Group Access', key: 'groupAccess', format: textOf<GroupAccess>() },
]);

/** role-settings.csv, in this order (docs/files.md). */
export const ROLE_SETTINGS_TABLE = rowTable<RoleSettingsRow>()([
  { column: 'Role Name', key: 'roleName', format: text },
  { column: 'Role Id', key: 'roleId', format: text },
  { column: 'Privileged', key: 'privileged', format: yesNo },
  { column: 'Max Activation (hours)', key: 'maxActivationHours', format: optionalNumber },
  { column: 'Activation Requires MFA', key: 'activationRequiresMfa', format: optionalYesNo },
  { column: 'Activation Auth Context', key: 'activationAuthContext', format: text },
  { column: 'Activation Requires Justification', key: 'activationRequiresJustification', format: optionalYesNo },
  { column: 'Activation Requires Ticket', key: 'activationRequiresTicket', format: optionalYesNo },
  { column: 'Approval Required', key: 'approvalRequired', format: optionalYesNo },
  { column: 'Approvers', key: 'approvers', format: text },
  { column: 'Permanent Eligible Allowed', key: 'permanentEligibleAllowed', format: optionalYesNo },
  { column: 'Max Eligible (days)', key: 'maxEligibleDays', format: optionalNumber },
  { column: 'Permanent Active Allowed', key: 'permanentActiveAllowed', format: optionalYesNo },
  { column: 'Max Active (days)', key: 'maxActiveDays', format: optionalNumber },
  { column: 'Alert On Eligible Assignment', key: 'alertOnEligibleAssignment', format: text },
  { column: 'Alert On Active Assignment', key: 'alertOnActiveAssignment', format: text },
  { column: 'Alert On Activation', key: 'alertOnActivation', format: text },
  {
    column: 'Default Recipients On Activation Alert',
    key: 'defaultRecipientsOnActivationAlert',
    format: optionalYesNo,
  },
  { column: 'Policy Id', key: 'policyId', format: text },
  { column: 'Last Modified (UTC)', key: 'lastModified', format: utcTime },
  { column: 'Last Modified By', key: 'lastModifiedBy', format: text },
]);

/** One eligible assignment nobody has used for UNUSED_AFTER_DAYS (unused-eligibilities.csv). */
export interface UnusedEligibilityRow {
  roleName: string;
  principalDisplayName: string;
  principalName: string;
  principalId: string;
  viaGroup: string;
  viaGroupId: string;
  roleId: string;
  scopeId: string;
  eligibleSince: string | null;
  /** The last activation that counts as use since the history began; null when none. */
  lastActivated: string | null;
  /** The oldest time the app's own history covers. */
  historySince: string;
  daysUnused: number;
}

const wholeNumber = { write: (v: number) => String(v), read: (cell: string) => Number(cell) || 0 };

export const UNUSED_TABLE = rowTable<UnusedEligibilityRow, ScopeNamer>()([
  { column: 'Role Name', key: 'roleName', format: text },
  { column: 'User Group Name', key: 'principalDisplayName', format: text },
  { column: 'PrincipalName', key: 'principalName', format: text },
  { column: 'Principal Id', key: 'principalId', format: text },
  { column: 'Via Group', key: 'viaGroup', format: text },
  { column: 'Via Group Id', key: 'viaGroupId', format: text },
  { column: 'Role Id', key: 'roleId', format: text },
  { column: 'Scope', cell: (row, scopeName) => scopeName(row.scopeId) },
  { column: 'Scope Id', key: 'scopeId', format: text },
  { column: 'Eligible Since (UTC)', key: 'eligibleSince', format: utcTime },
  { column: 'Last Activated (UTC)', key: 'lastActivated', format: utcTime },
  { column: 'History Since (UTC)', key: 'historySince', format: requiredUtcTime },
  { column: 'Days Unused', key: 'daysUnused', format: wholeNumber },
]);

/** Longest unused first, then role, principal, group and scope, ordinally: a total order. */
export function compareUnusedRows(a: UnusedEligibilityRow, b: UnusedEligibilityRow): number {
  return (
    b.daysUnused - a.daysUnused ||
    ordinalCompare(a.roleName, b.roleName) ||
    ordinalCompare(a.principalDisplayName, b.principalDisplayName) ||
    ordinalCompare(a.principalId, b.principalId) ||
    ordinalCompare(a.viaGroupId, b.viaGroupId) ||
    ordinalCompare(a.scopeId, b.scopeId)
  );
}

function ordinalCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Rows as arrays of values in a sorter's run files: a third of the bytes, half the time of keyed JSON. */
export const assignmentRowCodec = ASSIGNMENT_TABLE.codec;
export const activationRowCodec = ACTIVATION_TABLE.codec;

/** A period of the audit log the app never harvested: Graph had already dropped it. */
export interface HarvestGap {
  fromUtc: string;
  toUtc: string;
  reason: string;
  /** In the watermark only: the run day that found it, so a day that never became final has it reported by the next. */
  foundOn?: string;
}

/** Graph's directoryObject as `$expand=principal` or a member list returns it. */
export interface DirectoryObject {
  '@odata.type'?: string;
  id: string;
  displayName?: string | null;
  userPrincipalName?: string | null;
  appId?: string | null;
  /** A user's SMTP address; null when the user has no mailbox (the expanded user object carries it). */
  mail?: string | null;
}

export interface ScheduleInfo {
  startDateTime?: string | null;
  expiration?: { type?: string | null; endDateTime?: string | null; duration?: string | null } | null;
}

/** roleEligibilitySchedule / roleAssignmentSchedule, as listed with `$expand=principal`. */
export interface RoleSchedule {
  id: string;
  principalId: string;
  roleDefinitionId: string;
  directoryScopeId?: string | null;
  memberType?: string | null;
  assignmentType?: string | null;
  createdUsing?: string | null;
  createdDateTime?: string | null;
  status?: string | null;
  scheduleInfo?: ScheduleInfo | null;
  principal?: DirectoryObject | null;
}

/** privilegedAccessGroupEligibilitySchedule (PIM for Groups); its enums are lowercase. */
export interface GroupEligibilitySchedule {
  id: string;
  groupId: string;
  principalId: string;
  createdDateTime?: string | null;
  accessId?: string | null;
  memberType?: string | null;
  scheduleInfo?: ScheduleInfo | null;
  principal?: DirectoryObject | null;
}

export interface Principal {
  id: string;
  type: PrincipalType;
  displayName: string;
  /** UPN for users, appId for service principals, blank for groups. */
  name: string;
}

/** Case-insensitive: PIM for Groups returns `direct`, Entra roles `Direct`:
 * https://learn.microsoft.com/graph/api/resources/privilegedaccessgroupeligibilityschedule */
export function sameEnum(a: string | null | undefined, b: string): boolean {
  return (a ?? '').toLowerCase() === b.toLowerCase();
}

/**
 * A service principal and the types that inherit from it: an agent's identity and its blueprint's
 * principal (https://learn.microsoft.com/graph/api/resources/agentidentity, "Inherits from
 * servicePrincipal"; https://learn.microsoft.com/graph/api/resources/agentidentityblueprintprincipal).
 */
const SERVICE_PRINCIPAL_TYPES = new Set(['serviceprincipal', 'agentidentity', 'agentidentityblueprintprincipal']);

export function principalOf(id: string, object: DirectoryObject | null | undefined): Principal {
  if (!object) return { id, type: '', displayName: '', name: '' };
  const odataType = (object['@odata.type'] ?? '').toLowerCase();
  const type: PrincipalType = odataType.endsWith('.user')
    ? 'User'
    : odataType.endsWith('.group')
      ? 'Group'
      : SERVICE_PRINCIPAL_TYPES.has(odataType.slice(odataType.lastIndexOf('.') + 1))
        ? 'ServicePrincipal'
        : '';
  const name =
    type === 'User' ? (object.userPrincipalName ?? '') : type === 'ServicePrincipal' ? (object.appId ?? '') : '';
  return { id: object.id || id, type, displayName: object.displayName ?? '', name };
}

const CANONICAL_TIME = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3,7}Z$/;

/** A date and time with no zone designator: `2024-12-16T16:32:15.844`. */
const ZONELESS_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

/** An ISO time with up to 7 fractional digits (Graph mixes precisions), normalised; null if unreadable. */
export function isoTime(value: string | null | undefined): string | null {
  if (!value) return null;
  // Fast path (most values): already UTC with 3 to 7 fractional digits; cut to milliseconds.
  if (CANONICAL_TIME.test(value)) return value.length === 24 ? value : `${value.slice(0, 23)}Z`;
  const trimmed = value.replace(/(\.\d{3})\d+/, '$1');
  // Graph's times are UTC ("always in UTC time", as each resource's docs say of its DateTimeOffset
  // properties: https://learn.microsoft.com/graph/api/resources/directoryaudit); one written without
  // a zone is too (Date.parse would take it as the machine's local time).
  const ms = Date.parse(ZONELESS_TIME.test(trimmed) ? `${trimmed}Z` : trimmed);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

const DURATION =
  /^P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** start + an ISO 8601 duration such as `PT8H` or `P90D`; null if either is unreadable. */
export function addDuration(startIso: string, duration: string): string | null {
  const m = DURATION.exec(duration.trim());
  if (!m || duration.trim() === 'P' || duration.trim().endsWith('T')) return null;
  const [years, months, weeks, days, hours, minutes, seconds] = m.slice(1).map((v) => (v ? Number(v) : 0));
  const d = new Date(startIso);
  if (Number.isNaN(d.getTime())) return null;
  d.setUTCFullYear(d.getUTCFullYear() + years);
  d.setUTCMonth(d.getUTCMonth() + months);
  const ms = ((weeks * 7 + days) * 86400 + hours * 3600 + minutes * 60 + seconds) * 1000;
  return new Date(d.getTime() + ms).toISOString();
}

/**
 * A schedule's start and end. `afterDuration` ends at start + duration; `noExpiration` and
 * `notSpecified` have no end: https://learn.microsoft.com/graph/api/resources/expirationpattern
 */
export function scheduleWindow(info: ScheduleInfo | null | undefined): { start: string | null; end: string | null } {
  const start = isoTime(info?.startDateTime);
  const expiration = info?.expiration;
  const type = (expiration?.type ?? '').toLowerCase();
  let end: string | null = null;
  if (type === 'afterdatetime') end = isoTime(expiration?.endDateTime);
  else if (type === 'afterduration' && start && expiration?.duration) end = addDuration(start, expiration.duration);
  return { start, end };
}

/** The later of two starts; an unknown start yields to the other. */
export function laterStart(a: string | null, b: string | null): string | null {
  if (!a) return b;
  if (!b) return a;
  return a > b ? a : b;
}

/** The earlier of two ends; no end (permanent) yields to the other. */
export function earlierEnd(a: string | null, b: string | null): string | null {
  if (!a) return b;
  if (!b) return a;
  return a < b ? a : b;
}

function ordinal(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The CSVs' order (docs/files.md): role name, principal name, principal id; then via group and schedule for a total order. */
export function compareAssignmentRows(a: AssignmentRow, b: AssignmentRow): number {
  return (
    ordinal(a.roleName, b.roleName) ||
    ordinal(a.principalDisplayName, b.principalDisplayName) ||
    ordinal(a.principalId, b.principalId) ||
    ordinal(a.viaGroupId, b.viaGroupId) ||
    ordinal(a.scheduleId, b.scheduleId)
  );
}

/** One schedule (or route) per row, no expansion of members, by state then schedule id: the stored snapshot's order, which the digest's diff walks. */
export function compareSchedules(a: AssignmentRow, b: AssignmentRow): number {
  return a.state < b.state
    ? -1
    : a.state > b.state
      ? 1
      : a.scheduleId < b.scheduleId
        ? -1
        : a.scheduleId > b.scheduleId
          ? 1
          : 0;
}

export function compareActivationRows(a: ActivationRow, b: ActivationRow): number {
  return ordinal(a.activated, b.activated) || ordinal(a.auditId, b.auditId);
}

/** The assignment row for a schedule's own principal (Member Type `Direct`). */
export function directRow(
  state: AssignmentState,
  schedule: RoleSchedule,
  roleName: string,
  privilegedRoleIds: ReadonlySet<string>,
): AssignmentRow {
  const principal = principalOf(schedule.principalId, schedule.principal);
  const { start, end } = scheduleWindow(schedule.scheduleInfo);
  return {
    state,
    principalDisplayName: principal.displayName,
    principalName: principal.name,
    memberType: 'Direct',
    start,
    end,
    principalType: principal.type,
    principalId: principal.id,
    viaGroup: '',
    viaGroupId: '',
    roleId: schedule.roleDefinitionId,
    roleName,
    scopeId: schedule.directoryScopeId ?? '',
    assignmentType: state === 'Active' ? (schedule.assignmentType ?? '') : '',
    privileged: privilegedRoleIds.has((schedule.roleDefinitionId ?? '').toLowerCase()),
    // Assignments made outside PIM carry no createdUsing:
    // https://learn.microsoft.com/graph/api/resources/unifiedroleassignmentschedule
    outsidePim: state === 'Active' && !schedule.createdUsing,
    created: isoTime(schedule.createdDateTime),
    scheduleId: schedule.id,
  };
}

/** A transitive member of a group that holds the role: inherits the group row's schedule. */
export function memberRow(groupRow: AssignmentRow, member: Principal): AssignmentRow {
  return {
    ...groupRow,
    principalDisplayName: member.displayName,
    principalName: member.name,
    principalType: member.type,
    principalId: member.id,
    memberType: 'Group',
    viaGroup: groupRow.principalDisplayName,
    viaGroupId: groupRow.principalId,
  };
}

/**
 * The digest's schedule for a PIM-for-Groups eligibility into a group that holds the role (not a
 * row of the CSVs, which keep the group's schedule): a route into the role of its own, created,
 * ending and removed on its own, which the group's schedule alone would never show as new. Its id
 * joins the eligibility's and the group's schedule's, one per role the group holds, the same every
 * day (`isGroupEligibilityRoute`).
 */
export function groupEligibilityRoute(groupRow: AssignmentRow, eligibility: GroupEligibilitySchedule): AssignmentRow {
  return {
    ...groupEligibleRow(groupRow, eligibility),
    scheduleId: `${eligibility.id}${ROUTE_JOIN}${groupRow.scheduleId}`,
    created: isoTime(eligibility.createdDateTime),
  };
}

/** Graph's schedule ids are GUIDs, or GUIDs and words joined by `_` (test/fixtures/pimGroups-eligibilitySchedules-list.json): no space in them. */
const ROUTE_JOIN = ' via ';

/** A route (`groupEligibilityRoute`): a member row through a group, whose id joins two schedules' ids. */
export function isGroupEligibilityRoute(row: AssignmentRow): boolean {
  return row.memberType === 'Group' && row.viaGroupId !== '' && row.scheduleId.includes(ROUTE_JOIN);
}

/**
 * A PIM-for-Groups eligible member of a group that holds the role: can obtain the role only by
 * activating the membership, so the row is eligible whatever the group's own state (docs/files.md),
 * valid while both the membership eligibility and the group's assignment are.
 */
export function groupEligibleRow(groupRow: AssignmentRow, eligibility: GroupEligibilitySchedule): AssignmentRow {
  const member = principalOf(eligibility.principalId, eligibility.principal);
  const window = scheduleWindow(eligibility.scheduleInfo);
  return {
    ...memberRow(groupRow, member),
    state: 'Eligible',
    assignmentType: '',
    outsidePim: false,
    start: laterStart(groupRow.start, window.start),
    end: earlierEnd(groupRow.end, window.end),
  };
}
