/**
 * The hand-readable demo tenant (`npm run demo`): Contoso with a break-glass account, a Tier0 group with a
 * nested group and a service principal, a PIM-for-Groups helpdesk group, two administrative units, assignments
 * expiring soon, one just-in-time activation in progress and a few recent activations in the audit log.
 * Ids come from a fixed seed, times are relative to `now`, so the demo reads the same every day.
 */
import {
  activationEvents,
  adminAssignmentEvents,
  groupActivationEvents,
  outsidePimEvents,
  type AuditContext,
  type AuditPrincipal,
  type AuditRole,
} from './audit';
import {
  builtInRoleDefinitions,
  forDuration,
  groupEligibility,
  outsidePimAssignment,
  permanent,
  pimSchedule,
  until,
} from './generate';
import {
  GLOBAL_ADMINISTRATOR,
  type SimDirectoryAudit,
  type SimGroup,
  type SimRoleSchedule,
  type SimTenant,
  type SimUser,
} from './model';
import { ownPolicy, ruleOf, touched } from './policies';
import { Rng } from './random';
import { DAY_MS, HOUR_MS, graphTime, timeKey } from './time';

const ROLE = {
  globalAdmin: GLOBAL_ADMINISTRATOR,
  privilegedRoleAdmin: 'e8611ab8-c189-46e8-94e1-60213ab1f814',
  userAdmin: 'fe930be7-5e62-47db-91af-98c3a49a38b1',
  sharePointAdmin: 'f28a1f50-f6e7-4571-818b-6a12f2af6b6c',
  exchangeAdmin: '29232cdf-9323-42fd-ade2-1d097af3e4de',
  appAdmin: '9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3',
  cloudAppAdmin: '158c047a-c907-4556-b7ef-446551a6b5f7',
  helpdeskAdmin: '729827e3-9c14-49f7-bb1b-9608f156bbb8',
  securityAdmin: '194ae4cb-b126-40b2-bd5b-6091b380977d',
  globalReader: 'f2ef992c-3afb-46b9-b7cf-a126ee74c451',
  groupsAdmin: 'fdd7a751-b60b-444a-984c-02652fe8fa1c',
  reportsReader: '4a5d8f65-41da-4de4-8968-e035b65339cf',
} as const;

const PEOPLE = [
  'Adele Vance',
  'Alex Wilber',
  'Megan Bowen',
  'Lidia Holloway',
  'Nestor Wilke',
  'Patti Fernandez',
  'Pradeep Gupta',
  'Johanna Lorenz',
  'Joni Sherman',
  'Lee Gu',
  'Lynne Robbins',
  'Miriam Graham',
  'Isaiah Langer',
  'Grady Archie',
  'Henrietta Mueller',
  'Irvin Sayers',
  'Diego Siciliani',
  'Debra Berger',
  'Christie Cline',
  'Allan Deyoung',
  'Enrico Cattaneo',
  'Emily Braun',
  'Brian Johnson',
  'Cameron White',
  'Delia Dennis',
  'Gerhart Moller',
  'Raul Razo',
  'Sanjay Shah',
] as const;
type Person = (typeof PEOPLE)[number];

export const DEMO_DOMAIN = 'contoso.onmicrosoft.com';
/** The one hostile display name in the demo (docs/files.md: the CSVs must neutralise it in CSV and escape it in HTML). */
export const DEMO_HOSTILE_NAME = '=HYPERLINK("http://evil","click")';

