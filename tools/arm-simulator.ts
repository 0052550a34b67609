/**
 * Azure Resource Manager, as much as PIM for Azure resources reads of it, over HTTPS: subscriptions,
 * management-group descendants, role eligibility and assignment schedules and assignment schedule
 * requests. As strict as ARM, never kinder:
 *
 * - only the documented `$filter`s (`atScope()`, `asTarget()`, `principalId eq '{id}'`, and for
 *   requests `asRequestor()`/`asApprover()`) — anything else answers 400 with ARM's error body
 *   (https://learn.microsoft.com/rest/api/authorization/role-eligibility-schedules/list-for-scope).
 *   Code and message are those ARM gives for an unsupported filter on role assignments, as quoted
 *   from a real response in
 *   https://github.com/turbot/steampipe-plugin-azure/blob/main/azure/table_azure_role_assignment.go
 *   (`UnsupportedQuery`) and https://github.com/Azure/azure-rest-api-specs/issues/28255 (message);
 *   no public capture shows them for the PIM schedule lists themselves.
 * - `atScope()` returns what is granted at or above the scope, never below it; no filter returns
 *   at, above and below (the `$filter` description of
 *   https://learn.microsoft.com/rest/api/authorization/role-assignment-schedules/list-for-scope).
 * - role assignment schedule instances: one per role assignment in force, PIM-made or not
 *   (https://learn.microsoft.com/entra/id-governance/privileged-identity-management/pim-apis#relationship-between-pim-entities-and-role-assignment-entities),
 *   named after the role assignment (`originRoleAssignmentId`); a role assignment made outside PIM
 *   has a schedule of its own name, one PIM made does not (how AzGovViz tells them apart:
 *   https://github.com/JulianHayward/Azure-MG-Sub-Governance-Reporting/blob/master/pwsh/dev/functions/dataCollection/dataCollectionFunctions.ps1).
 *   Whether ARM names a request on the schedule of a role assignment made outside PIM is in no public
 *   capture: the generated estates do both, so nothing may rely on it.
 * - `nextLink` paging with a `$skiptoken`; `api-version` required and checked;
 * - both subscription path forms (`/subscriptions/…`, `/providers/Microsoft.Subscription/subscriptions/…`)
 *   and any case, in requests and in what it answers;
 * - rows granted at a parent listed again at its children, sometimes as memberType `Direct`
 *   (https://github.com/kayasax/EasyPIM/issues/23);
 * - 429 with `Retry-After` on demand; schedule requests older than 30 days are gone;
 * - a subscription of another tenant (a Lighthouse delegation) in `GET /subscriptions`.
 */
import { createHash, randomUUID } from 'node:crypto';
import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken, closeServer, decodeJwt, listen } from './http-util';

export const ARM_SCHEDULES_API_VERSION = '2020-10-01';
export const ARM_DESCENDANTS_API_VERSION = '2020-05-01';
const SUBSCRIPTIONS_API_VERSIONS = new Set(['2020-01-01', '2022-12-01']);
const REQUEST_RETENTION_DAYS = 30;

export interface ArmPrincipal {
  id: string;
  displayName: string;
  /** Users' email (ARM's expandedProperties give no UPN). */
  email?: string;
  type: 'User' | 'Group' | 'ServicePrincipal';
}

export interface ArmScheduleRecord {
  /** The schedule's GUID. */
  name: string;
  /** Canonical scope: `/providers/Microsoft.Management/managementGroups/{id}` or `/subscriptions/{id}[/resourceGroups/{rg}[/providers/…]]`. */
  scope: string;
  principal: ArmPrincipal;
  roleId: string;
  roleName: string;
  start: string;
  end: string | null;
  createdOn: string;
  /** Assignment schedules only. */
  assignmentType?: 'Assigned' | 'Activated';
  /** The request named as having created it (`role…ScheduleRequestId`), if any. */
  requestName?: string;
  /**
   * Assignment schedules only: the GUID of the role assignment it stands for (its instances'
   * `originRoleAssignmentId`). The schedule's own `name` for a role assignment made outside PIM
   * (portal IAM, `az role assignment create`); another GUID for one PIM made. Defaults to another GUID.
   */
  roleAssignmentName?: string;
  linkedEligibilityName?: string;
  /** ARM's memberType at its own scope (`Direct`, or `Group` when ARM derived it from a group). */
  memberType?: 'Direct' | 'Group';
}

