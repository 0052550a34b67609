/**
 * PIM role settings: the policy behind each Entra role (and the member-activation policy of each
 * group that holds a highly privileged role), turned into rows of role-settings.csv, the CISA
 * MS.AAD.7.5–7.9 findings, and what changed since the previous stored settings.
 *
 * One paged listing for every role
 * (https://learn.microsoft.com/graph/api/policyroot-list-rolemanagementpolicyassignments: the
 * `$filter` on scopeId and scopeType is required); groups' policies 20 to a `$batch`. Rules are
 * found by their `id` (https://learn.microsoft.com/graph/identity-governance-pim-rules-overview),
 * never by position: Graph documents no order. A tenant has a few hundred roles at most, so the
 * rows are held in memory (unlike assignments, they do not grow with the tenant's users).
 */
import type { GraphClient, ListQuery, UnreadableList } from '../graph/client';
import type { Log } from '../log';
import { readRoleNames, type RoleNames } from './roleNames';
import { CISA_PRIVILEGED_ROLE_IDS, GLOBAL_ADMINISTRATOR_ROLE_ID } from './roles';
import { ROLE_SETTINGS_TABLE, isoTime, type AssignmentRow, type RoleSettingsRow } from './model';

const POLICY_ASSIGNMENTS = '/policies/roleManagementPolicyAssignments';
/**
 * No `$top`: the list documents only `$filter`, `$select` and `$expand`, and no public capture shows
 * it accepting `$top`; Graph pages it as it chooses and the client follows every nextLink.
 */
const POLICY_EXPAND = 'policy($expand=rules)';

/** A rule of a policy as Graph returns it (unifiedRoleManagementPolicyRule and its derived types). */
export interface PolicyRule {
  '@odata.type'?: string;
  id: string;
  isExpirationRequired?: boolean | null;
  maximumDuration?: string | null;
  enabledRules?: string[] | null;
  isEnabled?: boolean | null;
  claimValue?: string | null;
  notificationRecipients?: string[] | null;
  isDefaultRecipientsEnabled?: boolean | null;
  setting?: {
    isApprovalRequired?: boolean | null;
    approvalStages?: Array<{ primaryApprovers?: Approver[] | null }> | null;
  } | null;
}

/** singleUser / groupMembers (https://learn.microsoft.com/graph/api/resources/singleuser, .../groupmembers): `description` is the name shown. */
interface Approver {
  '@odata.type'?: string;
  description?: string | null;
  userId?: string | null;
  groupId?: string | null;
}

export interface RolePolicyAssignment {
  id: string;
  policyId?: string | null;
  scopeId?: string | null;
  scopeType?: string | null;
  roleDefinitionId?: string | null;
  policy?: {
    id?: string | null;
    lastModifiedDateTime?: string | null;
    lastModifiedBy?: { displayName?: string | null; id?: string | null } | null;
    rules?: PolicyRule[] | null;
  } | null;
}

/** The rules role-settings.csv reads, by id; a policy missing one has that cell blank and is reported. */
export const RULE_IDS = {
  activationExpiration: 'Expiration_EndUser_Assignment',
  activationEnablement: 'Enablement_EndUser_Assignment',
  approval: 'Approval_EndUser_Assignment',
  authenticationContext: 'AuthenticationContext_EndUser_Assignment',
  eligibleExpiration: 'Expiration_Admin_Eligibility',
  activeExpiration: 'Expiration_Admin_Assignment',
  alertEligible: 'Notification_Admin_Admin_Eligibility',
  alertActive: 'Notification_Admin_Admin_Assignment',
  alertActivation: 'Notification_Admin_EndUser_Assignment',
} as const;

const DURATION =
  /^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/**
 * An ISO 8601 duration (`PT8H`, `P365D`, `PT30M`) in hours or days; null when absent or when it has
 * years or months (no fixed length: not guessed).
 */
