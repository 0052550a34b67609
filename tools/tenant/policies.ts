/**
 * PIM role settings (role management policies) in Graph's shape, for the simulator and the demo.
 * The default rules follow Microsoft's published sample of
 * `GET /policies/roleManagementPolicyAssignments?$filter=scopeId eq '/' and scopeType eq 'DirectoryRole'&$expand=policy($expand=rules)`
 * (https://learn.microsoft.com/graph/api/policyroot-list-rolemanagementpolicyassignments, example 2;
 * saved as test/fixtures/roleManagementPolicyAssignments-list-expand.json) and the rule types of
 * https://learn.microsoft.com/graph/api/resources/unifiedrolemanagementpolicyrule. Only the keys
 * that sample shows are produced.
 */
import type { SimPolicyRule, SimRolePolicy, SimTenant } from './model';

export type { SimPolicyRule, SimRolePolicy };

const TENANT_PREFIX = 'cab01047-8ad9-4792-8e42-569340767f1b';

function target(caller: 'Admin' | 'EndUser', level: 'Eligibility' | 'Assignment') {
  return { caller, operations: ['all'], level, inheritableSettings: [], enforcedSettings: [] };
}

function notification(
  id: string,
  recipientType: 'Admin' | 'Requestor' | 'Approver',
  caller: 'Admin' | 'EndUser',
  level: 'Eligibility' | 'Assignment',
): SimPolicyRule {
  return {
    '@odata.type': '#microsoft.graph.unifiedRoleManagementPolicyNotificationRule',
    id,
    notificationType: 'Email',
    recipientType,
    notificationLevel: 'All',
    isDefaultRecipientsEnabled: true,
    notificationRecipients: [],
    target: target(caller, level),
  };
}

/** The rules of a role's policy as Graph gives them when nobody changed the defaults (docs sample). */
export function defaultRules(): SimPolicyRule[] {
  return [
    {
      '@odata.type': '#microsoft.graph.unifiedRoleManagementPolicyExpirationRule',
      id: 'Expiration_Admin_Eligibility',
      isExpirationRequired: false,
      maximumDuration: 'P365D',
      target: target('Admin', 'Eligibility'),
    },
    {
      '@odata.type': '#microsoft.graph.unifiedRoleManagementPolicyEnablementRule',
      id: 'Enablement_Admin_Eligibility',
      enabledRules: [],
      target: target('Admin', 'Eligibility'),
    },
    notification('Notification_Admin_Admin_Eligibility', 'Admin', 'Admin', 'Eligibility'),
    notification('Notification_Requestor_Admin_Eligibility', 'Requestor', 'Admin', 'Eligibility'),
    notification('Notification_Approver_Admin_Eligibility', 'Approver', 'Admin', 'Eligibility'),
    {
      '@odata.type': '#microsoft.graph.unifiedRoleManagementPolicyExpirationRule',
      id: 'Expiration_Admin_Assignment',
      isExpirationRequired: false,
      maximumDuration: 'P180D',
      target: target('Admin', 'Assignment'),
    },
    {
      '@odata.type': '#microsoft.graph.unifiedRoleManagementPolicyEnablementRule',
      id: 'Enablement_Admin_Assignment',
      enabledRules: ['Justification'],
      target: target('Admin', 'Assignment'),
    },
    notification('Notification_Admin_Admin_Assignment', 'Admin', 'Admin', 'Assignment'),
    notification('Notification_Requestor_Admin_Assignment', 'Requestor', 'Admin', 'Assignment'),
    notification('Notification_Approver_Admin_Assignment', 'Approver', 'Admin', 'Assignment'),
    {
      '@odata.type': '#microsoft.graph.unifiedRoleManagementPolicyExpirationRule',
      id: 'Expiration_EndUser_Assignment',
      isExpirationRequired: true,
      maximumDuration: 'PT8H',
      target: target('EndUser', 'Assignment'),
    },
    {
      '@odata.type': '#microsoft.graph.unifiedRoleManagementPolicyEnablementRule',
      id: 'Enablement_EndUser_Assignment',
      enabledRules: ['MultiFactorAuthentication', 'Justification'],
      target: target('EndUser', 'Assignment'),
    },
    {
      '@odata.type': '#microsoft.graph.unifiedRoleManagementPolicyApprovalRule',
      id: 'Approval_EndUser_Assignment',
      target: target('EndUser', 'Assignment'),
      setting: {
        isApprovalRequired: false,
        isApprovalRequiredForExtension: false,
        isRequestorJustificationRequired: true,
        approvalMode: 'SingleStage',
        approvalStages: [
          {
            approvalStageTimeOutInDays: 1,
            isApproverJustificationRequired: true,
            escalationTimeInMinutes: 0,
            isEscalationEnabled: false,
            primaryApprovers: [],
            escalationApprovers: [],
          },
        ],
      },
    },
    {
      '@odata.type': '#microsoft.graph.unifiedRoleManagementPolicyAuthenticationContextRule',
      id: 'AuthenticationContext_EndUser_Assignment',
      isEnabled: false,
      claimValue: null,
      target: target('EndUser', 'Assignment'),
    },
    notification('Notification_Admin_EndUser_Assignment', 'Admin', 'EndUser', 'Assignment'),
    notification('Notification_Requestor_EndUser_Assignment', 'Requestor', 'EndUser', 'Assignment'),
    notification('Notification_Approver_EndUser_Assignment', 'Approver', 'EndUser', 'Assignment'),
  ];
}