export interface ArmRequestRecord {
  name: string;
  scope: string;
  principal: ArmPrincipal;
  roleId: string;
  roleName: string;
  requestType: 'SelfActivate' | 'AdminAssign' | 'SelfDeactivate' | 'AdminRemove';
  status: 'Provisioned' | 'Denied' | 'Canceled' | 'PendingApproval' | 'Revoked';
  createdOn: string;
  start: string;
  durationIso: string;
  justification?: string;
  ticketNumber?: string;
  ticketSystem?: string;
  targetScheduleName?: string;
}

export interface ArmEstate {
  tenantId: string;
  /** The tenant root group's id is the tenant id. */
  managementGroups: Array<{ id: string; displayName: string; parentId?: string }>;
  subscriptions: Array<{ id: string; displayName: string; managementGroupId: string }>;
  /** Lighthouse delegations: listed by GET /subscriptions, of another home tenant, in no management group of ours. */
  foreignSubscriptions: Array<{ id: string; displayName: string; homeTenantId: string }>;
  /** Resource groups and resources, for scope names: canonical scope → display name. */
  resourceNames: Record<string, string>;
  eligibility: ArmScheduleRecord[];
  assignments: ArmScheduleRecord[];
  requests: ArmRequestRecord[];
}

export interface ArmSimulatorOptions {
  estate: ArmEstate;
  tls: { cert: string; key: string };
  /** Items per page (default 50). */
  pageSize?: number;
  /** The simulated clock (requests older than 30 days before it are gone). */
  now?: () => Date;
  latencyMs?: number;
  /** Waits what is left of the latency, zero or less when the work outlasted it (default a timer): a test records it. */
  latencyWait?: (ms: number) => Promise<void>;
}

export interface ArmRequestLog {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  /** epoch ms when the request arrived */
  at: number;
}

export interface ArmSimulator {
  readonly url: string;
  readonly requests: ArmRequestLog[];
  /** The next `count` list requests (matching `pathPattern`, if given) answer 429 with `Retry-After: seconds`. */
  throttle(count: number, seconds?: number, pathPattern?: RegExp): void;
  /**
   * The next `count` requests whose path and query (`/subscriptions?api-version=…`) match `pattern`,
   * if given, are read and never answered: the socket stays open until the client gives up or the
   * simulator stops. Logged with status 0.
   */
  hang(count: number, pattern?: RegExp): void;
  /** Requests whose path matches answer this status and ARM error code until cleared (undefined). */
  fail(pathPattern: RegExp | undefined, status?: number, code?: string): void;
  /** The most requests being served at once (received, not yet answered) since the start. */
  readonly peakInFlight: number;
  stop(): Promise<void>;
}

class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const GUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const SUB_FORM = new RegExp(`^/providers/microsoft\\.subscription(/subscriptions/${GUID})`, 'i');

/** Lower case, one subscription form: how scopes are compared. */
export function canonicalScope(scope: string): string {
  return scope.replace(/\/+$/, '').replace(SUB_FORM, '$1').toLowerCase();
}

