/**
 * Plain-data description of a simulated Entra tenant. Schedules and audit records are kept in Graph's own
 * v1.0 shape (https://learn.microsoft.com/graph/api/resources/privilegedidentitymanagementv3-overview) so the Graph simulator serves them as they are.
 */

export interface SimUser {
  id: string;
  displayName: string;
  userPrincipalName: string;
  /** The SMTP address Graph returns as `mail`; null (or absent) for a user without a mailbox. */
  mail?: string | null;
}

export interface SimServicePrincipal {
  id: string;
  displayName: string;
  appId: string;
}

export interface SimGroup {
  id: string;
  displayName: string;
  /** DIRECT member ids: users, groups or service principals. Nested groups are allowed (cycles too). */
  members: string[];
  /** Role-assignable groups (isAssignableToRole); informational only. */
  isAssignableToRole?: boolean;
  /**
   * `visibility: HiddenMembership`: listing its members needs Member.Read.Hidden
   * (https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers); without it the
   * simulator answers 403 Authorization_RequestDenied.
   */
  hiddenMembership?: boolean;
}

export interface SimAdministrativeUnit {
  id: string;
  displayName: string;
}

export interface SimRoleDefinition {
  id: string;
  displayName: string;
  /** Built-in roles: id === templateId, the same GUID in every tenant:
   * https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference */
  templateId: string;
  isBuiltIn: boolean;
  description?: string;
}

export type ExpirationType = 'noExpiration' | 'afterDateTime' | 'afterDuration' | 'notSpecified';

/** Graph's requestSchedule: https://learn.microsoft.com/graph/api/resources/requestschedule */
export interface SimScheduleInfo {
  startDateTime: string | null;
  recurrence: null;
  expiration: {
    type: ExpirationType;
    endDateTime: string | null;
    /** ISO-8601 duration, e.g. PT8H or P90D, when type is afterDuration. */
    duration: string | null;
  };
}

/** unifiedRoleEligibilitySchedule / unifiedRoleAssignmentSchedule as Graph returns them. */
export interface SimRoleSchedule {
  id: string;
  principalId: string;
  roleDefinitionId: string;
  /** `/`, `/administrativeUnits/{id}`, or another object id path. */
  directoryScopeId: string;
  appScopeId: null;
  /** Graph: Direct | Group | Inherited (free string, capitalised). The generator emits a few non-Direct ones. */
  memberType: string;
  /** Only on assignment schedules. */
  assignmentType?: 'Assigned' | 'Activated';
  status: string;
  /** null (with createdDateTime null) = assignment made outside PIM:
   * https://learn.microsoft.com/graph/api/resources/unifiedroleassignmentschedule */
  createdUsing: string | null;
  createdDateTime: string | null;
  modifiedDateTime: string | null;
  scheduleInfo: SimScheduleInfo;
}

/** privilegedAccessGroupEligibilitySchedule, lowercase enum members:
 * https://learn.microsoft.com/graph/api/resources/privilegedaccessgroupeligibilityschedule */
export interface SimGroupEligibilitySchedule {
  /** `${groupId}_${accessId}_${guid}` */
  id: string;
  groupId: string;
  principalId: string;
  accessId: 'member' | 'owner';
  memberType: 'direct' | 'group';
  status: string;
  createdDateTime: string | null;
  createdUsing: string | null;
  modifiedDateTime: string | null;
  scheduleInfo: SimScheduleInfo;
}

export interface SimTargetResource {
  id: string | null;
  displayName: string | null;
  /** Real data uses `type`; the docs sample uses `Type` (https://learn.microsoft.com/graph/api/resources/directoryaudit), so records may carry either. */
  type?: string;
  Type?: string;
  userPrincipalName?: string | null;
  groupType?: string | null;
  modifiedProperties?: { displayName: string; oldValue: string | null; newValue: string | null }[];
}

/** A raw Graph directoryAudit record, exactly as Graph would return it (test/fixtures/directoryAudits-pim-activation.json). */
export interface SimDirectoryAudit {
  id: string;
  category: string;
  correlationId: string;
  result: string;
  resultReason: string;
  activityDisplayName: string;
  /** UTC, 3 to 7 fractional digits. */
  activityDateTime: string;
  loggedByService: string;
  operationType: string;
  initiatedBy: {
    user: {
      id: string | null;
      displayName: string | null;
      userPrincipalName: string | null;
      ipAddress: string | null;
      userType?: string | null;
      homeTenantId?: string | null;
      homeTenantName?: string | null;
    } | null;
    app: {
      appId: string | null;
      displayName: string | null;
      servicePrincipalId: string | null;
      servicePrincipalName: string | null;
    } | null;
  };
  targetResources: SimTargetResource[];
  additionalDetails: { key: string; value: string }[];
}

/** A rule of a role management policy, exactly as Graph serves it (tools/tenant/policies.ts). */
export type SimPolicyRule = Record<string, unknown> & { '@odata.type': string; id: string };

/** A role management policy and its assignment to a role (scope `/`) or to a group's member/owner access. */
export interface SimRolePolicy {
  scopeId: string;
  scopeType: 'DirectoryRole' | 'Group';
  /** A role definition id, or `member` / `owner` for a group. */
  roleDefinitionId: string;
  policyId: string;
  lastModifiedDateTime: string | null;
  lastModifiedBy: { displayName: string | null; id: string | null };
  rules: SimPolicyRule[];
}