/** A stable pseudo-GUID from text (policy ids are GUID-shaped in the sample). */
function guidOf(text: string): string {
  let h = 2166136261;
  const hex: string[] = [];
  for (let round = 0; round < 4; round++) {
    for (const ch of `${round}:${text}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    hex.push(h.toString(16).padStart(8, '0'));
  }
  const s = hex.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20, 32)}`;
}

export function defaultRolePolicy(roleDefinitionId: string): SimRolePolicy {
  return {
    scopeId: '/',
    scopeType: 'DirectoryRole',
    roleDefinitionId,
    policyId: `DirectoryRole_${TENANT_PREFIX}_${guidOf(`role:${roleDefinitionId}`)}`,
    lastModifiedDateTime: null,
    lastModifiedBy: { displayName: null, id: null },
    rules: defaultRules(),
  };
}

export function defaultGroupPolicy(groupId: string, access: 'member' | 'owner'): SimRolePolicy {
  return {
    scopeId: groupId,
    scopeType: 'Group',
    roleDefinitionId: access,
    policyId: `Group_${groupId}_${guidOf(`group:${groupId}:${access}`)}`,
    lastModifiedDateTime: null,
    lastModifiedBy: { displayName: null, id: null },
    rules: defaultRules(),
  };
}

/**
 * Every policy the tenant has: its own (`rolePolicies`) and, for each role definition and group
 * without one, the defaults. What the simulator serves, and what tests compare the files with.
 */
export function effectiveRolePolicies(tenant: SimTenant): SimRolePolicy[] {
  const own = tenant.rolePolicies ?? [];
  const key = (p: { scopeId: string; roleDefinitionId: string }) => `${p.scopeId}|${p.roleDefinitionId}`.toLowerCase();
  const have = new Set(own.map(key));
  const out = [...own];
  for (const role of tenant.roleDefinitions)
    if (!have.has(key({ scopeId: '/', roleDefinitionId: role.id }))) out.push(defaultRolePolicy(role.id));
  for (const group of tenant.groups) {
    for (const access of ['member', 'owner'] as const) {
      if (!have.has(key({ scopeId: group.id, roleDefinitionId: access })))
        out.push(defaultGroupPolicy(group.id, access));
    }
  }
  return out;
}

/** The policy of `roleDefinitionId` (or a group's `member` policy), made the tenant's own so a test or the demo can change it. */
export function ownPolicy(tenant: SimTenant, scopeId: string, roleDefinitionId: string): SimRolePolicy {
  tenant.rolePolicies ??= [];
  const k = `${scopeId}|${roleDefinitionId}`.toLowerCase();
  let policy = tenant.rolePolicies.find((p) => `${p.scopeId}|${p.roleDefinitionId}`.toLowerCase() === k);
  if (!policy) {
    policy =
      scopeId === '/'
        ? defaultRolePolicy(roleDefinitionId)
        : defaultGroupPolicy(scopeId, roleDefinitionId as 'member' | 'owner');
    tenant.rolePolicies.push(policy);
  }
  return policy;
}

/** One rule of a policy by its id (never by position). */
export function ruleOf(policy: SimRolePolicy, id: string): SimPolicyRule {
  const rule = policy.rules.find((r) => r.id === id);
  if (!rule) throw new Error(`policy ${policy.policyId} has no rule ${id}`);
  return rule;
}

/** Records a change to a policy the way Graph reports it: the time and the admin who made it. */
export function touched(policy: SimRolePolicy, at: Date, by: { id: string; displayName: string }): void {
  policy.lastModifiedDateTime = at.toISOString().replace(/\.\d{3}Z$/, 'Z');
  policy.lastModifiedBy = { displayName: by.displayName, id: by.id };
}
