/**
 * Builders for raw directoryAudit records as PIM and Core Directory write them
 * (https://learn.microsoft.com/entra/identity/monitoring-health/reference-audit-activities,
 * https://learn.microsoft.com/graph/api/resources/directoryaudit; a real record:
 * test/fixtures/directoryAudits-pim-activation.json).
 * Realistic noise on purpose: targetResources and additionalDetails are shuffled per record (positions vary),
 * some records use the docs' `Type` key instead of `type`, timestamps carry 3, 6 or 7 fractional
 * digits, and optional keys are sometimes missing.
 */
import { ACTIVITY, MS_PIM_APP, type SimDirectoryAudit, type SimTargetResource } from './model';
import type { Rng } from './random';
import { dotnetTicks, graphTime } from './time';

export interface AuditPrincipal {
  id: string;
  displayName: string;
  /** Users only. */
  userPrincipalName?: string | null;
  kind: 'User' | 'ServicePrincipal' | 'Group';
}

export interface AuditRole {
  id: string;
  displayName: string;
  isBuiltIn: boolean;
}

export interface AuditContext {
  rng: Rng;
  tenantId: string;
  tenantName: string;
  /** Events at or after this instant have not happened yet and are not emitted. */
  now: Date;
  /** Probabilities of the realistic quirks; the defaults follow the bench brief. */
  quirks?: Partial<AuditQuirks>;
}

export interface AuditQuirks {
  capitalTypeKey: number;
  sevenDigits: number;
  omitDirectoryScopeId: number;
  omitJustificationKey: number;
  omitRoleDefinitionOriginId: number;
  omitTemplateId: number;
  omitRequestIdKey: number;
  ticket: number;
}

const DEFAULT_QUIRKS: AuditQuirks = {
  capitalTypeKey: 0.1,
  sevenDigits: 0.6,
  // No public capture shows a DirectoryScopeId detail: absent unless a test asks for it.
  omitDirectoryScopeId: 1,
  omitJustificationKey: 0.1,
  omitRoleDefinitionOriginId: 0.1,
  omitTemplateId: 0.3,
  omitRequestIdKey: 0.05,
  ticket: 0.35,
};

/** Per-tenant directoryRole object ids (Core Directory's Role.ObjectID differs from the template id, 8). */
const directoryRoleIds = new WeakMap<AuditContext, Map<string, string>>();

function quirk(ctx: AuditContext, name: keyof AuditQuirks): boolean {
  return ctx.rng.chance(ctx.quirks?.[name] ?? DEFAULT_QUIRKS[name]);
}

/** A timestamp in Graph's mixed precisions; the sub-millisecond digits are random. */
function stamp(ctx: AuditContext, ms: number): string {
  if (quirk(ctx, 'sevenDigits')) return graphTime(ms, 7, ctx.rng.int(0, 9999));
  return ctx.rng.chance(0.5) ? graphTime(ms, 6, ctx.rng.int(0, 999) * 10) : graphTime(ms, 3);
}

function pimId(ctx: AuditContext, ms: number): string {
  return `PIM_${ctx.rng.guid()}_${ctx.rng.guid()}_${dotnetTicks(ms, ctx.rng.int(0, 9999))}`;
}

function coreDirectoryId(ctx: AuditContext, correlationId: string): string {
  return `Directory_${correlationId}_${ctx.rng.alnum(5)}_${ctx.rng.int(100000000, 999999999)}`;
}

function target(
  capitalType: boolean,
  type: string,
  id: string | null,
  displayName: string | null,
  extra?: Pick<SimTargetResource, 'userPrincipalName' | 'groupType' | 'modifiedProperties'>,
): SimTargetResource {
  // Built field by field (no spreads): benchmark tenants create hundreds of thousands of these.
  const t: SimTargetResource = { id, displayName };
  if (capitalType) t.Type = type;
  else t.type = type;
  t.userPrincipalName = extra?.userPrincipalName ?? null;
  t.groupType = extra?.groupType ?? null;
  t.modifiedProperties = extra?.modifiedProperties ?? [];
  return t;
}

function principalTarget(capital: boolean, p: AuditPrincipal): SimTargetResource {
  return target(capital, p.kind, p.id, p.displayName, {
    userPrincipalName: p.kind === 'User' ? (p.userPrincipalName ?? null) : null,
  });
}

