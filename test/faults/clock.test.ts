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
  beforeAll(async () => {
    world = await startWorld(
      generateTenant({ seed: 'clock-typo', now: new Date(at(DAY)), users: 5, groups: 1, eligible: 3, active: 2 }),
      { now: () => new Date(at(DAY)) },
    );
  });
  afterAll(async () => {
    await world?.stop();
  });

  it('a backfill of a day that does not exist (29 February of a common year, 31 November, 24:00) stops with usage, writing and reading nothing', async () => {
    // Date.parse rolls these over to another day (2025-03-01, 2026-12-01, 2026-11-21): a typo in a
    // backfill would write and make final the report of a day nobody asked for, and move the watermark.
    for (const [now, problem] of [
      ['2025-02-29T06:00:00Z', '2025-02-29 is not a day of the calendar'],
      ['2026-11-31T06:00:00Z', '2026-11-31 is not a day of the calendar'],
      ['2026-11-20T24:00:00Z', '24:00:00 is not a time of the day'],
    ]) {
      const before = world.graph.requests.length;
      const run = await world.cli(['daily', '--now', now]);
      const said = run.stderr.split('\n').filter((l) => /Daily run|error/.test(l));
      expect({ now, code: run.code, said }).toEqual({ now, code: 2, said: [expect.stringContaining('--now is')] });
      // The format is right: the message says the day (or the time) does not exist, not that the format is wrong.
      expect(run.stderr).toContain(`error: --now is "${now}", but ${problem}\n`);
      expect(run.stderr).not.toContain('must be an ISO time');
      expect(world.graph.requests.length).toBe(before);
    }
    // A wrong format is still told as one.
    for (const now of ['2026-11-20T06:00:00', '2026-11-20 06:00Z', '2026-11-20T06:00:00+25:00']) {
      const run = await world.cli(['daily', '--now', now]);
      expect({ now, code: run.code }).toEqual({ now, code: 2 });
      expect(run.stderr).toContain(`--now must be an ISO time with a zone, such as 2026-11-24T06:00:00Z, got "${now}"`);
    }
    expect(await world.list(world.reports)).toEqual([]);
    // A real leap day is a day like any other.
    const leap = await world.cli(['export', '--dataset', 'activations', '--now', '2028-02-29T06:00:00Z', '--out', '-']);
    expect(leap.stderr).not.toContain('--now is');
    expect(leap.stderr).not.toContain('--now must be');
  });

  it('an export day that does not exist is told so; a wrong format is told as one', async () => {
    const before = world.graph.requests.length;
    const nonexistent = await world.cli(['export', '--dataset', 'activations', '--from', '2026-11-31']);
    expect(nonexistent.code).toBe(2);
    expect(nonexistent.stderr).toContain('error: from is "2026-11-31", but 2026-11-31 is not a day of the calendar\n');
    const format = await world.cli(['export', '--dataset', 'activations', '--to', '2026-11-3']);
    expect(format.code).toBe(2);
    expect(format.stderr).toContain('error: to must be a date written YYYY-MM-DD, got "2026-11-3"\n');
    expect(world.graph.requests.length).toBe(before);
  });

  it.each([
    ['--now', ['daily', '--now', '2026-11-24T06:00:00Z', '--now', '2026-11-25T06:00:00Z']],
    ['--force-email', ['daily', '--force-email', '--now', '2026-11-24T06:00:00Z', '--force-email']],
    ['--month', ['monthly', '--month', '2026-10', '--month=2026-09']],
    ['--dataset', ['export', '--dataset', 'eligible', '--dataset', 'active']],
    ['--month', ['verify', '--month', '2026-10', '--month', '2026-10']],
  ])('%s given twice (%j) is bad usage naming the option: nothing read, written or sent', async (name, args) => {
    const before = world.graph.requests.length;
    const sent = world.email.sent.length;
    const run = await world.cli(args as string[]);
    expect({ code: run.code, said: run.stderr.split('\n').filter((l) => /error/.test(l)) }).toEqual({
      code: 2,
      said: [expect.stringContaining(`error: ${name} is given more than once`)],
    });
    expect(world.graph.requests.length).toBe(before);
    expect(world.email.sent.length).toBe(sent);
    expect(await world.list(world.reports)).toEqual([]);
    expect(await world.list(world.archive)).toEqual([]);
  });

  it.each(['eligible', 'active', 'unused', 'role-settings', 'azure-eligible', 'azure-active'])(
    'export --dataset %s refuses --from and --to: the dataset is read as of now, not for a period',
    async (dataset) => {
      const before = world.graph.requests.length;
      for (const parameter of ['from', 'to']) {
        const run = await world.cli(['export', '--dataset', dataset, `--${parameter}`, '2026-11-01']);
        expect({ parameter, code: run.code, stdout: run.stdout }).toEqual({ parameter, code: 2, stdout: '' });
        expect(run.stderr).toContain(
          `error: ${parameter} does not apply to ${dataset}, which is read as of now; a period applies to activations and azure-activations only\n`,
        );
        expect(run.stderr).not.toContain('Exported');
      }
      expect(world.graph.requests.length).toBe(before);
      expect(await world.list(world.reports)).toEqual([]);
    },
  );
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
