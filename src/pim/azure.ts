/**
 * PIM for Azure resources: every eligible and active Azure role schedule at the configured scopes,
 * each reported once at the scope where it is granted, groups expanded through Graph as for Entra
 * roles (the same GroupExpander as src/pim/snapshot.ts).
 *
 * Lists (api-version 2020-10-01,
 * https://learn.microsoft.com/rest/api/authorization/role-eligibility-schedules/list-for-scope):
 * `$filter=atScope()` at management groups ("at or above the scope") and unfiltered at subscriptions
 * and below (at, above and below). So rows of a parent come again at each child — sometimes with
 * memberType `Direct` (https://github.com/kayasax/EasyPIM/issues/23) — and are de-duplicated on the
 * schedule's id (lower case, one subscription path form); the row's own `scope` says where it is
 * granted, never the memberType. Rows granted above every configured scope (a parent management
 * group of a configured child, the root above a configured subscription) are not reported: the
 * reports hold what is granted at or below the scopes asked for. Rows carry `expandedProperties`
 * (principal, role and scope names): no call per row.
 */
import type { ArmClient } from '../arm/client';
import { ArmRequestError } from '../arm/client';
import type { GraphClient } from '../graph/client';
import type { Log } from '../log';
import { ExternalSorter } from '../util/sorter';
import { RowTable } from '../util/table';
import {
  ASSIGNMENT_TABLE,
  assignmentRowCodec,
  compareAssignmentRows,
  compareSchedules,
  isoTime,
  sameEnum,
  type AssignmentRow,
  type AssignmentState,
  type PrincipalType,
  type ScopeNamer,
} from './model';
import { azureScopeType, MG_PATH, normaliseArmPath, roleGuid } from './arm-paths';
import { GroupExpander, type IncompleteList, type MemberRows } from './snapshot';
import { azureActivationOf, type ArmScheduleRequest, type AzureActivationRow } from './azure-activations';

export { azureScopeType, normaliseArmPath, roleGuid, type AzureScopeType } from './arm-paths';

export const ARM_PIM_API_VERSION = '2020-10-01';

/**
 * The query of a PIM list at `scope`: `atScope()` at a management group (its only documented
 * filter there), none at a subscription, which lists what lies below it too
 * (https://learn.microsoft.com/rest/api/authorization/role-eligibility-schedules/list-for-scope).
 */
function pimListQuery(scope: AzureScope): Record<string, string> {
  return scope.kind === 'managementGroup'
    ? { 'api-version': ARM_PIM_API_VERSION, $filter: 'atScope()' }
    : { 'api-version': ARM_PIM_API_VERSION };
}
export const ARM_DESCENDANTS_API_VERSION = '2020-05-01';
export const ARM_SUBSCRIPTIONS_API_VERSION = '2022-12-01';
/**
 * Scopes read at once, three lists each (instances then active assignments, eligibility, requests):
 * more requests ready than the ARM client lets go at once (DEFAULT_MAX_CONCURRENT), which caps them.
 */
const SCOPES_AT_ONCE = 12;
/**
 * Rows each of the three sorters keeps in memory, as the Entra snapshot's (src/pim/snapshot.ts):
 * the Azure reading runs beside it, so what it holds adds to the heap the collector carries.
 */
const RUN_SIZE = 5_000;

/** The Entra assignment files' 20 columns, then `Scope Type` (worked out from the Scope Id). */
export const AZURE_ASSIGNMENT_TABLE = new RowTable<AssignmentRow, ScopeNamer>([
  ...ASSIGNMENT_TABLE.fields,
  { column: 'Scope Type', cell: (row) => azureScopeType(row.scopeId) },
]);

interface ArmExpandedPrincipal {
  id?: string | null;
  displayName?: string | null;
  email?: string | null;
  type?: string | null;
}