function roleTarget(capital: boolean, role: AuditRole): SimTargetResource {
  const q = (v: string) => JSON.stringify(v); // modifiedProperties values are JSON-encoded strings
  return target(capital, 'Role', role.id, role.displayName, {
    modifiedProperties: [
      { displayName: 'RoleDefinitionOriginId', oldValue: '""', newValue: q(role.id) },
      {
        displayName: 'RoleDefinitionOriginType',
        oldValue: '""',
        newValue: q(role.isBuiltIn ? 'BuiltInRole' : 'CustomRole'),
      },
      { displayName: 'TemplateId', oldValue: '""', newValue: q(role.id) },
    ],
  });
}

function userInitiator(p: { id: string; displayName: string; userPrincipalName?: string | null }, ip: string | null) {
  return {
    app: null,
    user: {
      id: p.id,
      displayName: p.displayName,
      userPrincipalName: p.userPrincipalName ?? null,
      ipAddress: ip,
      userType: null,
      homeTenantId: null,
      homeTenantName: null,
    },
  };
}

/** The initiator of automatic PIM actions such as expiry (README, "What we know of Graph"). */
const PIM_SYSTEM = { id: '9dfd627f-bdc5-4b1c-af9d-c85097fdeff8', displayName: 'Azure AD PIM', userPrincipalName: null };

function ip(ctx: AuditContext): string {
  return `203.0.113.${ctx.rng.int(1, 254)}`;
}

interface PimRecordSpec {
  ms: number;
  activity: string;
  category: 'RoleManagement' | 'GroupManagement';
  operationType: string;
  initiatedBy: SimDirectoryAudit['initiatedBy'];
  resultReason: string;
  targets: (capital: boolean) => SimTargetResource[];
  details: [string, string][];
}

/** A Group target alongside a User target goes first: the order that misleads a reader taking the first principal. */
function groupFirst(targets: SimTargetResource[]): SimTargetResource[] {
  const i = targets.findIndex((t) => (t.type ?? t.Type) === 'Group');
  if (i <= 0 || !targets.some((t) => (t.type ?? t.Type) === 'User')) return targets;
  return [targets[i], ...targets.slice(0, i), ...targets.slice(i + 1)];
}

function pimRecord(ctx: AuditContext, spec: PimRecordSpec): SimDirectoryAudit {
  const capital = quirk(ctx, 'capitalTypeKey');
  return {
    id: pimId(ctx, spec.ms),
    category: spec.category,
    correlationId: ctx.rng.guid(),
    result: 'success',
    resultReason: spec.resultReason,
    activityDisplayName: spec.activity,
    activityDateTime: stamp(ctx, spec.ms),
    loggedByService: 'PIM',
    operationType: spec.operationType,
    initiatedBy: spec.initiatedBy,
    // Graph's order of both arrays varies between records: consumers must look things up by type/key.
    targetResources: groupFirst(ctx.rng.shuffle(spec.targets(capital))),
    additionalDetails: ctx.rng.shuffle(spec.details.map(([key, value]) => ({ key, value }))),
  };
}

function coreDirectoryRoleRecord(
  ctx: AuditContext,
  ms: number,
  activity: string,
  principal: AuditPrincipal,
  role: AuditRole,
  adding: boolean,
): SimDirectoryAudit {
  let roles = directoryRoleIds.get(ctx);
  if (!roles) directoryRoleIds.set(ctx, (roles = new Map()));
  let objectId = roles.get(role.id);
  if (!objectId) roles.set(role.id, (objectId = ctx.rng.guid()));
  const q = (v: string) => JSON.stringify(v);
  const prop = (displayName: string, value: string) =>
    adding ? { displayName, oldValue: null, newValue: q(value) } : { displayName, oldValue: q(value), newValue: null };
  const correlationId = ctx.rng.guid();
  const capital = quirk(ctx, 'capitalTypeKey');
  return {
    id: coreDirectoryId(ctx, correlationId),
    category: 'RoleManagement',
    correlationId,
    result: 'success',
    resultReason: '',
    activityDisplayName: activity,
    activityDateTime: stamp(ctx, ms),
    loggedByService: 'Core Directory',
    operationType: adding ? 'Assign' : 'Unassign',
    initiatedBy: {
      user: null,
      app: {
        appId: null,
        displayName: MS_PIM_APP.displayName,
        servicePrincipalId: MS_PIM_APP.appId,
        servicePrincipalName: null,
      },
    },
    // Core Directory puts the principal first and the role in its modifiedProperties.
    targetResources: [
      target(capital, principal.kind, principal.id, null, {
        userPrincipalName: principal.kind === 'User' ? (principal.userPrincipalName ?? null) : null,
        modifiedProperties: [
          prop('Role.ObjectID', objectId),
          prop('Role.DisplayName', role.displayName),
          prop('Role.TemplateId', role.id),
          prop('Role.WellKnownObjectName', role.displayName.replace(/[^A-Za-z]/g, '')),
        ],
      }),
    ],
    additionalDetails: [],
  };
}

