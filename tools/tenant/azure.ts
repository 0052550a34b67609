/**
 * A generated Azure estate for the ARM simulator: a management-group tree under the tenant root,
 * subscriptions, resource groups and resources, and PIM schedules and activation requests on them,
 * held by the tenant's own users, groups and service principals (so groups expand through Graph).
 * Includes a Lighthouse-delegated subscription of another tenant and schedules made outside PIM.
 */
import type { ArmEstate, ArmPrincipal, ArmRequestRecord, ArmScheduleRecord } from '../arm-simulator';
import { Rng } from './random';
import type { SimTenant } from './model';

export const AZURE_ROLES: ReadonlyArray<readonly [string, string]> = [
  ['8e3af657-a8ff-443c-a75c-2fe8c4bcb635', 'Owner'],
  ['b24988ac-6180-42a0-ab88-20f7382dd24c', 'Contributor'],
  ['18d7d88d-d35e-4fb5-a5c3-7773c20a72d9', 'User Access Administrator'],
  ['f58310d9-a9f6-439a-9e8d-f62e7b41a168', 'Role Based Access Control Administrator'],
  ['acdd72a7-3385-48ef-bd42-f606fba81ae7', 'Reader'],
  ['ba92f5b4-2d11-453d-a403-e96b0029c9fe', 'Storage Blob Data Contributor'],
];

export interface AzureEstateOptions {
  seed: number | string;
  now: Date;
  /** The identity's tenant: the root management group's id. */
  tenantId: string;
  managementGroups?: number;
  subscriptions?: number;
  /** Eligible schedules per subscription (spread over it, its resource groups and resources), plus some at management groups. */
  eligiblePerSubscription?: number;
  activePerSubscription?: number;
  /** SelfActivate requests per subscription over the last `requestDays`. */
  requestsPerSubscription?: number;
  requestDays?: number;
}

const DAY = 86_400_000;