/** roleEligibilitySchedule / roleAssignmentSchedule as ARM lists them. */
export interface ArmRoleSchedule {
  id: string;
  name?: string;
  properties?: {
    scope?: string | null;
    roleDefinitionId?: string | null;
    principalId?: string | null;
    principalType?: string | null;
    memberType?: string | null;
    assignmentType?: string | null;
    status?: string | null;
    startDateTime?: string | null;
    endDateTime?: string | null;
    createdOn?: string | null;
    roleAssignmentScheduleRequestId?: string | null;
    roleEligibilityScheduleRequestId?: string | null;
    expandedProperties?: {
      principal?: ArmExpandedPrincipal | null;
      roleDefinition?: { id?: string | null; displayName?: string | null } | null;
      scope?: { id?: string | null; displayName?: string | null; type?: string | null } | null;
    } | null;
  } | null;
}

function principalType(value: string | null | undefined): PrincipalType {
  const v = (value ?? '').toLowerCase();
  return v === 'user' ? 'User' : v === 'group' ? 'Group' : v === 'serviceprincipal' ? 'ServicePrincipal' : '';
}

/** roleAssignmentScheduleInstance as ARM lists it: one per role assignment in force. */
export interface ArmAssignmentInstance {
  id: string;
  name?: string;
  properties?: {
    assignmentType?: string | null;
    roleAssignmentScheduleId?: string | null;
    originRoleAssignmentId?: string | null;
  } | null;
}

/** The last segment of an ARM id, lower case. */
function lastSegment(id: string | null | undefined): string {
  const trimmed = (id ?? '').replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1).toLowerCase();
}

/**
 * The schedule id (normalised) of an instance that stands for a role assignment made outside PIM:
 * an `Assigned` instance whose schedule has the role assignment's own name. Every role assignment
 * in force has an instance, PIM-made or not
 * (https://learn.microsoft.com/entra/id-governance/privileged-identity-management/pim-apis#relationship-between-pim-entities-and-role-assignment-entities);
 * AzGovViz counts an instance as PIM's only when `roleAssignmentScheduleId` and
 * `originRoleAssignmentId` end in different GUIDs
 * (https://github.com/JulianHayward/Azure-MG-Sub-Governance-Reporting/blob/master/pwsh/dev/functions/dataCollection/dataCollectionFunctions.ps1),
 * as in ARM's example of a PIM-made one (GetRoleAssignmentScheduleInstancesByScope.json,
 * https://github.com/Azure/azure-rest-api-specs/tree/main/specification/authorization/resource-manager/Microsoft.Authorization/stable/2020-10-01/examples).
 */
export function standingScheduleOf(instance: ArmAssignmentInstance): string | undefined {
  const p = instance.properties ?? {};
  if (!sameEnum(p.assignmentType, 'Assigned') || !p.roleAssignmentScheduleId || !p.originRoleAssignmentId) return;
  const schedule = lastSegment(p.roleAssignmentScheduleId);
  return schedule && schedule === lastSegment(p.originRoleAssignmentId)
    ? normaliseArmPath(p.roleAssignmentScheduleId)
    : undefined;
}

/**
 * One row of azure-eligible-assignments.csv or azure-active-assignments.csv for a schedule's own principal.
 *
 * `Outside PIM`: a permanent `Assigned` schedule that stands for a role assignment of its own name
 * (`standingSchedules`, from the instances: standingScheduleOf). Permanent, because a role
 * assignment has no end date among its properties
 * (https://learn.microsoft.com/rest/api/authorization/role-assignments/get), and a time-bound PIM assignment reported as not PIM's is a known complaint of the
 * GUID comparison (https://github.com/JulianHayward/Azure-MG-Sub-Governance-Reporting/issues/232).
 * `roleAssignmentScheduleRequestId` is not used: AzGovViz read it first and gave it up for the GUID
 * comparison, and no capture shows whether ARM names a request on such a schedule.
 * Not verified against a capture of real ARM (README, "What we know of ARM").
 */
