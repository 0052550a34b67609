/**
 * An HTTPS Microsoft Graph v1.0 simulator serving a SimTenant, as strict as Graph about what it documents:
 * undocumented query options, filters and expansions are rejected (https://learn.microsoft.com/graph/api/resources/privilegedidentitymanagementv3-overview), pages are
 * server-driven with absolute opaque nextLinks, the audit log is rate limited and keeps 30 days.
 * HTTPS because the Graph SDK only sends the token to https hosts:
 * https://github.com/microsoftgraph/msgraph-sdk-javascript/blob/dev/changelogs/v3-upgrade-guide.md
 */
import { randomUUID } from 'node:crypto';
import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  ODataError,
  compileFilter,
  parseExpand,
  parseFilter,
  parseSelect,
  topLevelEquals,
  validateFilter,
  type FilterSpec,
} from './graph/odata';
import { bearerToken, closeServer, decodeJwt, isRecord, listen, queryRecord, readBody, sleep } from './http-util';
import type {
  SimAdministrativeUnit,
  SimDirectoryAudit,
  SimGroup,
  SimGroupEligibilitySchedule,
  SimRoleDefinition,
  SimRoleSchedule,
  SimServicePrincipal,
  SimRolePolicy,
  SimTenant,
  SimUser,
} from './tenant/model';
import { effectiveRolePolicies } from './tenant/policies';
import { timeKey } from './tenant/time';

// ---------------------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------------------

export interface GraphRequestRecord {
  method: string;
  /** Path without the query, e.g. /v1.0/roleManagement/directory/roleEligibilitySchedules */
  path: string;
  query: Record<string, string>;
  status: number;
  /** epoch ms when the request arrived */
  at: number;
  /** true for the sub-requests of a $batch (the $batch itself is logged with false) */
  batched: boolean;
}

/**
 * `path`: a string matches when the request path (plus `?query`) contains it; a RegExp is tested against the
 * same text; omitted = every request. `times` (default 1) counts down each time the fault fires.
 */
type FaultPath = RegExp | string;

export type GraphFault =
  | {
      path?: FaultPath;
      status: 400 | 403 | 404 | 429 | 500 | 502 | 503 | 504;
      retryAfterSeconds?: number;
      times?: number;
      body?: object;
    }
  | { path?: FaultPath; kind: 'reset'; times?: number }
  | { path?: FaultPath; kind: 'invalidSkipToken'; times?: number }
  | { path?: FaultPath; kind: 'emptyPage'; times?: number }
  /**
   * A page that is not JSON, as a proxy or a gateway answers (status 200 by default, or 502): Graph's
   * batch has answered HTML (https://github.com/microsoftgraph/msgraph-sdk-dotnet/issues/2661), and
   * 502 is an answer Graph gives (https://github.com/microsoftgraph/microsoft-graph-docs/issues/6039).
   * Not for the items of a `$batch`: it is the whole answer that comes from the gateway.
   */
  | { path?: FaultPath; kind: 'html'; status?: 200 | 502; times?: number }
  /** A 200 JSON answer without its `value` list (a sub-request of a `$batch` too). */
  | { path?: FaultPath; kind: 'noValue'; times?: number }
  /**
   * The connection is accepted and the request read, but no answer comes (`afterHeaders`: the status
   * and part of the body come, the rest never does) until the client gives up or the simulator stops.
   * Recorded with status 0 (200 with `afterHeaders`). Not for the items of a `$batch`, which Graph
   * answers as a whole.
   */
  | { path?: FaultPath; kind: 'hang'; afterHeaders?: boolean; times?: number };

export interface GraphSimulatorOptions {
  tenant: SimTenant;
  tls: { cert: string; key: string };
  /**
   * Server page size of the PIM lists (and roleDefinitions) when no `$top` is sent. Default 25: no page
   * size is documented, so the simulator serves small pages and accepts `$top` 1..999 on the PIM
   * lists, as public tools send it; roleDefinitions refuses `$top` as live tenants do (README, "What
   * we know of Graph").
   */
  pageSize?: number;
  /**
   * PIM for Groups exists (default true). False: a national cloud without it, where
   * /identityGovernance/privilegedAccess answers 400 "Resource not found for the segment 'privilegedAccess'."
   */
  pimForGroups?: boolean;
  /**
   * Most items a PIM-list page holds whatever `$top` asks (default 999): Graph's paging is
   * server-driven and a page may hold fewer than asked (https://learn.microsoft.com/graph/paging).
   * Tests set it low to page small tenants.
   */
  maxPageSize?: number;
  /**
   * The caller holds RoleManagementPolicy.Read.AzureADGroup (default true): groups' PIM policies are
   * listed; without it a `scopeType eq 'Group'` listing answers 403.
   */
  groupPolicyRead?: boolean;
  /** The caller holds Member.Read.Hidden (default false): members of hidden-membership groups are listed. */
  memberReadHidden?: boolean;
  /** Audit log throttling per identity. Default 5 requests per 10 000 ms:
   * https://learn.microsoft.com/graph/throttling-limits#identity-and-access-reports-service-limits */
  auditRateLimit?: { requests: number; perMs: number };
  /** Delay added to every response (benchmarks). */
  latencyMs?: number;
  /** Waits what is left of the latency, zero or less when the work outlasted it (default a timer): a test records it. */
  latencyWait?: (ms: number) => Promise<void>;
  /** The simulator's clock, for audit retention. Default: the real clock. */
  now?: () => Date;
  /**
   * Wall time in ms, for the audit rate limit and the `at` of each request. Default `Date.now`; a
   * test whose client skips its retry waits (recording them) moves it on by each wait, so a
   * client that asks again too early is still refused.
   */
  wallMs?: () => number;
  /** Shuffle $batch responses as Graph may (default true). */
  shuffleBatchResponses?: boolean;
  /**
   * Server keep-alive, ms (default 2000). Node's fetch (undici 6) subtracts 2 s from the server's
   * `Keep-Alive: timeout` hint, so at 2000 every request opens a new TLS connection; benchmarks set
   * more to reuse connections as they would against Graph.
   */
  keepAliveMs?: number;
  port?: number;
}

export interface GraphSimulator {
  /** https://127.0.0.1:<port> (give it to the product as GRAPH_ENDPOINT). */
  readonly url: string;
  readonly requests: GraphRequestRecord[];
  readonly tenant: SimTenant;
  /** Replace the tenant, or pass the same object after mutating it (indexes are rebuilt). */
  setTenant(tenant: SimTenant): void;
  setNow(now: () => Date): void;
  inject(fault: GraphFault): void;
  clearFaults(): void;
  /** Forget the audit-log rate limiter's history. */
  resetRateLimits(): void;
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------------------

const JSON_ODATA = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8';
const GRAPH_APP_ID = '00000003-0000-0000-c000-000000000000';
const RETENTION_MS = 30 * 86_400_000;
/** `$top` range the simulator accepts on the PIM lists (public tools send 1..999). */
const PIM_MAX_TOP = 999;
/** Directory-object lists: Graph's $top range, 1 to 999 (https://learn.microsoft.com/graph/api/user-list). */
const DIRECTORY_MAX_TOP = 999;

class GraphHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly body?: object,
  ) {
    super(message);
  }
}

const bad = (message: string, code = 'BadRequest') => new GraphHttpError(400, code, message);
const notFound = (id: string) =>
  new GraphHttpError(
    404,
    'Request_ResourceNotFound',
    `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`,
  );

interface Result {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
  /** The body already serialized (a page of rendered items): what JSON.stringify(body) would give. */
  text?: string;
  reset?: boolean;
  /** An injected hang: no answer at all, or headers and part of the body. */
  hang?: 'answer' | 'body';
}

interface Call {
  method: string;
  path: string;
  rawQuery: string;
  query: URLSearchParams;
  headers: Record<string, string | undefined>;
  body: unknown;
  identity: string;
  batched: boolean;
  /** An injected emptyPage fault the pager may consume. */
  emptyPageFault: GraphFault | null;
}

type DirectoryObject =
  | { kind: 'user'; obj: SimUser }
  | { kind: 'group'; obj: SimGroup }
  | { kind: 'servicePrincipal'; obj: SimServicePrincipal }
  | { kind: 'administrativeUnit'; obj: SimAdministrativeUnit };