export function demoTenant(now: Date): SimTenant {
  const rng = new Rng('contoso-demo');
  const nowMs = now.getTime();
  const t = (ms: number) => graphTime(ms, 3);
  const ago = (ms: number) => t(nowMs - ms);
  const ahead = (ms: number) => t(nowMs + ms);
  const tenantId = rng.guid();

  const users: SimUser[] = PEOPLE.map((name) => {
    const userPrincipalName = `${name.split(' ')[0].toLowerCase()}.${name.split(' ')[1].toLowerCase()}@${DEMO_DOMAIN}`;
    return { id: rng.guid(), displayName: name, userPrincipalName, mail: userPrincipalName };
  });
  const breakGlass: SimUser = {
    id: rng.guid(),
    displayName: 'Break Glass 01',
    userPrincipalName: `bg-admin01@${DEMO_DOMAIN}`,
  };
  const hostileUser: SimUser = {
    id: rng.guid(),
    displayName: DEMO_HOSTILE_NAME,
    userPrincipalName: `guest.contractor@${DEMO_DOMAIN}`,
  };
  users.push(breakGlass, hostileUser);
  const u = (name: Person) => users.find((x) => x.displayName === name) as SimUser;

  const backupSp = { id: rng.guid(), displayName: 'Backup Automation', appId: rng.guid() };
  const syncSp = { id: rng.guid(), displayName: 'Identity Sync Agent', appId: rng.guid() };
  const paris = { id: rng.guid(), displayName: 'Paris Office' };
  const berlin = { id: rng.guid(), displayName: 'Berlin Office' };

  const breakFix: SimGroup = {
    id: rng.guid(),
    displayName: 'Tier0 Break-Fix',
    members: [u('Lee Gu').id, u('Alex Wilber').id],
    isAssignableToRole: true,
  };
  const tier0: SimGroup = {
    id: rng.guid(),
    displayName: 'Tier0 Admins',
    members: [u('Megan Bowen').id, u('Nestor Wilke').id, breakFix.id, backupSp.id],
    isAssignableToRole: true,
  };
  const helpdesk: SimGroup = {
    id: rng.guid(),
    displayName: 'Helpdesk Operators',
    members: [u('Irvin Sayers').id],
    isAssignableToRole: true,
  };
  const exchange: SimGroup = {
    id: rng.guid(),
    displayName: 'Messaging Team',
    members: [u('Christie Cline').id, u('Allan Deyoung').id],
    isAssignableToRole: true,
  };
  const allStaff: SimGroup = { id: rng.guid(), displayName: 'All Staff', members: users.slice(0, 20).map((x) => x.id) };

  const customRoleId = rng.guid();
  const roleDefinitions = [
    ...builtInRoleDefinitions(),
    { id: customRoleId, displayName: 'Contoso Password Reset Operator', templateId: customRoleId, isBuiltIn: false },
  ];

  const au = (x: { id: string }) => `/administrativeUnits/${x.id}`;
  const eligible = (
    principalId: string,
    roleDefinitionId: string,
    info: SimRoleSchedule['scheduleInfo'],
    scope = '/',
    createdMs?: number,
  ) =>
    pimSchedule({
      id: rng.guid(),
      principalId,
      roleDefinitionId,
      directoryScopeId: scope,
      scheduleInfo: info,
      createdDateTime: createdMs === undefined ? info.startDateTime : t(createdMs),
      modifiedDateTime: '0001-01-01T08:00:00Z',
    });
  const assigned = (
    principalId: string,
    roleDefinitionId: string,
    info: SimRoleSchedule['scheduleInfo'],
    scope = '/',
  ) =>
    pimSchedule({
      id: rng.guid(),
      principalId,
      roleDefinitionId,
      directoryScopeId: scope,
      assignmentType: 'Assigned',
      scheduleInfo: info,
    });

  const eligibilitySchedules: SimRoleSchedule[] = [
    eligible(u('Adele Vance').id, ROLE.globalAdmin, permanent(ago(400 * DAY_MS))),
    eligible(u('Alex Wilber').id, ROLE.globalAdmin, until(ago(200 * DAY_MS), ahead(90 * DAY_MS))),
    eligible(tier0.id, ROLE.privilegedRoleAdmin, permanent(ago(300 * DAY_MS))),
    // Expiring soon (within the default 14-day window).
    eligible(
      u('Patti Fernandez').id,
      ROLE.userAdmin,
      until(ago(20 * DAY_MS), ahead(10 * DAY_MS)),
      au(paris),
      nowMs - 20 * DAY_MS,
    ),
    eligible(u('Debra Berger').id, ROLE.helpdeskAdmin, until(ago(170 * DAY_MS), ahead(5 * DAY_MS)), au(berlin)),
    eligible(u('Isaiah Langer').id, ROLE.securityAdmin, forDuration(ago(60 * DAY_MS), 'P180D')),
    eligible(u('Lidia Holloway').id, ROLE.sharePointAdmin, until(ago(30 * DAY_MS), ahead(60 * DAY_MS))),
    // Granted this morning: the digest's "new assignments" on a first run.
    eligible(u('Megan Bowen').id, ROLE.exchangeAdmin, until(ago(3 * 3600 * 1000), ahead(30 * DAY_MS))),
    eligible(u('Pradeep Gupta').id, ROLE.appAdmin, permanent(ago(500 * DAY_MS))),
    eligible(u('Henrietta Mueller').id, ROLE.globalReader, permanent(ago(250 * DAY_MS))),
    eligible(u('Grady Archie').id, customRoleId, until(ago(3 * DAY_MS), ahead(87 * DAY_MS)), au(paris)),
    eligible(hostileUser.id, ROLE.reportsReader, until(ago(2 * DAY_MS), ahead(28 * DAY_MS))),
  ];

  // The just-in-time activation in progress: Adele activated Global Administrator 45 minutes ago for 2 hours.
  const jitStart = nowMs - 45 * 60_000;
  const jitRequestId = rng.guid();
  const jit = pimSchedule({
    id: rng.guid(),
    principalId: u('Adele Vance').id,
    roleDefinitionId: ROLE.globalAdmin,
    directoryScopeId: '/',
    assignmentType: 'Activated',
    scheduleInfo: until(t(jitStart), t(jitStart + 2 * HOUR_MS)),
    createdUsing: jitRequestId,
    createdDateTime: t(jitStart - 1000),
  });
  const breakGlassStart = nowMs - 800 * DAY_MS;
  const assignmentSchedules: SimRoleSchedule[] = [
    // The break-glass account: permanent Global Administrator assigned directly, outside PIM.
    outsidePimAssignment(rng, {
      principalId: breakGlass.id,
      roleDefinitionId: ROLE.globalAdmin,
      start: graphTime(breakGlassStart, 7, 4321),
    }),
    jit,
    assigned(helpdesk.id, ROLE.helpdeskAdmin, permanent(ago(365 * DAY_MS))),
    assigned(exchange.id, ROLE.exchangeAdmin, until(ago(80 * DAY_MS), ahead(12 * DAY_MS))),
    assigned(syncSp.id, ROLE.cloudAppAdmin, permanent(ago(600 * DAY_MS))),
    assigned(u('Nestor Wilke').id, ROLE.userAdmin, until(ago(27 * DAY_MS), ahead(3 * DAY_MS)), au(berlin)),
    assigned(u('Diego Siciliani').id, ROLE.groupsAdmin, until(ago(2 * DAY_MS), ahead(178 * DAY_MS))),
    // Assigned in the directory six days ago, bypassing PIM (the audit log shows who did it).
    outsidePimAssignment(rng, {
      principalId: u('Gerhart Moller').id,
      roleDefinitionId: ROLE.exchangeAdmin,
      start: graphTime(nowMs - 6 * DAY_MS, 7, 1234),
    }),
  ];

  // PIM for Groups: eligible members of Helpdesk Operators (the owner eligibility does not grant the role).
  const groupEligibilitySchedules = [
    groupEligibility(rng, {
      groupId: helpdesk.id,
      principalId: u('Joni Sherman').id,
      accessId: 'member',
      scheduleInfo: permanent(ago(90 * DAY_MS)),
    }),
    groupEligibility(rng, {
      groupId: helpdesk.id,
      principalId: u('Lynne Robbins').id,
      accessId: 'member',
      scheduleInfo: until(ago(10 * DAY_MS), ahead(8 * DAY_MS)),
    }),
    groupEligibility(rng, {
      groupId: helpdesk.id,
      principalId: u('Miriam Graham').id,
      accessId: 'owner',
      scheduleInfo: permanent(ago(90 * DAY_MS)),
    }),
  ];

  // Recent audit history.
  const ctx: AuditContext = {
    rng,
    tenantId,
    tenantName: 'Contoso',
    now,
    quirks: { omitDirectoryScopeId: 0, omitJustificationKey: 0, omitRequestIdKey: 0 },
  };
  const rolesById = new Map(roleDefinitions.map((r) => [r.id, r]));
  const role = (id: string): AuditRole => ({
    id,
    displayName: rolesById.get(id)?.displayName ?? '',
    isBuiltIn: rolesById.get(id)?.isBuiltIn ?? true,
  });
  const person = (x: SimUser): AuditPrincipal => ({
    id: x.id,
    displayName: x.displayName,
    userPrincipalName: x.userPrincipalName,
    kind: 'User',
  });
  const activation = (
    who: SimUser,
    roleId: string,
    scope: string,
    startMs: number,
    hours: number,
    justification: string,
    extra: Partial<Parameters<typeof activationEvents>[1]> = {},
  ) =>
    activationEvents(ctx, {
      principal: person(who),
      role: role(roleId),
      directoryScopeId: scope,
      requestedAt: new Date(startMs - 20_000),
      start: new Date(startMs),
      end: new Date(startMs + hours * HOUR_MS),
      justification,
      requestId: rng.guid(),
      ...extra,
    });
  const directoryAudits: SimDirectoryAudit[] = [
    ...activation(
      u('Adele Vance'),
      ROLE.globalAdmin,
      '/',
      jitStart,
      2,
      'Emergency change CHG-4711: tenant-wide CA policy',
      {
        requestId: jitRequestId,
        ticket: { number: 'CHG-4711', system: 'ServiceNow' },
      },
    ),
    ...activation(
      u('Alex Wilber'),
      ROLE.globalAdmin,
      '/',
      nowMs - 2 * DAY_MS - 3 * HOUR_MS,
      4,
      'Quarterly licence true-up',
      {
        approver: {
          id: u('Megan Bowen').id,
          displayName: 'Megan Bowen',
          userPrincipalName: u('Megan Bowen').userPrincipalName,
        },
        requestedAt: new Date(nowMs - 2 * DAY_MS - 3 * HOUR_MS - 25 * 60_000),
      },
    ),
    ...activation(
      u('Isaiah Langer'),
      ROLE.securityAdmin,
      '/',
      nowMs - DAY_MS - 5 * HOUR_MS,
      8,
      'Investigating alert "Impossible travel", user Lee Gu',
      {
        deactivatedAt: new Date(nowMs - DAY_MS - 3 * HOUR_MS),
      },
    ),
    ...activation(
      u('Pradeep Gupta'),
      ROLE.appAdmin,
      '/',
      nowMs - 3 * DAY_MS - 7 * HOUR_MS,
      1,
      'Rotate client secret for HR Sync',
      {
        ticket: { number: 'INC-20931', system: 'ServiceNow' },
      },
    ),
    ...activation(
      u('Debra Berger'),
      ROLE.helpdeskAdmin,
      au(berlin),
      nowMs - 4 * DAY_MS - 2 * HOUR_MS,
      2,
      'Password resets, Berlin office',
    ),
    ...groupActivationEvents(ctx, {
      principal: person(u('Joni Sherman')),
      group: { id: helpdesk.id, displayName: helpdesk.displayName },
      accessId: 'member',
      // Within the last day, so the demo's last digest shows a group activation and its approver.
      start: new Date(nowMs - 9 * HOUR_MS),
      end: new Date(nowMs - HOUR_MS),
      justification: 'Morning helpdesk shift',
      requestId: rng.guid(),
      approver: {
        id: u('Megan Bowen').id,
        displayName: 'Megan Bowen',
        userPrincipalName: u('Megan Bowen').userPrincipalName,
      },
    }),
    ...adminAssignmentEvents(ctx, {
      admin: {
        id: u('Megan Bowen').id,
        displayName: 'Megan Bowen',
        userPrincipalName: u('Megan Bowen').userPrincipalName,
      },
      principal: person(u('Patti Fernandez')),
      role: role(ROLE.userAdmin),
      directoryScopeId: au(paris),
      at: new Date(nowMs - 20 * DAY_MS),
      eligible: true,
      end: new Date(nowMs + 10 * DAY_MS),
      justification: 'Paris office local IT',
      requestId: eligibilitySchedules[3].id,
    }),
    ...outsidePimEvents(ctx, {
      admin: {
        id: u('Megan Bowen').id,
        displayName: 'Megan Bowen',
        userPrincipalName: u('Megan Bowen').userPrincipalName,
      },
      principal: {
        id: u('Gerhart Moller').id,
        displayName: 'Gerhart Moller',
        userPrincipalName: u('Gerhart Moller').userPrincipalName,
        kind: 'User',
      },
      role: role(ROLE.exchangeAdmin),
      at: new Date(nowMs - 6 * DAY_MS),
    }),
  ];
  directoryAudits.sort((a, b) => {
    const ka = `${timeKey(a.activityDateTime)}|${a.id}`;
    const kb = `${timeKey(b.activityDateTime)}|${b.id}`;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });

  const tenant: SimTenant = {
    tenantId,
    displayName: 'Contoso',
    users,
    servicePrincipals: [backupSp, syncSp],
    groups: [tier0, breakFix, helpdesk, exchange, allStaff],
    administrativeUnits: [paris, berlin],
    roleDefinitions,
    eligibilitySchedules,
    assignmentSchedules,
    groupEligibilitySchedules,
    directoryAudits,
  };
  demoRoleSettings(tenant, now, u('Megan Bowen'), [u('Adele Vance'), u('Alex Wilber')]);
  return tenant;
}

