/**
 * End to end (docs/http-export.md): the HTTP export handler through `new HttpRequest()`, the Graph simulator and
 * Azurite: every dataset, history beyond Graph's retention, streaming, and clear 400 and 502 answers.
 */
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { Readable } from 'node:stream';
import { buffer, text } from 'node:stream/consumers';
import { httpExport } from '../../src/functions/httpExport';
import { jobContextFor } from '../../src/hosting';
import { parseExportRequest, runExport } from '../../src/jobs/export';
import { CISA_PRIVILEGED_ROLES } from '../../src/pim/roles';
import { generateTenant } from '../../tools/tenant/generate';
import type { SimTenant } from '../../tools/tenant/model';
import { expectedActivations, expectedAssignmentRows, parseCsv } from '../support/expected';
import { expectedRoleSettings } from '../support/roleSettings';
import { records, startWorld, type World } from '../support/world';

const DAY = 86400000;

function call(query: string, invocationId = 'inv-1'): Promise<HttpResponseInit> {
  const request = new HttpRequest({ method: 'GET', url: `http://localhost:7071/api/export${query}` });
  return httpExport(
    request,
    new InvocationContext({ invocationId, functionName: 'export', logHandler: () => undefined }),
  );
}

async function body(response: HttpResponseInit): Promise<string> {
  expect(response.body).toBeInstanceOf(Readable);
  return text(response.body as Readable);
}

const header = (r: HttpResponseInit, name: string) => (r.headers as Record<string, string>)[name];
const unneutralised = (row: Record<string, string>) =>
  Object.fromEntries(Object.entries(row).map(([k, v]) => [k, /^''*[=+\-@\t\r]/.test(v) ? v.slice(1) : v]));