export interface ActivationSpec {
  principal: AuditPrincipal;
  role: AuditRole;
  /** `/` or `/administrativeUnits/{id}` */
  directoryScopeId: string;
  /** When the user asked. */
  requestedAt: Date;
  /** When the role became active (the "completed" event). */
  start: Date;
  /** Requested expiration. */
  end: Date;
  justification: string;
  ticket?: { number: string; system: string };
  /** RoleAssignmentRequestId: shared by the request, approval, schedule and instance. */
  requestId: string;
  approver?: { id: string; displayName: string; userPrincipalName: string };
  /** The user ended it early; otherwise it expires at `end`. */
  deactivatedAt?: Date;
  /** 'denied' produces the request and the denial only. */
  outcome?: 'completed' | 'denied';
  /**
   * Activated through this group's eligibility: the records name the group too, first (positions vary
   * and a record can carry more than one principal-typed target; README, "What we know of Graph").
   */
  viaGroup?: { id: string; displayName: string };
}

/**
 * The records one Entra-role activation produces: PIM "requested", optional approval, Core Directory
 * "Add member to role" (by MS-PIM), PIM "completed", then expiry or deactivation (each with its Core Directory
 * twin). Only records before ctx.now are returned.
 */
export function activationEvents(ctx: AuditContext, spec: ActivationSpec): SimDirectoryAudit[] {
  const { principal, role } = spec;
  const out: SimDirectoryAudit[] = [];
  const actorIp = ip(ctx);
  const initiator = userInitiator(
    { id: principal.id, displayName: principal.displayName, userPrincipalName: principal.userPrincipalName },
    actorIp,
  );
  const iso7 = (d: Date) => graphTime(d.getTime(), 7);
  const commonTargets = (capital: boolean, requestTargetId: string) => [
    ...(spec.viaGroup
      ? [target(capital, 'Group', spec.viaGroup.id, spec.viaGroup.displayName, { groupType: 'azureAD' })]
      : []),
    roleTarget(capital, role),
    target(capital, 'Request', requestTargetId, null),
    principalTarget(capital, principal),
    target(capital, 'Directory', ctx.tenantId, ctx.tenantName),
    target(capital, 'Other', ctx.rng.guid(), null),
  ];
  const roleDetails = (): [string, string][] => {
    const d: [string, string][] = [];
    const omitOrigin = quirk(ctx, 'omitRoleDefinitionOriginId');
    if (!omitOrigin) d.push(['RoleDefinitionOriginId', role.id]);
    d.push(['RoleDefinitionOriginType', role.isBuiltIn ? 'BuiltInRole' : 'CustomRole']);
    if (!quirk(ctx, 'omitTemplateId')) d.push(['TemplateId', role.id]);
    return d;
  };
  const tokenClaims = (): [string, string][] => [
    ['ipaddr', actorIp],
    ['oid', principal.id],
    ['tid', ctx.tenantId],
  ];
  const requestDetails = (auditType: string): [string, string][] => {
    const d: [string, string][] = [
      ...roleDetails(),
      ['StartTime', iso7(spec.start)],
      ['ExpirationTime', iso7(spec.end)],
    ];
    if (!quirk(ctx, 'omitJustificationKey')) d.push(['Justification', spec.justification]);
    if (spec.ticket) d.push(['TicketNumber', spec.ticket.number], ['TicketSystem', spec.ticket.system]);
    d.push(['AuditType', auditType]);
    if (!quirk(ctx, 'omitRequestIdKey')) d.push(['RoleAssignmentRequestId', spec.requestId]);
    // Key name is the bench's assumption (unverified); parsers leave Scope Id blank when it is absent.
    if (!quirk(ctx, 'omitDirectoryScopeId')) d.push(['DirectoryScopeId', spec.directoryScopeId]);
    return [...d, ...tokenClaims()];
  };
  const push = (ms: number, record: () => SimDirectoryAudit) => {
    if (ms < ctx.now.getTime()) out.push(record());
  };

  const reqMs = spec.requestedAt.getTime();
  push(reqMs, () =>
    pimRecord(ctx, {
      ms: reqMs,
      activity: ACTIVITY.activationRequested,
      category: 'RoleManagement',
      operationType: 'Create',
      initiatedBy: initiator,
      resultReason: spec.justification,
      targets: (c) => commonTargets(c, spec.requestId),
      details: requestDetails('RequestActivateRole'),
    }),
  );
  if (spec.approver) {
    const approver = spec.approver;
    const askMs = reqMs + 1500;
    push(askMs, () =>
      pimRecord(ctx, {
        ms: askMs,
        activity: ACTIVITY.approvalRequested,
        category: 'RoleManagement',
        operationType: 'Create',
        initiatedBy: initiator,
        resultReason: spec.justification,
        targets: (c) => commonTargets(c, spec.requestId),
        details: requestDetails('RequestApproval'),
      }),
    );
    const decideMs = spec.outcome === 'denied' ? reqMs + 10 * 60_000 : spec.start.getTime() - 3000;
    push(decideMs, () =>
      pimRecord(ctx, {
        ms: decideMs,
        activity: spec.outcome === 'denied' ? ACTIVITY.requestDenied : ACTIVITY.requestApproved,
        category: 'RoleManagement',
        operationType: 'Update',
        initiatedBy: userInitiator(approver, ip(ctx)),
        resultReason: spec.outcome === 'denied' ? 'Not justified' : 'Approved',
        targets: (c) => commonTargets(c, spec.requestId),
        details: [...roleDetails(), ['AuditType', 'ApproveRequest'], ['RoleAssignmentRequestId', spec.requestId]],
      }),
    );
  }
  if (spec.outcome === 'denied') return out;

  const startMs = spec.start.getTime();
  push(startMs - 800, () => coreDirectoryRoleRecord(ctx, startMs - 800, ACTIVITY.coreAddMember, principal, role, true));
  push(startMs, () =>
    pimRecord(ctx, {
      ms: startMs,
      activity: ACTIVITY.activationCompleted,
      category: 'RoleManagement',
      operationType: 'Assign',
      initiatedBy: initiator,
      resultReason: spec.justification,
      targets: (c) => commonTargets(c, spec.requestId),
      details: [...requestDetails('ActivateRole'), ['wids', 'b79fbf4d-3ef9-4689-8143-76b194e85509']],
    }),
  );

  const originAssignmentId = `${ctx.rng.base64url(43)}-1`;
  if (spec.deactivatedAt && spec.deactivatedAt < spec.end) {
    const ms = spec.deactivatedAt.getTime();
    push(ms, () =>
      pimRecord(ctx, {
        ms,
        activity: ACTIVITY.deactivateRequested,
        category: 'RoleManagement',
        operationType: 'Create',
        initiatedBy: initiator,
        resultReason: '',
        targets: (c) => commonTargets(c, ctx.rng.guid()),
        details: [
          ...roleDetails(),
          ['AuditType', 'RequestDeactivateRole'],
          ['OriginRoleAssignmentId', originAssignmentId],
        ],
      }),
    );
    push(ms + 900, () => coreDirectoryRoleRecord(ctx, ms + 900, ACTIVITY.coreRemoveMember, principal, role, false));
    push(ms + 1700, () =>
      pimRecord(ctx, {
        ms: ms + 1700,
        activity: ACTIVITY.deactivateCompleted,
        category: 'RoleManagement',
        operationType: 'Delete',
        initiatedBy: initiator,
        resultReason: '',
        targets: (c) => commonTargets(c, ctx.rng.guid()),
        details: [...roleDetails(), ['AuditType', 'DeactivateRole'], ['OriginRoleAssignmentId', originAssignmentId]],
      }),
    );
  } else {
    // Automatic expiry: Core Directory first, PIM ~6 s later, initiated by "Azure AD PIM" (expiry pair sample).
    const ms = spec.end.getTime();
    push(ms, () => coreDirectoryRoleRecord(ctx, ms, ACTIVITY.coreRemoveMember, principal, role, false));
    push(ms + 6000, () =>
      pimRecord(ctx, {
        ms: ms + 6000,
        activity: ACTIVITY.activationExpired,
        category: 'RoleManagement',
        operationType: 'Delete',
        initiatedBy: userInitiator(PIM_SYSTEM, null),
        resultReason: '',
        targets: (c) => [
          ...commonTargets(c, spec.requestId),
          target(c, 'Other', ctx.rng.guid(), null),
          target(c, 'Other', ctx.rng.guid(), null),
        ],
        details: [
          ['AuditType', 'RemoveActivatedRole'],
          ['ActionType', 'Revoke'],
          ['OriginRoleAssignmentId', originAssignmentId],
          ['RoleAssignmentRequestId', spec.requestId],
        ],
      }),
    );
  }
  return out;
}