export interface SimTenant {
  tenantId: string;
  /** Organisation name (the `Directory` audit target). */
  displayName?: string;
  /** `false` = no Entra ID P2/Governance: PIM endpoints answer 400 AadPremiumLicenseRequired. Default true. */
  licensed?: boolean;
  users: SimUser[];
  servicePrincipals: SimServicePrincipal[];
  groups: SimGroup[];
  administrativeUnits: SimAdministrativeUnit[];
  roleDefinitions: SimRoleDefinition[];
  /** -> /roleManagement/directory/roleEligibilitySchedules */
  eligibilitySchedules: SimRoleSchedule[];
  /** -> /roleManagement/directory/roleAssignmentSchedules (Assigned and Activated) */
  assignmentSchedules: SimRoleSchedule[];
  /** -> /identityGovernance/privilegedAccess/group/eligibilitySchedules */
  groupEligibilitySchedules: SimGroupEligibilitySchedule[];
  /** -> /auditLogs/directoryAudits (the simulator applies the 30-day retention). */
  directoryAudits: SimDirectoryAudit[];
  /**
   * -> /policies/roleManagementPolicyAssignments: policies changed from Graph's defaults; a role or
   * group without one has the defaults (policies.ts, `effectiveRolePolicies`).
   */
  rolePolicies?: SimRolePolicy[];
}

/** CISA SCuBA highly privileged roles (docs/settings.md), by template id. */
export const CISA_ROLES: Readonly<Record<string, string>> = {
  '62e90394-69f5-4237-9190-012177145e10': 'Global Administrator',
  'e8611ab8-c189-46e8-94e1-60213ab1f814': 'Privileged Role Administrator',
  'fe930be7-5e62-47db-91af-98c3a49a38b1': 'User Administrator',
  'f28a1f50-f6e7-4571-818b-6a12f2af6b6c': 'SharePoint Administrator',
  '29232cdf-9323-42fd-ade2-1d097af3e4de': 'Exchange Administrator',
  '8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2': 'Hybrid Identity Administrator',
  '9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3': 'Application Administrator',
  '158c047a-c907-4556-b7ef-446551a6b5f7': 'Cloud Application Administrator',
};

/** Other built-in roles the generator uses (template ids as published by Microsoft). */
export const OTHER_BUILTIN_ROLES: Readonly<Record<string, string>> = {
  '729827e3-9c14-49f7-bb1b-9608f156bbb8': 'Helpdesk Administrator',
  '194ae4cb-b126-40b2-bd5b-6091b380977d': 'Security Administrator',
  '5d6b6bb7-de71-4623-b4af-96380a352509': 'Security Reader',
  'f2ef992c-3afb-46b9-b7cf-a126ee74c451': 'Global Reader',
  'fdd7a751-b60b-444a-984c-02652fe8fa1c': 'Groups Administrator',
  'c4e39bd9-1100-46d3-8c65-fb160da0071f': 'Authentication Administrator',
  '7be44c8a-adaf-4e2a-84d6-ab2649e08a13': 'Privileged Authentication Administrator',
  'b1be1c3e-b65d-4f19-8427-f6fa0d97feb9': 'Conditional Access Administrator',
  '4a5d8f65-41da-4de4-8968-e035b65339cf': 'Reports Reader',
  '69091246-20e8-4a56-aa4d-066075b2a7a8': 'Teams Administrator',
  '3a2c62db-5318-420d-8d74-23affee5d9d5': 'Intune Administrator',
  'f023fd81-a637-4b56-95fd-791ac0226033': 'Service Support Administrator',
};

export const GLOBAL_ADMINISTRATOR = '62e90394-69f5-4237-9190-012177145e10';

/** First-party app that writes the Core Directory half of a PIM operation:
 * https://learn.microsoft.com/entra/identity/monitoring-health/reference-audit-activities */
export const MS_PIM_APP = { appId: '01fc33a7-78ba-4d2f-a4b7-768e336e890e', displayName: 'MS-PIM' };

/** Activity names: https://learn.microsoft.com/entra/identity/monitoring-health/reference-audit-activities */
export const ACTIVITY = {
  activationRequested: 'Add member to role requested (PIM activation)',
  approvalRequested: 'Add member to role approval requested (PIM activation)',
  requestApproved: 'Add member to role request approved (PIM activation)',
  requestDenied: 'Add member to role request denied (PIM activation)',
  activationCompleted: 'Add member to role completed (PIM activation)',
  activationExpired: 'Remove member from role (PIM activation expired)',
  deactivateRequested: 'Remove member from role requested (PIM deactivate)',
  deactivateCompleted: 'Remove member from role completed (PIM deactivate)',
  eligibleAddedPermanent: 'Add eligible member to role in PIM completed (permanent)',
  eligibleAddedTimebound: 'Add eligible member to role in PIM completed (timebound)',
  activeAddedPermanent: 'Add member to role in PIM completed (permanent)',
  activeAddedTimebound: 'Add member to role in PIM completed (timebound)',
  outsidePim: 'Add member to role outside of PIM (permanent)',
  coreAddMember: 'Add member to role',
  coreRemoveMember: 'Remove member from role',
  coreAddEligible: 'Add eligible member to role',
} as const;
