/**
 * Issue 4, end to end: the monthly compliance pack outlives Graph's 30-day audit retention, is
 * written once, completes after a crash without duplicates, and `verify` catches a changed byte.
 */
import { InvocationContext, type Timer } from '@azure/functions';
import { monthlyArchive } from '../../src/functions/monthlyArchive';
import { CISA_PRIVILEGED_ROLES } from '../../src/settings';
import { generateTenant } from '../../tools/tenant/generate';
import type { SimTenant } from '../../tools/tenant/model';
import { expectedActivations, expectedAssignmentRows } from '../support/expected';
import { records, startWorld, type World } from '../support/world';

const DAY = 86400000;
const timer: Timer = { isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };

describe('the monthly archive', () => {
  let world: World;
  let tenant: SimTenant;
  const nov20 = new Date('2026-11-20T03:00:00Z');

  async function daily(when: Date) {
    world.graph.setNow(() => when);
    const run = await world.cli(['daily', '--now', when.toISOString()]);
    if (run.code !== 0) throw new Error(run.stderr);
  }

  async function monthly(when: Date, args: string[] = []) {
    world.graph.setNow(() => when);
    return world.cli(['monthly', '--now', when.toISOString(), ...args]);
  }

  beforeEach(async () => {
    tenant = generateTenant({ seed: 'october', now: nov20, users: 50, groups: 5, eligible: 60, active: 30, auditDays: 70, activationsPerDay: 3 });
    world = await startWorld(tenant, { email: 'none', auditRateLimit: { requests: 1000, perMs: 10000 } });
    // Daily runs with gaps through September to November: October lives only in the harvest by 20 November.
    for (const iso of ['2026-09-28', '2026-10-09', '2026-10-22', '2026-11-03', '2026-11-15']) await daily(new Date(`${iso}T06:00:00Z`));
  });
  afterEach(async () => world?.stop());

  it("October's pack, built on 20 November, has every October activation exactly once and nothing else", async () => {
    const run = await monthly(nov20, ['--month', '2026-10']);
    expect(run.code).toBe(0);
    const folder = 'monthly/2026-10/';
    expect(await world.list(world.archive, folder)).toEqual(
      ['activations.csv', 'active-assignments.csv', 'eligible-assignments.csv', 'manifest.json'].map((f) => folder + f),
    );
    // Graph no longer holds 1 to 20 October at this point.
    const graphHolds = new Date(nov20.getTime() - 30 * DAY);
    expect(graphHolds.toISOString() > '2026-10-20').toBe(true);

    const expected = expectedActivations(tenant, new Date('2026-10-01T00:00:00Z'), new Date('2026-11-01T00:00:00Z'));
    expect(expected.length).toBeGreaterThan(60);
    const rows = records(await world.csv(world.archive, `${folder}activations.csv`));
    expect(rows).toEqual(expected);
    expect(new Set(rows.map((r) => r['Audit Id'])).size).toBe(rows.length);

    const assignments = expectedAssignmentRows(tenant, { privilegedRoleIds: new Set(Object.keys(CISA_PRIVILEGED_ROLES)) });
    expect(records(await world.csv(world.archive, `${folder}eligible-assignments.csv`))).toEqual(assignments.eligible);

    const manifest = JSON.parse((await world.read(world.archive, `${folder}manifest.json`))!);
    expect(manifest).toMatchObject({
      kind: 'monthly',
      month: '2026-10',
      periodStartUtc: '2026-10-01T00:00:00.000Z',
      periodEndUtc: '2026-11-01T00:00:00.000Z',
      activations: { count: expected.length, complete: true, gaps: [] },
    });
    expect(manifest.appVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(manifest.files.find((f: { name: string }) => f.name === 'activations.csv').rows).toBe(expected.length);

    expect((await world.cli(['verify', '--month', '2026-10'])).code).toBe(0);
  });

  it('a second run changes nothing; a changed byte makes verify fail and name the file', async () => {
    expect((await monthly(nov20, ['--month', '2026-10'])).code).toBe(0);
    const folder = 'monthly/2026-10/';
    const names = await world.list(world.archive, folder);
    const container = world.blobs.getContainerClient(world.archive);
    const etags = await Promise.all(names.map(async (n) => (await container.getBlockBlobClient(n).getProperties()).etag));

    const again = await monthly(new Date(nov20.getTime() + 3 * DAY), ['--month', '2026-10']);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('archived already');
    expect(await Promise.all(names.map(async (n) => (await container.getBlockBlobClient(n).getProperties()).etag))).toEqual(etags);

    for (const name of ['activations.csv', 'eligible-assignments.csv', 'active-assignments.csv']) {
      const blob = container.getBlockBlobClient(folder + name);
      const original = await blob.downloadToBuffer();
      const tampered = Buffer.from(original);
      tampered[tampered.length - 5] ^= 0x01; // one bit of one byte
      await blob.upload(tampered, tampered.length);
      const check = await world.cli(['verify', '--month', '2026-10']);
      expect(check.code).toBe(1);
      expect(check.stderr).toContain(`${folder}${name} does not match the manifest`);
      await blob.upload(original, original.length);
    }
    // Bytes that are not CSV at all (a quote never closed) are a mismatch too, not a failure to parse.
    const planted = container.getBlockBlobClient(`${folder}activations.csv`);
    const original = await planted.downloadToBuffer();
    await planted.upload(Buffer.from('"never closed\r\n'), 15);
    const check = await world.cli(['verify', '--month', '2026-10']);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain(`${folder}activations.csv does not match the manifest`);
    await planted.upload(original, original.length);
    expect((await world.cli(['verify', '--month', '2026-10'])).code).toBe(0);
    expect((await world.cli(['verify', '--month', '2026-09'])).code).toBe(1);
  });

  it('completes a pack a crash left half-written, keeping what was written', async () => {
    expect((await monthly(nov20, ['--month', '2026-10'])).code).toBe(0);
    const folder = 'monthly/2026-10/';
    const container = world.blobs.getContainerClient(world.archive);
    const eligible = await container.getBlockBlobClient(`${folder}eligible-assignments.csv`).getProperties();
    // What a run killed after its first blob leaves: one CSV, no manifest.
    await container.getBlockBlobClient(`${folder}manifest.json`).delete();
    await container.getBlockBlobClient(`${folder}active-assignments.csv`).delete();
    await container.getBlockBlobClient(`${folder}activations.csv`).delete();

    // The tenant moved on meanwhile; the kept file is not rewritten, the manifest describes it as stored.
    tenant.eligibilitySchedules.pop();
    world.graph.setTenant(tenant);
    const run = await monthly(new Date(nov20.getTime() + DAY), ['--month', '2026-10']);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('already written by an earlier run');
    expect((await container.getBlockBlobClient(`${folder}eligible-assignments.csv`).getProperties()).etag).toBe(eligible.etag);
    expect(await world.list(world.archive, folder)).toHaveLength(4);
    expect((await world.cli(['verify', '--month', '2026-10'])).code).toBe(0);
    const rows = records(await world.csv(world.archive, `${folder}activations.csv`));
    expect(rows).toEqual(expectedActivations(tenant, new Date('2026-10-01T00:00:00Z'), new Date('2026-11-01T00:00:00Z')));
  });

  it('catches up every complete month the harvest covers', async () => {
    await daily(new Date('2026-12-01T06:00:00Z'));
    const run = await monthly(new Date('2026-12-02T03:00:00Z'));
    expect(run.code).toBe(0);
    const months = (await world.list(world.archive, 'monthly/')).filter((n) => n.endsWith('manifest.json'));
    // The first harvest (28 September) reached back to 29 August: August to November are packed.
    expect(months).toEqual(['2026-08', '2026-09', '2026-10', '2026-11'].map((m) => `monthly/${m}/manifest.json`));
    const august = JSON.parse((await world.read(world.archive, 'monthly/2026-08/manifest.json'))!);
    expect(august.activations.complete).toBe(false);
    expect(august.activations.gaps[0]).toMatchObject({ fromUtc: '2026-08-01T00:00:00.000Z' });
    const november = JSON.parse((await world.read(world.archive, 'monthly/2026-11/manifest.json'))!);
    expect(november.activations.complete).toBe(true);
    const novRows = records(await world.csv(world.archive, 'monthly/2026-11/activations.csv'));
    expect(novRows.map((r) => r['Audit Id']).sort()).toEqual(
      expectedActivations(tenant, new Date('2026-11-01T00:00:00Z'), new Date('2026-12-01T00:00:00Z'))
        .map((r) => r['Audit Id'])
        .sort(),
    );
    // Nothing left to do the next day.
    const next = await monthly(new Date('2026-12-03T03:00:00Z'));
    expect(next.stderr).toContain('archived nothing new');
  });

  it('runs from the timer, as of the clock', async () => {
    world.useProcessEnv();
    world.graph.setNow(() => new Date());
    await monthlyArchive(timer, new InvocationContext({ invocationId: 'monthly-1', functionName: 'monthlyArchive', logHandler: () => undefined }));
    const now = new Date();
    const previous = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
    expect(await world.read(world.archive, `monthly/${previous}/manifest.json`)).toBeDefined();
  });
});
