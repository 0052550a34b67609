/**
 * End to end (docs/files.md): the CLI and the timer handler, through the real Graph, Identity and Storage
 * SDK clients, against a strict Graph simulator and Azurite, on tenants generated from a seed.
 */
import { createHash } from 'node:crypto';
import { InvocationContext, type Timer } from '@azure/functions';
import { dailyDigest } from '../../src/functions/dailyDigest';
import { CISA_PRIVILEGED_ROLES } from '../../src/pim/roles';
import { generateTenant } from '../../tools/tenant/generate';
import { ASSIGNMENT_COLUMNS, expectedAssignmentRows, parseCsv } from '../support/expected';
import { records, startWorld, USER_ASSIGNED_CLIENT_ID, type World } from '../support/world';

const NOW = '2026-11-24T06:00:00Z';
const privilegedRoleIds = new Set(Object.keys(CISA_PRIVILEGED_ROLES));
const timer: Timer = {
  isPastDue: false,
  schedule: { adjustForDST: false },
  scheduleStatus: { last: '', next: '', lastUpdated: '' },
};

describe('the PIM snapshot', () => {
  let world: World;
  afterEach(async () => world?.stop());

  it('writes exactly the expected rows, on a tenant with odd page sizes and throttling', async () => {
    const tenant = generateTenant({
      seed: 'unseen-1',
      now: new Date(NOW),
      users: 120,
      groups: 14,
      eligible: 260,
      active: 140,
    });
    world = await startWorld(tenant, { pageSize: 17, maxPageSize: 17 });
    // Throttling and outages on the way: Retry-After is honoured, 503/504 retried.
    world.graph.inject({ path: /roleEligibilitySchedules/, status: 429, retryAfterSeconds: 1, times: 2 });
    world.graph.inject({ path: /roleAssignmentSchedules/, status: 503, times: 1 });
    world.graph.inject({ path: /\$batch/, status: 504, times: 1 });

    const run = await world.cli(['daily', '--now', NOW]);
    expect(run.stderr).toContain('Wrote daily/2026/11/24/eligible-assignments.csv');
    expect(run.code).toBe(0);

    const expected = expectedAssignmentRows(tenant, { privilegedRoleIds });
    expect(expected.eligible.length).toBeGreaterThan(260); // groups expanded, PIM-for-Groups included
    const eligible = await world.csv(world.reports, 'daily/2026/11/24/eligible-assignments.csv');
    const active = await world.csv(world.reports, 'daily/2026/11/24/active-assignments.csv');
    expect(eligible[0]).toEqual([...ASSIGNMENT_COLUMNS]);
    expect(records(eligible)).toEqual(expected.eligible);
    expect(records(active)).toEqual(expected.active);
    // No duplicates, by construction of the expected set and equality; and the throttling was real.
    expect(
      world.graph.requests.filter((r) => r.status === 429 || r.status === 503 || r.status === 504).length,
    ).toBeGreaterThanOrEqual(4);
  });

  it('writes BOM, CRLF and neutralised cells, and a manifest that matches the files', async () => {
    const tenant = generateTenant({
      seed: 'unseen-2',
      now: new Date(NOW),
      users: 40,
      groups: 5,
      eligible: 60,
      active: 30,
      hostile: true,
    });
    world = await startWorld(tenant, { pageSize: 50 });
    expect((await world.cli(['daily', '--now', NOW])).code).toBe(0);
    const raw = await world.blobs
      .getContainerClient(world.reports)
      .getBlockBlobClient('daily/2026/11/24/eligible-assignments.csv')
      .downloadToBuffer();
    expect([...raw.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = raw.toString('utf8');
    expect(text.split('\r\n')[0]).toBe(`\ufeff${ASSIGNMENT_COLUMNS.join(',')}`);
    expect(text.endsWith('\r\n')).toBe(true);
    const cells = (await world.csv(world.reports, 'daily/2026/11/24/eligible-assignments.csv')).flat();
    expect(cells.some((c) => c.startsWith("'="))).toBe(true);
    expect(cells.filter((c) => /^[=+\-@\t\r]/.test(c))).toEqual([]);
    expect(
      cells.filter((c) => /^\d{4}-\d{2}-\d{2}/.test(c)).every((c) => /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(c)),
    ).toBe(true);

    const manifest = JSON.parse((await world.read(world.reports, 'daily/2026/11/24/manifest.json'))!);
    for (const file of manifest.files as Array<{ name: string; sha256: string; rows: number }>) {
      const data = await world.blobs
        .getContainerClient(world.reports)
        .getBlockBlobClient(`daily/2026/11/24/${file.name}`)
        .downloadToBuffer();
      expect(createHash('sha256').update(data).digest('hex')).toBe(file.sha256);
    }
    expect(manifest.graph.requests).toBe(world.graph.requests.filter((r) => !r.batched).length);
  });

  it('reads 5,000 schedules with requests that grow with pages, not rows', async () => {
    const tenant = generateTenant({
      seed: 'large',
      now: new Date(NOW),
      users: 900,
      groups: 60,
      eligible: 3500,
      active: 1500,
      auditDays: 2,
    });
    const pageSize = 100;
    world = await startWorld(tenant, { pageSize });
    expect((await world.cli(['daily', '--now', NOW])).code).toBe(0);
    const top = world.graph.requests.filter((r) => !r.batched);
    const lists =
      Math.ceil(tenant.eligibilitySchedules.length / pageSize) +
      Math.ceil(tenant.assignmentSchedules.length / pageSize);
    const groupsHoldingRoles = new Set(
      [...tenant.eligibilitySchedules, ...tenant.assignmentSchedules]
        .map((s) => s.principalId)
        .filter((id) => tenant.groups.some((g) => g.id === id)),
    ).size;
    // Two lists per group (members, PIM-for-Groups), 20 per $batch; a few more for roles, audit, AUs.
    const bound = lists + Math.ceil((2 * groupsHoldingRoles) / 20) + 10;
    expect(top.length).toBeLessThanOrEqual(bound);
    expect(top.length).toBeLessThan(tenant.eligibilitySchedules.length / 10);
  });

  it('runs from the timer handler with the same result', async () => {
    const tenant = generateTenant({ seed: 'timer', now: new Date(), users: 30, groups: 4, eligible: 40, active: 20 });
    world = await startWorld(tenant);
    world.useProcessEnv();
    const logs: unknown[][] = [];
    const context = new InvocationContext({
      invocationId: 'timer-1',
      functionName: 'dailyDigest',
      logHandler: (...args) => logs.push(args),
    });
    await dailyDigest({ ...timer, isPastDue: true }, context);
    const day = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
    const expected = expectedAssignmentRows(tenant, { privilegedRoleIds });
    expect(records(await world.csv(world.reports, `daily/${day}/eligible-assignments.csv`))).toEqual(expected.eligible);
    expect(logs.some(([level, message]) => level === 'warning' && String(message).includes('running late'))).toBe(true);
  });

  it.each([
    [{ GRAPH_ENDPOINT: 'http://graph.example' }, 'GRAPH_ENDPOINT'],
    [{ EXPIRY_WINDOW_DAYS: 'soon' }, 'EXPIRY_WINDOW_DAYS'],
    [{ EMAIL_RECIPIENTS: 'secops@contoso.com;nobody' }, 'EMAIL_RECIPIENTS'],
    [{ PRIVILEGED_ROLE_IDS: 'Global Administrator' }, 'PRIVILEGED_ROLE_IDS'],
  ])('stops on a bad setting %j before any call or write', async (bad, name) => {
    world = await startWorld(generateTenant({ seed: 'bad', now: new Date(NOW), users: 5, eligible: 5, active: 5 }));
    const run = await world.cli(['daily', '--now', NOW], bad);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(name);
    expect(world.graph.requests).toEqual([]);
    expect(world.identity.requests).toEqual([]);
    expect(await world.blobs.getContainerClient(world.reports).exists()).toBe(false);
  });

  it('exports a dataset to stdout as CSV and as JSON, writing no blob', async () => {
    const tenant = generateTenant({
      seed: 'export',
      now: new Date(NOW),
      users: 30,
      groups: 4,
      eligible: 30,
      active: 20,
    });
    world = await startWorld(tenant);
    const run = await world.cli(['export', '--dataset', 'active', '--now', NOW]);
    expect(run.code).toBe(0);
    expect(records(parseCsv(run.stdout))).toEqual(expectedAssignmentRows(tenant, { privilegedRoleIds }).active);
    const json = await world.cli(['export', '--dataset', 'eligible', '--format', 'json', '--now', NOW]);
    const eligible = expectedAssignmentRows(tenant, { privilegedRoleIds }).eligible;
    // JSON keeps raw values: undo the CSV's formula neutralisation to compare.
    expect(JSON.parse(json.stdout)).toEqual(
      eligible.map((r) =>
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k, /^'[=+\-@\t\r]/.test(v) ? v.slice(1) : v])),
      ),
    );
    expect(await world.list(world.reports)).toEqual([]);
  });

  it('uses the user-assigned identity named by MANAGED_IDENTITY_CLIENT_ID, and says so when it is unknown', async () => {
    world = await startWorld(generateTenant({ seed: 'uami', now: new Date(NOW), users: 10, eligible: 10, active: 5 }));
    const ok = await world.cli(['export', '--dataset', 'eligible', '--now', NOW], {
      MANAGED_IDENTITY_CLIENT_ID: USER_ASSIGNED_CLIENT_ID,
    });
    expect(ok.code).toBe(0);
    expect(world.identity.requests.map((r) => r.query.client_id)).toContain(USER_ASSIGNED_CLIENT_ID);
    const unknown = await world.cli(['export', '--dataset', 'eligible', '--now', NOW], {
      MANAGED_IDENTITY_CLIENT_ID: '00000000-1111-2222-3333-444444444444',
    });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/could not get a token for Graph|no credential for Graph/);
  });

  it('says plainly when the tenant has no PIM licence', async () => {
    const tenant = {
      ...generateTenant({ seed: 'nolicence', now: new Date(NOW), users: 5, eligible: 5, active: 5 }),
      licensed: false,
    };
    world = await startWorld(tenant);
    const run = await world.cli(['export', '--dataset', 'eligible', '--now', NOW]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('this tenant needs Entra ID P2 or ID Governance for PIM');
  });
});