/** Properties served per directory object type ($select is validated against their union). */
const OBJECT_PROPS: Record<DirectoryObject['kind'], string[]> = {
  user: [
    'id',
    'displayName',
    'userPrincipalName',
    'mail',
    'accountEnabled',
    'userType',
    'givenName',
    'surname',
    'jobTitle',
  ],
  group: [
    'id',
    'displayName',
    'description',
    'mail',
    'mailEnabled',
    'mailNickname',
    'securityEnabled',
    'groupTypes',
    'isAssignableToRole',
  ],
  servicePrincipal: ['id', 'displayName', 'appId', 'appDisplayName', 'servicePrincipalType', 'accountEnabled'],
  administrativeUnit: ['id', 'displayName', 'description', 'visibility', 'membershipType'],
};
const DIRECTORY_OBJECT_PROPS = [...new Set(Object.values(OBJECT_PROPS).flat())];

const ROLE_SCHEDULE_PROPS = [
  'id',
  'principalId',
  'roleDefinitionId',
  'directoryScopeId',
  'appScopeId',
  'createdUsing',
  'createdDateTime',
  'modifiedDateTime',
  'status',
  'memberType',
  'scheduleInfo',
];
const ROLE_DEFINITION_PROPS = [
  'id',
  'description',
  'displayName',
  'isBuiltIn',
  'isEnabled',
  'resourceScopes',
  'templateId',
  'version',
  'rolePermissions',
];
const GROUP_SCHEDULE_PROPS = [
  'id',
  'groupId',
  'principalId',
  'accessId',
  'memberType',
  'status',
  'createdDateTime',
  'createdUsing',
  'modifiedDateTime',
  'scheduleInfo',
];
const AUDIT_PROPS = [
  'id',
  'category',
  'correlationId',
  'result',
  'resultReason',
  'activityDisplayName',
  'activityDateTime',
  'loggedByService',
  'operationType',
  'initiatedBy',
  'targetResources',
  'additionalDetails',
];

/** Filterable properties as documented: https://learn.microsoft.com/graph/api/resources/unifiedroleeligibilityschedule */
const eqNe = { type: 'string', ops: ['eq', 'ne'] } as const;
const eqOnly = { type: 'string', ops: ['eq'] } as const;
const eqNeNull = { type: 'string', ops: ['eq', 'ne', 'null'] } as const;
const ELIGIBILITY_FILTER: FilterSpec = {
  entity: 'microsoft.graph.unifiedRoleEligibilitySchedule',
  properties: {
    id: eqOnly,
    principalId: eqNe,
    memberType: eqNe,
    status: eqNe,
    appScopeId: eqNeNull,
    directoryScopeId: eqNeNull,
    createdUsing: eqNeNull,
  },
  hint: 'roleDefinitionId is not documented as filterable on roleEligibilitySchedules.',
};
const ASSIGNMENT_FILTER: FilterSpec = {
  entity: 'microsoft.graph.unifiedRoleAssignmentSchedule',
  properties: { ...ELIGIBILITY_FILTER.properties, roleDefinitionId: eqNe, assignmentType: eqNe },
};
const ROLE_DEFINITION_FILTER: FilterSpec = {
  entity: 'microsoft.graph.unifiedRoleDefinition',
  properties: {
    id: { type: 'string', ops: ['eq', 'in'] },
    displayName: { type: 'string', ops: ['eq', 'in'] },
    isBuiltIn: { type: 'bool', ops: ['eq', 'in'] },
  },
};
const GROUP_SCHEDULE_FILTER: FilterSpec = {
  entity: 'microsoft.graph.privilegedAccessGroupEligibilitySchedule',
  properties: { groupId: eqOnly, principalId: eqOnly },
};
const AUDIT_FILTER: FilterSpec = {
  entity: 'microsoft.graph.directoryAudit',
  properties: {
    activityDateTime: { type: 'datetime', ops: ['eq', 'ge', 'le', 'gt', 'lt'] },
    activityDisplayName: { type: 'string', ops: ['eq', 'startswith'] },
    loggedByService: eqOnly,
    correlationId: eqOnly,
    id: eqOnly,
    'initiatedBy/user/id': eqOnly,
    'initiatedBy/user/displayName': eqOnly,
    'initiatedBy/user/userPrincipalName': { type: 'string', ops: ['eq', 'startswith'] },
    'initiatedBy/app/appId': eqOnly,
    'initiatedBy/app/displayName': eqOnly,
  },
  hint: "'category' is not a documented filter on directoryAudits: filter it on the client.",
};

const POLICY_ASSIGNMENT_FILTER: FilterSpec = {
  entity: 'microsoft.graph.unifiedRoleManagementPolicyAssignment',
  properties: { scopeId: eqOnly, scopeType: eqOnly, roleDefinitionId: eqOnly },
};

/** A copy in random order: Graph documents no order for a policy's rules. */
function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

interface Indexes {
  users: Map<string, SimUser>;
  groups: Map<string, SimGroup>;
  sps: Map<string, SimServicePrincipal>;
  aus: Map<string, SimAdministrativeUnit>;
  roles: Map<string, SimRoleDefinition>;
  eligibilityByKey: Map<string, SimRoleSchedule>;
  groupSchedulesByGroup: Map<string, SimGroupEligibilitySchedule[]>;
  groupSchedulesByPrincipal: Map<string, SimGroupEligibilitySchedule[]>;
  /** audit records with their sortable time key, ascending */
  audits: { rec: SimDirectoryAudit; key: string }[];
  transitive: Map<string, string[]>;
}

function buildIndexes(t: SimTenant): Indexes {
  const byId = <T extends { id: string }>(items: T[]) => new Map(items.map((x) => [x.id.toLowerCase(), x]));
  const groupSchedulesByGroup = new Map<string, SimGroupEligibilitySchedule[]>();
  const groupSchedulesByPrincipal = new Map<string, SimGroupEligibilitySchedule[]>();
  for (const s of t.groupEligibilitySchedules) {
    const g = s.groupId.toLowerCase();
    const p = s.principalId.toLowerCase();
    (groupSchedulesByGroup.get(g) ?? groupSchedulesByGroup.set(g, []).get(g))?.push(s);
    (groupSchedulesByPrincipal.get(p) ?? groupSchedulesByPrincipal.set(p, []).get(p))?.push(s);
  }
  const audits = t.directoryAudits.map((rec) => ({ rec, key: timeKey(rec.activityDateTime) ?? '' }));
  audits.sort((a, b) =>
    a.key < b.key ? -1 : a.key > b.key ? 1 : a.rec.id < b.rec.id ? -1 : a.rec.id > b.rec.id ? 1 : 0,
  );
  return {
    users: byId(t.users),
    groups: byId(t.groups),
    sps: byId(t.servicePrincipals),
    aus: byId(t.administrativeUnits),
    roles: byId(t.roleDefinitions),
    eligibilityByKey: new Map(
      t.eligibilitySchedules.map((s) => [
        `${s.principalId}|${s.roleDefinitionId}|${s.directoryScopeId}`.toLowerCase(),
        s,
      ]),
    ),
    groupSchedulesByGroup,
    groupSchedulesByPrincipal,
    audits,
    transitive: new Map(),
  };
}

function graphErrorBody(code: string, message: string, clientRequestId: string, requestId: string) {
  return {
    error: {
      code,
      message,
      innerError: {
        date: new Date().toISOString().slice(0, 19),
        'request-id': requestId,
        'client-request-id': clientRequestId,
      },
    },
  };
}

function faultMatches(fault: GraphFault, call: Call): boolean {
  if (fault.path === undefined) return true;
  const full = call.rawQuery ? `${call.path}?${call.rawQuery}` : call.path;
  if (typeof fault.path === 'string') return full.includes(fault.path);
  fault.path.lastIndex = 0;
  return fault.path.test(full);
}

/** Options a list endpoint accepts; any other `$` option is a 400 naming it. */
function checkOptions(call: Call, allowed: readonly string[], resource: string): void {
  const seen = new Set<string>();
  for (const rawName of call.query.keys()) {
    const name = normaliseOption(rawName);
    if (!name) continue;
    if (seen.has(name))
      throw bad(`Query option '${name}' was specified more than once, but it must be specified at most once.`);
    seen.add(name);
    if (!allowed.includes(name)) {
      throw bad(
        `Query option '${name}' is not supported on ${resource}. Supported: ${allowed.join(', ')}` +
          (['$top', '$skip', '$orderby', '$count', '$search'].includes(name) && resource.includes('roleManagement')
            ? ' (only $select, $filter and $expand are documented; the server chooses the page size).'
            : '.'),
      );
    }
  }
}

