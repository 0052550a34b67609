/**
 * The Graph simulator is as strict as Graph (README, "What we know of Graph") and works with the real SDK:
 * @microsoft/microsoft-graph-client + TokenCredentialAuthenticationProvider + a real ManagedIdentityCredential
 * fed by the managed-identity simulator.
 */
import { latencyProbe, PROBE_LATENCY_MS } from '../support/latency';
import { ManagedIdentityCredential } from '@azure/identity';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, PageIterator, type PageCollection } from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials';
import { startGraphSimulator, type GraphSimulator } from '../../tools/graph-simulator';
import {
  fakeAccessToken,
  startManagedIdentitySimulator,
  type ManagedIdentitySimulator,
} from '../../tools/msi-simulator';
import { generateTenant } from '../../tools/tenant/generate';
import type { SimTenant } from '../../tools/tenant/model';
import { testTls } from '../../tools/tls';

const NOW = new Date('2026-03-15T10:00:00Z');
const PAGE = 7;

let msi: ManagedIdentitySimulator;
let graph: GraphSimulator;
let tenant: SimTenant;
let client: Client;
let token: string;

beforeAll(async () => {
  msi = await startManagedIdentitySimulator();
  Object.assign(process.env, msi.env());
  tenant = generateTenant({
    seed: 'graph-sim',
    now: NOW,
    users: 40,
    groups: 8,
    eligible: 45,
    active: 25,
    auditDays: 40,
    activationsPerDay: 3,
  });
  graph = await startGraphSimulator({
    tenant,
    tls: testTls(),
    pageSize: PAGE,
    now: () => NOW,
    auditRateLimit: { requests: 1000, perMs: 10_000 },
  });
  const credential = new ManagedIdentityCredential();
  token = (await credential.getToken(`${graph.url}/.default`)).token;
  client = Client.initWithMiddleware({
    authProvider: new TokenCredentialAuthenticationProvider(credential, { scopes: [`${graph.url}/.default`] }),
    baseUrl: graph.url,
    defaultVersion: 'v1.0',
    customHosts: new Set(['127.0.0.1']),
  });
});

afterAll(async () => {
  await graph?.stop();
  await msi?.stop();
});

beforeEach(() => {
  graph.clearFaults();
  graph.setTenant(tenant);
  graph.resetRateLimits();
});