export interface GroupActivationSpec {
  principal: AuditPrincipal;
  group: { id: string; displayName: string };
  accessId: 'member' | 'owner';
  start: Date;
  end: Date;
  justification: string;
  requestId: string;
  /** Needed approval: the approver's "request approved" record comes first, same RoleAssignmentRequestId. */
  approver?: { id: string; displayName: string; userPrincipalName: string };
  /** When it was approved (default: just before `start`; earlier for a request with a later start). */
  approvedAt?: Date;
}

/**
 * A PIM-for-Groups activation. It carries the SAME activityDisplayName as an Entra-role activation but
 * category GroupManagement: reports of Entra roles must filter on category.
 */
export function groupActivationEvents(ctx: AuditContext, spec: GroupActivationSpec): SimDirectoryAudit[] {
  const out: SimDirectoryAudit[] = [];
  const initiator = userInitiator(spec.principal, ip(ctx));
  const iso7 = (d: Date) => graphTime(d.getTime(), 7);
  const targets = (c: boolean) => [
    target(c, 'Role', spec.accessId, spec.accessId === 'member' ? 'Member' : 'Owner'),
    target(c, 'Request', spec.requestId, null),
    principalTarget(c, spec.principal),
    target(c, 'Group', spec.group.id, spec.group.displayName, { groupType: 'azureAD' }),
    target(c, 'Other', ctx.rng.guid(), null),
  ];
  const details = (auditType: string): [string, string][] => [
    ['StartTime', iso7(spec.start)],
    ['ExpirationTime', iso7(spec.end)],
    ['Justification', spec.justification],
    ['AuditType', auditType],
    ['RoleAssignmentRequestId', spec.requestId],
  ];
  const approvedMs = spec.approvedAt?.getTime() ?? spec.start.getTime() - 3000;
  const reqMs = spec.approver ? approvedMs - 20 * 60_000 : spec.start.getTime() - 2000;
  const steps: [number, string, string][] = [[reqMs, ACTIVITY.activationRequested, 'RequestActivateRole']];
  // The approver's decision, initiated by the approver, as for Entra roles (activationEvents).
  if (spec.approver) steps.push([approvedMs, ACTIVITY.requestApproved, 'ApproveRequest']);
  steps.push([spec.start.getTime(), ACTIVITY.activationCompleted, 'ActivateRole']);
  for (const [ms, activity, auditType] of steps) {
    if (ms >= ctx.now.getTime()) continue;
    const approval = activity === ACTIVITY.requestApproved;
    out.push(
      pimRecord(ctx, {
        ms,
        activity,
        category: 'GroupManagement',
        operationType: activity === ACTIVITY.activationCompleted ? 'Assign' : approval ? 'Update' : 'Create',
        initiatedBy: approval ? userInitiator(spec.approver!, ip(ctx)) : initiator,
        resultReason: approval ? 'Approved' : spec.justification,
        targets,
        details: approval
          ? [
              ['AuditType', auditType],
              ['RoleAssignmentRequestId', spec.requestId],
            ]
          : details(auditType),
      }),
    );
  }
  return out;
}

