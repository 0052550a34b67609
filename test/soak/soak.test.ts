/**
 * docs/faults.md: The soak: sixty consecutive simulated days of the daily job (and the monthly job on the
 * 1st), with activations and assignment changes arriving every day, some of them late, and a fault
 * drawn at random (seeded: the same days every run) from Graph, Blob Storage and ACS, missed days
 * and a wrong clock. Then the invariants:
 *
 * - every activation exactly once across the final daily files, and in the monthly packs;
 * - at most one email per day, and exactly one for every final day;
 * - every failed day is a failed run (exit 1, one error line) and is caught up by a later run;
 * - every manifest matches its files; every pack verifies; each digest diffs against the last final day.
 */
import { generateTenant, pimSchedule, permanent } from '../../tools/tenant/generate';
import { Rng } from '../../tools/tenant/random';
import type { SimRoleSchedule } from '../../tools/tenant/model';
import { startBlobProxy, type BlobProxy } from '../support/blob-proxy';
import { expectedActivations } from '../support/expected';
import {
  ActivationFeed,
  addDays,
  Clock,
  csvRecordsOf,
  DAY_MS,
  dailyFilesProblems,
  duplicates,
  emailsPerDay,
  finalDays,
  folderOf,
  HOUR_MS,
  LogBook,
  manifestProblems,
} from '../support/faults';
import { startWorld, type World } from '../support/world';

const START = '2026-06-20';
const DAYS = 60;
const logs = new LogBook();

type Fault = (ctx: { world: World; proxy: BlobProxy; rng: Rng }) => { expectFailure: boolean; name: string };

/** What can go wrong on a day, and how often (the rest of the time: nothing). */
const FAULTS: Array<[number, Fault]> = [
  [
    0.06,
    ({ world }) => (
      world.graph.inject({ path: /roleEligibilitySchedules/, status: 429, retryAfterSeconds: 0, times: 2 }),
      { expectFailure: false, name: 'graph 429 x2' }
    ),
  ],
  [
    0.05,
    ({ world }) => (
      world.graph.inject({ path: /directoryAudits/, kind: 'reset', times: 1 }),
      { expectFailure: false, name: 'audit reset' }
    ),
  ],
  [
    0.04,
    ({ world }) => (
      world.graph.inject({ path: /directoryAudits/, kind: 'emptyPage', times: 1 }),
      { expectFailure: false, name: 'audit empty page' }
    ),
  ],
  [
    0.07,
    ({ world }) => (
      world.graph.inject({ path: /roleAssignmentSchedules/, status: 500, times: 1 }),
      { expectFailure: true, name: 'graph 500' }
    ),
  ],
  [
    0.05,
    ({ world }) => (
      world.graph.inject({ path: /directoryAudits/, status: 429, retryAfterSeconds: 0, times: 7 }),
      { expectFailure: true, name: 'audit 429 storm' }
    ),
  ],
  [
    0.07,
    ({ world }) => (
      world.email.inject({ on: 'send', status: 503, retryAfterSeconds: 0, times: 4 }),
      { expectFailure: true, name: 'acs 503' }
    ),
  ],
  [
    0.04,
    ({ world }) => (
      world.email.inject({
        on: 'operation',
        status: 'Failed',
        error: { code: 'EmailDroppedAllRecipientsSuppressed', message: 'Suppressed.' },
        times: 1,
      }),
      { expectFailure: true, name: 'acs Failed' }
    ),
  ],
  [
    0.12,
    ({ proxy, rng }) => (
      proxy.failOnce(rng.int(1, 17), { status: 403 }),
      { expectFailure: true, name: 'blob 403 at N' }
    ),
  ],
  [
    0.04,
    ({ proxy, rng }) => (
      proxy.failOnce(rng.int(1, 17), { status: 500 }),
      { expectFailure: false, name: 'blob 500 once' }
    ),
  ],
];