/** A raw call, for exact statuses, headers and bodies. */
async function raw(path: string, init: RequestInit & { token?: string | null } = {}) {
  const headers = new Headers(init.headers);
  if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? token}`);
  const res = await fetch(path.startsWith('https://') ? path : `${graph.url}/v1.0${path}`, { ...init, headers });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, any>) : undefined,
  };
}

async function all<T>(first: PageCollection): Promise<T[]> {
  const out: T[] = [];
  await new PageIterator(client, first, (item) => {
    out.push(item as T);
    return true;
  }).iterate();
  return out;
}

describe('authentication and errors', () => {
  test('no token, a malformed one, or the wrong audience: 401 InvalidAuthenticationToken, Graph-shaped', async () => {
    for (const t of [null, 'not-a-jwt', fakeAccessToken({ aud: 'https://storage.azure.com' }).token]) {
      const r = await raw('/roleManagement/directory/roleDefinitions', { token: t });
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      expect(r.body?.error.code).toBe('InvalidAuthenticationToken');
      expect(r.body?.error.innerError).toEqual(
        expect.objectContaining({ 'request-id': expect.any(String), date: expect.any(String) }),
      );
    }
    // A token for graph.microsoft.com is accepted too (the product may keep Graph's scope).
    expect(
      (
        await raw('/roleManagement/directory/roleDefinitions', {
          token: fakeAccessToken({ aud: 'https://graph.microsoft.com' }).token,
        })
      ).status,
    ).toBe(200);
  });

  test('unknown segments and beta are rejected', async () => {
    const r = await raw('/roleManagement/directory/roleEligibilityScheduleInstancez');
    expect(r.status).toBe(400);
    expect(r.body?.error.message).toBe("Resource not found for the segment 'roleEligibilityScheduleInstancez'.");
    expect((await raw(`${graph.url}/beta/users`)).status).toBe(400);
  });
});

describe('PIM lists', () => {
  test('server-driven paging with absolute nextLinks, followed by the SDK to the end', async () => {
    const first = (await client
      .api('/roleManagement/directory/roleEligibilitySchedules')
      .expand('principal')
      .get()) as PageCollection;
    expect(first.value).toHaveLength(PAGE);
    const next = first['@odata.nextLink'] as string;
    expect(next.startsWith(`${graph.url}/v1.0/roleManagement/directory/roleEligibilitySchedules?`)).toBe(true);
    expect(new URL(next).searchParams.get('$expand')).toBe('principal'); // the original query is preserved
    expect(new URL(next).searchParams.get('$skiptoken')).toBeTruthy();
    const before = graph.requests.length;
    const items = await all<{ id: string }>(first);
    expect(items.map((s) => s.id)).toEqual(tenant.eligibilitySchedules.map((s) => s.id));
    expect(graph.requests.length - before).toBe(Math.ceil(tenant.eligibilitySchedules.length / PAGE) - 1);
    expect(graph.requests.every((r) => r.batched === false)).toBe(true);
  });

  test('$expand=principal embeds typed directory objects; a deleted principal is null, left out or id only', async () => {
    const items = await all<Record<string, any>>(
      await client.api('/roleManagement/directory/roleAssignmentSchedules').expand('principal').get(),
    );
    const types = new Set(items.map((s) => s.principal?.['@odata.type'] ?? null));
    for (const t of ['#microsoft.graph.user', '#microsoft.graph.group', '#microsoft.graph.servicePrincipal'])
      expect(types).toContain(t);
    const known = new Set([...tenant.users, ...tenant.groups, ...tenant.servicePrincipals].map((o) => o.id));
    const gone = items.filter((s) => !known.has(s.principalId));
    expect(gone.length).toBeGreaterThan(0);
    for (const s of gone) {
      // null, absent, or an object with only an id (and a generic type): never names.
      if (s.principal)
        expect(s.principal).toEqual({ '@odata.type': '#microsoft.graph.directoryObject', id: s.principalId });
    }
    const user = items.find((s) => s.principal?.['@odata.type'] === '#microsoft.graph.user');
    expect(user?.principal).toEqual(
      expect.objectContaining({
        id: user?.principalId,
        displayName: expect.any(String),
        userPrincipalName: expect.any(String),
      }),
    );
    const sp = items.find((s) => s.principal?.['@odata.type'] === '#microsoft.graph.servicePrincipal');
    expect(sp?.principal.appId).toEqual(expect.any(String));
  });

  test('a page asked again is the same, and after setTenant shows the tenant changed in place', async () => {
    const q = '/roleManagement/directory/roleEligibilitySchedules?$expand=principal&$select=id,principalId';
    const first = (await raw(q)).body!;
    expect((await raw(q)).body).toEqual(first);
    const row = (first.value as Record<string, any>[]).find(
      (s) => s.principal?.['@odata.type'] === '#microsoft.graph.user',
    );
    const user = tenant.users.find((u) => u.id === row?.principalId)!;
    const name = user.displayName;
    try {
      user.displayName = 'Renamed Rita';
      graph.setTenant(tenant);
      const after = (await raw(q)).body!;
      expect((after.value as Record<string, any>[]).find((s) => s.id === row?.id)?.principal.displayName).toBe(
        'Renamed Rita',
      );
    } finally {
      user.displayName = name;
    }
  });

  test('PIM lists: 25 a page by default, $top 1..999 accepted, 0 and 1000 rejected', async () => {
    const small = await startGraphSimulator({ tenant, tls: testTls(), now: () => NOW });
    try {
      const get = async (q: string) => {
        const bearer = fakeAccessToken({
          aud: 'https://graph.microsoft.com',
          oid: '0b1c0000-0000-4000-8000-000000000025',
        }).token;
        const r = await fetch(`${small.url}/v1.0/roleManagement/directory/roleEligibilitySchedules${q}`, {
          headers: { authorization: `Bearer ${bearer}` },
        });
        return { status: r.status, body: (await r.json()) as { value?: unknown[]; '@odata.nextLink'?: string } };
      };
      expect((await get('')).body.value).toHaveLength(25);
      expect((await get('?$top=5')).body.value).toHaveLength(5);
      const all999 = await get('?$top=999');
      expect(all999.body.value).toHaveLength(tenant.eligibilitySchedules.length);
      expect(all999.body['@odata.nextLink']).toBeUndefined();
      for (const q of ['?$top=0', '?$top=1000']) expect((await get(q)).status).toBe(400);
    } finally {
      await small.stop();
    }
  });

  test.each(['$skip=5', '$orderby=id', '$count=true', '$search="x"', '$foo=1'])(
    '%s is rejected on PIM lists',
    async (q) => {
      const r = await raw(`/roleManagement/directory/roleEligibilitySchedules?${q}`);
      expect(r.status).toBe(400);
      expect(r.body?.error.message).toContain(q.split('=')[0]);
    },
  );

  test('nested $select on principal: id only; anything else fails with InvalidFilter "The  filter is invalid."', async () => {
    for (const e of ['principal($select=displayName)', 'principal($select=id,displayName)']) {
      const r = await raw(`/roleManagement/directory/roleAssignmentSchedules?$expand=${encodeURIComponent(e)}`);
      expect(r.status).toBe(400);
      expect(r.body?.error).toEqual(
        expect.objectContaining({ code: 'InvalidFilter', message: 'The  filter is invalid.' }),
      );
    }
    const ok = await raw(
      `/roleManagement/directory/roleAssignmentSchedules?$expand=principal($select=id),roleDefinition($select=displayName)`,
    );
    expect(ok.status).toBe(200);
    expect(Object.keys(ok.body?.value[0].principal).sort()).toEqual(['@odata.type', 'id']);
    expect(ok.body?.value[0].roleDefinition).toEqual({ id: expect.any(String), displayName: expect.any(String) });
  });

  test('$filter: documented properties and operators only', async () => {
    // roleDefinitionId is filterable on assignment schedules, not on eligibility schedules
    // (https://learn.microsoft.com/graph/api/resources/unifiedroleeligibilityschedule).
    const ga = '62e90394-69f5-4237-9190-012177145e10';
    expect(
      (await raw(`/roleManagement/directory/roleEligibilitySchedules?$filter=roleDefinitionId eq '${ga}'`)).status,
    ).toBe(400);
    const assigned = await all<{ roleDefinitionId: string }>(
      await client.api('/roleManagement/directory/roleAssignmentSchedules').filter(`roleDefinitionId eq '${ga}'`).get(),
    );
    expect(assigned.length).toBe(tenant.assignmentSchedules.filter((s) => s.roleDefinitionId === ga).length);
    const outside = await all<{ createdUsing: null }>(
      await client.api('/roleManagement/directory/roleAssignmentSchedules').filter('createdUsing eq null').get(),
    );
    expect(outside.length).toBe(tenant.assignmentSchedules.filter((s) => s.createdUsing === null).length);
    const activated = await all<{ assignmentType: string }>(
      await client
        .api('/roleManagement/directory/roleAssignmentSchedules')
        .filter("assignmentType eq 'Activated' and memberType eq 'Direct'")
        .get(),
    );
    expect(activated.length).toBeGreaterThan(0);
    expect(activated.every((s) => s.assignmentType === 'Activated')).toBe(true);
    expect((await raw(`/roleManagement/directory/roleAssignmentSchedules?$filter=principalId gt 'a'`)).status).toBe(
      400,
    );
    expect(
      (await raw(`/roleManagement/directory/roleAssignmentSchedules?$filter=principalId eq 'a' or principalId eq 'b'`))
        .status,
    ).toBe(400);
  });

  test('$select limits properties; id always comes back; unknown properties are 400', async () => {
    const r = await raw('/roleManagement/directory/roleEligibilitySchedules?$select=principalId,scheduleInfo');
    expect(Object.keys(r.body?.value[0]).sort()).toEqual(['id', 'principalId', 'scheduleInfo']);
    expect((await raw('/roleManagement/directory/roleEligibilitySchedules?$select=assignmentType')).status).toBe(400);
  });

  test('activatedUsing points an Activated assignment at its eligibility schedule', async () => {
    const r = await all<Record<string, any>>(
      await client
        .api('/roleManagement/directory/roleAssignmentSchedules')
        .filter("assignmentType eq 'Activated'")
        .expand('activatedUsing')
        .get(),
    );
    for (const s of r) {
      expect(s.activatedUsing).toEqual(
        expect.objectContaining({
          principalId: s.principalId,
          roleDefinitionId: s.roleDefinitionId,
          directoryScopeId: s.directoryScopeId,
        }),
      );
    }
  });

  test('an unlicensed tenant answers 400 AadPremiumLicenseRequired on the PIM endpoints', async () => {
    graph.setTenant({ ...tenant, licensed: false });
    for (const path of [
      '/roleManagement/directory/roleEligibilitySchedules',
      '/roleManagement/directory/roleAssignmentSchedules',
    ]) {
      const r = await raw(path);
      expect(r.status).toBe(400);
      expect(r.body?.error.code).toBe('AadPremiumLicenseRequired');
      expect(r.body?.error.message).toBe(
        'The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID Governance license.',
      );
    }
    expect((await raw('/roleManagement/directory/roleDefinitions')).status).toBe(200);
  });

  test('roleDefinitions: $filter with eq / in, $select', async () => {
    const r = await raw(
      '/roleManagement/directory/roleDefinitions?$filter=isBuiltIn eq false&$select=displayName,templateId',
    );
    expect(r.body?.value.map((x: { id: string }) => x.id).sort()).toEqual(
      tenant.roleDefinitions
        .filter((d) => !d.isBuiltIn)
        .map((d) => d.id)
        .sort(),
    );
    expect(Object.keys(r.body?.value[0]).sort()).toEqual(['displayName', 'id', 'templateId']);
    const inList = await raw(
      "/roleManagement/directory/roleDefinitions?$filter=id in ('62e90394-69f5-4237-9190-012177145e10','fe930be7-5e62-47db-91af-98c3a49a38b1')",
    );
    expect(inList.body?.value).toHaveLength(2);
  });
});

describe('groups and directory objects', () => {
  const nested = () => {
    const parent = tenant.groups.find((g) => g.members.some((m) => tenant.groups.some((c) => c.id === m)));
    if (!parent) throw new Error('the generated tenant should have a nested group');
    return parent;
  };

  test('transitiveMembers: users, groups and SPs through nesting, each once, typed; $top bounds', async () => {
    const extra = tenant.users[0].id;
    const parent = nested();
    const child = tenant.groups.find((g) => parent.members.includes(g.id)) as (typeof tenant.groups)[number];
    // A cycle and a duplicate path must not repeat anyone.
    const t2: SimTenant = {
      ...tenant,
      groups: tenant.groups.map((g) =>
        g.id === child.id
          ? { ...g, members: [...g.members, parent.id, extra] }
          : g.id === parent.id
            ? { ...g, members: [...g.members, extra] }
            : g,
      ),
    };
    graph.setTenant(t2);
    const members = await all<Record<string, string>>(
      await client.api(`/groups/${parent.id}/transitiveMembers`).top(3).get(),
    );
    const ids = members.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toContain(child.id);
    expect(ids).toContain(extra);
    expect(ids).not.toContain(parent.id);
    expect(members.every((m) => /^#microsoft\.graph\.(user|group|servicePrincipal)$/.test(m['@odata.type']))).toBe(
      true,
    );
    expect((await raw(`/groups/${parent.id}/transitiveMembers?$top=1000`)).status).toBe(400);
    const missing = await raw('/groups/00000000-0000-0000-0000-000000000000/transitiveMembers');
    expect(missing.status).toBe(404);
    expect(missing.body?.error.code).toBe('Request_ResourceNotFound');
  });

  test('getByIds resolves users, groups, SPs and administrative units; at most 1000 ids', async () => {
    const ids = [
      tenant.users[1].id,
      tenant.groups[0].id,
      tenant.servicePrincipals[0].id,
      tenant.administrativeUnits[0].id,
      'deadbeef-0000-0000-0000-000000000000',
    ];
    const r = await client.api('/directoryObjects/getByIds').post({ ids });
    expect(r.value.map((o: Record<string, string>) => o['@odata.type'])).toEqual([
      '#microsoft.graph.user',
      '#microsoft.graph.group',
      '#microsoft.graph.servicePrincipal',
      '#microsoft.graph.administrativeUnit',
    ]);
    const onlyAus = await client.api('/directoryObjects/getByIds').post({ ids, types: ['administrativeUnit'] });
    expect(onlyAus.value).toHaveLength(1);
    const tooMany = await raw('/directoryObjects/getByIds', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ids: Array(1001).fill(ids[0]) }),
    });
    expect(tooMany.status).toBe(400);
    const au = await raw(`/directory/administrativeUnits/${tenant.administrativeUnits[0].id}?$select=displayName`);
    expect(au.body).toEqual(
      expect.objectContaining({
        id: tenant.administrativeUnits[0].id,
        displayName: tenant.administrativeUnits[0].displayName,
      }),
    );
  });

  test('PIM for Groups eligibilitySchedules require a groupId or principalId filter', async () => {
    const missing = await raw('/identityGovernance/privilegedAccess/group/eligibilitySchedules');
    expect(missing.status).toBe(400);
    expect(missing.body?.error.message).toMatch(/groupId|principalId/);
    expect(
      (await raw("/identityGovernance/privilegedAccess/group/eligibilitySchedules?$filter=accessId eq 'member'"))
        .status,
    ).toBe(400);
    const s = tenant.groupEligibilitySchedules[0];
    const r = await raw(
      `/identityGovernance/privilegedAccess/group/eligibilitySchedules?$filter=groupId eq '${s.groupId}'&$expand=principal`,
    );
    expect(r.status).toBe(200);
    expect(r.body?.value.map((x: { id: string }) => x.id).sort()).toEqual(
      tenant.groupEligibilitySchedules
        .filter((x) => x.groupId === s.groupId)
        .map((x) => x.id)
        .sort(),
    );
    expect(r.body?.value[0]).toEqual(
      expect.objectContaining({ memberType: 'direct', accessId: expect.stringMatching(/^(member|owner)$/) }),
    );
    const both = await raw(
      `/identityGovernance/privilegedAccess/group/eligibilitySchedules?$filter=groupId eq '${s.groupId}' and principalId eq '${s.principalId}'`,
    );
    expect(both.body?.value.map((x: { id: string }) => x.id)).toEqual([s.id]);
  });
});

describe('audit log', () => {
  const base = '/auditLogs/directoryAudits';

  test('documented filters work; category and quoted dates are rejected; $top is 1..1000', async () => {
    const cat = await raw(
      `${base}?$filter=${encodeURIComponent("loggedByService eq 'PIM' and category eq 'RoleManagement'")}`,
    );
    expect(cat.status).toBe(400);
    expect(cat.body?.error.message).toContain('category');
    const quoted = await raw(`${base}?$filter=${encodeURIComponent("activityDateTime ge '2026-03-01T00:00:00Z'")}`);
    expect(quoted.status).toBe(400);
    expect(quoted.body?.error.message).toContain('incompatible types');
    expect((await raw(`${base}?$top=1001`)).status).toBe(400);
    const f =
      "loggedByService eq 'PIM' and activityDisplayName eq 'Add member to role completed (PIM activation)' and activityDateTime ge 2026-03-01T00:00:00Z and activityDateTime lt 2026-03-12T00:00:00Z";
    const items = await all<Record<string, string>>(await client.api(base).filter(f).top(5).get());
    const expected = tenant.directoryAudits.filter(
      (a) =>
        a.loggedByService === 'PIM' &&
        a.activityDisplayName === 'Add member to role completed (PIM activation)' &&
        a.activityDateTime >= '2026-03-01' &&
        a.activityDateTime < '2026-03-12',
    );
    expect(items.map((a) => a.id).sort()).toEqual(expected.map((a) => a.id).sort());
    expect(new Set(items.map((a) => a.category))).toEqual(new Set(['RoleManagement', 'GroupManagement']));
  });

  test('newest first by default, $orderby asc, and 30-day retention', async () => {
    const desc = await all<Record<string, string>>(await client.api(base).top(1000).get());
    const asc = await all<Record<string, string>>(
      await client.api(base).orderby('activityDateTime asc').top(1000).get(),
    );
    expect(asc.map((a) => a.id)).toEqual([...desc].reverse().map((a) => a.id));
    // 30 days back to a UTC midnight (the floor Graph names in its 400).
    const cutoff = new Date(Math.floor((NOW.getTime() - 30 * 86_400_000) / 86_400_000) * 86_400_000).toISOString();
    expect(desc.length).toBe(tenant.directoryAudits.filter((a) => a.activityDateTime >= cutoff).length);
    expect(tenant.directoryAudits.some((a) => a.activityDateTime < cutoff)).toBe(true);
    expect((await raw(`${base}?$orderby=id`)).status).toBe(400);
  });

  test('a lower bound older than retention: 400 naming the floor as Graph words it', async () => {
    const floor = new Date(Math.floor((NOW.getTime() - 30 * 86_400_000) / 86_400_000) * 86_400_000);
    const before = new Date(floor.getTime() - 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const r = await raw(`${base}?$filter=${encodeURIComponent(`activityDateTime ge ${before}`)}`);
    expect(r.status).toBe(400);
    const text = `${floor.getUTCMonth() + 1}/${floor.getUTCDate()}/${floor.getUTCFullYear()} 12:00:00 AM`;
    expect(r.body?.error.message).toBe(
      `Specified argument was out of the range of valid values. (Parameter 'Minimum allowed time for activityDateTime is ${text}')`,
    );
    const at = floor.toISOString().replace(/\.\d{3}Z$/, 'Z');
    expect((await raw(`${base}?$filter=${encodeURIComponent(`activityDateTime ge ${at}`)}`)).status).toBe(200);
  });

  test('rate limit: over N requests per window is 429 with Retry-After (seconds, rounded up)', async () => {
    const limited = await startGraphSimulator({
      tenant,
      tls: testTls(),
      now: () => NOW,
      auditRateLimit: { requests: 2, perMs: 1500 },
    });
    const app = fakeAccessToken({ aud: 'https://graph.microsoft.com', oid: 'reporter-app' }).token;
    try {
      const url = `${limited.url}/v1.0${base}?$top=1`;
      expect((await raw(url, { token: app })).status).toBe(200);
      expect((await raw(url, { token: app })).status).toBe(200);
      const third = await raw(url, { token: app });
      expect(third.status).toBe(429);
      expect(third.headers.get('retry-after')).toBe('2');
      expect(third.body?.error.code).toBe('TooManyRequests');
      // Another identity has its own budget (per app per tenant).
      expect((await raw(url, { token: fakeAccessToken({ aud: limited.url, oid: 'someone-else' }).token })).status).toBe(
        200,
      );
      expect((await raw(url, { token: app })).status).toBe(429);
      // The SDK's RetryHandler honours Retry-After and gets through.
      const c = Client.initWithMiddleware({
        authProvider: { getAccessToken: async () => app },
        baseUrl: limited.url,
        defaultVersion: 'v1.0',
        customHosts: new Set(['127.0.0.1']),
      });
      const started = Date.now();
      const page = await c.api(base).top(1).get();
      expect(page.value).toHaveLength(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(limited.requests.map((r) => r.status).slice(-2)).toEqual([429, 200]);
    } finally {
      await limited.stop();
    }
  });
});

describe('faults', () => {
  test('429 with Retry-After is retried by the SDK', async () => {
    graph.inject({ path: '/roleDefinitions', status: 429, retryAfterSeconds: 1, times: 1 });
    const started = Date.now();
    const r = await client.api('/roleManagement/directory/roleDefinitions').get();
    expect(r.value.length).toBeGreaterThan(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const last = graph.requests.filter((q) => q.path.endsWith('/roleDefinitions')).slice(-2);
    expect(last.map((q) => q.status)).toEqual([429, 200]);
  });

  test('503 with a custom body; times counts down', async () => {
    graph.inject({
      path: /roleDefinitions/,
      status: 503,
      times: 2,
      body: { error: { code: 'ServiceUnavailable', message: 'custom' } },
    });
    const a = await raw('/roleManagement/directory/roleDefinitions');
    expect(a.status).toBe(503);
    expect(a.body).toEqual({ error: { code: 'ServiceUnavailable', message: 'custom' } });
    expect((await raw('/roleManagement/directory/roleDefinitions')).status).toBe(503);
    expect((await raw('/roleManagement/directory/roleDefinitions')).status).toBe(200);
  });

  test('invalidSkipToken hits a follow-up page; a tampered skip token is rejected too', async () => {
    const first = await raw('/roleManagement/directory/roleEligibilitySchedules');
    graph.inject({ path: 'roleEligibilitySchedules', kind: 'invalidSkipToken', times: 1 });
    expect((await raw('/roleManagement/directory/roleEligibilitySchedules')).status).toBe(200); // no skiptoken: unaffected
    const failed = await raw(first.body?.['@odata.nextLink']);
    expect(failed.status).toBe(400);
    expect(failed.body?.error.message).toBe('Invalid Skip Token');
    expect((await raw(first.body?.['@odata.nextLink'])).status).toBe(200);
    const tampered = new URL(first.body?.['@odata.nextLink']);
    tampered.searchParams.set('$filter', "status eq 'Provisioned'");
    expect((await raw(tampered.toString())).status).toBe(400);
  });

  test('reset drops the connection mid-body', async () => {
    graph.inject({ path: 'roleAssignmentSchedules', kind: 'reset', times: 1 });
    await expect(raw('/roleManagement/directory/roleAssignmentSchedules')).rejects.toThrow();
    expect((await raw('/roleManagement/directory/roleAssignmentSchedules')).status).toBe(200);
  });

  test('an empty page with a nextLink does not end the list', async () => {
    graph.inject({ path: 'roleEligibilitySchedules', kind: 'emptyPage', times: 2 });
    const first = (await client.api('/roleManagement/directory/roleEligibilitySchedules').get()) as PageCollection;
    expect(first.value).toEqual([]);
    const items = await all<{ id: string }>(first);
    expect(items.map((s) => s.id)).toEqual(tenant.eligibilitySchedules.map((s) => s.id));
  });
});

describe('latency', () => {
  test("counts from the request's arrival: the simulator's own work is inside it, not added after", async () => {
    const probe = latencyProbe();
    const slow = await startGraphSimulator({
      tenant,
      tls: testTls(),
      pageSize: PAGE,
      now: () => NOW,
      latencyMs: PROBE_LATENCY_MS,
      latencyWait: probe.wait,
      // Read once as each request arrives (before it is dispatched): here it stands for the work on it.
      wallMs: () => {
        probe.busy();
        return Date.now();
      },
    });
    const bearer = fakeAccessToken({ aud: 'https://graph.microsoft.com' }).token;
    try {
      await probe.expectWorkInsideLatency(`${slow.url}/v1.0/roleManagement/directory/roleDefinitions`, bearer);
    } finally {
      await slow.stop();
    }
  });
});

describe('$batch', () => {
  const post = (body: unknown) =>
    raw('/$batch', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test('routes sub-requests through the same handlers, marks them batched, absolute nextLinks inside', async () => {
    const g = tenant.groups[0];
    graph.inject({ path: `/groups/${tenant.groups[1].id}/`, status: 429, retryAfterSeconds: 3, times: 1 });
    const before = graph.requests.length;
    const r = await post({
      requests: [
        { id: 'a', method: 'GET', url: `/groups/${g.id}/transitiveMembers?$top=1&$select=id` },
        { id: 'b', method: 'GET', url: `groups/${tenant.groups[1].id}/transitiveMembers` },
        { id: 'c', method: 'GET', url: '/roleManagement/directory/roleEligibilitySchedules?$top=1000' },
        {
          id: 'd',
          method: 'POST',
          url: '/directoryObjects/getByIds',
          headers: { 'Content-Type': 'application/json' },
          body: { ids: [g.id] },
        },
      ],
    });
    expect(r.status).toBe(200);
    const byId = Object.fromEntries((r.body?.responses as Array<{ id: string }>).map((x) => [x.id, x])) as Record<
      string,
      any
    >;
    expect(byId.a.status).toBe(200);
    expect(byId.a.body['@odata.nextLink']).toMatch(
      new RegExp(`^${graph.url}/v1.0/groups/${g.id}/transitiveMembers\\?`),
    );
    expect(byId.b.status).toBe(429);
    expect(byId.b.headers['retry-after']).toBe('3');
    expect(byId.c.status).toBe(400);
    expect(byId.d.body.value[0].id).toBe(g.id);
    const logged = graph.requests.slice(before);
    expect(logged.filter((q) => q.batched)).toHaveLength(4);
    expect(logged.filter((q) => !q.batched).map((q) => q.path)).toEqual(['/v1.0/$batch']);
  });

  test('more than 20, duplicate ids and absolute URLs are rejected', async () => {
    const req = (id: string, url = '/roleManagement/directory/roleDefinitions') => ({ id, method: 'GET', url });
    expect((await post({ requests: Array.from({ length: 21 }, (_, i) => req(String(i))) })).status).toBe(400);
    expect((await post({ requests: [req('1'), req('1')] })).status).toBe(400);
    expect(
      (await post({ requests: [req('1', `${graph.url}/v1.0/roleManagement/directory/roleDefinitions`)] })).status,
    ).toBe(400);
    expect((await post({ requests: Array.from({ length: 20 }, (_, i) => req(String(i))) })).status).toBe(200);
  });
});

describe('role management policy assignments', () => {
  const LIST = '/policies/roleManagementPolicyAssignments';
  const ROLES = `${LIST}?$filter=${encodeURIComponent("scopeId eq '/' and scopeType eq 'DirectoryRole'")}&$expand=${encodeURIComponent('policy($expand=rules)')}`;

  it("requires the filter on scopeId and scopeType, answering in Graph's error shape", async () => {
    for (const path of [LIST, `${LIST}?$filter=${encodeURIComponent("scopeId eq '/'")}`]) {
      const r = await raw(path);
      expect(r.status).toBe(400);
      expect(r.body!.error.code).toBe('UnknownError');
      expect(JSON.parse(r.body!.error.message as string).errorCode).toBe('MissingProvider');
      expect(r.body!.error.innerError['request-id']).toEqual(expect.any(String));
    }
  });

  it('refuses $top (not documented on this list)', async () => {
    const r = await raw(`${ROLES}&$top=999`);
    expect(r.status).toBe(400);
    expect(r.body!.error.message).toContain('$top');
  });

  it('one policy per role, paged, each with its rules in no particular order and only the keys of the docs sample', async () => {
    const items: Array<Record<string, any>> = [];
    for (let next: string | undefined = ROLES; next;) {
      const r = await raw(next);
      expect(r.status).toBe(200);
      items.push(...(r.body!.value as Array<Record<string, any>>));
      next = r.body!['@odata.nextLink'];
    }
    expect(items.map((i) => i.roleDefinitionId).sort()).toEqual(tenant.roleDefinitions.map((r) => r.id).sort());
    const sample = JSON.parse(
      readFileSync(join(__dirname, '../fixtures/roleManagementPolicyAssignments-list-expand.json'), 'utf8'),
    ).value[0];
    const keys = (o: Record<string, unknown>) => Object.keys(o).sort();
    const orders = new Set<string>();
    for (const item of items) {
      expect(keys(item)).toEqual(keys(sample));
      expect(keys(item.policy)).toEqual(keys(sample.policy));
      const byId = new Map((sample.policy.rules as Array<Record<string, unknown>>).map((r) => [r.id, r]));
      expect((item.policy.rules as Array<{ id: string }>).map((r) => r.id).sort()).toEqual([...byId.keys()].sort());
      for (const rule of item.policy.rules as Array<Record<string, any>>)
        expect(keys(rule)).toEqual(keys(byId.get(rule.id) as Record<string, unknown>));
      orders.add((item.policy.rules as Array<{ id: string }>).map((r) => r.id).join());
    }
    expect(orders.size).toBeGreaterThan(1);
  });

  it("a group's policies by scopeId and scopeType Group; 403 without RoleManagementPolicy.Read.AzureADGroup", async () => {
    const group = tenant.groups[0];
    const path = `${LIST}?$filter=${encodeURIComponent(`scopeId eq '${group.id}' and scopeType eq 'Group' and roleDefinitionId eq 'member'`)}`;
    const r = await raw(path);
    expect(r.status).toBe(200);
    expect(
      r.body!.value.map((v: { roleDefinitionId: string; scopeType: string }) => [v.roleDefinitionId, v.scopeType]),
    ).toEqual([['member', 'Group']]);
    const denied = await startGraphSimulator({ tenant, tls: testTls(), groupPolicyRead: false });
    try {
      const own = (await new ManagedIdentityCredential().getToken(`${denied.url}/.default`)).token;
      const d = await fetch(`${denied.url}/v1.0${path}`, { headers: { authorization: `Bearer ${own}` } });
      expect(d.status).toBe(403);
    } finally {
      await denied.stop();
    }
  });
});