export function azureRow(
  state: AssignmentState,
  schedule: ArmRoleSchedule,
  privilegedRoleIds: ReadonlySet<string>,
  standingSchedules: ReadonlySet<string> = new Set(),
): AssignmentRow {
  const p = schedule.properties ?? {};
  const expanded = p.expandedProperties ?? {};
  const principal = expanded.principal ?? {};
  const type = principalType(principal.type ?? p.principalType);
  const roleId = roleGuid(p.roleDefinitionId);
  const active = state === 'Active';
  return {
    state,
    principalDisplayName: principal.displayName ?? '',
    // ARM's expandedProperties carry a user's email, no UPN; nothing for a service principal.
    principalName: type === 'User' ? (principal.email ?? '') : '',
    memberType: 'Direct',
    start: isoTime(p.startDateTime),
    end: isoTime(p.endDateTime),
    principalType: type,
    principalId: (p.principalId ?? principal.id ?? '').toLowerCase(),
    viaGroup: '',
    viaGroupId: '',
    roleId,
    roleName: expanded.roleDefinition?.displayName ?? '',
    scopeId: normaliseArmPath(p.scope ?? ''),
    assignmentType: active ? (p.assignmentType ?? '') : '',
    privileged: privilegedRoleIds.has(roleId),
    outsidePim:
      active &&
      sameEnum(p.assignmentType, 'Assigned') &&
      !p.endDateTime &&
      standingSchedules.has(normaliseArmPath(schedule.id)),
    created: isoTime(p.createdOn),
    scheduleId: normaliseArmPath(schedule.id),
  };
}

export interface AzureScope {
  /** Normalised ARM path. */
  path: string;
  kind: 'managementGroup' | 'subscription' | 'below';
}

export interface AzureSnapshot {
  eligible: ExternalSorter<AssignmentRow>;
  active: ExternalSorter<AssignmentRow>;
  /** One row per schedule, by state then schedule id: what the digest counts. */
  schedules: ExternalSorter<AssignmentRow>;
  scopeName: ScopeNamer;
  /** Scopes read (management groups expanded); schedules once each. */
  counts: { scopes: number; eligibleSchedules: number; activeSchedules: number; groupsExpanded: number };
  /** What could not be read (a scope, a list, a group): the digest and manifest say so. */
  incomplete: IncompleteList[];
  /**
   * Provisioned self-activations ARM still lists at the scopes (it forgets them after about 30 days),
   * each request once. A month of requests is small; held in memory until stored.
   */
  activations: AzureActivationRow[];
  /** Every scope's request list was read to its end: the harvest covers up to this run. */
  activationsWhole: boolean;
  dispose(): Promise<void>;
}

export interface AzureSnapshotOptions {
  scopes: Array<{ kind: 'root' } | { kind: 'path'; path: string }>;
  privilegedRoleIds: ReadonlySet<string>;
  log: Log;
  sortRunSize?: number;
}

/** An Azure failure as the digest and manifest show it (the mechanism of unreadable groups). */
export function azureIncomplete(reason: string, error?: unknown): IncompleteList {
  const status = error instanceof ArmRequestError ? error.status : 0;
  const code = error instanceof ArmRequestError ? error.code : error instanceof Error ? error.name : '';
  const detail = error === undefined ? '' : `: ${error instanceof Error ? error.message : String(error)}`;
  return {
    list: 'azureResources',
    groupId: '',
    groupName: '',
    status,
    code,
    reason: `Azure resources: ${reason}${detail}`,
  };
}

interface ArmSubscription {
  subscriptionId?: string;
  displayName?: string;
  tenantId?: string;
  homeTenantId?: string;
}

interface ArmDescendant {
  id: string;
  type?: string;
  properties?: { displayName?: string | null } | null;
}

/**
 * The scopes to read: each management group and its descendants (paged), subscriptions of this tenant
 * only. `GET /subscriptions` lists Lighthouse-delegated subscriptions of other tenants too
 * (https://learn.microsoft.com/azure/lighthouse/concepts/cross-tenant-management-experience): those
 * whose home tenant is not ours are never read.
 */