export function generateAzureEstate(tenant: SimTenant, options: AzureEstateOptions): ArmEstate {
  const rng = new Rng(`azure:${options.seed}`);
  const now = options.now.getTime();
  const iso = (ms: number) => new Date(ms).toISOString();
  const mgCount = options.managementGroups ?? 3;
  const subCount = options.subscriptions ?? 4;
  const root = options.tenantId;
  const managementGroups: ArmEstate['managementGroups'] = [{ id: root, displayName: 'Tenant Root Group' }];
  for (let i = 0; i < mgCount; i++) {
    const parent = i === 0 ? root : managementGroups[rng.int(0, managementGroups.length - 1)].id;
    // Mixed case, as management group names are.
    managementGroups.push({
      id: `Contoso-MG${i}`,
      displayName: `Contoso ${i === 0 ? 'Platform' : `Landing zone ${i}`}`,
      parentId: parent,
    });
  }
  const subscriptions: ArmEstate['subscriptions'] = [];
  for (let i = 0; i < subCount; i++) {
    subscriptions.push({
      id: rng.guid(),
      displayName: `sub-${i.toString().padStart(3, '0')}`,
      managementGroupId: managementGroups[1 + (i % mgCount)].id,
    });
  }
  const foreignSubscriptions = [{ id: rng.guid(), displayName: 'Fabrikam (delegated)', homeTenantId: rng.guid() }];

  const users = tenant.users.map<ArmPrincipal>((u) => ({
    id: u.id,
    displayName: u.displayName,
    email: u.userPrincipalName,
    type: 'User',
  }));
  const groups = tenant.groups.map<ArmPrincipal>((g) => ({ id: g.id, displayName: g.displayName, type: 'Group' }));
  const sps = tenant.servicePrincipals.map<ArmPrincipal>((s) => ({
    id: s.id,
    displayName: s.displayName,
    type: 'ServicePrincipal',
  }));
  const pools: Array<readonly [ArmPrincipal[], number]> = [
    [users, 7],
    [groups.length ? groups : users, 2],
    [sps.length ? sps : users, 1],
  ];
  const principal = (): ArmPrincipal => rng.pick(rng.weighted(pools));

  const resourceNames: Record<string, string> = {};
  const scopesOf = (sub: string): string[] => {
    const rgs = [
      `/subscriptions/${sub}/resourceGroups/rg-app-${sub.slice(0, 4)}`,
      `/subscriptions/${sub}/resourceGroups/rg-data-${sub.slice(0, 4)}`,
    ];
    const resource = `${rgs[1]}/providers/Microsoft.Storage/storageAccounts/st${sub.slice(0, 8)}`;
    rgs.forEach((rg) => (resourceNames[rg] = rg.slice(rg.lastIndexOf('/') + 1)));
    resourceNames[resource] = `st${sub.slice(0, 8)}`;
    return [`/subscriptions/${sub}`, ...rgs, resource];
  };

  const eligibility: ArmScheduleRecord[] = [];
  const assignments: ArmScheduleRecord[] = [];
  const requests: ArmRequestRecord[] = [];
  const window = (): { start: string; end: string | null } => {
    const start = now - rng.int(1, 400) * DAY;
    const kind = rng.int(0, 9);
    // Permanent, expiring soon, in a year; and a future-dated one now and then.
    if (kind < 3) return { start: iso(start), end: null };
    if (kind < 5) return { start: iso(start), end: iso(now + rng.int(1, 10) * DAY) };
    if (kind === 9) return { start: iso(now + 5 * DAY), end: iso(now + 100 * DAY) };
    return { start: iso(start), end: iso(now + rng.int(30, 365) * DAY) };
  };
  const schedule = (scope: string, extra: Partial<ArmScheduleRecord> = {}): ArmScheduleRecord => {
    const [roleId, roleName] = rng.pick(AZURE_ROLES);
    return {
      name: rng.guid(),
      scope,
      principal: principal(),
      roleId,
      roleName,
      ...window(),
      createdOn: iso(now - rng.int(1, 500) * DAY),
      requestName: rng.guid(),
      ...extra,
    };
  };

  const mgScopes = managementGroups.map((m) => `/providers/Microsoft.Management/managementGroups/${m.id}`);
  for (const scope of mgScopes) {
    eligibility.push(schedule(scope));
    assignments.push(schedule(scope, { assignmentType: 'Assigned' }));
  }
  /**
   * A role assignment made outside PIM, as ARM shows it (tools/arm-simulator.ts): a permanent
   * `Assigned` schedule that stands for a role assignment of its own name. Whether ARM names a request
   * on it is in no capture, so half name one.
   */
  const outsidePim = (s: ArmScheduleRecord): ArmScheduleRecord => ({
    ...s,
    start: s.createdOn,
    end: null,
    roleAssignmentName: s.name,
    requestName: rng.chance(0.5) ? rng.guid() : undefined,
  });
  // A permanent Owner at a management group, made outside PIM: a finding.
  assignments.push(
    outsidePim({
      ...schedule(mgScopes[1], { assignmentType: 'Assigned' }),
      roleId: AZURE_ROLES[0][0],
      roleName: 'Owner',
    }),
  );
  // A permanent Owner PIM made at the same group (a request named, a role assignment of another name): not outside PIM.
  assignments.push({
    ...schedule(mgScopes[1], { assignmentType: 'Assigned' }),
    roleId: AZURE_ROLES[0][0],
    roleName: 'Owner',
    end: null,
  });

  for (const sub of subscriptions) {
    const scopes = scopesOf(sub.id);
    for (let i = 0; i < (options.eligiblePerSubscription ?? 4); i++) eligibility.push(schedule(rng.pick(scopes)));
    for (let i = 0; i < (options.activePerSubscription ?? 3); i++) {
      const made = schedule(rng.pick(scopes), { assignmentType: 'Assigned' });
      assignments.push(rng.chance(0.2) ? outsidePim(made) : made);
    }
    const days = options.requestDays ?? 60;
    for (let i = 0; i < (options.requestsPerSubscription ?? 3); i++) {
      const user = rng.pick(users);
      const [roleId, roleName] = rng.pick(AZURE_ROLES);
      const created = now - rng.int(0, days * 24 - 1) * 3_600_000 - rng.int(1, 3_599_000);
      const provisioned = rng.chance(0.8);
      const r: ArmRequestRecord = {
        name: rng.guid(),
        scope: rng.pick(scopes),
        principal: user,
        roleId,
        roleName,
        requestType: provisioned || rng.chance(0.5) ? 'SelfActivate' : 'AdminAssign',
        status: provisioned ? 'Provisioned' : 'Denied',
        createdOn: iso(created),
        start: iso(created + 1000),
        durationIso: `PT${rng.int(1, 8)}H`,
        justification: `Change ${rng.int(1000, 9999)}`,
        ticketNumber: rng.chance(0.5) ? `INC${rng.int(10000, 99999)}` : undefined,
        ticketSystem: 'ServiceNow',
        targetScheduleName: rng.guid(),
      };
      requests.push(r);
      // A current activation shows as an Activated assignment schedule too.
      if (provisioned && created > now - 8 * 3_600_000) {
        assignments.push({
          name: r.targetScheduleName!,
          scope: r.scope,
          principal: user,
          roleId,
          roleName,
          start: r.start,
          end: iso(created + 8 * 3_600_000),
          createdOn: r.createdOn,
          assignmentType: 'Activated',
          requestName: r.name,
        });
      }
    }
  }
  return {
    tenantId: root,
    managementGroups,
    subscriptions,
    foreignSubscriptions,
    resourceNames,
    eligibility,
    assignments,
    requests,
  };
}