describe('the HTTP export', () => {
  let world: World;
  let tenant: SimTenant;
  // The clock of these tests is the real one: the export serves "now".
  const now = new Date();

  beforeAll(async () => {
    tenant = generateTenant({
      seed: 'export-http',
      now,
      users: 60,
      groups: 6,
      eligible: 90,
      active: 40,
      auditDays: 75,
      activationsPerDay: 3,
    });
    world = await startWorld(tenant, { email: 'none', auditRateLimit: { requests: 1000, perMs: 10000 }, pageSize: 23 });
    // The app has been running: daily harvests 60 and 35 days ago keep what Graph has since dropped.
    for (const ago of [60, 35, 10]) {
      const when = new Date(now.getTime() - ago * DAY);
      world.graph.setNow(() => when);
      const run = await world.cli(['daily', '--now', when.toISOString()]);
      if (run.code !== 0) throw new Error(run.stderr);
    }
    world.graph.setNow(() => new Date());
    world.useProcessEnv();
  });
  afterAll(async () => world?.stop());

  it('is registered as GET /api/export with a function key', () => {
    jest.isolateModules(() => {
      jest.doMock('@azure/functions', () => {
        const actual = jest.requireActual('@azure/functions');
        return { ...actual, app: { ...actual.app, http: jest.fn(), timer: jest.fn(), setup: jest.fn() } };
      });
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { app } = require('@azure/functions');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('../../src/functions/httpExport');
      expect(app.http).toHaveBeenCalledWith(
        'export',
        expect.objectContaining({ route: 'export', methods: ['GET'], authLevel: 'function' }),
      );
    });
  });

  it.each(['eligible', 'active'] as const)('streams %s as CSV, rows equal to the tenant', async (dataset) => {
    const response = await call(`?dataset=${dataset}&code=secret-function-key`);
    expect(response.status).toBe(200);
    expect(header(response, 'content-type')).toBe('text/csv; charset=utf-8');
    expect(header(response, 'content-disposition')).toBe(
      `attachment; filename="pim-${dataset}-${now.toISOString().slice(0, 10)}.csv"`,
    );
    expect(header(response, 'x-invocation-id')).toBe('inv-1');
    const expected = expectedAssignmentRows(tenant, { privilegedRoleIds: new Set(Object.keys(CISA_PRIVILEGED_ROLES)) });
    expect(records(parseCsv(await body(response)))).toEqual(expected[dataset]);
  });

  it('streams role-settings as CSV and JSON, rows equal to the policies served', async () => {
    const response = await call('?dataset=role-settings');
    expect(response.status).toBe(200);
    expect(header(response, 'content-disposition')).toBe(
      `attachment; filename="pim-role-settings-${now.toISOString().slice(0, 10)}.csv"`,
    );
    const expected = expectedRoleSettings(tenant);
    expect(records(parseCsv(await body(response)))).toEqual(expected);
    const json = JSON.parse(await body(await call('?dataset=role-settings&format=json')));
    expect(json).toEqual(expected.map(unneutralised));
  });

  it('serves activations older than Graph holds from the harvest, merged without duplicates', async () => {
    const from = new Date(now.getTime() - 70 * DAY).toISOString().slice(0, 10);
    const to = now.toISOString().slice(0, 10);
    const response = await call(`?dataset=activations&from=${from}&to=${to}&format=json`);
    expect(response.status).toBe(200);
    expect(header(response, 'content-type')).toBe('application/json; charset=utf-8');
    const rows = JSON.parse(await body(response)) as Array<Record<string, string>>;
    // The first harvest (60 days ago) reached back 30 days: 90 days ago. Everything since is covered.
    const expected = expectedActivations(
      tenant,
      new Date(`${from}T00:00:00Z`),
      new Date(Date.parse(`${to}T00:00:00Z`) + DAY),
    );
    expect(
      expected.some((r) => Date.parse(r['Activated (UTC)'].replace(' ', 'T') + 'Z') < now.getTime() - 40 * DAY),
    ).toBe(true);
    expect(rows).toEqual(expected.map(unneutralised));
    expect(header(response, 'x-pim-uncovered')).toBeUndefined();
  });

  it('includes an activation in the last second of `to`', async () => {
    const yesterday = new Date(now.getTime() - DAY).toISOString().slice(0, 10);
    const template = tenant.directoryAudits.find(
      (a) =>
        a.activityDisplayName === 'Add member to role completed (PIM activation)' && a.category === 'RoleManagement',
    )!;
    const late = { ...template, id: 'PIM_last-second-of-the-day', activityDateTime: `${yesterday}T23:59:59.5000000Z` };
    tenant.directoryAudits.push(late);
    world.graph.setTenant(tenant);
    const response = await call(`?dataset=activations&from=${yesterday}&to=${yesterday}`);
    const ids = records(parseCsv(await body(response))).map((r) => r['Audit Id']);
    expect(ids).toContain('PIM_last-second-of-the-day');
    expect(ids).toEqual(
      expectedActivations(
        tenant,
        new Date(`${yesterday}T00:00:00Z`),
        new Date(Date.parse(`${yesterday}T00:00:00Z`) + DAY),
      ).map((r) => r['Audit Id']),
    );
  });

  it('says which period nothing covers', async () => {
    const from = new Date(now.getTime() - 200 * DAY).toISOString().slice(0, 10);
    const response = await call(`?dataset=activations&from=${from}`);
    expect(response.status).toBe(200);
    await body(response);
    expect(header(response, 'x-pim-uncovered')).toMatch(new RegExp(`^${from}T00:00:00.000Z/`));
  });

  it('saves the file under exports/ when asked, and says where', async () => {
    const response = await call('?dataset=active&save=true');
    const csv = await buffer(response.body as Readable);
    const path = header(response, 'x-pim-blob-path');
    expect(path).toMatch(/^exports\/\d{4}\/\d{2}\/\d{2}\/\d{6}-[0-9a-f]{6}-pim-active-\d{4}-\d{2}-\d{2}\.csv$/);
    const saved = await world.blobs.getContainerClient(world.reports).getBlockBlobClient(path).downloadToBuffer();
    expect(saved.equals(csv)).toBe(true);
    expect(csv.length).toBeGreaterThan(1000);
  });

  it.each([
    ['?format=csv', 'dataset'],
    ['?dataset=everything', 'dataset'],
    ['?dataset=eligible&format=xml', 'format'],
    ['?dataset=activations&from=2026-13-01', 'from'],
    ['?dataset=activations&to=yesterday', 'to'],
    ['?dataset=activations&from=2026-02-30', 'from'],
    ['?dataset=activations&from=2026-06-02&to=2026-06-01', 'from'],
    ['?dataset=activations&from=2024-01-01&to=2026-01-01', 'to'],
    ['?dataset=active&save=yes', 'save'],
    ['?dataset=active&datset=eligible', 'datset'],
  ])('answers 400 naming the parameter for %s, calling and writing nothing', async (query, parameter) => {
    const requestsBefore = world.graph.requests.length;
    const blobsBefore = await world.list(world.reports);
    const response = await call(query, 'inv-400');
    expect(response.status).toBe(400);
    expect(header(response, 'x-invocation-id')).toBe('inv-400');
    expect(response.jsonBody).toEqual({
      error: { code: 'BadParameter', parameter, message: expect.stringContaining(parameter) },
      invocationId: 'inv-400',
    });
    expect(world.graph.requests.length).toBe(requestsBefore);
    expect(await world.list(world.reports)).toEqual(blobsBefore);
  });

  it.each([
    [
      '?dataset=activations&from=2026-02-30',
      'from',
      'from is "2026-02-30", but 2026-02-30 is not a day of the calendar',
    ],
    ['?dataset=activations&to=2026-11-31', 'to', 'to is "2026-11-31", but 2026-11-31 is not a day of the calendar'],
    ['?dataset=activations&from=2026-2-3', 'from', 'from must be a date written YYYY-MM-DD, got "2026-2-3"'],
  ])('answers 400 saying why the date of %s is refused', async (query, parameter, message) => {
    const response = await call(query, 'inv-date');
    expect({ status: response.status, body: response.jsonBody }).toEqual({
      status: 400,
      body: { error: { code: 'BadParameter', parameter, message }, invocationId: 'inv-date' },
    });
  });

  it.each([
    ['eligible', 'from'],
    ['active', 'to'],
    ['unused', 'from'],
    ['role-settings', 'to'],
    ['azure-eligible', 'from'],
    ['azure-active', 'to'],
  ])(
    'answers 400 BadParameter to %s with %s: a dataset read as of now has no period, nothing is read or written',
    async (dataset, parameter) => {
      const requestsBefore = world.graph.requests.length;
      const blobsBefore = await world.list(world.reports);
      const response = await call(`?dataset=${dataset}&${parameter}=2026-11-01&save=true`, 'inv-live');
      expect({ status: response.status, body: response.jsonBody }).toEqual({
        status: 400,
        body: {
          error: {
            code: 'BadParameter',
            parameter,
            message: `${parameter} does not apply to ${dataset}, which is read as of now; a period applies to activations and azure-activations only`,
          },
          invocationId: 'inv-live',
        },
      });
      expect(world.graph.requests.length).toBe(requestsBefore);
      expect(await world.list(world.reports)).toEqual(blobsBefore);
    },
  );

  it("answers 502 with Graph's code on a Graph failure, never a stack trace", async () => {
    world.graph.inject({
      path: /roleEligibilitySchedules/,
      status: 403,
      times: 1,
      body: {
        error: { code: 'Authorization_RequestDenied', message: 'Insufficient privileges to complete the operation.' },
      },
    });
    const response = await call('?dataset=eligible', 'inv-502');
    expect(response.status).toBe(502);
    expect(response.jsonBody).toEqual({
      error: { code: 'Authorization_RequestDenied', message: expect.stringContaining('Insufficient privileges') },
      invocationId: 'inv-502',
    });
    expect(JSON.stringify(response.jsonBody)).not.toMatch(/\n\s+at |\.ts:\d+/);
    world.graph.clearFaults();
  });

  it('serves a month from its archived pack when the harvest no longer holds it', async () => {
    const month = new Date(now.getTime() - 45 * DAY).toISOString().slice(0, 7);
    const archived = await world.cli(['monthly', '--month', month]);
    expect(archived.code).toBe(0);
    // The harvest's files of that month are gone (say, cleared by hand): the pack is the only source.
    const container = world.blobs.getContainerClient(world.reports);
    const harvested = await world.list(world.reports, `state/activations/${month}/`);
    expect(harvested.length).toBeGreaterThan(0);
    for (const name of harvested) await container.getBlockBlobClient(name).delete();

    const from = `${month}-01`;
    const last = new Date(Date.parse(`${from}T00:00:00Z`) + 31 * DAY);
    const to = new Date(Date.UTC(last.getUTCFullYear(), last.getUTCMonth(), 0)).toISOString().slice(0, 10);
    const response = await call(`?dataset=activations&from=${from}&to=${to}`);
    expect(response.status).toBe(200);
    const rows = records(parseCsv(await body(response)));
    const expected = expectedActivations(
      tenant,
      new Date(`${from}T00:00:00Z`),
      new Date(Date.parse(`${to}T00:00:00Z`) + DAY),
    );
    expect(expected.length).toBeGreaterThan(30);
    expect(rows).toEqual(expected);
    expect(header(response, 'x-pim-uncovered')).toBeUndefined();
  });

  it('at most EXPORT_MAX_CONCURRENT (2 by default) exports at once per instance: the next is 429 with Retry-After; a slot frees when a body ends or is dropped', async () => {
    const first = await call('?dataset=eligible', 'inv-a');
    const second = await call('?dataset=active', 'inv-b');
    expect([first.status, second.status]).toEqual([200, 200]);
    const turnedAway = await call('?dataset=eligible', 'inv-c');
    expect(turnedAway.status).toBe(429);
    expect(header(turnedAway, 'retry-after')).toBe('30');
    expect(turnedAway.jsonBody).toEqual({
      error: { code: 'TooManyExports', message: expect.stringContaining('EXPORT_MAX_CONCURRENT') },
      invocationId: 'inv-c',
    });
    await body(first); // read to the end
    (second.body as Readable).destroy(); // the caller went away
    await new Promise((r) => setImmediate(r));
    const again = await call('?dataset=eligible', 'inv-d');
    const andAgain = await call('?dataset=active', 'inv-e');
    expect([again.status, andAgain.status]).toEqual([200, 200]);
    await Promise.all([body(again), body(andAgain)]);
    expect((await call('?dataset=active', 'inv-f')).status).toBe(200);
  });

  it('streams: the body is produced as it is read, not built whole first', async () => {
    const big = generateTenant({
      seed: 'export-big',
      now,
      users: 2000,
      groups: 20,
      eligible: 12000,
      active: 100,
      auditDays: 1,
    });
    const bigWorld = await startWorld(big, { email: 'none', pageSize: 1000 });
    try {
      bigWorld.useProcessEnv();
      const result = await runExport(
        jobContextFor(new InvocationContext({ logHandler: () => undefined })),
        parseExportRequest({ dataset: 'eligible', format: 'json' }, now),
      );
      const reader = result.body[Symbol.asyncIterator]();
      expect((await reader.next()).done).toBe(false);
      await new Promise((r) => setTimeout(r, 200));
      // Backpressure: rows are encoded as the reader takes them, not all ahead of it.
      const producedEarly = result.rows();
      let chunks = 1;
      while (!(await reader.next()).done) chunks++;
      expect(result.rows()).toBeGreaterThan(12000);
      expect(producedEarly).toBeLessThan(result.rows() / 10);
      expect(chunks).toBeGreaterThan(100);
    } finally {
      await bigWorld.stop();
      world.useProcessEnv();
    }
  });
});
