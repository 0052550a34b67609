/**
 * An independent oracle for role-settings.csv and the digest's role-settings findings: computed from
 * the policies the Graph simulator serves (tools/tenant/policies.ts, `effectiveRolePolicies`) by
 * reading each rule as https://learn.microsoft.com/graph/identity-governance-pim-rules-overview
 * describes it, with no code from src/.
 */
import {
  CISA_ROLES,
  GLOBAL_ADMINISTRATOR,
  type SimPolicyRule,
  type SimRolePolicy,
  type SimTenant,
} from '../../tools/tenant/model';
import { effectiveRolePolicies } from '../../tools/tenant/policies';
import { formatUtc, neutralise } from './expected';

export const ROLE_SETTINGS_COLUMNS = [
  'Role Name',
  'Role Id',
  'Privileged',
  'Max Activation (hours)',
  'Activation Requires MFA',
  'Activation Auth Context',
  'Activation Requires Justification',
  'Activation Requires Ticket',
  'Approval Required',
  'Approvers',
  'Permanent Eligible Allowed',
  'Max Eligible (days)',
  'Permanent Active Allowed',
  'Max Active (days)',
  'Alert On Eligible Assignment',
  'Alert On Active Assignment',
  'Alert On Activation',
  'Default Recipients On Activation Alert',
  'Policy Id',
  'Last Modified (UTC)',
  'Last Modified By',
] as const;

export type RoleSettingsRecord = Record<(typeof ROLE_SETTINGS_COLUMNS)[number], string>;

const yes = (b: unknown) => (b ? 'Yes' : 'No');

/** Hours or days of the durations PIM uses (`PT30M`, `PT8H`, `P1DT12H`, `P365D`). */
function duration(text: unknown, unit: 'hours' | 'days'): string {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$/.exec(String(text ?? ''));
  if (!m) throw new Error(`oracle: duration ${String(text)} not understood`);
  const minutes = Number(m[1] ?? 0) * 1440 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
  return String(unit === 'hours' ? minutes / 60 : minutes / 1440);
}

function rule(policy: SimRolePolicy, id: string): SimPolicyRule {
  const found = policy.rules.find((r) => r.id === id);
  if (!found) throw new Error(`oracle: ${policy.policyId} lacks ${id}`);
  return found;
}

const recipients = (r: SimPolicyRule) => ((r.notificationRecipients as string[]) ?? []).join('; ');

function record(policy: SimRolePolicy, roleName: string, roleId: string): RoleSettingsRecord {
  const enablement = (rule(policy, 'Enablement_EndUser_Assignment').enabledRules as string[]) ?? [];
  const approval = rule(policy, 'Approval_EndUser_Assignment').setting as {
    isApprovalRequired: boolean;
    approvalStages: Array<{ primaryApprovers: Array<{ description: string }> }>;
  };
  const authContext = rule(policy, 'AuthenticationContext_EndUser_Assignment');
  const eligible = rule(policy, 'Expiration_Admin_Eligibility');
  const active = rule(policy, 'Expiration_Admin_Assignment');
  const activation = rule(policy, 'Notification_Admin_EndUser_Assignment');
  return {
    'Role Name': roleName,
    'Role Id': roleId,
    Privileged: 'Yes',
    'Max Activation (hours)': duration(rule(policy, 'Expiration_EndUser_Assignment').maximumDuration, 'hours'),
    'Activation Requires MFA': yes(enablement.includes('MultiFactorAuthentication')),
    'Activation Auth Context': authContext.isEnabled ? String(authContext.claimValue) : '',
    'Activation Requires Justification': yes(enablement.includes('Justification')),
    'Activation Requires Ticket': yes(enablement.includes('Ticketing')),
    'Approval Required': yes(approval.isApprovalRequired),
    Approvers: approval.approvalStages.flatMap((s) => s.primaryApprovers.map((a) => a.description)).join('; '),
    'Permanent Eligible Allowed': yes(!eligible.isExpirationRequired),
    'Max Eligible (days)': eligible.isExpirationRequired ? duration(eligible.maximumDuration, 'days') : '',
    'Permanent Active Allowed': yes(!active.isExpirationRequired),
    'Max Active (days)': active.isExpirationRequired ? duration(active.maximumDuration, 'days') : '',
    'Alert On Eligible Assignment': recipients(rule(policy, 'Notification_Admin_Admin_Eligibility')),
    'Alert On Active Assignment': recipients(rule(policy, 'Notification_Admin_Admin_Assignment')),
    'Alert On Activation': recipients(activation),
    'Default Recipients On Activation Alert': yes(activation.isDefaultRecipientsEnabled),
    'Policy Id': policy.policyId,
    'Last Modified (UTC)': formatUtc(policy.lastModifiedDateTime),
    'Last Modified By': policy.lastModifiedBy.displayName ?? '',
  };
}