export async function startArmSimulator(options: ArmSimulatorOptions): Promise<ArmSimulator> {
  const { estate } = options;
  const pageSize = options.pageSize ?? 50;
  const now = options.now ?? (() => new Date());
  const requests: ArmRequestLog[] = [];
  let throttleLeft = 0;
  let throttleSeconds = 1;
  let throttlePattern: RegExp | undefined;
  let failure: { pattern: RegExp; status: number; code: string } | undefined;
  let hangLeft = 0;
  let hangPattern: RegExp | undefined;

  const mgParent = new Map<string, string | undefined>();
  const mgName = new Map<string, string>();
  for (const mg of estate.managementGroups) {
    mgParent.set(mg.id.toLowerCase(), mg.parentId?.toLowerCase());
    mgName.set(mg.id.toLowerCase(), mg.displayName);
  }
  const subMg = new Map(estate.subscriptions.map((s) => [s.id.toLowerCase(), s.managementGroupId.toLowerCase()]));
  const subName = new Map(estate.subscriptions.map((s) => [s.id.toLowerCase(), s.displayName]));

  /** Ancestors of a canonical scope, nearest first (the scope itself excluded). */
  function ancestors(scope: string): string[] {
    const out: string[] = [];
    const mgMatch = /^\/providers\/microsoft\.management\/managementgroups\/([^/]+)$/.exec(scope);
    let mg: string | undefined;
    if (mgMatch) mg = mgParent.get(mgMatch[1]);
    else {
      const sub = /^\/subscriptions\/([^/]+)/.exec(scope);
      if (!sub) return out;
      const parts = scope.split('/');
      // /subscriptions/{id}/resourcegroups/{rg}/providers/... : each shorter prefix that is a scope
      for (let n = parts.length - 1; n >= 3; n--) {
        const prefix = parts.slice(0, n).join('/');
        if (n === 3 || n === 5) out.push(prefix);
      }
      mg = subMg.get(sub[1]);
    }
    while (mg) {
      out.push(`/providers/microsoft.management/managementgroups/${mg}`);
      mg = mgParent.get(mg);
    }
    return out;
  }

  function scopeKnown(scope: string): boolean {
    const mgMatch = /^\/providers\/microsoft\.management\/managementgroups\/([^/]+)$/.exec(scope);
    if (mgMatch) return mgName.has(mgMatch[1]);
    const sub = /^\/subscriptions\/([^/]+)/.exec(scope);
    return Boolean(sub && subMg.has(sub[1]));
  }

  // Memoised (the estate's scopes do not change; its rows may): a 500-subscription estate is listed at every scope.
  const canonical = new Map<string, string>();
  const canon = (scope: string) => {
    let c = canonical.get(scope);
    if (c === undefined) canonical.set(scope, (c = canonicalScope(scope)));
    return c;
  };
  const ancestorSets = new Map<string, Set<string>>();
  const ancestorSet = (scope: string) => {
    let a = ancestorSets.get(scope);
    if (!a) ancestorSets.set(scope, (a = new Set(ancestors(scope))));
    return a;
  };
  // Rebuilt only when a name is missing and the names have changed: counting them on every row of
  // every list made the simulator's work grow as rows times resources.
  let resourceIndex: { size: number; names: Map<string, string> } | undefined;
  const resourceName = (c: string) => {
    const hit = resourceIndex?.names.get(c);
    if (hit !== undefined) return hit;
    const keys = Object.keys(estate.resourceNames);
    if (!resourceIndex || resourceIndex.size !== keys.length) {
      resourceIndex = {
        size: keys.length,
        names: new Map(keys.map((k) => [canonicalScope(k), estate.resourceNames[k]])),
      };
    }
    return resourceIndex.names.get(c);
  };

  /**
   * The rows of a list by canonical scope (positions in the list), and the scopes below each scope
   * that hold rows: a list at a scope looks up its own, its ancestors' and its descendants' rows
   * instead of testing every row of the estate against it (2,000 lists of a 500-subscription
   * estate; what is left per list is checking that the rows are still the same objects). Rebuilt
   * when the list changed (tests add and remove rows); rows come out in the list's own order.
   */
  interface ScopeIndex<R> {
    snapshot: R[];
    byScope: Map<string, number[]>;
    below: Map<string, Set<string>>;
  }
  const indexes = new WeakMap<unknown[], ScopeIndex<unknown>>();
  function visibleRows<R extends { scope: string }>(rows: R[], listScope: string, filter: Filter): R[] {
    let index = indexes.get(rows) as ScopeIndex<R> | undefined;
    if (!index || index.snapshot.length !== rows.length || rows.some((r, i) => r !== index!.snapshot[i])) {
      const byScope = new Map<string, number[]>();
      const below = new Map<string, Set<string>>();
      rows.forEach((r, i) => {
        const scope = canon(r.scope);
        let at = byScope.get(scope);
        if (!at) byScope.set(scope, (at = []));
        at.push(i);
        for (const a of ancestorSet(scope)) {
          let under = below.get(a);
          if (!under) below.set(a, (under = new Set()));
          under.add(scope);
        }
      });
      index = { snapshot: [...rows], byScope, below };
      indexes.set(rows, index as ScopeIndex<unknown>);
    }
    // Which rows a list at a scope returns: at or above it with atScope(); at, above and below otherwise.
    const scopes = [listScope, ...ancestorSet(listScope)];
    if (filter.kind !== 'atScope') scopes.push(...(index.below.get(listScope) ?? []));
    const positions: number[] = [];
    for (const scope of scopes) for (const i of index.byScope.get(scope) ?? []) positions.push(i);
    return positions.sort((a, b) => a - b).map((i) => rows[i]);
  }

  function scopeDisplay(scope: string): { displayName: string; type: string } {
    const c = canon(scope);
    const mg = /^\/providers\/microsoft\.management\/managementgroups\/([^/]+)$/.exec(c);
    if (mg) return { displayName: mgName.get(mg[1]) ?? mg[1], type: 'managementgroup' };
    const sub = /^\/subscriptions\/([^/]+)$/.exec(c);
    if (sub) return { displayName: subName.get(sub[1]) ?? sub[1], type: 'subscription' };
    const name = resourceName(c) ?? c.slice(c.lastIndexOf('/') + 1);
    return {
      displayName: name,
      type: /^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+$/.test(c) ? 'resourcegroup' : 'resource',
    };
  }

  /** How a row's own scope is written back: in the subscription form and the case the request used, half the time. */
  function written(scope: string, requestedScope: string, salt: string): string {
    const alt = salt.charCodeAt(0) % 2 === 0;
    let out = scope;
    if (alt && /^\/providers\/microsoft\.subscription\//i.test(requestedScope))
      out = out.replace(/^\/subscriptions\//, '/providers/Microsoft.Subscription/subscriptions/');
    if (alt) out = out.replace(/\/resourceGroups\//, '/resourcegroups/');
    return out;
  }

  type Filter =
    | { kind: 'none' }
    | { kind: 'atScope' }
    | { kind: 'asTarget' }
    | { kind: 'principal'; id: string }
    | { kind: 'asRequestor' }
    | { kind: 'asApprover' };

  function parseFilter(text: string | null, forRequests: boolean): Filter {
    if (text === null) return { kind: 'none' };
    const t = text.trim();
    if (t === 'atScope()') return { kind: 'atScope' };
    if (t === 'asTarget()') return { kind: 'asTarget' };
    if (forRequests && t === 'asRequestor()') return { kind: 'asRequestor' };
    if (forRequests && t === 'asApprover()') return { kind: 'asApprover' };
    const p = new RegExp(`^principalId eq '(${GUID})'$`, 'i').exec(t);
    if (p) return { kind: 'principal', id: p[1].toLowerCase() };
    throw new ArmError(
      400,
      'UnsupportedQuery',
      `The filter '${t}' is not supported. Supported filters are either 'atScope()' or 'principalId eq '{value}' or assignedTo('{value}')'.`,
    );
  }

  function principalOf(p: ArmPrincipal) {
    return {
      id: p.id,
      displayName: p.displayName,
      ...(p.type === 'User' ? { email: p.email ?? null } : {}),
      type: p.type,
    };
  }

  function roleDefinitionPath(scope: string, roleId: string): string {
    const sub = /^\/subscriptions\/[^/]+/i.exec(scope);
    return `${sub ? sub[0] : ''}/providers/Microsoft.Authorization/roleDefinitions/${roleId}`;
  }

  function scheduleJson(
    kind: 'eligibility' | 'assignment',
    r: ArmScheduleRecord,
    listScope: string,
    requestedScope: string,
  ) {
    const own = written(r.scope, requestedScope, r.name);
    const inherited = canonicalScope(r.scope) !== listScope;
    // https://github.com/kayasax/EasyPIM/issues/23: a row inherited from a management group is sometimes listed as Direct.
    const memberType = inherited
      ? r.name.charCodeAt(1) % 2 === 0
        ? 'Direct'
        : 'Inherited'
      : (r.memberType ?? 'Direct');
    const collection = kind === 'eligibility' ? 'roleEligibilitySchedules' : 'roleAssignmentSchedules';
    const requestCollection =
      kind === 'eligibility' ? 'roleEligibilityScheduleRequests' : 'roleAssignmentScheduleRequests';
    const properties: Record<string, unknown> = {
      scope: own,
      roleDefinitionId: roleDefinitionPath(own, r.roleId),
      principalId: r.principal.id,
      principalType: r.principal.type,
      status: 'Provisioned',
      startDateTime: r.start,
      endDateTime: r.end,
      memberType,
      createdOn: r.createdOn,
      updatedOn: r.createdOn,
      expandedProperties: {
        principal: principalOf(r.principal),
        roleDefinition: { id: roleDefinitionPath(own, r.roleId), displayName: r.roleName, type: 'BuiltInRole' },
        scope: { id: own, ...scopeDisplay(r.scope) },
      },
    };
    if (kind === 'assignment') {
      properties.assignmentType = r.assignmentType ?? 'Assigned';
      if (r.linkedEligibilityName)
        properties.linkedRoleEligibilityScheduleId = `${own}/providers/Microsoft.Authorization/roleEligibilitySchedules/${r.linkedEligibilityName}`;
    }
    if (r.requestName)
      properties[`${requestCollection.slice(0, -1)}Id`] =
        `${own}/providers/Microsoft.Authorization/${requestCollection}/${r.requestName}`;
    return {
      properties,
      name: r.name,
      id: `${own}/providers/Microsoft.Authorization/${collection}/${r.name}`,
      type: `Microsoft.Authorization/${collection[0].toUpperCase()}${collection.slice(1)}`,
    };
  }

  /** The role assignment a schedule stands for: its own name when made outside PIM. */
  function roleAssignmentNameOf(r: ArmScheduleRecord): string {
    if (r.roleAssignmentName) return r.roleAssignmentName;
    // Deterministic, and not the schedule's own name.
    const h = createHash('sha256').update(`roleAssignment:${r.name}`).digest('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }

  function inForce(r: ArmScheduleRecord, at: number): boolean {
    return Date.parse(r.start) <= at && (r.end === null || Date.parse(r.end) > at);
  }

  function instanceJson(r: ArmScheduleRecord, listScope: string, requestedScope: string) {
    const own = written(r.scope, requestedScope, r.name);
    const schedule = scheduleJson('assignment', r, listScope, requestedScope);
    const assignment = roleAssignmentNameOf(r);
    // An instance names no request and has no updatedOn (the same example).
    const common = { ...schedule.properties };
    delete common.roleAssignmentScheduleRequestId;
    delete common.updatedOn;
    return {
      properties: {
        ...common,
        roleAssignmentScheduleId: schedule.id,
        // In the /subscriptions/… form whatever form the request used, as in ARM's own example
        // (GetRoleAssignmentScheduleInstancesByScope.json in Azure/azure-rest-api-specs).
        originRoleAssignmentId: `${r.scope}/providers/Microsoft.Authorization/roleAssignments/${assignment}`,
      },
      name: assignment,
      id: `${own}/providers/Microsoft.Authorization/roleAssignmentScheduleInstances/${assignment}`,
      type: 'Microsoft.Authorization/RoleAssignmentScheduleInstances',
    };
  }

  function requestJson(r: ArmRequestRecord, requestedScope: string) {
    const own = written(r.scope, requestedScope, r.name);
    return {
      properties: {
        requestType: r.requestType,
        status: r.status,
        createdOn: r.createdOn,
        requestorId: r.principal.id,
        principalId: r.principal.id,
        principalType: r.principal.type,
        roleDefinitionId: roleDefinitionPath(own, r.roleId),
        scope: own,
        targetRoleAssignmentScheduleId: r.targetScheduleName
          ? `${own}/providers/Microsoft.Authorization/roleAssignmentSchedules/${r.targetScheduleName}`
          : null,
        justification: r.justification ?? null,
        ticketInfo: { ticketNumber: r.ticketNumber ?? null, ticketSystem: r.ticketSystem ?? null },
        scheduleInfo: {
          startDateTime: r.start,
          expiration: { type: 'AfterDuration', endDateTime: null, duration: r.durationIso },
        },
        expandedProperties: {
          principal: principalOf(r.principal),
          roleDefinition: { id: roleDefinitionPath(own, r.roleId), displayName: r.roleName, type: 'BuiltInRole' },
          scope: { id: own, ...scopeDisplay(r.scope) },
        },
      },
      name: r.name,
      id: `${own}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/${r.name}`,
      type: 'Microsoft.Authorization/RoleAssignmentScheduleRequests',
    };
  }

  /** One page of `items`, each rendered by `render` (only the page's: a list is asked for page by page). */
  function page<S, T = S>(
    items: S[],
    url: URL,
    origin: string,
    render: (item: S) => T = (item) => item as unknown as T,
  ): { value: T[]; nextLink?: string } {
    const skip = Number(url.searchParams.get('$skiptoken') ?? '0');
    if (!Number.isInteger(skip) || skip < 0)
      throw new ArmError(400, 'InvalidSkipToken', 'The skip token is not valid.');
    const value = items.slice(skip, skip + pageSize).map(render);
    if (skip + pageSize >= items.length) return { value };
    const next = new URL(url.pathname, origin);
    for (const [k, v] of url.searchParams) if (k !== '$skiptoken') next.searchParams.set(k, v);
    next.searchParams.set('$skiptoken', String(skip + pageSize));
    return { value, nextLink: next.toString() };
  }

  function requireVersion(url: URL, versions: Set<string>): void {
    const v = url.searchParams.get('api-version');
    if (!v)
      throw new ArmError(
        400,
        'MissingApiVersionParameter',
        'The api-version query parameter (?api-version=) is required for all requests.',
      );
    if (!versions.has(v))
      throw new ArmError(
        400,
        'InvalidApiVersionParameter',
        `The api-version '${v}' is invalid. The supported versions are '${[...versions].join("','")}'.`,
      );
  }

  let origin = '';

  function handle(req: IncomingMessage, url: URL): { status: number; body: unknown; headers?: Record<string, string> } {
    const jwt = decodeJwt(bearerToken(req.headers.authorization));
    if (!jwt)
      throw new ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.");
    const aud = typeof jwt.payload.aud === 'string' ? jwt.payload.aud : '';
    if (!(
      aud.startsWith(origin) ||
      aud.startsWith('https://management.azure.com') ||
      aud.startsWith('https://management.core.windows.net')
    )) {
      throw new ArmError(
        401,
        'InvalidAuthenticationToken',
        'The access token has been obtained for wrong audience or resource.',
      );
    }
    if (typeof jwt.payload.exp === 'number' && jwt.payload.exp * 1000 < Date.now())
      throw new ArmError(
        401,
        'ExpiredAuthenticationToken',
        'The access token expiry UTC time is earlier than current UTC time.',
      );
    const callerId = String(jwt.payload.oid ?? '').toLowerCase();
    if (req.method !== 'GET')
      throw new ArmError(
        405,
        'MethodNotAllowed',
        `The requested resource does not support http method '${req.method}'.`,
      );
    const path = decodeURIComponent(url.pathname);

    if (/^\/subscriptions\/?$/i.test(path)) {
      requireVersion(url, SUBSCRIPTIONS_API_VERSIONS);
      const own = estate.subscriptions.map((s) => ({
        id: `/subscriptions/${s.id}`,
        subscriptionId: s.id,
        tenantId: estate.tenantId,
        homeTenantId: estate.tenantId,
        displayName: s.displayName,
        state: 'Enabled',
        managedByTenants: [],
      }));
      const foreign = estate.foreignSubscriptions.map((s) => ({
        id: `/subscriptions/${s.id}`,
        subscriptionId: s.id,
        tenantId: s.homeTenantId,
        homeTenantId: s.homeTenantId,
        displayName: s.displayName,
        state: 'Enabled',
        managedByTenants: [{ tenantId: estate.tenantId }],
      }));
      // The delegated one in the middle, as ARM orders by nothing we can rely on.
      const all = [...own.slice(0, 1), ...foreign, ...own.slice(1)];
      return { status: 200, body: page(all, url, origin) };
    }

    const descendants = /^\/providers\/microsoft\.management\/managementgroups\/([^/]+)\/descendants$/i.exec(path);
    if (descendants) {
      requireVersion(url, new Set([ARM_DESCENDANTS_API_VERSION]));
      const root = descendants[1].toLowerCase();
      if (!mgName.has(root)) throw new ArmError(404, 'NotFound', `'${descendants[1]}' not found`);
      const items: unknown[] = [];
      const walk = (mg: string) => {
        for (const child of estate.managementGroups.filter((m) => m.parentId?.toLowerCase() === mg)) {
          items.push({
            id: `/providers/Microsoft.Management/managementGroups/${child.id}`,
            type: 'Microsoft.Management/managementGroups',
            name: child.id,
            properties: {
              displayName: child.displayName,
              parent: { id: `/providers/Microsoft.Management/managementGroups/${mg}` },
            },
          });
          walk(child.id.toLowerCase());
        }
        for (const sub of estate.subscriptions.filter((s) => s.managementGroupId.toLowerCase() === mg)) {
          items.push({
            id: `/subscriptions/${sub.id}`,
            type: '/subscriptions',
            name: sub.id,
            properties: {
              displayName: sub.displayName,
              parent: { id: `/providers/Microsoft.Management/managementGroups/${mg}` },
            },
          });
        }
      };
      walk(root);
      return { status: 200, body: page(items, url, origin) };
    }

    const list =
      /^(.*)\/providers\/microsoft\.authorization\/(roleeligibilityschedules|roleassignmentschedules|roleassignmentscheduleinstances|roleassignmentschedulerequests)$/i.exec(
        path,
      );
    if (list) {
      requireVersion(url, new Set([ARM_SCHEDULES_API_VERSION]));
      const requestedScope = list[1];
      const listScope = canonicalScope(requestedScope);
      if (!scopeKnown(listScope)) {
        const sub = /^\/subscriptions\/([^/]+)/.exec(listScope);
        if (sub) throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${sub[1]}' could not be found.`);
        throw new ArmError(
          403,
          'AuthorizationFailed',
          `The client '${callerId}' does not have authorization to perform action 'Microsoft.Authorization/${list[2]}/read' over scope '${requestedScope}' or the scope is invalid.`,
        );
      }
      const kind = list[2].toLowerCase();
      const filter = parseFilter(url.searchParams.get('$filter'), kind === 'roleassignmentschedulerequests');
      const byFilter = (p: ArmPrincipal) =>
        filter.kind === 'principal'
          ? p.id.toLowerCase() === filter.id
          : filter.kind === 'asTarget' || filter.kind === 'asRequestor'
            ? p.id.toLowerCase() === callerId
            : filter.kind !== 'asApprover';
      if (kind === 'roleassignmentschedulerequests') {
        const cutoff = now().getTime() - REQUEST_RETENTION_DAYS * 86_400_000;
        const rows = visibleRows(estate.requests, listScope, filter).filter(
          (r) => Date.parse(r.createdOn) >= cutoff && byFilter(r.principal),
        );
        return {
          status: 200,
          body: page(rows, url, origin, (r) => requestJson(r, requestedScope)),
        };
      }
      if (kind === 'roleassignmentscheduleinstances') {
        const at = now().getTime();
        const rows = visibleRows(estate.assignments, listScope, filter).filter(
          (r) => inForce(r, at) && byFilter(r.principal),
        );
        return {
          status: 200,
          body: page(rows, url, origin, (r) => instanceJson(r, listScope, requestedScope)),
        };
      }
      const source = kind === 'roleeligibilityschedules' ? estate.eligibility : estate.assignments;
      const rows = visibleRows(source, listScope, filter).filter((r) => byFilter(r.principal));
      const kindName = kind === 'roleeligibilityschedules' ? 'eligibility' : 'assignment';
      return {
        status: 200,
        body: page(rows, url, origin, (r) => scheduleJson(kindName, r, listScope, requestedScope)),
      };
    }
    throw new ArmError(404, 'InvalidResourceType', `The resource type could not be found for '${path}'.`);
  }

  let inFlight = 0;
  let peakInFlight = 0;
  const server = https.createServer(
    { cert: options.tls.cert, key: options.tls.key },
    (req: IncomingMessage, res: ServerResponse) => {
      const arrived = performance.now();
      const at = Date.now();
      inFlight++;
      peakInFlight = Math.max(peakInFlight, inFlight);
      res.once('close', () => inFlight--);
      const url = new URL(req.url ?? '/', origin);
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        requests.push({
          method: req.method ?? '',
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          status,
          at,
        });
        const text = JSON.stringify(body);
        const write = () => {
          res.writeHead(status, {
            'content-type': 'application/json; charset=utf-8',
            'x-ms-request-id': randomUUID(),
            ...headers,
          });
          res.end(text);
        };
        // The latency counts from the request's arrival, the listing and serializing above included,
        // as a real server's does.
        const left = options.latencyMs ? options.latencyMs - (performance.now() - arrived) : 0;
        if (options.latencyWait) void options.latencyWait(left).then(write);
        else if (left > 0) setTimeout(write, left);
        else write();
      };
      if (hangLeft > 0 && (!hangPattern || hangPattern.test(url.pathname + url.search))) {
        hangLeft--;
        requests.push({
          method: req.method ?? '',
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          status: 0,
          at,
        });
        return;
      }
      try {
        if (failure && failure.pattern.test(url.pathname))
          throw new ArmError(failure.status, failure.code, `Simulated failure ${failure.status}.`);
        if (throttleLeft > 0 && (!throttlePattern || throttlePattern.test(url.pathname))) {
          throttleLeft--;
          throw Object.assign(new ArmError(429, 'TooManyRequests', 'The request is being throttled.'), {
            retryAfter: throttleSeconds,
          });
        }
        const { status, body, headers } = handle(req, url);
        send(status, body, headers);
      } catch (error) {
        if (error instanceof ArmError) {
          const retryAfter = (error as ArmError & { retryAfter?: number }).retryAfter;
          send(
            error.status,
            { error: { code: error.code, message: error.message } },
            retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {},
          );
        } else {
          send(500, { error: { code: 'InternalServerError', message: String(error) } });
        }
      }
    },
  );
  const port = await listen(server);
  origin = `https://127.0.0.1:${port}`;
  return {
    url: origin,
    requests,
    get peakInFlight() {
      return peakInFlight;
    },
    throttle(count, seconds = 1, pathPattern) {
      throttleLeft = count;
      throttleSeconds = seconds;
      throttlePattern = pathPattern;
    },
    hang(count, pattern) {
      hangLeft = count;
      hangPattern = pattern;
    },
    fail(pattern, status = 500, code = 'InternalServerError') {
      failure = pattern ? { pattern, status, code } : undefined;
    },
    stop: () => closeServer(server),
  };
}