/**
 * Role settings as a careful tenant has them, with the gaps the digest reports: Global Administrator
 * and Privileged Role Administrator need approval and alert the SOC; User Administrator alerts on
 * nothing (MS.AAD.7.7, 7.9); Exchange Administrator activates with neither MFA nor an authentication
 * context; SharePoint Administrator uses an authentication context instead of MFA.
 */
function demoRoleSettings(tenant: SimTenant, now: Date, admin: SimUser, approvers: SimUser[]): void {
  const soc = ['soc@contoso.com'];
  const changed = new Date(now.getTime() - 12 * DAY_MS);
  const strict = (roleId: string) => {
    const policy = ownPolicy(tenant, '/', roleId);
    for (const id of [
      'Notification_Admin_Admin_Eligibility',
      'Notification_Admin_Admin_Assignment',
      'Notification_Admin_EndUser_Assignment',
    ]) {
      ruleOf(policy, id).notificationRecipients = [...soc];
    }
    const setting = ruleOf(policy, 'Approval_EndUser_Assignment').setting as {
      isApprovalRequired: boolean;
      approvalStages: Array<{ primaryApprovers: unknown[] }>;
    };
    setting.isApprovalRequired = true;
    setting.approvalStages[0].primaryApprovers = approvers.map((a) => ({
      '@odata.type': '#microsoft.graph.singleUser',
      isBackup: false,
      userId: a.id,
      description: a.displayName,
    }));
    ruleOf(policy, 'Expiration_EndUser_Assignment').maximumDuration = 'PT4H';
    ruleOf(policy, 'Enablement_EndUser_Assignment').enabledRules = [
      'MultiFactorAuthentication',
      'Justification',
      'Ticketing',
    ];
    Object.assign(ruleOf(policy, 'Expiration_Admin_Eligibility'), {
      isExpirationRequired: true,
      maximumDuration: 'P180D',
    });
    Object.assign(ruleOf(policy, 'Expiration_Admin_Assignment'), {
      isExpirationRequired: true,
      maximumDuration: 'P15D',
    });
    touched(policy, changed, admin);
  };
  strict(ROLE.globalAdmin);
  strict(ROLE.privilegedRoleAdmin);
  const exchange = ownPolicy(tenant, '/', ROLE.exchangeAdmin);
  ruleOf(exchange, 'Enablement_EndUser_Assignment').enabledRules = ['Justification'];
  ruleOf(exchange, 'Notification_Admin_EndUser_Assignment').notificationRecipients = [...soc];
  touched(exchange, new Date(now.getTime() - 3 * DAY_MS), admin);
  const sharePoint = ownPolicy(tenant, '/', ROLE.sharePointAdmin);
  ruleOf(sharePoint, 'Enablement_EndUser_Assignment').enabledRules = ['Justification'];
  Object.assign(ruleOf(sharePoint, 'AuthenticationContext_EndUser_Assignment'), { isEnabled: true, claimValue: 'c1' });
  const helpdesk = ownPolicy(tenant, '/', ROLE.helpdeskAdmin);
  ruleOf(helpdesk, 'Expiration_EndUser_Assignment').maximumDuration = 'PT30M';
}