/** `$filter` and `filter` are the same option to Graph; other names are not OData options. */
function normaliseOption(name: string): string | null {
  const lower = name.toLowerCase();
  const known = [
    'select',
    'filter',
    'expand',
    'top',
    'skip',
    'orderby',
    'count',
    'search',
    'skiptoken',
    'format',
    'apply',
    'compute',
    'deltatoken',
  ];
  if (lower.startsWith('$')) return lower;
  return known.includes(lower) ? `$${lower}` : null;
}

function option(call: Call, name: string): string | undefined {
  for (const [k, v] of call.query) if (normaliseOption(k) === name) return v;
  return undefined;
}

function parseTop(call: Call, max: number, code = 'BadRequest'): number | undefined {
  const raw = option(call, '$top');
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > max) {
    throw bad(`Invalid page size specified: '${raw}'. Must be between 1 and ${max} inclusive.`, code);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------------------

export async function startGraphSimulator(opts: GraphSimulatorOptions): Promise<GraphSimulator> {
  let tenant = opts.tenant;
  let idx = buildIndexes(tenant);
  let generation = 0;
  let now = opts.now ?? (() => new Date());
  const pageSize = opts.pageSize ?? 25;
  const pimForGroups = opts.pimForGroups ?? true;
  const maxPageSize = opts.maxPageSize ?? PIM_MAX_TOP;
  const memberReadHidden = opts.memberReadHidden ?? false;
  const groupPolicyRead = opts.groupPolicyRead ?? true;
  const rate = opts.auditRateLimit ?? { requests: 5, perMs: 10_000 };
  const wallMs = opts.wallMs ?? Date.now;
  const faults: GraphFault[] = [];
  const requests: GraphRequestRecord[] = [];
  const auditHits = new Map<string, number[]>();
  const instance = randomUUID();
  const listCache = new Map<string, unknown[]>();
  /** Pages kept as sent, by path and query (see page()); a new tenant starts anew. */
  const keptPages = new Map<string, string>();
  let origin = '';

  const server = https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, (req, res) => {
    handleHttp(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify(graphErrorBody('InternalServerError', String(err), '', randomUUID())));
      } else {
        res.destroy();
      }
    });
  });
  // Keep-alive sockets must not hold the test process open after stop().
  server.keepAliveTimeout = opts.keepAliveMs ?? 2000;
  const port = await listen(server, opts.port);
  origin = `https://127.0.0.1:${port}`;

  // ----- HTTP plumbing ---------------------------------------------------------------------------------

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = performance.now();
    const at = wallMs();
    const url = new URL(req.url ?? '/', origin);
    const raw = await readBody(req).catch(() => Buffer.alloc(0));
    const clientRequestId = headerValue(req.headers['client-request-id']) ?? randomUUID();
    const call: Call = {
      method: (req.method ?? 'GET').toUpperCase(),
      path: safeDecode(url.pathname),
      rawQuery: url.search.slice(1),
      query: url.searchParams,
      headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, headerValue(v)])),
      body: undefined,
      identity: '',
      batched: false,
      emptyPageFault: null,
    };
    let result: Result;
    try {
      call.identity = authenticate(headerValue(req.headers.authorization));
      if (raw.length) call.body = parseJsonBody(raw);
      result = dispatch(call);
    } catch (err) {
      result = errorResult(err);
    }
    requests.push({
      method: call.method,
      path: call.path,
      query: queryRecord(call.query),
      status: result.status,
      at,
      batched: false,
    });
    const requestId = randomUUID();
    // Built and serialized before the latency, and the latency counts from the request's arrival: a
    // real server's latency includes its own work, so ours must not add it on top.
    const text =
      result.hang || result.reset
        ? undefined
        : (result.text ?? serialize(finaliseBody(result, clientRequestId, requestId)));
    if (opts.latencyMs) {
      const left = opts.latencyMs - (performance.now() - arrived);
      if (opts.latencyWait) await opts.latencyWait(left);
      else if (left > 0) await sleep(left);
    }
    if (result.hang) {
      // Never answered: the socket stays open until the client aborts or stop() closes it.
      if (result.hang === 'body') {
        res.writeHead(200, { 'content-type': JSON_ODATA, 'content-length': '65536', 'request-id': requestId });
        res.write('{"@odata.context":"' + origin + '/v1.0/$metadata","value":[{"id":"');
      }
      return;
    }
    if (result.reset) {
      // Headers and part of the body, then the connection drops (a mid-response network failure).
      res.writeHead(200, { 'content-type': JSON_ODATA, 'content-length': '65536', 'request-id': requestId });
      res.write('{"@odata.context":"' + origin + '/v1.0/$metadata","value":[{"id":"');
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    res.writeHead(result.status, {
      'content-type': result.status >= 400 ? 'application/json' : JSON_ODATA,
      'request-id': requestId,
      'client-request-id': clientRequestId,
      ...result.headers,
    });
    res.end(text);
  }

  function serialize(body: unknown): string | undefined {
    return body === undefined ? undefined : JSON.stringify(body);
  }

  function finaliseBody(result: Result, clientRequestId: string, requestId: string): unknown {
    if (result.body instanceof GraphHttpError) {
      return result.body.body ?? graphErrorBody(result.body.code, result.body.message, clientRequestId, requestId);
    }
    return result.body;
  }

  function errorResult(err: unknown): Result {
    if (err instanceof GraphHttpError) return { status: err.status, headers: err.headers, body: err };
    if (err instanceof ODataError)
      return { status: err.status, headers: {}, body: new GraphHttpError(err.status, err.code, err.message) };
    const e = new GraphHttpError(500, 'InternalServerError', err instanceof Error ? err.message : String(err));
    return { status: 500, headers: {}, body: e };
  }

  function parseJsonBody(raw: Buffer): unknown {
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch {
      throw bad(
        'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.',
      );
    }
  }

  /** Any JWT-looking token whose `aud` is Graph (or this simulator), unexpired. Returns the caller identity. */
  function authenticate(header: string | undefined): string {
    const token = bearerToken(header);
    if (!token) throw new GraphHttpError(401, 'InvalidAuthenticationToken', 'Access token is empty.');
    const jwt = decodeJwt(token);
    if (!jwt)
      throw new GraphHttpError(
        401,
        'InvalidAuthenticationToken',
        'CompactToken parsing failed with error code: 80049217',
      );
    const aud = typeof jwt.payload.aud === 'string' ? jwt.payload.aud : '';
    if (!(aud.startsWith(origin) || aud.startsWith('https://graph.microsoft.com') || aud === GRAPH_APP_ID)) {
      throw new GraphHttpError(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.');
    }
    if (typeof jwt.payload.exp === 'number' && jwt.payload.exp * 1000 < Date.now()) {
      throw new GraphHttpError(401, 'InvalidAuthenticationToken', 'Lifetime validation failed, the token is expired.');
    }
    // Throttling is per app per tenant: key on the identity claims, falling back to the token itself.
    const who = jwt.payload.oid ?? jwt.payload.appid ?? jwt.payload.sub;
    return typeof who === 'string' ? `${who}|${String(jwt.payload.tid ?? '')}` : token;
  }

  // ----- dispatch ---------------------------------------------------------------------------------------

  function dispatch(call: Call): Result {
    const fault = takeFault(call);
    if (fault) return fault;
    if (!call.path.startsWith('/v1.0/') && call.path !== '/v1.0') {
      const version = call.path.split('/')[1] ?? '';
      if (version === 'beta') throw bad('The simulator serves v1.0 only (the product must not depend on beta).');
      throw new GraphHttpError(404, 'NotFound', `Invalid version: ${version}`);
    }
    const segs = call.path
      .slice('/v1.0/'.length)
      .split('/')
      .filter((s) => s.length > 0);
    const route = segs.join('/');
    const get = call.method === 'GET';
    const post = call.method === 'POST';

    if (route === '$batch') return post ? batch(call) : methodNotAllowed(call);
    if (route === 'directoryObjects/getByIds') return post ? getByIds(call) : methodNotAllowed(call);
    if (!get) return methodNotAllowed(call);

    switch (route) {
      case 'roleManagement/directory/roleDefinitions':
        return listRoleDefinitions(call);
      case 'roleManagement/directory/roleEligibilitySchedules':
        return listRoleSchedules(call, 'eligibility');
      case 'roleManagement/directory/roleAssignmentSchedules':
        return listRoleSchedules(call, 'assignment');
      case 'identityGovernance/privilegedAccess/group/eligibilitySchedules':
        if (!pimForGroups) throw bad("Resource not found for the segment 'privilegedAccess'.");
        return listGroupEligibility(call);
      case 'auditLogs/directoryAudits':
        return listAudits(call);
      case 'directory/administrativeUnits':
        return listAdministrativeUnits(call);
      case 'policies/roleManagementPolicyAssignments':
        return listPolicyAssignments(call);
    }
    if (
      segs[0] === 'groups' &&
      segs.length >= 3 &&
      (segs[2] === 'transitiveMembers' || segs[2] === 'members') &&
      segs.length <= 4
    ) {
      return listMembers(call, segs[1], segs[2] === 'transitiveMembers', segs[3]);
    }
    if (segs.length === 2 && ['users', 'groups', 'servicePrincipals', 'directoryObjects'].includes(segs[0])) {
      return getObject(call, segs[0], segs[1]);
    }
    if (segs.length === 3 && segs[0] === 'directory' && segs[1] === 'administrativeUnits') {
      return getObject(call, 'administrativeUnits', segs[2]);
    }
    if (segs.length === 4 && segs[0] === 'roleManagement' && segs[1] === 'directory' && segs[2] === 'roleDefinitions') {
      return getRoleDefinition(call, segs[3]);
    }
    throw bad(`Resource not found for the segment '${segs[segs.length - 1] ?? ''}'.`);
  }

  function methodNotAllowed(call: Call): Result {
    throw new GraphHttpError(
      405,
      'Request_BadRequest',
      `The HTTP method '${call.method}' is not allowed for the requested resource.`,
    );
  }

  function takeFault(call: Call): Result | null {
    for (let i = 0; i < faults.length; i++) {
      const f = faults[i];
      if (!faultMatches(f, call)) continue;
      if ('kind' in f) {
        // A sub-request can neither drop the connection nor hang on its own.
        if ((f.kind === 'reset' || f.kind === 'hang' || f.kind === 'html') && call.batched) continue;
        if (f.kind === 'invalidSkipToken' && option(call, '$skiptoken') === undefined) continue;
        if (f.kind === 'emptyPage') {
          // Consumed by the pager, and only when it actually has items left to hold back.
          call.emptyPageFault ??= f;
          continue;
        }
      }
      consume(i);
      if ('kind' in f) {
        if (f.kind === 'reset') return { status: 200, headers: {}, reset: true };
        if (f.kind === 'html')
          return {
            status: f.status ?? 200,
            headers: { 'content-type': 'text/html; charset=utf-8' },
            text: "<!DOCTYPE html><html><head><title>Service unavailable</title></head><body><h2>Our services aren't available right now</h2></body></html>",
          };
        if (f.kind === 'noValue')
          return { status: 200, headers: {}, body: { '@odata.context': `${origin}/v1.0/$metadata` } };
        if (f.kind === 'hang')
          return f.afterHeaders
            ? { status: 200, headers: {}, hang: 'body' }
            : { status: 0, headers: {}, hang: 'answer' };
        // The transient "Invalid Skip Token" error seen on audit and sign-in lists:
        // https://github.com/microsoftgraph/msgraph-sdk-powershell/issues/1388
        throw new GraphHttpError(400, '', 'Invalid Skip Token');
      }
      const headers: Record<string, string> = {};
      if (f.retryAfterSeconds !== undefined) headers['retry-after'] = String(f.retryAfterSeconds);
      const codes: Record<number, [string, string]> = {
        429: ['TooManyRequests', 'Too many requests.'],
        500: ['InternalServerError', 'An internal server error occurred.'],
        502: ['BadGateway', 'Bad gateway.'],
        503: ['ServiceUnavailable', 'Service unavailable.'],
        504: ['GatewayTimeout', 'Gateway timeout.'],
        403: ['Authorization_RequestDenied', 'Insufficient privileges to complete the operation.'],
        404: ['Request_ResourceNotFound', 'Resource not found.'],
        400: ['BadRequest', 'Bad request.'],
      };
      const [code, message] = codes[f.status] ?? ['UnknownError', 'Injected fault.'];
      throw new GraphHttpError(f.status, code, message, headers, f.body);
    }
    return null;
  }

  function consume(i: number): void {
    const f = faults[i];
    f.times = (f.times ?? 1) - 1;
    if (f.times <= 0) faults.splice(i, 1);
  }

  function consumeFault(f: GraphFault): void {
    const i = faults.indexOf(f);
    if (i >= 0) consume(i);
  }

  // ----- paging -------------------------------------------------------------------------------------------

  interface SkipState {
    i: string;
    p: string;
    q: string;
    o: number;
  }

  /** The query minus $skiptoken, canonical, so a token only works for the query that produced it. */
  function queryWithoutSkipToken(call: Call): [string, string][] {
    return [...call.query].filter(([k]) => normaliseOption(k) !== '$skiptoken');
  }

  function decodeSkipToken(call: Call): number {
    const token = option(call, '$skiptoken');
    if (token === undefined) return 0;
    try {
      const state = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as SkipState;
      const q = JSON.stringify(queryWithoutSkipToken(call));
      if (state.i !== instance || state.p !== call.path || state.q !== q || !Number.isInteger(state.o) || state.o < 0)
        throw new Error('mismatch');
      return state.o;
    } catch {
      throw new GraphHttpError(400, '', 'Invalid Skip Token');
    }
  }

  function nextLink(call: Call, offset: number): string {
    const pairs = queryWithoutSkipToken(call);
    const state: SkipState = { i: instance, p: call.path, q: JSON.stringify(pairs), o: offset };
    const token = Buffer.from(JSON.stringify(state)).toString('base64url');
    const qs = [...pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`), `$skiptoken=${token}`].join('&');
    return `${origin}${call.path}?${qs}`;
  }

  /**
   * One page of `items`. With `keep`, the page's text is kept until the tenant changes, by its path
   * and query (the skiptoken holds the offset): a page asked again (the bench's next run of the job,
   * its calibration, a retry) is sent again without rendering and serializing 999 rows once more. It
   * is the same JSON.stringify of the same body. Not for $batch sub-requests, whose bodies are nested.
   */
  function page<T>(
    call: Call,
    items: readonly T[],
    size: number,
    render: (item: T) => unknown,
    context: string,
    keep = false,
  ): Result {
    const offset = decodeSkipToken(call);
    const body: Record<string, unknown> = { '@odata.context': `${origin}/v1.0/$metadata#${context}` };
    if (call.emptyPageFault && offset < items.length) {
      consumeFault(call.emptyPageFault);
      body.value = [];
      body['@odata.nextLink'] = nextLink(call, offset);
      return { status: 200, headers: {}, body };
    }
    const key = keep && !call.batched ? `${call.path}?${call.rawQuery}` : undefined;
    const kept = key === undefined ? undefined : keptPages.get(key);
    if (kept !== undefined) return { status: 200, headers: {}, text: kept };
    body.value = items.slice(offset, offset + size).map(render);
    if (offset + size < items.length) body['@odata.nextLink'] = nextLink(call, offset + size);
    if (key === undefined) return { status: 200, headers: {}, body };
    const text = JSON.stringify(body);
    keptPages.set(key, text);
    return { status: 200, headers: {}, text };
  }

  /**
   * Filtered lists are cached per query so paging 50 000 rows does not refilter on every page. Least
   * recently used goes first: a list being paged stays while other queries come and go.
   */
  function cached<T>(key: string, compute: () => T[]): T[] {
    const k = `${generation}|${key}`;
    const hit = listCache.get(k);
    if (hit) {
      listCache.delete(k);
      listCache.set(k, hit);
      return hit as T[];
    }
    const value = compute();
    listCache.set(k, value);
    if (listCache.size > 32) listCache.delete(listCache.keys().next().value as string);
    return value;
  }

  // ----- rendering ----------------------------------------------------------------------------------------

  function lookupObject(id: string): DirectoryObject | null {
    const k = id.toLowerCase();
    const user = idx.users.get(k);
    if (user) return { kind: 'user', obj: user };
    const group = idx.groups.get(k);
    if (group) return { kind: 'group', obj: group };
    const sp = idx.sps.get(k);
    if (sp) return { kind: 'servicePrincipal', obj: sp };
    const au = idx.aus.get(k);
    if (au) return { kind: 'administrativeUnit', obj: au };
    return null;
  }

  /** A directory object as Graph returns it in polymorphic collections (with @odata.type). */
  function renderObject(o: DirectoryObject, select?: string[]): Record<string, unknown> {
    let full: Record<string, unknown>;
    switch (o.kind) {
      case 'user': {
        const u = o.obj;
        full = {
          id: u.id,
          displayName: u.displayName,
          userPrincipalName: u.userPrincipalName,
          mail: u.mail ?? null,
          accountEnabled: true,
          userType: 'Member',
          givenName: null,
          surname: null,
          jobTitle: null,
        };
        break;
      }
      case 'group': {
        const g = o.obj;
        full = {
          id: g.id,
          displayName: g.displayName,
          description: null,
          mail: null,
          mailEnabled: false,
          mailNickname: g.id.slice(0, 8),
          securityEnabled: true,
          groupTypes: [],
          isAssignableToRole: g.isAssignableToRole ?? false,
        };
        break;
      }
      case 'servicePrincipal': {
        const s = o.obj;
        full = {
          id: s.id,
          displayName: s.displayName,
          appId: s.appId,
          appDisplayName: s.displayName,
          servicePrincipalType: 'Application',
          accountEnabled: true,
        };
        break;
      }
      case 'administrativeUnit': {
        const a = o.obj;
        full = {
          id: a.id,
          displayName: a.displayName,
          description: null,
          visibility: null,
          membershipType: 'Assigned',
        };
        break;
      }
    }
    const out: Record<string, unknown> = { '@odata.type': `#microsoft.graph.${o.kind}` };
    if (!select) return Object.assign(out, full);
    out.id = full.id;
    for (const p of select) if (p in full) out[p] = full[p];
    return out;
  }

  function renderRoleDefinition(r: SimRoleDefinition, select?: string[]): Record<string, unknown> {
    const full: Record<string, unknown> = {
      id: r.id,
      description: r.description ?? null,
      displayName: r.displayName,
      isBuiltIn: r.isBuiltIn,
      isEnabled: true,
      resourceScopes: ['/'],
      templateId: r.templateId,
      version: '1',
      rolePermissions: [{ allowedResourceActions: [], condition: null }],
    };
    return pick(full, select);
  }

  function pick(full: Record<string, unknown>, select?: string[]): Record<string, unknown> {
    if (!select) return full;
    const out: Record<string, unknown> = { id: full.id };
    for (const p of select) out[p] = full[p];
    return out;
  }

  // ----- endpoints ------------------------------------------------------------------------------------------

  function filterOf(call: Call, spec: FilterSpec): ((item: unknown) => boolean) | null {
    const raw = option(call, '$filter');
    if (raw === undefined) return null;
    const tree = parseFilter(raw);
    validateFilter(tree, spec);
    return compileFilter(tree, spec);
  }

  function requireLicence(): void {
    if (tenant.licensed === false) {
      // As Graph answers a tenant without P2 (README, "What we know of Graph"; licences:
      // https://learn.microsoft.com/entra/id-governance/privileged-identity-management/pim-configure#license-requirements).
      throw bad(
        'The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID Governance license.',
        'AadPremiumLicenseRequired',
      );
    }
  }

  function listRoleDefinitions(call: Call): Result {
    checkOptions(
      call,
      ['$select', '$filter', '$expand', '$top', '$skiptoken'],
      '/roleManagement/directory/roleDefinitions',
    );
    // Live tenants refuse `$top` here, in these words, as public code we cannot link to records them
    // (README, "What we know of Graph", and what it could not verify): the server's pages only.
    const raw = option(call, '$top');
    if (raw !== undefined) {
      throw bad(
        /^\d+$/.test(raw) && Number(raw) < 20
          ? 'This resource requires a minimum page size of 20.'
          : 'Invalid/unsupported query request',
        'Request_UnsupportedQuery',
      );
    }
    const top = Math.min(pageSize, maxPageSize);
    const select = selectOf(call, 'microsoft.graph.unifiedRoleDefinition', ROLE_DEFINITION_PROPS);
    const expand = option(call, '$expand');
    if (expand !== undefined && expand.trim() !== 'inheritsPermissionsFrom') {
      throw bad(
        `Could not find a navigation property named '${expand}' on type 'microsoft.graph.unifiedRoleDefinition'.`,
      );
    }
    const filter = filterOf(call, ROLE_DEFINITION_FILTER);
    const items = cached(`roleDefinitions|${option(call, '$filter') ?? ''}`, () =>
      tenant.roleDefinitions.filter((r) => !filter || filter(r)),
    );
    return page(
      call,
      items,
      top,
      (r) => {
        const out = renderRoleDefinition(r, select);
        if (expand) out.inheritsPermissionsFrom = [];
        return out;
      },
      'roleManagement/directory/roleDefinitions',
    );
  }

  function getRoleDefinition(call: Call, id: string): Result {
    checkOptions(call, ['$select'], '/roleManagement/directory/roleDefinitions/{id}');
    const r = idx.roles.get(id.toLowerCase());
    if (!r)
      throw new GraphHttpError(
        404,
        'Request_ResourceNotFound',
        `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`,
      );
    return {
      status: 200,
      headers: {},
      body: {
        '@odata.context': `${origin}/v1.0/$metadata#roleManagement/directory/roleDefinitions/$entity`,
        ...renderRoleDefinition(r, selectOf(call, 'microsoft.graph.unifiedRoleDefinition', ROLE_DEFINITION_PROPS)),
      },
    };
  }

  function selectOf(call: Call, entity: string, props: readonly string[]): string[] | undefined {
    const raw = option(call, '$select');
    return raw === undefined ? undefined : parseSelect(raw, entity, props);
  }

  function listRoleSchedules(call: Call, kind: 'eligibility' | 'assignment'): Result {
    const resource = kind === 'eligibility' ? 'roleEligibilitySchedules' : 'roleAssignmentSchedules';
    checkOptions(
      call,
      ['$select', '$filter', '$expand', '$top', '$skiptoken'],
      `/roleManagement/directory/${resource}`,
    );
    requireLicence();
    const top = Math.min(parseTop(call, PIM_MAX_TOP) ?? pageSize, maxPageSize);
    const entity =
      kind === 'eligibility'
        ? 'microsoft.graph.unifiedRoleEligibilitySchedule'
        : 'microsoft.graph.unifiedRoleAssignmentSchedule';
    const props = kind === 'eligibility' ? ROLE_SCHEDULE_PROPS : [...ROLE_SCHEDULE_PROPS, 'assignmentType'];
    const select = selectOf(call, entity, props);
    const navs =
      kind === 'eligibility'
        ? ['principal', 'roleDefinition', 'directoryScope', 'appScope']
        : ['principal', 'roleDefinition', 'directoryScope', 'appScope', 'activatedUsing'];
    const expand = expandOf(call, entity, navs, true);
    const filter = filterOf(call, kind === 'eligibility' ? ELIGIBILITY_FILTER : ASSIGNMENT_FILTER);
    const source = kind === 'eligibility' ? tenant.eligibilitySchedules : tenant.assignmentSchedules;
    const items = cached(`${resource}|${option(call, '$filter') ?? ''}`, () =>
      filter ? source.filter(filter) : source,
    );
    return page(
      call,
      items,
      top,
      (s) => renderRoleSchedule(s, kind, select, expand),
      `roleManagement/directory/${resource}`,
      true,
    );
  }

  type Expansion = Map<string, { select?: string[] }>;

  function expandOf(call: Call, entity: string, navs: readonly string[], principalIdOnly: boolean): Expansion {
    const raw = option(call, '$expand');
    const out: Expansion = new Map();
    if (raw === undefined) return out;
    for (const item of parseExpand(raw)) {
      if (item.name === '*') {
        if (Object.keys(item.options).length) throw bad("Nested query options are not allowed on '$expand=*'.");
        navs.forEach((n) => out.set(n, {}));
        continue;
      }
      const nav = navs.find((n) => n.toLowerCase() === item.name.toLowerCase());
      if (!nav) throw bad(`Could not find a navigation property named '${item.name}' on type '${entity}'.`);
      const nested = Object.keys(item.options);
      const other = nested.filter((k) => k !== '$select');
      if (nav === 'principal' && principalIdOnly && nested.length) {
        // Graph: nested $select on principal supports id only; anything else fails with this odd message
        // (README, "What we know of Graph"; test/tools/graph-simulator.test.ts).
        const sel = (item.options.$select ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        if (other.length || !sel.length || sel.some((s) => s !== 'id'))
          throw bad('The  filter is invalid.', 'InvalidFilter');
        out.set(nav, { select: ['id'] });
        continue;
      }
      if (other.length) throw bad(`Query option '${other[0]}' is not allowed inside $expand of '${nav}'.`);
      const propsFor: Record<string, readonly string[]> = {
        principal: DIRECTORY_OBJECT_PROPS,
        group: DIRECTORY_OBJECT_PROPS,
        roleDefinition: ROLE_DEFINITION_PROPS,
        directoryScope: DIRECTORY_OBJECT_PROPS,
        appScope: ['id', 'displayName', 'type'],
        activatedUsing: ROLE_SCHEDULE_PROPS,
      };
      out.set(nav, {
        select:
          item.options.$select !== undefined
            ? parseSelect(item.options.$select, nav, propsFor[nav] ?? ['id'])
            : undefined,
      });
    }
    return out;
  }

  function renderRoleSchedule(
    s: SimRoleSchedule,
    kind: 'eligibility' | 'assignment',
    select: string[] | undefined,
    expand: Expansion,
  ): Record<string, unknown> {
    const full: Record<string, unknown> = {
      id: s.id,
      principalId: s.principalId,
      roleDefinitionId: s.roleDefinitionId,
      directoryScopeId: s.directoryScopeId,
      appScopeId: s.appScopeId,
      createdUsing: s.createdUsing,
      createdDateTime: s.createdDateTime,
      modifiedDateTime: s.modifiedDateTime,
      status: s.status,
      ...(kind === 'assignment' ? { assignmentType: s.assignmentType ?? 'Assigned' } : {}),
      memberType: s.memberType,
      scheduleInfo: s.scheduleInfo,
    };
    const out = pick(full, select);
    for (const [nav, o] of expand) {
      switch (nav) {
        case 'principal': {
          const obj = lookupObject(s.principalId);
          if (obj && obj.kind !== 'administrativeUnit') {
            out.principal = renderObject(obj, o.select);
          } else {
            // A deleted principal's entries stay for days (https://github.com/Microsoft365DSC/Microsoft365DSC/issues/5445); no capture shows whether
            // `principal` is then null, left out or only an id: each happens here, by the schedule's id.
            const shape = parseInt(s.id.replace(/[^0-9a-f]/gi, '').slice(-1) || '0', 16) % 3;
            if (shape === 0) out.principal = null;
            else if (shape === 1)
              out.principal = { '@odata.type': '#microsoft.graph.directoryObject', id: s.principalId };
          }
          break;
        }
        case 'roleDefinition': {
          const r = idx.roles.get(s.roleDefinitionId.toLowerCase());
          out.roleDefinition = r ? renderRoleDefinition(r, o.select) : null;
          break;
        }
        case 'directoryScope':
          out.directoryScope = renderScope(s.directoryScopeId, o.select);
          break;
        case 'appScope':
          out.appScope = null;
          break;
        case 'activatedUsing': {
          const e =
            s.assignmentType === 'Activated'
              ? idx.eligibilityByKey.get(`${s.principalId}|${s.roleDefinitionId}|${s.directoryScopeId}`.toLowerCase())
              : undefined;
          out.activatedUsing = e ? renderRoleSchedule(e, 'eligibility', o.select, new Map()) : null;
          break;
        }
      }
    }
    return out;
  }

  function renderScope(scopeId: string, select?: string[]): Record<string, unknown> | null {
    if (scopeId === '/') return { id: '/' };
    const m = /^\/administrativeUnits\/([^/]+)$/i.exec(scopeId);
    const obj = lookupObject(m ? m[1] : scopeId.replace(/^\//, ''));
    return obj ? renderObject(obj, select) : null;
  }

  function listGroupEligibility(call: Call): Result {
    checkOptions(
      call,
      ['$select', '$filter', '$expand', '$top', '$skiptoken'],
      '/identityGovernance/privilegedAccess/group/eligibilitySchedules',
    );
    requireLicence();
    const top = Math.min(parseTop(call, PIM_MAX_TOP) ?? pageSize, maxPageSize);
    const raw = option(call, '$filter');
    if (raw === undefined) {
      // No tenant-wide list exists: the filter must scope the call to a group or a principal:
      // https://learn.microsoft.com/graph/api/privilegedaccessgroup-list-eligibilityschedules
      throw bad("The request requires a $filter (eq) on 'groupId' or 'principalId', e.g. $filter=groupId eq '{id}'.");
    }
    const tree = parseFilter(raw);
    validateFilter(tree, GROUP_SCHEDULE_FILTER);
    const groupIds = topLevelEquals(tree, 'groupId');
    const principalIds = topLevelEquals(tree, 'principalId');
    if (!groupIds.length && !principalIds.length)
      throw bad("The $filter must include groupId eq '{id}' or principalId eq '{id}'.");
    const filter = compileFilter(tree, GROUP_SCHEDULE_FILTER);
    const select = selectOf(call, 'microsoft.graph.privilegedAccessGroupEligibilitySchedule', GROUP_SCHEDULE_PROPS);
    const expand = expandOf(
      call,
      'microsoft.graph.privilegedAccessGroupEligibilitySchedule',
      ['principal', 'group'],
      false,
    );
    const candidates = groupIds.length
      ? (idx.groupSchedulesByGroup.get(groupIds[0].toLowerCase()) ?? [])
      : (idx.groupSchedulesByPrincipal.get(principalIds[0].toLowerCase()) ?? []);
    const items = candidates.filter(filter);
    return page(
      call,
      items,
      top,
      (s) => {
        const out = pick({ ...s }, select);
        for (const [nav, o] of expand) {
          const obj = lookupObject(nav === 'principal' ? s.principalId : s.groupId);
          out[nav] = obj ? renderObject(obj, o.select) : null;
        }
        return out;
      },
      'identityGovernance/privilegedAccess/group/eligibilitySchedules',
    );
  }

  /**
   * `/policies/roleManagementPolicyAssignments`: `$filter` on scopeId and scopeType is required
   * (https://learn.microsoft.com/graph/api/policyroot-list-rolemanagementpolicyassignments); only
   * `$filter`, `$select` and `$expand` are documented, so `$top` is refused. Rules come in no
   * particular order (the docs key them by id). Without the filter Graph's answer is not published;
   * this is the provider error quoted in https://github.com/microsoftgraph/microsoft-graph-docs/issues/20060.
   */
  function listPolicyAssignments(call: Call): Result {
    checkOptions(call, ['$select', '$filter', '$expand', '$skiptoken'], '/policies/roleManagementPolicyAssignments');
    requireLicence();
    const raw = option(call, '$filter');
    const missing = () =>
      bad(
        JSON.stringify({ errorCode: 'MissingProvider', message: 'The provider is missing.', instanceAnnotations: [] }),
        'UnknownError',
      );
    if (raw === undefined) throw missing();
    const tree = parseFilter(raw);
    validateFilter(tree, POLICY_ASSIGNMENT_FILTER);
    const [scopeId] = topLevelEquals(tree, 'scopeId');
    const [scopeType] = topLevelEquals(tree, 'scopeType');
    if (scopeId === undefined || scopeType === undefined) throw missing();
    const type = scopeType.toLowerCase();
    if (type === 'group') {
      if (!groupPolicyRead) throw new GraphHttpError(403, 'AccessDenied', 'Request Authorization failed');
      if (!idx.groups.has(scopeId.toLowerCase())) throw notFound(scopeId);
    } else if (type === 'directoryrole' || type === 'directory') {
      if (scopeId !== '/') throw bad(`The scopeId '${scopeId}' is not valid for scopeType '${scopeType}'.`);
    } else {
      throw missing();
    }
    const roleIds = topLevelEquals(tree, 'roleDefinitionId').map((r) => r.toLowerCase());
    const expand = policyExpansion(call);
    const items = (rolePoliciesByScope().get(scopeId.toLowerCase()) ?? []).filter(
      (p) =>
        (type === 'group' ? p.scopeType === 'Group' : p.scopeType === 'DirectoryRole') &&
        (roleIds.length === 0 || roleIds.includes(p.roleDefinitionId.toLowerCase())),
    );
    return page(
      call,
      items,
      pageSize,
      (p) => renderPolicyAssignment(p, scopeType, expand),
      'policies/roleManagementPolicyAssignments',
    );
  }

  /**
   * Every policy of the tenant (its own and the defaults of each role and group), made once per
   * generation of the tenant: a per-group query would otherwise build every group's defaults again.
   */
  let policiesMemo: { generation: number; byScope: Map<string, SimRolePolicy[]> } | undefined;
  /** Keyed by lower-cased scopeId, in the tenant's order: a group's query reads its own few, not every group's. */
  function rolePoliciesByScope(): Map<string, SimRolePolicy[]> {
    if (policiesMemo?.generation !== generation) {
      const byScope = new Map<string, SimRolePolicy[]>();
      for (const p of effectiveRolePolicies(tenant)) {
        const k = p.scopeId.toLowerCase();
        const list = byScope.get(k);
        if (list) list.push(p);
        else byScope.set(k, [p]);
      }
      policiesMemo = { generation, byScope };
    }
    return policiesMemo.byScope;
  }

  /** `$expand=policy` or `policy($expand=rules)`; nothing else is expandable here. */
  function policyExpansion(call: Call): { policy: boolean; rules: boolean } {
    const raw = option(call, '$expand');
    if (raw === undefined) return { policy: false, rules: false };
    let policy = false;
    let rules = false;
    for (const item of parseExpand(raw)) {
      if (item.name.toLowerCase() !== 'policy') {
        throw bad(
          `Could not find a navigation property named '${item.name}' on type 'microsoft.graph.unifiedRoleManagementPolicyAssignment'.`,
        );
      }
      policy = true;
      for (const [k, v] of Object.entries(item.options)) {
        if (k !== '$expand') throw bad(`Query option '${k}' is not allowed inside $expand of 'policy'.`);
        for (const nested of parseExpand(v)) {
          if (nested.name.toLowerCase() !== 'rules' && nested.name.toLowerCase() !== 'effectiverules') {
            throw bad(
              `Could not find a navigation property named '${nested.name}' on type 'microsoft.graph.unifiedRoleManagementPolicy'.`,
            );
          }
          if (nested.name.toLowerCase() === 'rules') rules = true;
        }
      }
    }
    return { policy, rules };
  }

  function renderPolicyAssignment(
    p: SimRolePolicy,
    scopeType: string,
    expand: { policy: boolean; rules: boolean },
  ): Record<string, unknown> {
    // The docs sample echoes the scopeType asked for (Directory or DirectoryRole) in the ids.
    const type = p.scopeType === 'Group' ? 'Group' : scopeType === 'Directory' ? 'Directory' : 'DirectoryRole';
    const policyId = p.scopeType === 'Group' ? p.policyId : p.policyId.replace(/^DirectoryRole_/, `${type}_`);
    const out: Record<string, unknown> = {
      id: `${policyId}_${p.roleDefinitionId}`,
      policyId,
      scopeId: p.scopeId,
      scopeType: type,
      roleDefinitionId: p.roleDefinitionId,
    };
    if (expand.policy) {
      const policy: Record<string, unknown> = {
        id: policyId,
        displayName: type,
        description: type,
        isOrganizationDefault: false,
        scopeId: p.scopeId,
        scopeType: type,
        lastModifiedDateTime: p.lastModifiedDateTime,
        lastModifiedBy: { displayName: p.lastModifiedBy.displayName, id: p.lastModifiedBy.id },
      };
      if (expand.rules) policy.rules = shuffled(p.rules.map((r) => structuredClone(r)));
      out.policy = policy;
    }
    return out;
  }

  function listAudits(call: Call): Result {
    checkOptions(call, ['$select', '$filter', '$top', '$orderby', '$skiptoken'], '/auditLogs/directoryAudits');
    throttleAudit(call);
    const top = parseTop(call, 1000) ?? 100;
    const orderby = (option(call, '$orderby') ?? 'activityDateTime desc').trim().replace(/\s+/g, ' ');
    const m = /^activityDateTime( asc| desc)?$/i.exec(orderby);
    if (!m) throw bad(`Ordering by '${orderby}' is not supported on directoryAudits; use activityDateTime asc|desc.`);
    const desc = (m[1] ?? ' asc').trim().toLowerCase() === 'desc';
    const select = selectOf(call, 'microsoft.graph.directoryAudit', AUDIT_PROPS);
    const filter = filterOf(call, AUDIT_FILTER);
    // Graph keeps 30 days (https://learn.microsoft.com/entra/identity/monitoring-health/reference-reports-data-retention) from a UTC midnight, and refuses a lower bound before it
    // with the 400 quoted in https://github.com/microsoftgraph/msgraph-beta-sdk-dotnet/issues/626.
    const floorMs = Math.floor((now().getTime() - RETENTION_MS) / 86_400_000) * 86_400_000;
    refuseBeforeRetention(option(call, '$filter') ?? '', floorMs);
    const cutoff = timeKey(new Date(floorMs).toISOString()) ?? '';
    const items = cached(`audits|${option(call, '$filter') ?? ''}|${desc}|${cutoff.slice(0, 16)}`, () => {
      const kept = idx.audits.filter((a) => a.key >= cutoff && (!filter || filter(a.rec))).map((a) => a.rec);
      return desc ? kept.reverse() : kept;
    });
    return page(
      call,
      items,
      top,
      (r) => pick(r as unknown as Record<string, unknown>, select),
      'auditLogs/directoryAudits',
    );
  }

  /** 400 when a `ge`/`gt` bound on activityDateTime is older than the floor, in Graph's words and time format. */
  function refuseBeforeRetention(filter: string, floorMs: number): void {
    for (const m of filter.matchAll(/activityDateTime\s+(?:ge|gt)\s+([0-9T:.\-Z+]+)/gi)) {
      const at = Date.parse(m[1]);
      if (Number.isNaN(at) || at >= floorMs) continue;
      const f = new Date(floorMs);
      const h = f.getUTCHours();
      const pad = (n: number) => String(n).padStart(2, '0');
      const text = `${f.getUTCMonth() + 1}/${f.getUTCDate()}/${f.getUTCFullYear()} ${h % 12 === 0 ? 12 : h % 12}:${pad(f.getUTCMinutes())}:${pad(f.getUTCSeconds())} ${h < 12 ? 'AM' : 'PM'}`;
      // The code is Graph's generic one, as public code quoting real answers records it.
      throw bad(
        `Specified argument was out of the range of valid values. (Parameter 'Minimum allowed time for activityDateTime is ${text}')`,
        'UnknownError',
      );
    }
  }

  /** 5 requests per 10 s per app per tenant (https://learn.microsoft.com/graph/throttling-limits). Only admitted requests count. */
  function throttleAudit(call: Call): void {
    const t = wallMs();
    const hits = (auditHits.get(call.identity) ?? []).filter((h) => h > t - rate.perMs);
    if (hits.length >= rate.requests) {
      const wait = Math.max(1, Math.ceil((hits[0] + rate.perMs - t) / 1000));
      auditHits.set(call.identity, hits);
      throw new GraphHttpError(
        429,
        'TooManyRequests',
        'Too many requests: the reports API allows 5 requests per 10 seconds per app and tenant.',
        {
          'retry-after': String(wait),
        },
      );
    }
    hits.push(t);
    auditHits.set(call.identity, hits);
  }

  function transitiveMembers(groupId: string): string[] {
    const k = groupId.toLowerCase();
    const hit = idx.transitive.get(k);
    if (hit) return hit;
    const seen = new Set<string>();
    const order: string[] = [];
    const queue = [...(idx.groups.get(k)?.members ?? [])];
    for (let i = 0; i < queue.length; i++) {
      const id = queue[i];
      const key = id.toLowerCase();
      if (key === k || seen.has(key)) continue;
      seen.add(key);
      if (!lookupObject(id)) continue; // a dangling member id: deleted objects are not listed
      order.push(id);
      const nested = idx.groups.get(key);
      if (nested) queue.push(...nested.members);
    }
    idx.transitive.set(k, order);
    return order;
  }

  function listMembers(call: Call, groupId: string, transitive: boolean, cast?: string): Result {
    const resource = transitive ? 'transitiveMembers' : 'members';
    checkOptions(call, ['$select', '$top', '$skiptoken'], `/groups/{id}/${resource}`);
    const group = idx.groups.get(groupId.toLowerCase());
    if (!group) throw notFound(groupId);
    if (group.hiddenMembership && !memberReadHidden) {
      throw new GraphHttpError(
        403,
        'Authorization_RequestDenied',
        'Insufficient privileges to complete the operation.',
      );
    }
    const castKind = cast ? /^microsoft\.graph\.(user|group|servicePrincipal)$/i.exec(cast)?.[1] : undefined;
    if (cast && !castKind) throw bad(`Resource not found for the segment '${cast}'.`);
    const top = parseTop(call, DIRECTORY_MAX_TOP, 'Request_UnsupportedQuery') ?? 100;
    const select = selectOf(call, 'microsoft.graph.directoryObject', DIRECTORY_OBJECT_PROPS);
    const ids = transitive ? transitiveMembers(group.id) : group.members.filter((m) => lookupObject(m));
    const objects = ids
      .map((id) => lookupObject(id))
      .filter(
        (o): o is DirectoryObject => o !== null && (!castKind || o.kind.toLowerCase() === castKind.toLowerCase()),
      );
    return page(call, objects, top, (o) => renderObject(o, select), `directoryObjects`);
  }

  function listAdministrativeUnits(call: Call): Result {
    checkOptions(call, ['$select', '$top', '$skiptoken'], '/directory/administrativeUnits');
    const top = parseTop(call, DIRECTORY_MAX_TOP, 'Request_UnsupportedQuery') ?? 100;
    const select = selectOf(call, 'microsoft.graph.administrativeUnit', OBJECT_PROPS.administrativeUnit);
    const items = tenant.administrativeUnits.map((obj): DirectoryObject => ({ kind: 'administrativeUnit', obj }));
    return page(call, items, top, (o) => renderObject(o, select), 'directory/administrativeUnits');
  }

  function getObject(call: Call, collection: string, id: string): Result {
    checkOptions(call, ['$select'], `/${collection}/{id}`);
    const obj = lookupObject(id);
    const wanted: Record<string, DirectoryObject['kind'] | null> = {
      users: 'user',
      groups: 'group',
      servicePrincipals: 'servicePrincipal',
      administrativeUnits: 'administrativeUnit',
      directoryObjects: null,
    };
    const kind = wanted[collection];
    if (!obj || (kind && obj.kind !== kind)) throw notFound(id);
    const select = selectOf(
      call,
      `microsoft.graph.${kind ?? 'directoryObject'}`,
      kind ? OBJECT_PROPS[kind] : DIRECTORY_OBJECT_PROPS,
    );
    return {
      status: 200,
      headers: {},
      body: { '@odata.context': `${origin}/v1.0/$metadata#${collection}/$entity`, ...renderObject(obj, select) },
    };
  }

  function getByIds(call: Call): Result {
    checkOptions(call, [], '/directoryObjects/getByIds');
    const body = call.body;
    if (!isRecord(body) || !Array.isArray(body.ids))
      throw bad("The request body must be a JSON object with an 'ids' array.");
    const ids = body.ids as unknown[];
    if (!ids.length || ids.some((i) => typeof i !== 'string')) throw bad("'ids' must be a non-empty array of strings.");
    if (ids.length > 1000) throw bad(`Too many ids: ${ids.length}. getByIds accepts at most 1000.`);
    let kinds: Set<string> | null = null;
    if (body.types !== undefined) {
      if (!Array.isArray(body.types) || body.types.some((t) => typeof t !== 'string'))
        throw bad("'types' must be an array of strings.");
      kinds = new Set(
        (body.types as string[]).map((t) => {
          const k = t.replace(/^#?microsoft\.graph\./i, '').toLowerCase();
          const valid = [
            'user',
            'group',
            'serviceprincipal',
            'administrativeunit',
            'device',
            'application',
            'orgcontact',
            'directoryrole',
            'directoryobject',
          ];
          if (!valid.includes(k)) throw bad(`Invalid type '${t}' in 'types'.`);
          return k;
        }),
      );
    }
    const value = (ids as string[])
      .map((id) => lookupObject(id))
      .filter(
        (o): o is DirectoryObject =>
          o !== null && (!kinds || kinds.has('directoryobject') || kinds.has(o.kind.toLowerCase())),
      )
      .map((o) => renderObject(o));
    return { status: 200, headers: {}, body: { '@odata.context': `${origin}/v1.0/$metadata#directoryObjects`, value } };
  }

  function batch(call: Call): Result {
    checkOptions(call, [], '/$batch');
    const body = call.body;
    if (!isRecord(body) || !Array.isArray(body.requests))
      throw bad("The batch body must be a JSON object with a 'requests' array.");
    const subs = body.requests as unknown[];
    if (!subs.length) throw bad('The batch request contains no requests.');
    // JSON batching allows at most 20 requests: https://learn.microsoft.com/graph/json-batching
    if (subs.length > 20) throw bad(`The batch contains ${subs.length} requests; the limit is 20.`);
    const ids = new Set<string>();
    for (const s of subs) {
      if (
        !isRecord(s) ||
        typeof s.id !== 'string' ||
        !s.id ||
        typeof s.method !== 'string' ||
        typeof s.url !== 'string'
      ) {
        throw bad("Each batch request needs string 'id', 'method' and 'url' properties.");
      }
      if (ids.has(s.id)) throw bad(`The batch contains duplicate request id '${s.id}'.`);
      ids.add(s.id);
      if (/^[a-z][a-z0-9+.-]*:/i.test(s.url))
        throw bad(
          `Batch request '${s.id}' has an absolute URL; use a URL relative to the version, e.g. /groups/{id}/members.`,
        );
      if (
        s.body !== undefined &&
        !(isRecord(s.headers) && Object.keys(s.headers).some((h) => h.toLowerCase() === 'content-type'))
      ) {
        throw bad(`Batch request '${s.id}' has a body but no Content-Type header.`);
      }
    }
    const statusById = new Map<string, number>();
    const responses = (subs as Record<string, unknown>[]).map((s) => {
      const id = s.id as string;
      const depends = Array.isArray(s.dependsOn) ? (s.dependsOn as unknown[]).map(String) : [];
      if (depends.some((d) => (statusById.get(d) ?? 424) >= 400)) {
        statusById.set(id, 424);
        return {
          id,
          status: 424,
          headers: { 'content-type': 'application/json' },
          body: graphErrorBody('FailedDependency', 'A request this one depends on failed.', '', randomUUID()),
        };
      }
      const rel = (s.url as string).startsWith('/') ? (s.url as string) : `/${s.url as string}`;
      const url = new URL(`/v1.0${rel}`, origin);
      const headers: Record<string, string | undefined> = {};
      if (isRecord(s.headers)) for (const [k, v] of Object.entries(s.headers)) headers[k.toLowerCase()] = String(v);
      const sub: Call = {
        method: (s.method as string).toUpperCase(),
        path: safeDecode(url.pathname),
        rawQuery: url.search.slice(1),
        query: url.searchParams,
        headers,
        body: s.body,
        identity: call.identity,
        batched: true,
        emptyPageFault: null,
      };
      let r: Result;
      try {
        r = dispatch(sub);
      } catch (err) {
        r = errorResult(err);
      }
      requests.push({
        method: sub.method,
        path: sub.path,
        query: queryRecord(sub.query),
        status: r.status,
        at: wallMs(),
        batched: true,
      });
      statusById.set(id, r.status);
      const requestId = randomUUID();
      return {
        id,
        status: r.status,
        headers: { 'content-type': r.status >= 400 ? 'application/json' : JSON_ODATA, ...r.headers },
        body: finaliseBody(r, headers['client-request-id'] ?? '', requestId),
      };
    });
    if (opts.shuffleBatchResponses ?? true) {
      // Graph does not promise response order: match responses by id.
      for (let i = responses.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [responses[i], responses[j]] = [responses[j], responses[i]];
      }
    }
    return { status: 200, headers: {}, body: { responses } };
  }

  return {
    url: origin,
    requests,
    get tenant() {
      return tenant;
    },
    setTenant(t: SimTenant) {
      tenant = t;
      idx = buildIndexes(t);
      generation++;
      listCache.clear();
      keptPages.clear();
    },
    setNow(fn: () => Date) {
      now = fn;
    },
    inject(fault: GraphFault) {
      const times = fault.times ?? 1;
      if (!Number.isInteger(times) || times < 1) throw new Error('a fault needs times >= 1');
      faults.push({ ...fault, times });
    },
    clearFaults() {
      faults.length = 0;
    },
    resetRateLimits() {
      auditHits.clear();
    },
    stop: () => closeServer(server),
  };
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}