export async function resolveAzureScopes(
  arm: ArmClient,
  options: Pick<AzureSnapshotOptions, 'scopes' | 'log'>,
  names: Map<string, string>,
): Promise<{ scopes: AzureScope[]; skipped: string[] }> {
  const tenantId = await arm.tenantId();
  const home = new Map<string, string>();
  // The subscriptions' home tenants and the management groups' descendants are read side by side
  // (each is a chain of nextLinks); the tenant check waits for both.
  const listSubscriptions = async () => {
    for await (const page of arm.pages<ArmSubscription>('/subscriptions', {
      'api-version': ARM_SUBSCRIPTIONS_API_VERSION,
    })) {
      for (const s of page) {
        if (!s.subscriptionId) continue;
        const id = s.subscriptionId.toLowerCase();
        home.set(id, (s.homeTenantId ?? s.tenantId ?? '').toLowerCase());
        if (s.displayName) names.set(`/subscriptions/${id}`, s.displayName);
      }
    }
  };
  /** Scopes in the order configured, each management group followed by its descendants (the index of their list). */
  const found: Array<AzureScope | number> = [];
  const listDescendants = async (path: string) => {
    const descendants: AzureScope[] = [];
    for await (const page of arm.pages<ArmDescendant>(`${path}/descendants`, {
      'api-version': ARM_DESCENDANTS_API_VERSION,
    })) {
      for (const d of page) {
        const id = normaliseArmPath(d.id);
        if (d.properties?.displayName) names.set(id, d.properties.displayName);
        if (MG_PATH.test(id)) descendants.push({ path: id, kind: 'managementGroup' });
        else if (/^\/subscriptions\/[^/]+$/.test(id)) descendants.push({ path: id, kind: 'subscription' });
      }
    }
    return descendants;
  };
  const descendantLists: Array<Promise<AzureScope[]>> = [];
  for (const configured of options.scopes) {
    const path =
      configured.kind === 'root'
        ? `/providers/microsoft.management/managementgroups/${tenantId}`
        : normaliseArmPath(configured.path);
    if (!MG_PATH.test(path)) {
      found.push({ path, kind: /^\/subscriptions\/[^/]+$/.test(path) ? 'subscription' : 'below' });
      continue;
    }
    found.push({ path, kind: 'managementGroup' });
    found.push(descendantLists.push(listDescendants(path)) - 1);
  }
  // Every list settled before a failure is thrown: nothing keeps writing to `names` afterwards.
  const lists = await Promise.allSettled([listSubscriptions(), ...descendantLists]);
  const failed = lists.find((l) => l.status === 'rejected');
  if (failed) throw failed.reason;

  const out = new Map<string, AzureScope>();
  const skipped: string[] = [];
  const descendants = lists.slice(1) as Array<PromiseFulfilledResult<AzureScope[]>>;
  for (const scope of found.flatMap((f) => (typeof f === 'number' ? descendants[f].value : [f]))) {
    if (scope.kind === 'managementGroup') {
      out.set(scope.path, scope);
      continue;
    }
    const sub = /^\/subscriptions\/([^/]+)/.exec(scope.path)![1];
    const tenant = home.get(sub);
    if (tenant !== undefined && tenant !== tenantId) {
      if (!skipped.includes(scope.path)) skipped.push(scope.path);
      continue;
    }
    out.set(scope.path, scope);
  }
  for (const path of skipped) options.log.warn(`Azure: ${path} belongs to another tenant (a delegation): not reported`);
  return { scopes: [...out.values()], skipped };
}

/**
 * Whether a grant's scope lies at or below one of the scopes read (management groups expanded to
 * their descendants). ARM lists what lies above a scope too (`atScope()` is "at or above the
 * scope"; no filter is at, above and below:
 * https://learn.microsoft.com/rest/api/authorization/role-assignment-schedules/list-for-scope), so a
 * parent's grants come back at a configured child; those are not the scopes asked for.
 */
