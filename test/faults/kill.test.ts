/**
 * docs/faults.md: The process killed in the middle of a run: `node dist/src/cli.js daily|monthly` in its own
 * process, killed with SIGKILL at a chosen moment (a Graph request the simulator sees, or a blob
 * write the proxy holds), then run again, the same day or the next. Whatever the moment: nothing
 * lost, nothing doubled across the daily files, one email per day, and a pack that verifies.
 */
import { startBlobProxy, type BlobProxy, type BlobWrite } from '../support/blob-proxy';
import { spawnCli } from '../support/child';
import { expectedActivations } from '../support/expected';
import {
  ActivationFeed,
  addDays,
  at,
  Clock,
  csvRecordsOf,
  DAY_MS,
  dailyFilesProblems,
  emailsPerDay,
  finalDays,
  folderOf,
  LogBook,
  manifestProblems,
  startSmallWorld,
} from '../support/faults';
import type { World } from '../support/world';

const START = '2026-10-20';
const logs = new LogBook();

type Moment = { write: (w: Omit<BlobWrite, 'action'>) => boolean } | { graph: RegExp } | { acsAccepted: true };

const DAILY_MOMENTS: Array<[string, Moment]> = [
  ['while reading the audit log', { graph: /\/auditLogs\/directoryAudits$/ }],
  [
    'after storing the harvest, before moving the watermark',
    { write: (w) => w.blob === 'state/activations-watermark.json' },
  ],
  [
    'in the middle of a CSV (before its block list is committed)',
    { write: (w) => w.blob.endsWith('/eligible-assignments.csv') && w.url.includes('comp=blocklist') },
  ],
  ['before the manifest that makes the day final', { write: (w) => w.blob.endsWith('/manifest.json') }],
  ['after ACS accepted the digest, before the send is recorded', { write: (w) => w.blob.startsWith('state/email/') }],
  // ACS delivers every send it accepted; the process dies while polling its status (held by a slow ACS).
  ['while polling ACS for a send it accepted', { acsAccepted: true }],
  [
    'after the send is recorded, before the outbox is emptied',
    { write: (w) => w.method === 'DELETE' && w.blob.startsWith('state/outbox/') },
  ],
];

describe('killed in the middle of a run', () => {
  let world: World;
  let proxy: BlobProxy;
  let feed: ActivationFeed;
  const clock = new Clock(at(START));
  let day = START;

  beforeAll(async () => {
    ({ world, feed } = await startSmallWorld('kill', clock));
    proxy = await startBlobProxy();
    logs.knowSecretsOf(world);
    clock.set(at(START));
    expect((await rerun(['daily', '--now', at(START)])).code).toBe(0);
  });
  afterAll(async () => {
    await proxy?.stop();
    await world?.stop();
    expect(logs.leaks()).toEqual([]);
  });

  const env = () => ({ ...world.env, REPORTS_STORAGE_CONNECTION_STRING: proxy.connectionString });

  async function rerun(args: string[]) {
    const run = await world.cli(args, { REPORTS_STORAGE_CONNECTION_STRING: proxy.connectionString });
    logs.add(run.stderr, run.stdout);
    return run;
  }

  /** Runs the CLI in its own process and SIGKILLs it at `moment`; resolves once it is dead. */
  async function killAt(args: string[], moment: Moment) {
    const child = spawnCli(args, env());
    let watcher: NodeJS.Timeout | undefined;
    if ('write' in moment) {
      proxy.onWrite = (w) => {
        if (!moment.write(w)) return 'pass';
        child.kill();
        return 'hold';
      };
    } else if ('acsAccepted' in moment) {
      const sent = world.email.sent.length;
      world.email.inject({ on: 'poll', delayMs: 5_000, times: 1 });
      watcher = setInterval(() => {
        if (world.email.sent.length > sent) child.kill();
      }, 2);
    } else {
      const seen = world.graph.requests.length;
      watcher = setInterval(() => {
        if (world.graph.requests.slice(seen).some((r) => moment.graph.test(r.path))) child.kill();
      }, 2);
    }
    const result = await child.done;
    clearInterval(watcher);
    proxy.clear();
    world.email.clearFaults();
    logs.add(result.stderr, result.stdout);
    return result;
  }

  it.each(DAILY_MOMENTS.map(([name, moment], i) => [name, moment, i] as const))(
    'daily killed %s: the re-run loses and doubles nothing',
    async (_name, moment, i) => {
      day = addDays(day, 1);
      clock.set(at(day));
      feed.add(at(addDays(day, -1), 1), at(day), 4); // a few before yesterday's run: late arrivals
      const killed = await killAt(['daily', '--now', at(day)], moment);
      expect(killed.killed).toBe(true);
      expect(killed.signal).toBe('SIGKILL');
      if (await world.read(world.reports, `${folderOf(day)}manifest.json`)) {
        expect(await manifestProblems(world, world.reports, folderOf(day))).toEqual([]);
      }
      // Even moments: restarted the same day. Odd: the next day's run is the next chance.
      if (i % 2 === 0) {
        const again = await rerun(['daily', '--now', at(day)]);
        expect(again.code).toBe(0);
        expect(await manifestProblems(world, world.reports, folderOf(day))).toEqual([]);
      }
    },
    30_000,
  );

  it('after all of that: every activation in exactly one final daily file, one email per day', async () => {
    day = addDays(day, 1);
    clock.set(at(day));
    feed.add(at(addDays(day, -1), 1), at(day), 2);
    expect((await rerun(['daily', '--now', at(day)])).code).toBe(0);
    const problems = await dailyFilesProblems(world, new Date(Date.parse(at(START)) - 30 * DAY_MS), new Date(at(day)));
    expect(problems).toEqual({ missing: [], doubled: [], extra: [], different: [] });
    const emails = emailsPerDay(world);
    expect([...emails].filter(([, n]) => n !== 1)).toEqual([]);
    const finals = await finalDays(world);
    expect(finals.filter((d) => emails.get(d) !== 1)).toEqual([]);
    // A day whose run stopped before its manifest sends no digest: a later day's reports what it harvested.
    expect([...emails.keys()].filter((d) => !finals.includes(d))).toEqual([]);
  });

  it('monthly killed in the middle of its activations, then again before its manifest: the next run completes a pack that verifies and holds the month once', async () => {
    const now = '2026-11-02T03:00:00Z'; // October is sealed from the 2nd (its end plus the 24 h overlap)
    clock.set(now);
    feed.add(at(day), now, 3);
    const args = ['monthly', '--month', '2026-10', '--now', now];
    const first = await killAt(args, { write: (w) => w.blob === 'monthly/2026-10/activations.csv' });
    expect(first.killed).toBe(true);
    expect(await world.read(world.archive, 'monthly/2026-10/manifest.json')).toBeUndefined();
    const second = await killAt(args, { write: (w) => w.blob === 'monthly/2026-10/manifest.json' });
    expect(second.killed).toBe(true);
    expect(await world.read(world.archive, 'monthly/2026-10/manifest.json')).toBeUndefined();
    const again = await rerun(args);
    expect(again.code).toBe(0);
    expect((await rerun(['verify', '--month', '2026-10'])).code).toBe(0);
    const pack = await csvRecordsOf(world, world.archive, 'monthly/2026-10/activations.csv');
    expect(pack).toEqual(
      expectedActivations(world.graph.tenant, new Date('2026-10-01T00:00:00Z'), new Date('2026-11-01T00:00:00Z')),
    );
  }, 30_000);
});