/** Groups that hold a highly privileged role through a schedule of their own. */
export function privilegedGroups(tenant: SimTenant): Map<string, string> {
  const groups = new Map(tenant.groups.map((g) => [g.id, g.displayName]));
  const out = new Map<string, string>();
  for (const s of [...tenant.eligibilitySchedules, ...tenant.assignmentSchedules]) {
    if (groups.has(s.principalId) && s.roleDefinitionId in CISA_ROLES && s.memberType === 'Direct')
      out.set(s.principalId, groups.get(s.principalId)!);
  }
  return out;
}

/** Every row of role-settings.csv as the file has it (cells a spreadsheet would run neutralised), in file order: roles by name, then the privileged groups' member policies by name. */
export function expectedRoleSettings(
  tenant: SimTenant,
  options: { groupPolicies?: boolean } = {},
): RoleSettingsRecord[] {
  const policies = effectiveRolePolicies(tenant);
  const roles = tenant.roleDefinitions
    .map((r) => {
      const policy = policies.find((p) => p.scopeType === 'DirectoryRole' && p.roleDefinitionId === r.id)!;
      return { ...record(policy, r.displayName, r.id), Privileged: yes(r.id in CISA_ROLES) };
    })
    .sort((a, b) => (a['Role Name'] < b['Role Name'] ? -1 : a['Role Name'] > b['Role Name'] ? 1 : 0));
  if (options.groupPolicies === false) return roles;
  const groups = [...privilegedGroups(tenant)]
    .map(([id, name]) =>
      record(
        policies.find((p) => p.scopeType === 'Group' && p.scopeId === id && p.roleDefinitionId === 'member')!,
        `${name} (PIM for Groups membership)`,
        id,
      ),
    )
    .sort((a, b) => (a['Role Name'] < b['Role Name'] ? -1 : a['Role Name'] > b['Role Name'] ? 1 : 0));
  return [...roles, ...groups].map(
    (r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, neutralise(v)])) as RoleSettingsRecord,
  );
}

/**
 * The findings' text lines as the plain-text digest shows them (`! policy | role | text`), from the
 * expected rows and the tenant's active assignments made outside PIM (less `excluded`).
 */
export function expectedFindingLines(
  tenant: SimTenant,
  rows: RoleSettingsRecord[],
  excluded: ReadonlySet<string> = new Set(),
): string[] {
  const lines: string[] = [];
  const names = new Map(tenant.roleDefinitions.map((r) => [r.id, r.displayName]));
  const principals = new Map<string, string>(
    [...tenant.users, ...tenant.groups, ...tenant.servicePrincipals].map((p) => [p.id, p.displayName]),
  );
  for (const s of tenant.assignmentSchedules) {
    if (
      s.createdUsing === null &&
      (s.assignmentType ?? 'Assigned') === 'Assigned' &&
      s.roleDefinitionId in CISA_ROLES &&
      s.memberType === 'Direct' &&
      !excluded.has(s.principalId)
    ) {
      lines.push(
        `! MS.AAD.7.5 | ${names.get(s.roleDefinitionId)} | active assignment of ${principals.get(s.principalId) ?? s.principalId} (${s.principalId}) made outside PIM`,
      );
    }
  }
  for (const r of rows) {
    if (r.Privileged !== 'Yes') continue;
    const role = r['Role Name'];
    const ga = r['Role Id'] === GLOBAL_ADMINISTRATOR;
    if (ga && r['Approval Required'] === 'No')
      lines.push(`! MS.AAD.7.6 | ${role} | activation does not require approval`);
    if (!r['Alert On Eligible Assignment'])
      lines.push(`! MS.AAD.7.7 | ${role} | an eligible assignment sends no alert (no additional recipient)`);
    if (!r['Alert On Active Assignment'])
      lines.push(`! MS.AAD.7.7 | ${role} | an active assignment sends no alert (no additional recipient)`);
    if (!r['Alert On Activation'])
      lines.push(
        `! ${ga ? 'MS.AAD.7.8' : 'MS.AAD.7.9'} | ${role} | activation sends no alert (no additional recipient)`,
      );
    if (r['Activation Requires MFA'] === 'No' && !r['Activation Auth Context'])
      lines.push(`! MFA | ${role} | activation requires neither MFA nor an authentication context`);
  }
  return lines;
}