export function withinScopes(scopes: readonly AzureScope[]): (scopeId: string) => boolean {
  const exact = new Set<string>();
  const subscriptions = new Set<string>();
  const below: string[] = [];
  for (const scope of scopes) {
    exact.add(scope.path);
    if (scope.kind === 'subscription') subscriptions.add(scope.path);
    else if (scope.kind === 'below') below.push(`${scope.path}/`);
  }
  return (scopeId) => {
    if (exact.has(scopeId)) return true;
    const sub = /^\/subscriptions\/[^/]+/.exec(scopeId);
    if (sub && subscriptions.has(sub[0])) return true;
    return below.some((prefix) => scopeId.startsWith(prefix));
  };
}

/** Every Azure schedule of the scopes, once, groups expanded. ARM failures become `incomplete`, never a failed run. */
export async function takeAzureSnapshot(
  arm: ArmClient,
  graph: GraphClient,
  options: AzureSnapshotOptions,
): Promise<AzureSnapshot> {
  const { log } = options;
  const sorterOptions = { runSize: options.sortRunSize ?? RUN_SIZE, codec: assignmentRowCodec };
  const eligible = new ExternalSorter<AssignmentRow>(compareAssignmentRows, sorterOptions);
  const active = new ExternalSorter<AssignmentRow>(compareAssignmentRows, sorterOptions);
  const schedules = new ExternalSorter<AssignmentRow>(compareSchedules, sorterOptions);
  const dispose = async () => {
    await Promise.all([eligible.dispose(), active.dispose(), schedules.dispose()]);
  };
  const names = new Map<string, string>();
  const incomplete: IncompleteList[] = [];
  const scopeName: ScopeNamer = (scopeId) => names.get(scopeId) ?? scopeId;
  const counts = { scopes: 0, eligibleSchedules: 0, activeSchedules: 0, groupsExpanded: 0 };
  const activations: AzureActivationRow[] = [];
  let activationsWhole = false;

  try {
    let scopes: AzureScope[];
    try {
      ({ scopes } = await resolveAzureScopes(arm, options, names));
    } catch (error) {
      incomplete.push(azureIncomplete('the scopes could not be listed, so no Azure assignment is reported', error));
      log.warn(incomplete[0].reason);
      return { eligible, active, schedules, scopeName, counts, incomplete, activations, activationsWhole, dispose };
    }
    activationsWhole = true;
    counts.scopes = scopes.length;
    log.info(`Azure: reading ${scopes.length} scope(s)`);

    const groups = new GroupExpander(graph, { eligible, active, schedules }, log);
    const seen = new Set<string>();
    const derived: AssignmentRow[] = [];
    const within = withinScopes(scopes);
    const above = new Set<string>();
    /** Assignment schedules that stand for a role assignment made outside PIM (normalised ids). */
    const standing = new Set<string>();

    const readInstances = async (scope: AzureScope): Promise<void> => {
      const query = pimListQuery(scope);
      try {
        for await (const page of arm.pages<ArmAssignmentInstance>(
          `${scope.path}/providers/Microsoft.Authorization/roleAssignmentScheduleInstances`,
          query,
        )) {
          for (const instance of page) {
            const id = standingScheduleOf(instance);
            if (id) standing.add(id);
          }
        }
      } catch (error) {
        if (!(error instanceof ArmRequestError)) throw error;
        const item = azureIncomplete(
          `roleAssignmentScheduleInstances at ${scope.path} could not be read, so 'Outside PIM' is 'No' for what is first listed there even where it was made outside PIM`,
          error,
        );
        incomplete.push(item);
        log.warn(item.reason);
      }
    };

    const readList = async (scope: AzureScope, state: AssignmentState) => {
      const collection = state === 'Eligible' ? 'roleEligibilitySchedules' : 'roleAssignmentSchedules';
      const query = pimListQuery(scope);
      try {
        for await (const page of arm.pages<ArmRoleSchedule>(
          `${scope.path}/providers/Microsoft.Authorization/${collection}`,
          query,
        )) {
          if (groups.failed) return;
          const rows: AssignmentRow[] = [];
          const members: MemberRows = { eligible: [], active: [], routes: [] };
          for (const schedule of page) {
            const key = `${state}:${normaliseArmPath(schedule.id)}`;
            if (seen.has(key)) continue;
            seen.add(key);
            const row = azureRow(state, schedule, options.privilegedRoleIds, standing);
            if (!within(row.scopeId)) {
              above.add(row.scopeId);
              continue;
            }
            const scopeDisplay = schedule.properties?.expandedProperties?.scope?.displayName;
            if (scopeDisplay && !names.has(row.scopeId)) names.set(row.scopeId, scopeDisplay);
            if (state === 'Eligible') counts.eligibleSchedules++;
            else counts.activeSchedules++;
            // ARM derived it from a group membership: decided once the groups are expanded.
            if (sameEnum(schedule.properties?.memberType, 'Group')) {
              derived.push({ ...row, memberType: 'Group' });
              continue;
            }
            rows.push(row);
            if (row.principalType === 'Group') groups.add(row, members);
          }
          const sink = state === 'Eligible' ? eligible : active;
          await Promise.all([
            sink.addAll(rows),
            schedules.addAll(rows),
            eligible.addAll(members.eligible),
            active.addAll(members.active),
            schedules.addAll(members.routes),
          ]);
        }
      } catch (error) {
        if (!(error instanceof ArmRequestError)) throw error;
        const name = names.get(scope.path);
        const item = azureIncomplete(
          `${collection} at ${name ? `${name} (${scope.path})` : scope.path} could not be read; what it alone grants is missing`,
          error,
        );
        incomplete.push(item);
        log.warn(item.reason);
      }
    };

    const requestsSeen = new Set<string>();
    const readRequests = async (scope: AzureScope) => {
      const query = pimListQuery(scope);
      try {
        for await (const page of arm.pages<ArmScheduleRequest>(
          `${scope.path}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests`,
          query,
        )) {
          for (const request of page) {
            const row = azureActivationOf(request);
            if (!row || requestsSeen.has(row.requestId) || !within(row.scopeId)) continue;
            requestsSeen.add(row.requestId);
            activations.push(row);
          }
        }
      } catch (error) {
        if (!(error instanceof ArmRequestError)) throw error;
        activationsWhole = false;
        const item = azureIncomplete(
          `activation requests at ${scope.path} could not be read; activations there may be missing until a later run reads them (ARM keeps them about 30 days)`,
          error,
        );
        incomplete.push(item);
        log.warn(item.reason);
      }
    };

    const queue = [...scopes];
    const worker = async () => {
      for (let scope = queue.shift(); scope; scope = queue.shift()) {
        // The instances first: an active schedule's row says whether it was made outside PIM.
        await Promise.all([
          readList(scope, 'Eligible'),
          readInstances(scope).then(() => readList(scope, 'Active')),
          readRequests(scope),
        ]);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(SCOPES_AT_ONCE, queue.length) }, worker));
    } catch (error) {
      await groups.stop();
      throw error;
    }
    await groups.finish();
    counts.groupsExpanded = groups.size;
    const kept = { eligible: [] as AssignmentRow[], active: [] as AssignmentRow[] };
    for (const row of derived) {
      if (groups.covers(row)) continue;
      const via = groups.viaGroup(row);
      (row.state === 'Eligible' ? kept.eligible : kept.active).push(
        via ? { ...row, viaGroup: via.name, viaGroupId: via.id } : row,
      );
    }
    await Promise.all([
      eligible.addAll(kept.eligible),
      active.addAll(kept.active),
      schedules.addAll([...kept.eligible, ...kept.active]),
    ]);
    for (const item of groups.incomplete()) incomplete.push(item);
    groups.release();
    if (above.size > 0)
      log.info(
        `Azure: schedules granted at ${above.size} scope(s) above the configured ones (${[...above].slice(0, 3).join(', ')}${above.size > 3 ? ', …' : ''}) are not reported`,
      );
    log.info(
      `Azure: ${counts.eligibleSchedules} eligible and ${counts.activeSchedules} active schedule(s) at ${counts.scopes} scope(s); ${eligible.size} eligible row(s), ${active.size} active row(s)`,
    );
    return { eligible, active, schedules, scopeName, counts, incomplete, activations, activationsWhole, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