export interface AdminAssignmentSpec {
  admin: { id: string; displayName: string; userPrincipalName: string };
  principal: AuditPrincipal;
  role: AuditRole;
  directoryScopeId: string;
  at: Date;
  eligible: boolean;
  end: Date | null;
  justification: string;
  requestId: string;
}

/** An admin assigning a role in PIM ("... in PIM completed (permanent|timebound)") and its Core Directory twin. */
export function adminAssignmentEvents(ctx: AuditContext, spec: AdminAssignmentSpec): SimDirectoryAudit[] {
  const ms = spec.at.getTime();
  if (ms >= ctx.now.getTime()) return [];
  const permanent = spec.end === null;
  const activity = spec.eligible
    ? permanent
      ? ACTIVITY.eligibleAddedPermanent
      : ACTIVITY.eligibleAddedTimebound
    : permanent
      ? ACTIVITY.activeAddedPermanent
      : ACTIVITY.activeAddedTimebound;
  const details: [string, string][] = [
    ['RoleDefinitionOriginId', spec.role.id],
    ['RoleDefinitionOriginType', spec.role.isBuiltIn ? 'BuiltInRole' : 'CustomRole'],
    ['TemplateId', spec.role.id],
    ['StartTime', graphTime(ms, 7)],
    ['Justification', spec.justification],
    ['AuditType', spec.eligible ? 'AddEligibleRole' : 'AddRole'],
    ['RoleAssignmentRequestId', spec.requestId],
    ['DirectoryScopeId', spec.directoryScopeId],
  ];
  if (spec.end) details.push(['ExpirationTime', graphTime(spec.end.getTime(), 7)]);
  return [
    coreDirectoryRoleRecord(
      ctx,
      ms - 700,
      spec.eligible ? ACTIVITY.coreAddEligible : ACTIVITY.coreAddMember,
      spec.principal,
      spec.role,
      true,
    ),
    pimRecord(ctx, {
      ms,
      activity,
      category: 'RoleManagement',
      operationType: 'Update',
      initiatedBy: userInitiator(spec.admin, ip(ctx)),
      resultReason: spec.justification,
      targets: (c) => [
        roleTarget(c, spec.role),
        target(c, 'Request', spec.requestId, null),
        principalTarget(c, spec.principal),
        target(c, 'Directory', ctx.tenantId, ctx.tenantName),
        target(c, 'Other', ctx.rng.guid(), null),
      ],
      details,
    }),
  ];
}