export function durationIn(duration: string | null | undefined, unit: 'hours' | 'days'): number | null {
  const text = (duration ?? '').trim();
  const m = DURATION.exec(text);
  if (!m || text === 'P' || text.endsWith('T')) return null;
  const [weeks, days, hours, minutes, seconds] = m.slice(1).map((v) => (v ? Number(v) : 0));
  const totalHours = (weeks * 7 + days) * 24 + hours + minutes / 60 + seconds / 3600;
  const value = unit === 'hours' ? totalHours : totalHours / 24;
  return Math.round(value * 10_000) / 10_000;
}

const joined = (values: ReadonlyArray<string | null | undefined> | null | undefined) =>
  (values ?? [])
    .map((v) => (v ?? '').trim())
    .filter(Boolean)
    .join('; ');

/** A row of role-settings.csv from one policy assignment, and the rule ids the policy lacked. */
export function roleSettingsRow(
  assignment: RolePolicyAssignment,
  names: { roleName: string; roleId: string; privileged: boolean },
): { row: RoleSettingsRow; missingRules: string[] } {
  const rules = new Map((assignment.policy?.rules ?? []).map((r) => [r.id, r]));
  const missingRules = Object.values(RULE_IDS).filter((id) => !rules.has(id));
  const rule = (id: string) => rules.get(id);
  const enabled = rule(RULE_IDS.activationEnablement);
  const has = (name: string) => (enabled ? (enabled.enabledRules ?? []).includes(name) : null);
  const bool = (value: boolean | null | undefined) => (value === undefined || value === null ? null : value);
  const approval = rule(RULE_IDS.approval);
  const authContext = rule(RULE_IDS.authenticationContext);
  const eligible = rule(RULE_IDS.eligibleExpiration);
  const active = rule(RULE_IDS.activeExpiration);
  const permanentEligible = eligible ? eligible.isExpirationRequired === false : null;
  const permanentActive = active ? active.isExpirationRequired === false : null;
  const activation = rule(RULE_IDS.alertActivation);
  const policy = assignment.policy;
  return {
    missingRules,
    row: {
      roleName: names.roleName,
      roleId: names.roleId,
      privileged: names.privileged,
      maxActivationHours: durationIn(rule(RULE_IDS.activationExpiration)?.maximumDuration, 'hours'),
      activationRequiresMfa: has('MultiFactorAuthentication'),
      activationAuthContext: authContext?.isEnabled ? (authContext.claimValue ?? '') : '',
      activationRequiresJustification: has('Justification'),
      activationRequiresTicket: has('Ticketing'),
      approvalRequired: approval ? (bool(approval.setting?.isApprovalRequired) ?? false) : null,
      approvers: joined(
        (approval?.setting?.approvalStages ?? []).flatMap((stage) =>
          (stage.primaryApprovers ?? []).map((a) => a.description || a.userId || a.groupId || ''),
        ),
      ),
      permanentEligibleAllowed: permanentEligible,
      maxEligibleDays: permanentEligible === false ? durationIn(eligible?.maximumDuration, 'days') : null,
      permanentActiveAllowed: permanentActive,
      maxActiveDays: permanentActive === false ? durationIn(active?.maximumDuration, 'days') : null,
      alertOnEligibleAssignment: joined(rule(RULE_IDS.alertEligible)?.notificationRecipients),
      alertOnActiveAssignment: joined(rule(RULE_IDS.alertActive)?.notificationRecipients),
      alertOnActivation: joined(activation?.notificationRecipients),
      defaultRecipientsOnActivationAlert: activation ? bool(activation.isDefaultRecipientsEnabled) : null,
      policyId: policy?.id ?? assignment.policyId ?? '',
      lastModified: isoTime(policy?.lastModifiedDateTime),
      lastModifiedBy: policy?.lastModifiedBy?.displayName || policy?.lastModifiedBy?.id || '',
    },
  };
}

/** Something about role settings Graph would not give: the digest and manifest say so. */
export interface RoleSettingsIncomplete {
  list: 'roleSettings';
  groupId: string;
  groupName: string;
  status: number;
  code: string;
  reason: string;
}

