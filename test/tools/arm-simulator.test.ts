/**
 * The ARM simulator is as strict as ARM (documented filters only, api-version, retention of
 * requests, both subscription path forms), and the ARM client pages, honours Retry-After and caps
 * requests in flight.
 */
import { latencyProbe, PROBE_LATENCY_MS } from '../support/latency';
import { ArmClient, ArmRequestError } from '../../src/arm/client';
import { resolveAzureScopes } from '../../src/pim/azure';
import { streamLog } from '../../src/log';
import { PassThrough } from 'node:stream';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { startArmSimulator, type ArmSimulator } from '../../tools/arm-simulator';
import { fakeAccessToken } from '../../tools/msi-simulator';
import { generateAzureEstate } from '../../tools/tenant/azure';
import { generateTenant } from '../../tools/tenant/generate';
import { testTls } from '../../tools/tls';

const NOW = new Date('2026-11-24T06:00:00Z');
const TENANT = '0b6d3a64-1c57-4a55-9d9d-3c1b5c2f7e10';

describe('the ARM simulator and client', () => {
  let arm: ArmSimulator;
  const tenant = generateTenant({
    seed: 'arm-tool',
    now: NOW,
    users: 10,
    groups: 2,
    eligible: 4,
    active: 2,
    auditDays: 1,
    activationsPerDay: 0,
  });
  const estate = generateAzureEstate(tenant, {
    seed: 'arm-tool',
    now: NOW,
    tenantId: TENANT,
    subscriptions: 3,
    requestsPerSubscription: 10,
    requestDays: 60,
  });
  const credential = {
    getToken: async (scope: string) => ({
      token: fakeAccessToken({ aud: scope.replace(/\/\.default$/, ''), tenantId: TENANT }).token,
      expiresOnTimestamp: Date.now() + 3600_000,
    }),
  };
  const waits: number[] = [];
  const client = (maxConcurrent?: number) =>
    new ArmClient({
      endpoint: arm.url,
      credential,
      log: streamLog(new PassThrough()),
      maxConcurrent,
      sleep: async (ms) => void waits.push(ms),
    });

  beforeAll(async () => {
    arm = await startArmSimulator({ estate, tls: testTls(), pageSize: 2, now: () => NOW });
  });
  afterAll(async () => arm.stop());
  beforeEach(() => {
    waits.length = 0;
    arm.requests.length = 0;
  });

  const sub = () => estate.subscriptions[0].id;

  async function all<T>(c: ArmClient, path: string, query: Record<string, string>): Promise<T[]> {
    const out: T[] = [];
    for await (const page of c.pages<T>(path, query)) out.push(...page);
    return out;
  }

  it("answers an undocumented filter 400 UnsupportedQuery with ARM's message, in ARM error shape", async () => {
    const error = await all(
      client(),
      `/subscriptions/${sub()}/providers/Microsoft.Authorization/roleEligibilitySchedules`,
      {
        'api-version': '2020-10-01',
        $filter: "roleDefinitionId eq 'x'",
      },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArmRequestError);
    expect(error).toMatchObject({ status: 400, code: 'UnsupportedQuery' });
    expect((error as Error).message).toContain(
      "The filter 'roleDefinitionId eq 'x'' is not supported. Supported filters are either 'atScope()' or 'principalId eq '{value}' or assignedTo('{value}')'.",
    );
    for (const filter of ['atScope()', 'asTarget()', `principalId eq '${estate.eligibility[0].principal.id}'`]) {
      await expect(
        all(client(), `/subscriptions/${sub()}/providers/Microsoft.Authorization/roleEligibilitySchedules`, {
          'api-version': '2020-10-01',
          $filter: filter,
        }),
      ).resolves.toBeDefined();
    }
  });

  it('requires the api-version', async () => {
    await expect(
      all(client(), `/subscriptions/${sub()}/providers/Microsoft.Authorization/roleEligibilitySchedules`, {}),
    ).rejects.toMatchObject({ status: 400, code: 'MissingApiVersionParameter' });
  });

  it('pages through nextLink and answers both subscription path forms, in any case, the same', async () => {
    const path = (s: string) => `${s}/providers/Microsoft.Authorization/roleEligibilitySchedules`;
    const a = await all<{ name: string }>(client(), path(`/subscriptions/${sub()}`), { 'api-version': '2020-10-01' });
    const b = await all<{ name: string }>(
      client(),
      path(`/providers/Microsoft.Subscription/SUBSCRIPTIONS/${sub().toUpperCase()}`),
      { 'api-version': '2020-10-01' },
    );
    expect(a.length).toBeGreaterThan(2);
    expect(b.map((x) => x.name).sort()).toEqual(a.map((x) => x.name).sort());
    expect(arm.requests.filter((r) => r.query.$skiptoken).length).toBeGreaterThan(0);
  });

  it('lists rows of a parent again at each child, the inherited ones sometimes as Direct', async () => {
    const mgRows = estate.eligibility.filter((e) => /managementGroups/i.test(e.scope));
    const rows = await all<{ name: string; properties: { memberType: string; scope: string } }>(
      client(),
      `/subscriptions/${sub()}/providers/Microsoft.Authorization/roleEligibilitySchedules`,
      { 'api-version': '2020-10-01' },
    );
    const inherited = rows.filter((r) => mgRows.some((m) => m.name === r.name));
    expect(inherited.length).toBeGreaterThan(0);
    expect(inherited.every((r) => /managementGroups/i.test(r.properties.scope))).toBe(true);
    expect(new Set(estate.eligibility.map((e) => (e.name.charCodeAt(1) % 2 === 0 ? 'Direct' : 'Inherited')))).toEqual(
      new Set(['Direct', 'Inherited']),
    );
  });

  it('atScope() at a child management group lists what it and its parents grant, nothing below it', async () => {
    const child = estate.managementGroups.find((m) => m.id === 'Contoso-MG0')!;
    const rows = await all<{ name: string; properties: { scope: string } }>(
      client(),
      `/providers/Microsoft.Management/managementGroups/${child.id}/providers/Microsoft.Authorization/roleEligibilitySchedules`,
      { 'api-version': '2020-10-01', $filter: 'atScope()' },
    );
    const scopes = new Set(rows.map((r) => r.properties.scope.toLowerCase()));
    expect(scopes).toEqual(
      new Set(
        [child.id, estate.tenantId].map((id) => `/providers/microsoft.management/managementgroups/${id.toLowerCase()}`),
      ),
    );
    expect(estate.eligibility.some((e) => e.scope.startsWith('/subscriptions/'))).toBe(true);
  });

  it("lists one instance per role assignment in force, of the role assignment's name: the schedule's own when made outside PIM", async () => {
    type Instance = {
      name: string;
      properties: { assignmentType: string; roleAssignmentScheduleId: string; originRoleAssignmentId: string };
    };
    const rows: Instance[] = [];
    for (const s of estate.subscriptions)
      rows.push(
        ...(await all<Instance>(
          client(),
          `/subscriptions/${s.id}/providers/Microsoft.Authorization/roleAssignmentScheduleInstances`,
          {
            'api-version': '2020-10-01',
          },
        )),
      );
    const last = (id: string) => id.slice(id.lastIndexOf('/') + 1);
    const bySchedule = new Map(rows.map((r) => [last(r.properties.roleAssignmentScheduleId), r]));
    const inForce = estate.assignments.filter(
      (a) => Date.parse(a.start) <= NOW.getTime() && (a.end === null || Date.parse(a.end) > NOW.getTime()),
    );
    expect(new Set(bySchedule.keys())).toEqual(new Set(inForce.map((a) => a.name)));
    for (const a of inForce) {
      const instance = bySchedule.get(a.name)!;
      expect(instance.name).toBe(last(instance.properties.originRoleAssignmentId));
      expect(instance.properties.originRoleAssignmentId).toMatch(
        /^\/(subscriptions|providers\/Microsoft\.Management)\//,
      );
      expect(instance.name === a.name).toBe(a.roleAssignmentName === a.name);
      expect(instance.properties).not.toHaveProperty('roleAssignmentScheduleRequestId');
    }
    expect(inForce.some((a) => a.roleAssignmentName === a.name)).toBe(true);
    expect(inForce.some((a) => a.roleAssignmentName !== a.name)).toBe(true);
    // A future-dated assignment has a schedule but no instance yet.
    expect(estate.assignments.some((a) => Date.parse(a.start) > NOW.getTime())).toBe(true);
  });

  it('forgets schedule requests older than 30 days', async () => {
    const subRows = await all<{ properties: { createdOn: string } }>(
      client(),
      `/subscriptions/${sub()}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests`,
      { 'api-version': '2020-10-01' },
    );
    const inEstate = estate.requests.filter((r) => r.scope.toLowerCase().startsWith(`/subscriptions/${sub()}`));
    expect(inEstate.some((r) => Date.parse(r.createdOn) < NOW.getTime() - 30 * 86_400_000)).toBe(true);
    expect(subRows.length).toBe(
      inEstate.filter((r) => Date.parse(r.createdOn) >= NOW.getTime() - 30 * 86_400_000).length,
    );
  });

  it('lists a delegated subscription of another tenant in GET /subscriptions', async () => {
    const subs = await all<{ subscriptionId: string; homeTenantId: string }>(client(), '/subscriptions', {
      'api-version': '2022-12-01',
    });
    expect(subs.find((s) => s.subscriptionId === estate.foreignSubscriptions[0].id)?.homeTenantId).toBe(
      estate.foreignSubscriptions[0].homeTenantId,
    );
  });

  it('resolves the scopes: the root group, then its descendants; a configured subscription of another tenant skipped', async () => {
    const foreign = estate.foreignSubscriptions[0].id;
    const own = estate.subscriptions[1].id;
    const names = new Map<string, string>();
    const { scopes, skipped } = await resolveAzureScopes(
      client(),
      {
        scopes: [
          { kind: 'path', path: `/subscriptions/${foreign}` },
          { kind: 'root' },
          { kind: 'path', path: `/subscriptions/${own.toUpperCase()}/resourceGroups/rg-x` },
        ],
        log: streamLog(new PassThrough()),
      },
      names,
    );
    expect(skipped).toEqual([`/subscriptions/${foreign}`]);
    const root = `/providers/microsoft.management/managementgroups/${TENANT}`;
    expect(scopes[0]).toEqual({ path: root, kind: 'managementGroup' });
    expect(scopes.at(-1)).toEqual({ path: `/subscriptions/${own}/resourcegroups/rg-x`, kind: 'below' });
    expect(
      scopes
        .filter((s) => s.kind === 'subscription')
        .map((s) => s.path)
        .sort(),
    ).toEqual(estate.subscriptions.map((s) => `/subscriptions/${s.id.toLowerCase()}`).sort());
    expect(scopes.filter((s) => s.kind === 'managementGroup')).toHaveLength(estate.managementGroups.length);
    expect(names.get(`/subscriptions/${own.toLowerCase()}`)).toBe(estate.subscriptions[1].displayName);
  });

  it('waits as long as Retry-After asks on 429, then carries on', async () => {
    arm.throttle(2, 7);
    const subs = await all(client(), '/subscriptions', { 'api-version': '2022-12-01' });
    expect(subs.length).toBe(4);
    expect(waits).toEqual([7000, 7000]);
    expect(arm.requests.filter((r) => r.status === 429)).toHaveLength(2);
  });

  // Short in tests so that a hang costs a fraction of a second (the client's own is 90 s).
  const hangingClient = () =>
    new ArmClient({
      endpoint: arm.url,
      credential,
      log: streamLog(new PassThrough()),
      requestTimeoutMs: 200,
      sleep: async (ms) => void waits.push(ms),
    });

  it('abandons a request ARM never answers after the timeout and retries it, inside paging too', async () => {
    const path = `/subscriptions/${sub()}/providers/Microsoft.Authorization/roleEligibilitySchedules`;
    const expected = await all(client(), path, { 'api-version': '2020-10-01' });
    expect(expected.length).toBeGreaterThan(2); // more than one page
    arm.requests.length = 0;
    arm.hang(2, /skiptoken/i); // the second page, twice
    const rows = await all(hangingClient(), path, { 'api-version': '2020-10-01' });
    expect(rows).toEqual(expected);
    expect(waits).toEqual([1000, 2000]); // as a 503 is
    expect(arm.requests.filter((r) => r.status === 0).map((r) => r.query.$skiptoken !== undefined)).toEqual([
      true,
      true,
    ]);
  });

  it('fails with ArmTimeout naming the request once a hang outlasts the retries', async () => {
    const path = `/subscriptions/${sub()}/providers/Microsoft.Authorization/roleAssignmentSchedules`;
    arm.hang(6);
    const error = await all(hangingClient(), path, { 'api-version': '2020-10-01' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArmRequestError);
    expect((error as ArmRequestError).code).toBe('ArmTimeout');
    expect((error as ArmRequestError).status).toBe(0);
    expect((error as ArmRequestError).path).toBe(path);
    expect((error as Error).message).toBe(`ARM did not answer GET ${path} within 0.2 s (6 attempts)`);
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16000]);
    expect(arm.requests.map((r) => r.status)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('asks the credential for a token once, not per request, and again near its expiry or after a failure', async () => {
    let asked = 0;
    let failNext = false;
    const issued = { lifetimeMs: 3600_000, refreshAfter: undefined as number | undefined };
    const counting = {
      getToken: async (scope: string) => {
        asked++;
        if (failNext) {
          failNext = false;
          throw new Error('identity endpoint unavailable');
        }
        return {
          token: fakeAccessToken({ aud: scope.replace(/\/\.default$/, ''), tenantId: TENANT }).token,
          expiresOnTimestamp: Date.now() + issued.lifetimeMs,
          refreshAfterTimestamp: issued.refreshAfter,
        };
      },
    };
    const c = new ArmClient({
      endpoint: arm.url,
      credential: counting,
      log: streamLog(new PassThrough()),
      sleep: async (ms) => void waits.push(ms),
    });
    const lists = () =>
      Promise.all(
        estate.subscriptions.map((s) =>
          all(c, `/subscriptions/${s.id}/providers/Microsoft.Authorization/roleAssignmentSchedules`, {
            'api-version': '2020-10-01',
          }),
        ),
      );
    await lists();
    const requests = arm.requests.length;
    expect(requests).toBeGreaterThan(estate.subscriptions.length); // several pages each
    expect(asked).toBe(1); // the first requests, side by side, wait for the same token
    await lists();
    expect(asked).toBe(1);

    // A failure is not kept: the retry asks again, and its token serves what follows.
    const c2 = new ArmClient({
      endpoint: arm.url,
      credential: counting,
      log: streamLog(new PassThrough()),
      sleep: async (ms) => void waits.push(ms),
    });
    asked = 0;
    failNext = true;
    expect(await all(c2, '/subscriptions', { 'api-version': '2022-12-01' })).toHaveLength(4);
    expect(asked).toBe(2);
    expect(waits).toHaveLength(1);

    // Within 2 minutes of its expiry, or past its refreshAfterTimestamp, a token is asked for again.
    const c3 = new ArmClient({ endpoint: arm.url, credential: counting, log: streamLog(new PassThrough()) });
    asked = 0;
    issued.lifetimeMs = 90_000;
    arm.requests.length = 0;
    await all(c3, '/subscriptions', { 'api-version': '2022-12-01' });
    await all(c3, '/subscriptions', { 'api-version': '2022-12-01' });
    expect(asked).toBe(arm.requests.length);
    const c4 = new ArmClient({ endpoint: arm.url, credential: counting, log: streamLog(new PassThrough()) });
    asked = 0;
    issued.lifetimeMs = 3600_000;
    issued.refreshAfter = Date.now() - 1;
    arm.requests.length = 0;
    await all(c4, '/subscriptions', { 'api-version': '2022-12-01' });
    expect(asked).toBe(arm.requests.length);
  });

  it('retries an answer whose connection is cut before the body ends, never taking the part for the whole', async () => {
    let served = 0;
    const body = JSON.stringify({ value: [{ subscriptionId: sub(), displayName: 'whole' }] });
    const cutting = createServer(testTls(), (_req, res) => {
      served++;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      if (served === 1) {
        res.write(body.slice(0, 10));
        setTimeout(() => res.socket?.destroy(), 20);
      } else res.end(body);
    });
    await new Promise<void>((resolve) => cutting.listen(0, '127.0.0.1', resolve));
    try {
      const c = new ArmClient({
        endpoint: `https://127.0.0.1:${(cutting.address() as AddressInfo).port}`,
        credential,
        log: streamLog(new PassThrough()),
        sleep: async (ms) => void waits.push(ms),
      });
      const subs = await all<{ displayName: string }>(c, '/subscriptions', { 'api-version': '2022-12-01' });
      expect(subs.map((s) => s.displayName)).toEqual(['whole']);
      expect(served).toBe(2);
      expect(waits).toEqual([1000]);
    } finally {
      cutting.closeAllConnections();
      await new Promise((resolve) => cutting.close(resolve));
    }
  });

  it("counts the latency from the request's arrival: the simulator's own work is inside it, not added after", async () => {
    const probe = latencyProbe();
    const slow = await startArmSimulator({
      estate,
      tls: testTls(),
      pageSize: 50,
      latencyMs: PROBE_LATENCY_MS,
      latencyWait: probe.wait,
      // Read once by the instances list: here it stands for the work on the request.
      now: () => {
        probe.busy();
        return NOW;
      },
    });
    const url = `${slow.url}/subscriptions/${sub()}/providers/Microsoft.Authorization/roleAssignmentScheduleInstances?api-version=2020-10-01`;
    const { token } = await credential.getToken(`${slow.url}/.default`);
    try {
      await probe.expectWorkInsideLatency(url, token);
    } finally {
      await slow.stop();
    }
  });

  it('keeps at most maxConcurrent requests in flight across scopes', async () => {
    const slow = await startArmSimulator({ estate, tls: testTls(), pageSize: 50, latencyMs: 30 });
    const c = new ArmClient({
      endpoint: slow.url,
      credential,
      log: streamLog(new PassThrough()),
      maxConcurrent: 2,
    });
    try {
      await Promise.all(
        estate.subscriptions.map((s) =>
          all(c, `/subscriptions/${s.id}/providers/Microsoft.Authorization/roleAssignmentSchedules`, {
            'api-version': '2020-10-01',
          }),
        ),
      );
      // Counted by the simulator: received and not yet answered.
      expect(slow.peakInFlight).toBe(2);
    } finally {
      await slow.stop();
    }
  });
});