/** PIM noticing a permanent assignment made directly in the directory, and the Core Directory write itself. */
export function outsidePimEvents(
  ctx: AuditContext,
  spec: {
    admin: { id: string; displayName: string; userPrincipalName: string };
    principal: AuditPrincipal;
    role: AuditRole;
    at: Date;
  },
): SimDirectoryAudit[] {
  const ms = spec.at.getTime();
  if (ms + 60_000 >= ctx.now.getTime()) return [];
  const core = coreDirectoryRoleRecord(ctx, ms, ACTIVITY.coreAddMember, spec.principal, spec.role, true);
  core.initiatedBy = userInitiator(spec.admin, ip(ctx));
  const noticed = pimRecord(ctx, {
    ms: ms + 60_000,
    activity: ACTIVITY.outsidePim,
    category: 'RoleManagement',
    operationType: 'Update',
    initiatedBy: userInitiator(PIM_SYSTEM, null),
    resultReason: '',
    targets: (c) => [
      roleTarget(c, spec.role),
      target(c, 'Request', ctx.rng.guid(), null),
      principalTarget(c, spec.principal),
      target(c, 'Directory', ctx.tenantId, ctx.tenantName),
      target(c, 'Other', ctx.rng.guid(), null),
    ],
    details: [
      ['RoleDefinitionOriginId', spec.role.id],
      ['TemplateId', spec.role.id],
      ['AuditType', 'AddRoleOutsidePim'],
    ],
  });
  return [core, noticed];
}
