/**
 * docs/faults.md: A clock earlier than the stored watermark (a host with a wrong clock, or a backfill run
 * with --now in the past): the run says so, harvests nothing and keeps the watermark where it was,
 * so the next run with a right clock neither re-reports nor skips anything.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { generateTenant } from '../../tools/tenant/generate';
import { ActivationFeed, addDays, at, Clock, DAY_MS, dailyFilesProblems, LogBook } from '../support/faults';
import { startWorld, type World } from '../support/world';

const DAY = '2026-11-20';
const logs = new LogBook();

describe('a clock behind the watermark', () => {
  let world: World;
  const clock = new Clock(at(DAY));
  afterAll(async () => {
    await world?.stop();
    expect(logs.leaks()).toEqual([]);
  });

  it('harvests nothing, keeps the watermark, and the next right run loses and doubles nothing', async () => {
    world = await startWorld(
      generateTenant({
        seed: 'clock',
        now: new Date(at(DAY)),
        users: 15,
        groups: 2,
        eligible: 10,
        active: 6,
        auditDays: 31,
        activationsPerDay: 3,
      }),
      {
        auditRateLimit: { requests: 1000, perMs: 1000 },
        now: clock.now,
      },
    );
    logs.knowSecretsOf(world);
    const feed = new ActivationFeed(world, 'clock');
    const run = async (now: string) => {
      const result = await world.cli(['daily', '--now', now]);
      logs.add(result.stderr, result.stdout);
      return result;
    };
    expect((await run(at(DAY))).code).toBe(0);
    const watermark = await world.read(world.reports, 'state/activations-watermark.json');

    // Two days behind: the simulator's clock too, as the host's would be.
    const behind = at(addDays(DAY, -2));
    clock.set(behind);
    const audits = () => world.graph.requests.filter((r) => r.path.endsWith('/directoryAudits')).length;
    const before = audits();
    const late = await run(behind);
    expect(late.code).toBe(0);
    expect(late.stderr).toMatch(
      /warning: The clock \(2026-11-18T06:00:00\.000Z\) is earlier than the stored watermark \(2026-11-20T06:00:00\.000Z\); no activation is harvested and the watermark is kept/,
    );
    expect(audits()).toBe(before);
    expect(await world.read(world.reports, 'state/activations-watermark.json')).toBe(watermark);

    // The clock is right again; new activations, some late.
    const next = addDays(DAY, 1);
    clock.set(at(next));
    feed.add(at(DAY, 1), at(next), 6);
    expect((await run(at(next))).code).toBe(0);
    const problems = await dailyFilesProblems(world, new Date(Date.parse(at(DAY)) - 30 * DAY_MS), new Date(at(next)));
    expect(problems).toEqual({ missing: [], doubled: [], extra: [], different: [] });
  });
});

describe('a --now that names no moment of the calendar', () => {
  let world: World;
  afterAll(async () => {
    await world?.stop();
  });

  it('a backfill of a day that does not exist (29 February of a common year, 31 November, 24:00) stops with usage, writing and reading nothing', async () => {
    world = await startWorld(
      generateTenant({ seed: 'clock-typo', now: new Date(at(DAY)), users: 5, groups: 1, eligible: 3, active: 2 }),
      { now: () => new Date(at(DAY)) },
    );
    // Date.parse rolls these over to another day (2025-03-01, 2026-12-01, 2026-11-21): a typo in a
    // backfill would write and make final the report of a day nobody asked for, and move the watermark.
    for (const now of ['2025-02-29T06:00:00Z', '2026-11-31T06:00:00Z', '2026-11-20T24:00:00Z']) {
      const before = world.graph.requests.length;
      const run = await world.cli(['daily', '--now', now]);
      const said = run.stderr.split('\n').filter((l) => /Daily run|error/.test(l));
      expect({ now, code: run.code, said }).toEqual({ now, code: 2, said: [expect.stringContaining('--now must be')] });
      expect(run.stderr).toContain(`--now must be an ISO time with a zone, such as 2026-11-24T06:00:00Z, got "${now}"`);
      expect(world.graph.requests.length).toBe(before);
    }
    expect(await world.list(world.reports)).toEqual([]);
    // A real leap day is a day like any other.
    const leap = await world.cli(['export', '--dataset', 'activations', '--now', '2028-02-29T06:00:00Z', '--out', '-']);
    expect(leap.stderr).not.toContain('--now must be');
  });
});

describe("a machine whose clock is not in UTC (a laptop's CLI run)", () => {
  it('reads a Graph time written without a zone as UTC, as Graph means it', () => {
    // The built module in a process of its own: a zone set inside a test's process does not reach Date.parse.
    const model = path.resolve(__dirname, '../../dist/src/pim/model.js');
    const script = `const { isoTime } = require(${JSON.stringify(model)});
      process.stdout.write(JSON.stringify([
        isoTime('2024-12-16T16:32:15.8441686'),
        isoTime('2024-12-16T16:32'),
        isoTime('2024-12-16T16:32:15+02:00'),
        new Date(2024, 11, 16).getTimezoneOffset(),
      ]));`;
    const out = JSON.parse(
      execFileSync(process.execPath, ['-e', script], {
        env: { PATH: process.env.PATH, TZ: 'America/New_York' },
      }).toString(),
    ) as [string, string, string, number];
    expect(out[3]).toBe(300); // the zone took: UTC-5 in December
    expect(out.slice(0, 3)).toEqual([
      '2024-12-16T16:32:15.844Z',
      '2024-12-16T16:32:00.000Z',
      '2024-12-16T14:32:15.000Z',
    ]);
  });
});