export interface RoleSettings {
  /** Roles by name, then groups' policies by group name. */
  rows: RoleSettingsRow[];
  incomplete: RoleSettingsIncomplete[];
}

export interface RoleSettingsOptions {
  /** Default: the CISA list (./roles.ts). */
  privilegedRoleIds?: ReadonlySet<string>;
  /**
   * Groups that hold a highly privileged role (id → name): their member-activation policies are read
   * too. A promise lets the roles' policies be read while the snapshot still finds the groups.
   */
  groups: ReadonlyMap<string, string> | PromiseLike<ReadonlyMap<string, string>>;
  /** The role names when the caller has them (the daily run shares the snapshot's); read here otherwise. */
  roleNames?: PromiseLike<RoleNames>;
  log: Log;
}

/** `$batch` requests in flight for the groups' policies, as for the group expansion (src/pim/snapshot.ts). */
const GROUP_POLICY_BATCHES_IN_FLIGHT = 6;

export async function readRoleSettings(graph: GraphClient, options: RoleSettingsOptions): Promise<RoleSettings> {
  const { log } = options;
  // The role names and the roles' policies are independent lists: both go out at once, and both
  // are settled before either failure is thrown, so no request of this read outlives it.
  const [namesDone, policiesDone] = await Promise.allSettled([
    options.roleNames ?? readRoleNames(graph),
    (async () => {
      const assignments: RolePolicyAssignment[] = [];
      for await (const assignment of graph.list<RolePolicyAssignment>(POLICY_ASSIGNMENTS, {
        $filter: "scopeId eq '/' and scopeType eq 'DirectoryRole'",
        $expand: POLICY_EXPAND,
      }))
        assignments.push(assignment);
      return assignments;
    })(),
  ]);
  if (namesDone.status === 'rejected') throw namesDone.reason;
  if (policiesDone.status === 'rejected') throw policiesDone.reason;
  const [names, assignments] = [namesDone.value, policiesDone.value];

  const rows: RoleSettingsRow[] = [];
  const incomplete: RoleSettingsIncomplete[] = [];
  const lacking: string[] = [];
  for (const assignment of assignments) {
    const roleId = assignment.roleDefinitionId ?? '';
    const { row, missingRules } = roleSettingsRow(assignment, {
      roleName: names.get(roleId.toLowerCase()) ?? '',
      roleId,
      privileged: (options.privilegedRoleIds ?? CISA_PRIVILEGED_ROLE_IDS).has(roleId.toLowerCase()),
    });
    rows.push(row);
    if (missingRules.length > 0) lacking.push(`${row.roleName || roleId}: ${missingRules.join(', ')}`);
  }
  rows.sort((a, b) => ordinal(a.roleName, b.roleName) || ordinal(a.roleId, b.roleId));

  const groupRows: RoleSettingsRow[] = [];
  const groups = await options.groups;
  if (groups.size > 0) {
    const lists: ListQuery[] = [...groups.keys()].map((groupId) => ({
      key: groupId,
      path: POLICY_ASSIGNMENTS,
      // Member access only: eligible members activate it to obtain the group's roles (owners manage the group).
      query: {
        $filter: `scopeId eq '${groupId}' and scopeType eq 'Group' and roleDefinitionId eq 'member'`,
        $expand: POLICY_EXPAND,
      },
    }));
    // Batches answer in whatever order they complete: what is reported is put in a fixed order.
    const denied: string[] = [];
    let deniedAnswer: UnreadableList | undefined;
    const groupIncomplete: RoleSettingsIncomplete[] = [];
    const groupLacking: string[] = [];
    for await (const page of graph.batchPages<RolePolicyAssignment>(lists, {
      concurrency: GROUP_POLICY_BATCHES_IN_FLIGHT,
    })) {
      if (page.unreadable) {
        const list = page.unreadable;
        const groupName = groups.get(list.key) ?? '';
        if (list.status === 403) {
          denied.push(list.key);
          if (!deniedAnswer || list.key < deniedAnswer.key) deniedAnswer = list;
          continue;
        }
        groupIncomplete.push({
          list: 'roleSettings',
          groupId: list.key,
          groupName,
          status: list.status,
          code: list.code,
          reason: `its PIM for Groups membership policy could not be read: Graph answered ${list.status} ${list.code} (${list.message})`,
        });
        continue;
      }
      const [groupId, items] = [page.key, page.items];
      const groupName = groups.get(groupId) ?? '';
      for (const assignment of items) {
        const { row, missingRules } = roleSettingsRow(assignment, {
          roleName: `${groupName || groupId} (PIM for Groups membership)`,
          roleId: groupId,
          privileged: true,
        });
        groupRows.push(row);
        if (missingRules.length > 0) groupLacking.push(`${row.roleName}: ${missingRules.join(', ')}`);
      }
    }
    incomplete.push(
      ...groupIncomplete.sort((a, b) => ordinal(a.groupName, b.groupName) || ordinal(a.groupId, b.groupId)),
    );
    lacking.push(...groupLacking.sort(ordinal));
    if (deniedAnswer) {
      // Every group answers alike without the permission: one line, not one per group.
      incomplete.push({
        list: 'roleSettings',
        groupId: '',
        groupName: '',
        status: deniedAnswer.status,
        code: deniedAnswer.code,
        reason: `the PIM for Groups membership policies of ${denied.length} group(s) that hold highly privileged roles could not be read: Graph denied it (403 ${deniedAnswer.code}); grant RoleManagementPolicy.Read.AzureADGroup (see the README)`,
      });
    }
    groupRows.sort((a, b) => ordinal(a.roleName, b.roleName) || ordinal(a.roleId, b.roleId));
  }
  if (lacking.length > 0) {
    incomplete.push({
      list: 'roleSettings',
      groupId: '',
      groupName: '',
      status: 200,
      code: 'MissingRules',
      reason: `role settings lacked rules, so those cells are blank: ${lacking.join('; ')}`,
    });
  }
  log.info(`Role settings: ${rows.length} role(s), ${groupRows.length} group policy(ies)`);
  return { rows: [...rows, ...groupRows], incomplete };
}

