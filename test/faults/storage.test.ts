/**
 * docs/faults.md: Blob Storage faults, through a proxy in front of Azurite (test/support/blob-proxy.ts):
 * storage down, and a write that fails at the Nth for every N a daily run and a monthly run make.
 * Whatever the N: no manifest ever describes a file that is missing or different, the day (or the
 * pack) is completed by the re-run or by the next day's run, each activation lands in exactly one
 * final daily file, and no day gets two emails.
 */
import { Readable } from 'node:stream';
import type { TokenCredential } from '@azure/identity';
import { BlobStorageError, BlobStore } from '../../src/io/blob';
import { StateStore } from '../../src/jobs/state';
import { startBlobProxy, type BlobProxy } from '../support/blob-proxy';
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
import { expectedActivations } from '../support/expected';
import type { World } from '../support/world';

const START = '2026-09-01';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const logs = new LogBook();

describe('Blob Storage faults', () => {
  let proxy: BlobProxy;
  // Each test has a world of its own (its own tenant, containers and clock, from START), so that
  // each passes alone and in any order; only the proxy in front of Azurite is shared.
  let world: World;
  let clock: Clock;
  let feed: ActivationFeed;

  beforeAll(async () => {
    proxy = await startBlobProxy();
  });
  beforeEach(async () => {
    clock = new Clock(at(START));
    ({ world, feed } = await startSmallWorld('storage', clock));
    logs.knowSecretsOf(world);
  });
  afterEach(async () => {
    proxy.clear();
    await proxy.down(false);
    await world?.stop();
  });
  afterAll(async () => {
    await proxy?.stop();
    expect(logs.leaks()).toEqual([]);
  });

  async function run(args: string[], env: Record<string, string> = {}) {
    const result = await world.cli(args, { REPORTS_STORAGE_CONNECTION_STRING: proxy.connectionString, ...env });
    logs.add(result.stderr, result.stdout);
    return result;
  }

  /** The unhandled rejections while `during` runs (none may be left behind by a failed run). */
  async function unhandledDuring<T>(during: () => Promise<T>): Promise<{ result: T; unhandled: unknown[] }> {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const result = await during();
      // Time for what a run left behind to fail (a pass still reading, a write still going).
      await sleep(300);
      return { result, unhandled };
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  }

  /** A BlobStore of the product's through the proxy, without retries, its container made. */
  async function storeThroughTheProxy(): Promise<BlobStore> {
    const noToken: TokenCredential = { getToken: async () => null };
    const store = BlobStore.fromSettings(
      { kind: 'connectionString', connectionString: proxy.connectionString },
      noToken,
      { maxTries: 1 },
    );
    await store.writeText(world.reports, 'probe.txt', 'probe', { contentType: 'text/plain' }); // the container exists
    return store;
  }

  /** The first day run and final, then the clock on the next day with three activations since: that day and its folder. */
  async function afterAFirstDay(env: Record<string, string> = {}): Promise<{ day: string; folder: string }> {
    expect((await run(['daily', '--now', at(START)], env)).code).toBe(0);
    const day = addDays(START, 1);
    clock.set(at(day));
    feed.add(at(START), at(day), 3);
    return { day, folder: folderOf(day) };
  }

  /** A run that failed on Storage's 403 for `blob` alone: one error line, no missing run file, nothing unhandled. */
  function expectRefusedOnly(failed: { code: number | null; stderr: string }, unhandled: unknown[], blob: string) {
    expect(failed.code).toBe(1);
    const errors = failed.stderr.split('\n').filter((l) => / error: /.test(l));
    const name = blob.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    expect(errors).toEqual([
      expect.stringMatching(new RegExp(`Blob Storage at .*: writing .*${name} failed \\(HTTP 403`)),
    ]);
    expect(failed.stderr).not.toContain('ENOENT');
    expect(unhandled).toEqual([]);
  }

  /** A promise and the function that resolves it. */
  function gate(): { opened: Promise<void>; open: () => void } {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    return { opened, open };
  }

  it('storage down: the run fails naming Blob Storage, reads nothing from Graph; the re-run completes', async () => {
    await proxy.down('refuse');
    const failed = await run(['daily', '--now', at(START)]);
    expect(failed.code).toBe(1);
    const errors = failed.stderr.split('\n').filter((l) => / error: /.test(l));
    expect(errors.length).toBe(1);
    expect(errors[0]).toMatch(/Blob Storage/);
    expect(errors[0]).toContain('ECONNREFUSED');
    expect(world.graph.requests).toEqual([]);
    await proxy.down(false);
    expect((await run(['daily', '--now', at(START)])).code).toBe(0);
    expect(await finalDays(world)).toEqual([START]);
  });

  it("a refused write is a BlobStorageError with Storage's HTTP status and error code", async () => {
    const store = await storeThroughTheProxy();
    proxy.onWrite = () => ({ status: 403, code: 'AuthorizationPermissionMismatch' });
    const error = await store.writeText(world.reports, 'refused.txt', 'x', { contentType: 'text/plain' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    proxy.clear();
    expect(error).toBeInstanceOf(BlobStorageError);
    expect(error).toMatchObject({ statusCode: 403, code: 'AuthorizationPermissionMismatch' });
    expect((error as Error).message).toMatch(
      /writing reports-\w+\/refused\.txt failed \(HTTP 403 AuthorizationPermissionMismatch\)/,
    );
  });

  it('a refused upload ends the stream it was reading, so that what feeds it stops and lets go', async () => {
    const store = await storeThroughTheProxy();
    proxy.onWrite = (w) => (w.blob === 'refused.csv' ? { status: 403 } : 'pass');
    // A source that never ends by itself (as a sorter's merge reads its run files until it is done).
    let finishedFeeding = false;
    const body = Readable.from(
      (async function* () {
        try {
          for (;;) yield Buffer.alloc(256 * 1024, 0x61);
        } finally {
          finishedFeeding = true;
        }
      })(),
    );
    const error = await store.writeStream(world.reports, 'refused.csv', body, { contentType: 'text/csv' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    proxy.clear();
    expect(error).toBeInstanceOf(BlobStorageError);
    expect(body.destroyed).toBe(true);
    expect(finishedFeeding).toBe(true); // by the time the write failed, not later
  });

  it('a transient 500 or reset on a write is retried by the storage client; the run succeeds', async () => {
    const { day } = await afterAFirstDay(); // a day before, as a deployment has
    let n = 0;
    const base = proxy.writes.length;
    proxy.onWrite = (w) => {
      n = w.n - base;
      return n === 3 ? { status: 500 } : n === 7 ? 'reset' : 'pass';
    };
    const result = await run(['daily', '--now', at(day)]);
    proxy.clear();
    expect(result.code).toBe(0);
    expect(n).toBeGreaterThan(10);
    expect(await manifestProblems(world, world.reports, folderOf(day))).toEqual([]);
  });

  it('a daily run failing at its Nth write, for every N: never final over missing files; caught up by a re-run or by the next day', async () => {
    expect((await run(['daily', '--now', at(START)])).code).toBe(0); // the first day, before any fault
    let day = addDays(START, 1);
    const outcomes: string[] = [];
    for (let n = 1; ; n++) {
      day = addDays(day, 1);
      clock.set(at(day));
      feed.add(at(addDays(day, -1), 2), at(day), 3); // some before yesterday's run: late arrivals
      const base = proxy.writes.length;
      proxy.failOnce(n, { status: 403 });
      const failed = await run(['daily', '--now', at(day)]);
      const hit = proxy.writes.slice(base).find((w) => typeof w.action === 'object');
      proxy.clear();
      if (failed.code === 0) break; // N is past the last write of a run
      outcomes.push(`${n}`);
      // Loud and clear: one error line naming the store and the blob.
      const errors = failed.stderr.split('\n').filter((l) => / error: /.test(l));
      expect([n, errors.length]).toEqual([n, 1]);
      expect([n, errors[0]]).toEqual([n, expect.stringMatching(/Blob Storage/)]);
      // A container's own write (creating it) names the container: the archive's, when the run seals a month.
      expect(errors[0]).toContain(hit!.blob || hit!.url.split('?')[0].split('/')[2]);
      // Either not final, or final with every file as the manifest says.
      if (await world.read(world.reports, `${folderOf(day)}manifest.json`)) {
        expect([n, await manifestProblems(world, world.reports, folderOf(day))]).toEqual([n, []]);
      }
      // Odd N: re-run the same day. Even N: let the next day's run catch up.
      if (n % 2 === 1) {
        const again = await run(['daily', '--now', at(day)]);
        expect([n, again.code, again.stderr.includes(' error: ')]).toEqual([n, 0, false]);
        expect([n, await manifestProblems(world, world.reports, folderOf(day))]).toEqual([n, []]);
      }
    }
    expect(outcomes.length).toBeGreaterThanOrEqual(14);
    // One clean day last, to send anything still queued.
    day = addDays(day, 1);
    clock.set(at(day));
    expect((await run(['daily', '--now', at(day)])).code).toBe(0);

    const problems = await dailyFilesProblems(world, new Date(Date.parse(at(START)) - 30 * DAY_MS), new Date(at(day)));
    expect(problems).toEqual({ missing: [], doubled: [], extra: [], different: [] });
    for (const d of await finalDays(world))
      expect([d, await manifestProblems(world, world.reports, folderOf(d))]).toEqual([d, []]);
    const emails = emailsPerDay(world);
    expect([...emails].filter(([, count]) => count > 1)).toEqual([]);
    // Every final day's digest went out, once.
    expect((await finalDays(world)).filter((d) => emails.get(d) !== 1)).toEqual([]);
  }, 120_000);

  it('an assignment file refused stops the other: the eligible pass, waiting for the unused list, writes nothing', async () => {
    // UNUSED_AFTER_DAYS 1: from the second day the history covers the window, so the eligible file's
    // pass waits for the unused list, which waits for this run's activations.csv.
    const unusedWindow = { UNUSED_AFTER_DAYS: '1' };
    const { day, folder } = await afterAFirstDay(unusedWindow);
    // The order made certain: active-assignments.csv is refused, and only some time after its answer
    // has gone out does activations.csv (and so the unused list the eligible pass waits for) go through.
    const refused = gate();
    proxy.onWrite = (w) => {
      if (w.blob === `${folder}active-assignments.csv`) {
        setTimeout(refused.open, 250);
        return { status: 403 };
      }
      return w.blob === `${folder}activations.csv` ? { until: refused.opened } : 'pass';
    };
    const base = proxy.writes.length;
    let writesAtReturn = 0;
    const { result: failed, unhandled } = await unhandledDuring(() =>
      run(['daily', '--now', at(day)], unusedWindow).finally(() => (writesAtReturn = proxy.writes.length)),
    );
    const writes = proxy.writes.slice(base);
    proxy.clear();
    expectRefusedOnly(failed, unhandled, `${folder}active-assignments.csv`);
    // The eligible pass stopped before its upload: not a single request for its file, nothing final.
    expect(writes.filter((w) => w.blob.endsWith('eligible-assignments.csv'))).toEqual([]);
    expect(writes.filter((w) => w.blob === `${folder}activations.csv`).length).toBeGreaterThan(0); // the harvest went on
    expect(await world.list(world.reports, folder)).toEqual([`${folder}activations.csv`]);
    // Nothing still going after the run returned.
    expect(writes.filter((w) => !w.answered)).toEqual([]);
    expect(proxy.writes.length).toBe(writesAtReturn);

    // The re-run completes the day.
    expect((await run(['daily', '--now', at(day)], unusedWindow)).code).toBe(0);
    expect(await manifestProblems(world, world.reports, folder)).toEqual([]);
  });

  it('an assignment file refused: the run returns only once the other file is done with, and fails with the refusal', async () => {
    const { day, folder } = await afterAFirstDay();
    // eligible-assignments.csv is refused; active-assignments.csv's upload is held until the run has
    // returned (or, when the run waits for it, as it must, for two seconds).
    const returned = gate();
    const activeReleased = Promise.race([returned.opened, sleep(2000)]);
    proxy.onWrite = (w) =>
      w.blob === `${folder}eligible-assignments.csv`
        ? { status: 403 }
        : w.blob === `${folder}active-assignments.csv`
          ? { until: activeReleased }
          : 'pass';
    const base = proxy.writes.length;
    let inFlightAtReturn: string[] = [];
    let writesAtReturn = 0;
    const { result: failed, unhandled } = await unhandledDuring(async () => {
      const result = await run(['daily', '--now', at(day)]);
      inFlightAtReturn = proxy.writes
        .slice(base)
        .filter((w) => !w.answered)
        .map((w) => w.blob);
      writesAtReturn = proxy.writes.length;
      returned.open();
      return result;
    });
    const writes = proxy.writes.slice(base);
    proxy.clear();
    expect(writes.some((w) => w.blob === `${folder}active-assignments.csv`)).toBe(true); // it was held
    expect(inFlightAtReturn).toEqual([]);
    expectRefusedOnly(failed, unhandled, `${folder}eligible-assignments.csv`);
    expect(await world.read(world.reports, `${folder}manifest.json`)).toBeUndefined();
    expect(proxy.writes.length).toBe(writesAtReturn); // nothing after the run returned
  });

  it("an assignment file refused stops the snapshot state's pass: the day's state is never written", async () => {
    const { day, folder } = await afterAFirstDay();
    // The state's pass reads the first day's snapshot (its baseline) only once the refusal of
    // eligible-assignments.csv has been answered, and a moment more: by then it must know to stop.
    const refused = gate();
    proxy.onWrite = (w) => {
      if (w.blob !== `${folder}eligible-assignments.csv`) return 'pass';
      setTimeout(refused.open, 250);
      return { status: 403 };
    };
    const baseline = `state/schedules/${START}.jsonl`;
    proxy.onRead = (r) => (r.blob === baseline ? { until: refused.opened } : 'pass');
    const base = proxy.writes.length;
    const failed = await run(['daily', '--now', at(day)]);
    const writes = proxy.writes.slice(base);
    proxy.clear();
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(new RegExp(`writing .*${folder}eligible-assignments\\.csv failed \\(HTTP 403`));
    expect(writes.filter((w) => w.blob === `state/schedules/${day}.jsonl`)).toEqual([]);
    expect(await world.read(world.reports, `state/schedules/${day}.jsonl`)).toBeUndefined();
    expect(await world.read(world.reports, `${folder}manifest.json`)).toBeUndefined();
    // The re-run completes the day, its state included.
    expect((await run(['daily', '--now', at(day)])).code).toBe(0);
    expect(await world.read(world.reports, `state/schedules/${day}.jsonl`)).toBeDefined();
  });

  it.each([
    ['the harvest', /directoryAudits/, 'on /auditLogs/directoryAudits'],
    ['the snapshot', /roleEligibilitySchedules/, 'on /roleManagement/directory/roleEligibilitySchedules'],
  ])(
    '%s failing while the kept history is still read: the run fails with that error, and returns only once the read is over',
    async (_what, path, named) => {
      const unusedWindow = { UNUSED_AFTER_DAYS: '1' }; // the kept history is read from the second day
      const { day } = await afterAFirstDay(unusedWindow);
      world.graph.inject({ path, status: 500, times: 1 });
      // The kept history (the first day's harvest) is held back until the failure has been answered.
      const kept = `state/activations/${START.slice(0, 7)}/${START}.jsonl`;
      const release = gate();
      proxy.onRead = (r) => (r.blob === kept ? { until: release.opened } : 'pass');
      const reads = proxy.reads.length;
      const { result, unhandled } = await unhandledDuring(async () => {
        let returned = false;
        const running = run(['daily', '--now', at(day)], unusedWindow).finally(() => (returned = true));
        const failedAnswered = () => world.graph.requests.some((r) => path.test(r.path) && r.status === 500);
        const keptAsked = () => proxy.reads.slice(reads).some((r) => r.blob === kept);
        for (let waited = 0; !(failedAnswered() && keptAsked()); waited += 20) {
          if (waited > 20_000) throw new Error('the failure or the kept history read never came');
          await sleep(20);
        }
        // Time enough for a run that does not wait for the read to return meanwhile.
        for (let waited = 0; !returned && waited < 1500; waited += 20) await sleep(20);
        const returnedWhileReading = returned;
        release.open();
        const failed = await running;
        const keptReads = proxy.reads.slice(reads).filter((r) => r.blob === kept);
        return { failed, returnedWhileReading, unanswered: keptReads.filter((r) => !r.answered).length };
      });
      proxy.clear();
      expect(result.failed.code).toBe(1);
      const errors = result.failed.stderr.split('\n').filter((l) => / error: /.test(l));
      expect(errors).toEqual([expect.stringContaining(`error: Graph 500 InternalServerError ${named}`)]);
      expect(result.returnedWhileReading).toBe(false);
      expect(result.unanswered).toBe(0);
      expect(unhandled).toEqual([]);
      expect(await world.read(world.reports, `${folderOf(day)}manifest.json`)).toBeUndefined();
      expect((await run(['daily', '--now', at(day)], unusedWindow)).code).toBe(0);
    },
  );

  it("the previous snapshot's download is destroyed when its reader stops before reading anything", async () => {
    expect((await run(['daily', '--now', at(START)])).code).toBe(0);
    const noToken: TokenCredential = { getToken: async () => null };
    const store = BlobStore.fromSettings(
      { kind: 'connectionString', connectionString: world.env.REPORTS_STORAGE_CONNECTION_STRING },
      noToken,
      { maxTries: 1 },
    );
    // Every download the state store opens, as the Storage SDK hands it over.
    const opened: Readable[] = [];
    const readStream = store.readStream.bind(store);
    store.readStream = async (container, name) => {
      const stream = await readStream(container, name);
      if (stream) opened.push(stream as Readable);
      return stream;
    };
    const previous = await new StateStore(store, world.reports).previousSnapshotBatches(
      addDays(START, 1),
      async () => true,
    );
    expect(previous?.day).toBe(START);
    expect(opened.length).toBe(1);
    expect(opened[0].destroyed).toBe(false);
    // A diff that ends before its first row (AssignmentChangeTracker.close): return() before any next().
    const reader = previous!.schedules[Symbol.asyncIterator]();
    expect(await reader.return!()).toEqual({ done: true, value: undefined });
    expect(opened[0].destroyed).toBe(true);
    // The same of its schedules one by one (the export's groups).
    const rows = await new StateStore(store, world.reports).previousSnapshot(addDays(START, 1), async () => true);
    expect([rows?.day, opened.length, opened[1].destroyed]).toEqual([START, 2, false]);
    expect(await rows!.schedules[Symbol.asyncIterator]().return!()).toEqual({ done: true, value: undefined });
    expect(opened[1].destroyed).toBe(true);
  });

  it("a re-run's kept history reads no archive for a month whose only file is the run day's own", async () => {
    const unusedWindow = { UNUSED_AFTER_DAYS: '1' }; // the kept history is read from the second day
    const [first, day] = ['2026-09-30', '2026-10-01'];
    clock.set(at(first));
    expect((await run(['daily', '--now', at(first)], unusedWindow)).code).toBe(0);
    clock.set(at(day));
    feed.add(at(first), at(day, 0), 2);
    feed.add(at(day, 1), at(day, 5), 2); // October's activations: only this day's harvest has them
    // The first attempt harvests (state/activations/2026-10/2026-10-01.jsonl) and stops before its manifest.
    proxy.onWrite = (w) => (w.blob === `${folderOf(day)}manifest.json` ? { status: 403 } : 'pass');
    expect((await run(['daily', '--now', at(day)], unusedWindow)).code).toBe(1);
    proxy.clear();
    expect(await world.list(world.reports, 'state/activations/2026-10/')).toEqual([
      `state/activations/2026-10/${day}.jsonl`,
    ]);
    // The re-run leaves that file out of the kept history (its harvest adds those rows itself); the
    // month has a file, so no archive (there is none of October's yet) is asked for it either.
    const reads = proxy.reads.length;
    expect((await run(['daily', '--now', at(day)], unusedWindow)).code).toBe(0);
    expect(
      proxy.reads
        .slice(reads)
        .filter((r) => r.container === world.archive && r.blob.includes('2026-10'))
        .map((r) => r.blob),
    ).toEqual([]);
    // The kept history was read all the same (September's file of the first day).
    expect(proxy.reads.slice(reads).some((r) => r.blob === `state/activations/2026-09/${first}.jsonl`)).toBe(true);
    expect(await manifestProblems(world, world.reports, folderOf(day))).toEqual([]);
  });

  /**
   * Runs the daily job for `day` with the second write of its outbox entry refused (the one that
   * stores the ACS operation id before the send): the day is final, its digest queued and unsent.
   */
  async function dailyWithOperationIdRefused(day: string) {
    clock.set(at(day));
    let outboxWrites = 0;
    proxy.onWrite = (w) => {
      // The first PUT queues the digest; the second stores the ACS operation id before the send.
      if (w.method === 'PUT' && w.blob === `state/outbox/${day}.json` && ++outboxWrites === 2) return { status: 403 };
      return 'pass';
    };
    const result = await run(['daily', '--now', at(day)]);
    proxy.clear();
    return result;
  }

  it('the operation id cannot be stored in the outbox: nothing is sent, the digest stays queued; the next run sends it once', async () => {
    const day = START;
    const first = await dailyWithOperationIdRefused(day);
    expect([first.code, first.stderr]).toEqual([
      1,
      expect.stringContaining(`state/outbox/${day}.json failed (HTTP 403`),
    ]);
    expect(world.email.sent).toEqual([]);
    expect(await finalDays(world)).toEqual([day]);
    expect(await world.list(world.reports, 'state/outbox/')).toEqual([`state/outbox/${day}.json`]);

    const next = addDays(day, 1);
    clock.set(at(next));
    expect((await run(['daily', '--now', at(next)])).code).toBe(0);
    expect([...emailsPerDay(world)].sort()).toEqual([
      [day, 1],
      [next, 1],
    ]);
    expect(await world.list(world.reports, 'state/outbox/')).toEqual([]);
  });

  it('a digest sent and recorded whose outbox entry was not emptied: the next run does not send it again', async () => {
    const queued = START;
    expect((await dailyWithOperationIdRefused(queued)).code).toBe(1); // final, its digest queued and never sent
    expect(world.email.sent).toEqual([]);
    const day = addDays(queued, 1);
    clock.set(at(day));
    proxy.onWrite = (w) => (w.method === 'DELETE' && w.blob === `state/outbox/${day}.json` ? { status: 403 } : 'pass');
    const first = await run(['daily', '--now', at(day)]);
    proxy.clear();
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(
      new RegExp(`error: Blob Storage at .*: deleting .*state/outbox/${day}\\.json failed \\(HTTP 403`),
    );
    expect(emailsPerDay(world).get(day)).toBe(1);
    expect(emailsPerDay(world).get(queued)).toBe(1);

    clock.set(at(addDays(day, 1)));
    const next = await run(['daily', '--now', at(addDays(day, 1))]);
    expect(next.code).toBe(0);
    expect(next.stderr).toContain(`The digest of ${day} was sent at`);
    expect(emailsPerDay(world).get(day)).toBe(1);
    expect(await world.list(world.reports, 'state/outbox/')).toEqual([]);
  });

  it('a monthly run failing at its Nth write, for every N: no manifest until the pack is whole; the re-run completes and verifies', async () => {
    // Daily runs through September harvest it (with activations between them); it is sealed from
    // October 2nd.
    let last = START;
    for (const day of [START, '2026-09-16', '2026-10-01']) {
      clock.set(at(day));
      if (day !== START) feed.add(at(last), at(day), 4);
      expect([day, (await run(['daily', '--now', at(day)])).code]).toEqual([day, 0]);
      last = day;
    }
    const now = '2026-10-02T03:00:00Z';
    clock.set(now);
    feed.add(at(last), now, 4); // after the last daily run: only the monthly run harvests them
    const month = '2026-09';
    let n = 1;
    for (; n < 40; n++) {
      proxy.failOnce(n, { status: 403 });
      const failed = await run(['monthly', '--month', month, '--now', now]);
      proxy.clear();
      if (failed.code === 0) break;
      expect([n, failed.stderr]).toEqual([n, expect.stringMatching(/ error: .*Blob Storage/)]);
      // The manifest is written last: if it exists, the pack is whole and verifies.
      if (await world.read(world.archive, `monthly/${month}/manifest.json`)) {
        expect([n, (await run(['verify', '--month', month])).code]).toEqual([n, 0]);
      }
    }
    expect(n).toBeGreaterThan(5);
    const verify = await run(['verify', '--month', month]);
    expect(verify.code).toBe(0);
    // Exactly the month's activations, once: from the harvest, not from what Graph still has.
    const pack = await csvRecordsOf(world, world.archive, `monthly/${month}/activations.csv`);
    const expected = expectedActivations(
      world.graph.tenant,
      new Date('2026-09-01T00:00:00Z'),
      new Date('2026-10-01T00:00:00Z'),
    );
    expect(pack.map((r) => r['Audit Id']).sort()).toEqual(expected.map((r) => r['Audit Id']).sort());
    expect(pack).toEqual(expected);
  }, 60_000);
});