describe('soak: sixty days with random faults', () => {
  let world: World;
  let proxy: BlobProxy;

  afterAll(async () => {
    await proxy?.stop();
    await world?.stop();
  });

  it('loses nothing, doubles nothing, sends at most one email a day, and every failure is loud', async () => {
    const rng = new Rng('soak-days');
    const clock = new Clock(`${START}T06:00:00Z`);
    const tenant = generateTenant({
      seed: 'soak',
      now: clock.now(),
      users: 14,
      groups: 2,
      eligible: 10,
      active: 6,
      auditDays: 31,
      activationsPerDay: 2,
    });
    world = await startWorld(tenant, { auditRateLimit: { requests: 1000, perMs: 1000 }, now: clock.now });
    proxy = await startBlobProxy();
    logs.knowSecretsOf(world);
    const feed = new ActivationFeed(world, 'soak-feed');

    const run = async (args: string[]) => {
      const result = await world.cli(args, { REPORTS_STORAGE_CONNECTION_STRING: proxy.connectionString });
      logs.add(result.stderr, result.stdout);
      if (result.code !== 0) {
        // Loud and clear: exit 1 and exactly one reason, naming what failed; no stack trace.
        const errors = result.stderr
          .split('\n')
          .filter((l) => / error: /.test(l) && !/was not sent; it stays queued/.test(l));
        expect([args.join(' '), result.code, errors.length]).toEqual([args.join(' '), 1, 1]);
        expect(errors[0]).toMatch(/Graph|Blob Storage|digest email failed/);
        expect(result.stderr).not.toMatch(/\n\s+at /);
      }
      proxy.clear();
      world.graph.clearFaults();
      world.email.clearFaults();
      return result;
    };

    /** Schedule ids a digest counts (direct, not activated), as they are when a day runs. */
    const countedSchedules = () =>
      new Set(
        [...world.graph.tenant.eligibilitySchedules, ...world.graph.tenant.assignmentSchedules]
          .filter((s) => s.memberType.toLowerCase() === 'direct' && s.assignmentType !== 'Activated')
          .map((s) => s.id),
      );
    const schedulesOfDay = new Map<string, Set<string>>();
    // The order days became final in: a digest diffs against the newest day final before it.
    const finalizedOrder: string[] = [];
    const noteFinalDays = async () => {
      for (const d of await finalDays(world)) if (!finalizedOrder.includes(d)) finalizedOrder.push(d);
    };
    const failedRuns: string[] = [];
    /** The day each month's pack was written: never before the 2nd. */
    const sealedOn = new Map<string, string>();
    const history: string[] = [];
    let firstNow: Date | undefined;
    let lastNow = clock.now();
    let day = START;
    let sealDue: string | undefined;
    let sealFrom = Infinity;
    let sealFailed = false;

    for (let i = 0; i < DAYS; i++, day = addDays(day, 1)) {
      const now = clock.set(new Date(Date.parse(`${day}T06:00:00Z`) + rng.int(0, 40) * 60_000));
      // New activations that reached Graph just after yesterday's run, although their events happened
      // up to a day before it (audit records reach Graph late): most are older than that run.
      if (i > 0) feed.add(new Date(lastNow.getTime() - 24 * HOUR_MS + 60_000), now, rng.int(0, 4));
      // Assignment changes: a new eligible assignment now and then, and one removed.
      if (rng.chance(0.3)) {
        const user = rng.pick(world.graph.tenant.users);
        const role = rng.pick(world.graph.tenant.roleDefinitions);
        const created = new Date(now.getTime() - rng.int(1, 20) * HOUR_MS).toISOString();
        world.graph.tenant.eligibilitySchedules.push(
          pimSchedule({
            id: rng.guid(),
            principalId: user.id,
            roleDefinitionId: role.id,
            directoryScopeId: '/',
            scheduleInfo: permanent(created),
          }) as SimRoleSchedule,
        );
      }
      if (rng.chance(0.12))
        world.graph.tenant.eligibilitySchedules.splice(
          rng.int(0, world.graph.tenant.eligibilitySchedules.length - 1),
          1,
        );
      world.graph.setTenant(world.graph.tenant);

      // The monthly timer at 03:00 on the 1st: too early to seal the month just ended (its last events
      // may reach Graph until the 2nd), so it writes no pack and says so; the first daily run after
      // the month's end plus the overlap writes it (its first attempt is made to fail part-way).
      if (day.endsWith('-01')) {
        const month = addDays(day, -1).slice(0, 7);
        const monthly = await run(['monthly', '--now', clock.set(`${day}T03:00:00Z`).toISOString()]);
        history.push(`${day} monthly -> ${monthly.code}`);
        expect([day, monthly.code, monthly.stderr.includes(`${month} is not sealed yet`)]).toEqual([day, 0, true]);
        expect(await world.read(world.archive, `monthly/${month}/manifest.json`)).toBeUndefined();
        sealDue = month;
        sealFrom = Date.parse(`${day}T00:00:00Z`) + DAY_MS; // the month's end plus the default overlap
        clock.set(now);
      }

      // The host was down: no run at all today.
      if (i > 0 && i < DAYS - 1 && rng.chance(0.05)) {
        history.push(`${day} skipped`);
        continue;
      }
      // A wrong clock now and then: a run that believes it is two days earlier.
      if (i > 2 && rng.chance(0.04)) {
        const behind = new Date(now.getTime() - 2 * DAY_MS);
        schedulesOfDay.set(addDays(day, -2), schedulesOfDay.get(addDays(day, -2)) ?? countedSchedules());
        if (!(await world.read(world.reports, `${folderOf(addDays(day, -2))}manifest.json`)))
          schedulesOfDay.set(addDays(day, -2), countedSchedules());
        const stray = await run(['daily', '--now', behind.toISOString()]);
        await noteFinalDays();
        expect([day, stray.stderr]).toEqual([
          day,
          expect.stringMatching(/is earlier than the stored watermark|is complete already/),
        ]);
        history.push(`${day} clock-behind -> ${stray.code}`);
      }

      let roll = rng.next();
      let fault: ReturnType<Fault> | undefined;
      // The first run that seals a month fails at one of its archive writes; the next one completes the pack.
      if (sealDue && now.getTime() >= sealFrom && !sealFailed) {
        let archiveWrites = 0;
        const failAt = rng.int(1, 4);
        proxy.onWrite = (w) =>
          w.url.includes(`/${world.archive}/`) && ++archiveWrites === failAt ? { status: 403 } : 'pass';
        fault = { expectFailure: true, name: `seal ${sealDue}: archive write ${failAt} refused` };
        sealFailed = true;
      } else if (i > 0 && i < DAYS - 1) {
        for (const [p, make] of FAULTS) {
          if (roll < p) {
            fault = make({ world, proxy, rng });
            break;
          }
          roll -= p;
        }
      }
      schedulesOfDay.set(day, countedSchedules());
      const writes = proxy.writes.length;
      const result = await run(['daily', '--now', now.toISOString()]);
      const hit = proxy.writes.slice(writes).find((w) => w.action !== 'pass');
      if (hit) history.push(`${day} ${hit.method} ${hit.blob} ${JSON.stringify(hit.action)}`);
      await noteFinalDays();
      history.push(`${day} ${fault?.name ?? '-'} -> ${result.code}`);
      if (sealDue && (await world.read(world.archive, `monthly/${sealDue}/manifest.json`))) {
        sealedOn.set(sealDue, day);
        sealDue = undefined;
        sealFailed = false;
      }
      if (!fault?.expectFailure) expect([day, fault?.name, result.code]).toEqual([day, fault?.name, 0]);
      if (result.code !== 0) {
        failedRuns.push(day);
        // Sometimes someone re-runs it the same day.
        if (rng.chance(0.3)) {
          const again = await run(['daily', '--now', now.toISOString()]);
          expect([day, 'rerun', again.code]).toEqual([day, 'rerun', 0]);
          await noteFinalDays();
        }
      } else if (rng.chance(0.05)) {
        // A second run of a good day: nothing rewritten, nothing sent.
        const sent = world.email.sent.length;
        const again = await run(['daily', '--now', now.toISOString()]);
        expect([day, again.code, again.stderr.includes('is complete already'), world.email.sent.length]).toEqual([
          day,
          0,
          true,
          sent,
        ]);
      }
      firstNow ??= now;
      lastNow = now;
    }
    // The month of the last days is archived by a final catch-up run of the monthly job.
    const end = clock.set(`${addDays(day, 1)}T03:00:00Z`);
    expect((await run(['monthly', '--now', end.toISOString()])).code).toBe(0);

    if (process.env.PIM_SOAK_HISTORY) process.stderr.write(`${history.join('\n')}\n`);
    // Some of everything happened.
    expect(failedRuns.length).toBeGreaterThanOrEqual(8);
    expect(history.filter((h) => h.includes('skipped')).length).toBeGreaterThanOrEqual(1);
    expect(history.filter((h) => / seal \d{4}-\d{2}: .* -> 1$/.test(h)).length).toBeGreaterThanOrEqual(1);
    // Each month sealed by a daily run on or after the 2nd, once the harvest covered its end plus a day.
    expect([...sealedOn.keys()]).toEqual(['2026-06', '2026-07']);
    for (const [month, d] of sealedOn)
      expect([month, d >= `${addDays(`${month}-01`, 32).slice(0, 7)}-02`]).toEqual([month, true]);

    // 1. Every activation exactly once across the final daily files (Graph's 30 days before the first run, to the last).
    const coverage = new Date(firstNow!.getTime() - 30 * DAY_MS);
    expect(await dailyFilesProblems(world, coverage, lastNow)).toEqual({
      missing: [],
      doubled: [],
      extra: [],
      different: [],
    });

    // 2. At most one email per day; exactly one for each final day, none for a day that never became final.
    const finals = await finalDays(world);
    const emails = emailsPerDay(world);
    expect([...emails].filter(([, n]) => n > 1)).toEqual([]);
    expect(finals.filter((d) => emails.get(d) !== 1)).toEqual([]);
    expect([...emails.keys()].filter((d) => !finals.includes(d))).toEqual([]);
    expect(await world.list(world.reports, 'state/outbox/')).toEqual([]);

    // 3. Every failed day is caught up: a later day is final, and nothing it harvested is missing (1).
    for (const failed of failedRuns.filter((f) => !f.endsWith('monthly')))
      expect([failed, finals.some((d) => d >= failed)]).toEqual([failed, true]);

    // 4. Every final day's manifest matches its files, and its digest diffs against the newest day
    //    that was final before it: a change is reported once, even across failed days.
    expect([...finalizedOrder].sort()).toEqual(finals);
    for (const d of finals) {
      expect([d, await manifestProblems(world, world.reports, folderOf(d))]).toEqual([d, []]);
      const manifest = JSON.parse((await world.read(world.reports, `${folderOf(d)}manifest.json`))!);
      const earlier = finalizedOrder
        .slice(0, finalizedOrder.indexOf(d))
        .filter((e) => e < d)
        .sort();
      if (earlier.length === 0) continue;
      const baseline = earlier[earlier.length - 1];
      expect([d, manifest.digest.baseline]).toEqual([d, { kind: 'previous', day: baseline }]);
      const [before, after] = [schedulesOfDay.get(baseline)!, schedulesOfDay.get(d)!];
      expect([d, manifest.digest.new, manifest.digest.removed]).toEqual([
        d,
        [...after].filter((id) => !before.has(id)).length,
        [...before].filter((id) => !after.has(id)).length,
      ]);
    }

    // 5. The monthly packs: each verifies and holds its month's activations exactly once.
    const months = (await world.list(world.archive, 'monthly/'))
      .filter((n) => n.endsWith('/manifest.json'))
      .map((n) => n.split('/')[1]);
    expect(months).toEqual(['2026-05', '2026-06', '2026-07']);
    for (const month of months) {
      expect([month, (await run(['verify', '--month', month])).code]).toEqual([month, 0]);
      const start = new Date(`${month}-01T00:00:00Z`);
      const next = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
      const pack = await csvRecordsOf(world, world.archive, `monthly/${month}/activations.csv`);
      expect([month, duplicates(pack)]).toEqual([month, []]);
      const expected = expectedActivations(
        world.graph.tenant,
        start > coverage ? start : coverage,
        next < lastNow ? next : lastNow,
      );
      expect([month, pack.length]).toEqual([month, expected.length]);
      expect(pack).toEqual(expected);
      const manifest = JSON.parse((await world.read(world.archive, `monthly/${month}/manifest.json`))!);
      expect([month, manifest.activations.complete]).toEqual([month, start >= coverage]);
    }

    // 6. No secret in any of the ~100 runs' logs.
    expect(logs.leaks()).toEqual([]);
  }, 240_000);
});