function ordinal(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * What the role-settings findings need from the snapshot's rows as they stream to the CSVs: active
 * assignments of highly privileged roles made outside PIM (MS.AAD.7.5, exclusions honoured; the
 * schedule's own principal, not group members).
 */
export class RoleSettingsInputs {
  readonly outsidePim: AssignmentRow[] = [];
  outsidePimCount = 0;

  constructor(
    private readonly excludedPrincipalIds: ReadonlySet<string>,
    private readonly limit = 50,
  ) {}

  observe(row: AssignmentRow): void {
    if (!row.privileged || row.memberType !== 'Direct') return;
    if (
      row.state === 'Active' &&
      row.outsidePim &&
      !this.excludedPrincipalIds.has((row.principalId ?? '').toLowerCase())
    ) {
      this.outsidePimCount++;
      if (this.outsidePim.length < this.limit) this.outsidePim.push(row);
    }
  }
}

export interface RoleSettingsFinding {
  /** CISA SCuBA policy id, or `MFA` for activation with neither MFA nor an authentication context. */
  policy: string;
  role: string;
  text: string;
}

const isGlobalAdministrator = (row: RoleSettingsRow) => row.roleId.toLowerCase() === GLOBAL_ADMINISTRATOR_ROLE_ID;

/**
 * The findings, one per role and policy. An alert counts only when its rule lists at least one
 * additional recipient: default recipients alone do not (ScubaGear's reading; README says why).
 * A notification rule Graph did not return lists no recipient, so it is a finding too (and the
 * missing rule is reported as incomplete).
 */
export function roleSettingsFindings(
  rows: readonly RoleSettingsRow[],
  inputs: RoleSettingsInputs,
): RoleSettingsFinding[] {
  const findings: RoleSettingsFinding[] = [];
  for (const r of inputs.outsidePim) {
    const who = r.principalDisplayName || r.principalName || r.principalId;
    findings.push({
      policy: 'MS.AAD.7.5',
      role: r.roleName || r.roleId,
      text: `active assignment of ${who} (${r.principalId}) made outside PIM`,
    });
  }
  if (inputs.outsidePimCount > inputs.outsidePim.length) {
    findings.push({
      policy: 'MS.AAD.7.5',
      role: '',
      text: `and ${inputs.outsidePimCount - inputs.outsidePim.length} more assignment(s) made outside PIM in active-assignments.csv`,
    });
  }
  for (const row of rows) {
    if (!row.privileged) continue;
    const role = row.roleName || row.roleId;
    const ga = isGlobalAdministrator(row);
    if (ga && row.approvalRequired === false)
      findings.push({ policy: 'MS.AAD.7.6', role, text: 'activation does not require approval' });
    if (row.alertOnEligibleAssignment === '') {
      findings.push({
        policy: 'MS.AAD.7.7',
        role,
        text: 'an eligible assignment sends no alert (no additional recipient)',
      });
    }
    if (row.alertOnActiveAssignment === '') {
      findings.push({
        policy: 'MS.AAD.7.7',
        role,
        text: 'an active assignment sends no alert (no additional recipient)',
      });
    }
    if (row.alertOnActivation === '') {
      findings.push({
        policy: ga ? 'MS.AAD.7.8' : 'MS.AAD.7.9',
        role,
        text: 'activation sends no alert (no additional recipient)',
      });
    }
    if (row.activationRequiresMfa === false && row.activationAuthContext === '') {
      findings.push({ policy: 'MFA', role, text: 'activation requires neither MFA nor an authentication context' });
    }
  }
  return findings;
}

/** What the digest's "Role settings" section shows. */
export interface RoleSettingsReport {
  findings: RoleSettingsFinding[];
  /** Null on the first run (no stored settings to compare with). */
  changes: { sinceDay: string; items: RoleSettingChange[] } | null;
  roles: number;
}

export interface RoleSettingChange {
  role: string;
  roleId: string;
  column: string;
  before: string;
  after: string;
  lastModified: string | null;
  lastModifiedBy: string;
}

/** Columns that describe the change rather than the setting: shown on each change line, not diffed. */
const NOT_DIFFED = new Set(['Role Name', 'Role Id', 'Policy Id', 'Last Modified (UTC)', 'Last Modified By']);

/** Each setting that differs from the previous stored settings, column by column, by role id. */
export function roleSettingChanges(
  previous: readonly RoleSettingsRow[],
  current: readonly RoleSettingsRow[],
): RoleSettingChange[] {
  const columns = ROLE_SETTINGS_TABLE.columns;
  const before = new Map(previous.map((r) => [r.roleId.toLowerCase(), r]));
  const changes: RoleSettingChange[] = [];
  const seen = new Set<string>();
  for (const row of current) {
    const key = row.roleId.toLowerCase();
    seen.add(key);
    const old = before.get(key);
    const meta = {
      role: row.roleName || row.roleId,
      roleId: row.roleId,
      lastModified: row.lastModified,
      lastModifiedBy: row.lastModifiedBy,
    };
    if (!old) {
      changes.push({ ...meta, column: 'Role', before: '', after: 'listed' });
      continue;
    }
    const a = ROLE_SETTINGS_TABLE.values(old, undefined);
    const b = ROLE_SETTINGS_TABLE.values(row, undefined);
    columns.forEach((column, i) => {
      if (!NOT_DIFFED.has(column) && a[i] !== b[i]) changes.push({ ...meta, column, before: a[i], after: b[i] });
    });
  }
  for (const old of previous) {
    if (!seen.has(old.roleId.toLowerCase())) {
      changes.push({
        role: old.roleName || old.roleId,
        roleId: old.roleId,
        column: 'Role',
        before: 'listed',
        after: '',
        lastModified: null,
        lastModifiedBy: '',
      });
    }
  }
  return changes;
}
