/**
 * End to end (docs/files.md, "manifest.json (monthly)"; docs/guarantees.md): the monthly compliance pack outlives Graph's 30-day audit retention, is
 * written once, completes after a crash without duplicates, and `verify` catches a changed byte.
 */
import { InvocationContext, type Timer } from '@azure/functions';
import { monthlyArchive } from '../../src/functions/monthlyArchive';
import { CISA_PRIVILEGED_ROLES } from '../../src/pim/roles';
import { generateTenant, permanent, pimSchedule } from '../../tools/tenant/generate';
import type { SimRoleSchedule, SimTenant } from '../../tools/tenant/model';
import { expectedActivations, expectedAssignmentRows } from '../support/expected';
import { ActivationFeed } from '../support/faults';
import { records, startWorld, type World } from '../support/world';

const DAY = 86400000;
const timer: Timer = {
  isPastDue: false,
  schedule: { adjustForDST: false },
  scheduleStatus: { last: '', next: '', lastUpdated: '' },
};

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
    tenant = generateTenant({
      seed: 'october',
      now: nov20,
      users: 50,
      groups: 5,
      eligible: 60,
      active: 30,
      auditDays: 70,
      activationsPerDay: 3,
    });
    world = await startWorld(tenant, { email: 'none', auditRateLimit: { requests: 1000, perMs: 10000 } });
    // Daily runs with gaps through September to November: October lives only in the harvest by 20 November.
    for (const iso of ['2026-09-28', '2026-10-09', '2026-10-22', '2026-11-03', '2026-11-15'])
      await daily(new Date(`${iso}T06:00:00Z`));
  });
  afterEach(async () => world?.stop());

  it("October's pack, built on 20 November, has every October activation exactly once and nothing else", async () => {
    const run = await monthly(nov20, ['--month', '2026-10']);
    expect(run.code).toBe(0);
    const folder = 'monthly/2026-10/';
    expect(await world.list(world.archive, folder)).toEqual(
      [
        'activations.csv',
        'active-assignments.csv',
        'eligible-assignments.csv',
        'manifest.json',
        'role-settings.csv',
        'unused-eligibilities.csv',
      ].map((f) => folder + f),
    );
    // Graph no longer holds 1 to 20 October at this point.
    const graphHolds = new Date(nov20.getTime() - 30 * DAY);
    expect(graphHolds.toISOString() > '2026-10-20').toBe(true);

    const expected = expectedActivations(tenant, new Date('2026-10-01T00:00:00Z'), new Date('2026-11-01T00:00:00Z'));
    expect(expected.length).toBeGreaterThan(60);
    const rows = records(await world.csv(world.archive, `${folder}activations.csv`));
    expect(rows).toEqual(expected);
    expect(new Set(rows.map((r) => r['Audit Id'])).size).toBe(rows.length);

    const assignments = expectedAssignmentRows(tenant, {
      privilegedRoleIds: new Set(Object.keys(CISA_PRIVILEGED_ROLES)),
    });
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
    const etags = await Promise.all(
      names.map(async (n) => (await container.getBlockBlobClient(n).getProperties()).etag),
    );

    const again = await monthly(new Date(nov20.getTime() + 3 * DAY), ['--month', '2026-10']);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('archived already');
    expect(
      await Promise.all(names.map(async (n) => (await container.getBlockBlobClient(n).getProperties()).etag)),
    ).toEqual(etags);

    for (const name of ['activations.csv', 'eligible-assignments.csv', 'active-assignments.csv', 'role-settings.csv']) {
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
    expect((await world.cli(['verify', '--month', '2026-07'])).code).toBe(1);
  });

  /** What a run killed after its first blob leaves: one CSV, no manifest. */
  async function halfWritten(): Promise<{ folder: string; kept: string }> {
    expect((await monthly(nov20, ['--month', '2026-10'])).code).toBe(0);
    const folder = 'monthly/2026-10/';
    const container = world.blobs.getContainerClient(world.archive);
    const kept = (await container.getBlockBlobClient(`${folder}eligible-assignments.csv`).getProperties()).etag!;
    await container.getBlockBlobClient(`${folder}manifest.json`).delete();
    await container.getBlockBlobClient(`${folder}active-assignments.csv`).delete();
    await container.getBlockBlobClient(`${folder}activations.csv`).delete();
    return { folder, kept };
  }

  it('completes a pack a crash left half-written: the file already there has exactly the bytes it would write', async () => {
    const { folder, kept } = await halfWritten();
    const container = world.blobs.getContainerClient(world.archive);
    const run = await monthly(new Date(nov20.getTime() + DAY), ['--month', '2026-10']);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(
      `${folder}eligible-assignments.csv was already written by an earlier run, with exactly these bytes; kept`,
    );
    expect((await container.getBlockBlobClient(`${folder}eligible-assignments.csv`).getProperties()).etag).toBe(kept);
    expect(await world.list(world.archive, folder)).toHaveLength(6);
    expect((await world.cli(['verify', '--month', '2026-10'])).code).toBe(0);
    const rows = records(await world.csv(world.archive, `${folder}activations.csv`));
    expect(rows).toEqual(
      expectedActivations(tenant, new Date('2026-10-01T00:00:00Z'), new Date('2026-11-01T00:00:00Z')),
    );
  });

  it('never certifies a file it would not write: a planted activations.csv stops the run naming it, and no manifest is written; then completes with the assignments it first took, though the tenant changed since', async () => {
    const { folder, kept } = await halfWritten();
    const container = world.blobs.getContainerClient(world.archive);
    // Someone puts an activations file of their own where the pack's goes (one row left out).
    const honest = expectedActivations(tenant, new Date('2026-10-01T00:00:00Z'), new Date('2026-11-01T00:00:00Z'));
    expect(honest.length).toBeGreaterThan(1);
    const planted = Buffer.from(
      `\ufeffAudit Id\r\n${honest
        .slice(1)
        .map((r) => r['Audit Id'])
        .join('\r\n')}\r\n`,
      'utf8',
    );
    await container.getBlockBlobClient(`${folder}activations.csv`).upload(planted, planted.length);
    const run = await monthly(new Date(nov20.getTime() + DAY), ['--month', '2026-10']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      new RegExp(
        `error: ${world.archive}/${folder}activations\\.csv is already in the archive but is not what this app writes there`,
      ),
    );
    expect(await world.read(world.archive, `${folder}manifest.json`)).toBeUndefined();

    // The planted file removed, and the assignments changed meanwhile: the pack is completed with
    // the assignments this run took (kept under state/ until the manifest), not today's.
    await container.getBlockBlobClient(`${folder}activations.csv`).delete();
    addEligible();
    const later = await monthly(new Date(nov20.getTime() + 2 * DAY), ['--month', '2026-10']);
    expect(later.code).toBe(0);
    expect(later.stderr).toContain('completing the pack with the assignments an earlier run took at');
    expect((await container.getBlockBlobClient(`${folder}eligible-assignments.csv`).getProperties()).etag).toBe(kept);
    expect((await world.cli(['verify', '--month', '2026-10'])).code).toBe(0);
    expect(records(await world.csv(world.archive, `${folder}activations.csv`))).toEqual(honest);
    expect(await world.list(world.reports, 'state/packs/')).toEqual([]);
  });

  it('never certifies a kept file whose bytes no longer match: a half-written pack with no kept assignments, and a tenant that changed, stops naming the file', async () => {
    const { folder } = await halfWritten();
    addEligible();
    const run = await monthly(new Date(nov20.getTime() + DAY), ['--month', '2026-10']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      new RegExp(
        `error: ${world.archive}/${folder}eligible-assignments\\.csv is already in the archive but is not what this app writes there`,
      ),
    );
    expect(await world.read(world.archive, `${folder}manifest.json`)).toBeUndefined();
  });

  /** A new eligible assignment: the tenant's snapshot is no longer what it was. */
  function addEligible() {
    const [user, role] = [tenant.users[0], tenant.roleDefinitions[0]];
    tenant.eligibilitySchedules.push(
      pimSchedule({
        id: '0d0d0d0d-0000-4000-8000-000000000001',
        principalId: user.id,
        roleDefinitionId: role.id,
        directoryScopeId: '/',
        scheduleInfo: permanent('2026-11-20T10:00:00Z'),
      }) as SimRoleSchedule,
    );
    world.graph.setTenant(tenant);
  }

  it('seals a month only once the harvest covers its end plus the overlap: not at 03:00 on the 1st, but the first daily run after', async () => {
    await daily(new Date('2026-11-30T06:00:00Z'));
    const run = await monthly(new Date('2026-12-01T03:00:00Z'));
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(
      '2026-11 is not sealed yet: its pack is written once the harvest covers 2026-12-02T00:00:00.000Z',
    );
    expect(run.stderr).toContain('not sealed yet: 2026-11');
    expect(await world.list(world.archive, 'monthly/2026-11/')).toEqual([]);
    // Asked for by name, too: said so, exit 0, nothing written.
    const named = await monthly(new Date('2026-12-01T03:00:00Z'), ['--month', '2026-11']);
    expect([named.code, named.stderr.includes('2026-11 is not sealed yet')]).toEqual([0, true]);
    expect(await world.list(world.archive, 'monthly/2026-11/')).toEqual([]);
    // An activation of 30 November, 22:00 that reaches Graph only after that, on the 1st: late, but in the pack.
    const before = world.graph.tenant.directoryAudits.length;
    new ActivationFeed(world, 'late-for-the-month').add('2026-11-30T22:00:00Z', '2026-11-30T22:01:00Z', 1);
    expect(world.graph.tenant.directoryAudits.length).toBeGreaterThan(before);
    // The daily run of the 1st has not covered the month's end plus the overlap either; the 2nd's writes it.
    await daily(new Date('2026-12-01T06:00:00Z'));
    expect(await world.list(world.archive, 'monthly/2026-11/')).toEqual([]);
    await daily(new Date('2026-12-02T06:00:00Z'));
    const manifest = JSON.parse((await world.read(world.archive, 'monthly/2026-11/manifest.json'))!);
    expect(manifest.activations.complete).toBe(true);
    expect((await world.cli(['verify', '--month', '2026-11'])).code).toBe(0);
    const rows = records(await world.csv(world.archive, 'monthly/2026-11/activations.csv'));
    const expected = expectedActivations(
      world.graph.tenant,
      new Date('2026-11-01T00:00:00Z'),
      new Date('2026-12-01T00:00:00Z'),
    );
    expect(expected.some((r) => r['Activated (UTC)']?.startsWith('2026-11-30 22:'))).toBe(true);
    expect(rows).toEqual(expected);
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
    await monthlyArchive(
      timer,
      new InvocationContext({ invocationId: 'monthly-1', functionName: 'monthlyArchive', logHandler: () => undefined }),
    );
    const now = new Date();
    const previous = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
    // Sealed once the harvest covers the month's end plus the overlap (24 h by default).
    const sealed = now.getTime() >= Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 2);
    expect(await world.read(world.archive, `monthly/${previous}/manifest.json`)).toEqual(
      sealed ? expect.any(String) : undefined,
    );
  });
});
