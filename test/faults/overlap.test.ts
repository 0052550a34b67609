/**
 * Runs that overlap: the daily and monthly timers at the same moment, a CLI run on a laptop while
 * the timer runs, a run started again right after one was killed. One run at a time writes state
 * (src/jobs/lock.ts): the second waits for the first, and what they leave is what one run leaves.
 */
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { BlobServiceClient } from '@azure/storage-blob';
import { BlobChangedError, BlobStore, WRITE_TRY_TIMEOUT_MS } from '../../src/io/blob';
import { LeaseLostError, RUN_LOCK, RunLockedError, withRunLock } from '../../src/jobs/lock';
import { StateStore, type OutboxEntry } from '../../src/jobs/state';
import { HistoryStore } from '../../src/history';
import { startBlobProxy } from '../support/blob-proxy';
import type { Log } from '../../src/log';
import type { Settings } from '../../src/settings';
import { spawnCli } from '../support/child';
import {
  ActivationFeed,
  addDays,
  at,
  Clock,
  csvRecordsOf,
  emailsPerDay,
  finalDays,
  folderOf,
  LogBook,
  manifestProblems,
  startSmallWorld,
} from '../support/faults';
import type { World } from '../support/world';

const START = '2026-09-29';
const logs = new LogBook();

function memoryLog(): Log & { lines: string[] } {
  const lines: string[] = [];
  const add = (level: string) => (message: string) => lines.push(`${level}: ${message}`);
  return { lines, info: add('info'), warn: add('warn'), error: add('error') } as Log & { lines: string[] };
}

describe('overlapping runs', () => {
  let world: World;
  const clock = new Clock(at(START));
  let feed: ActivationFeed;
  let store: BlobStore;
  let blobs: BlobServiceClient;

  beforeAll(async () => {
    ({ world, feed } = await startSmallWorld('overlap', clock, { latencyMs: 20 }));
    logs.knowSecretsOf(world);
    const connectionString = process.env.PIM_TEST_AZURITE_CONNECTION_STRING!;
    store = BlobStore.fromSettings({ kind: 'connectionString', connectionString }, undefined as never);
    blobs = BlobServiceClient.fromConnectionString(connectionString);
  });
  afterAll(async () => {
    await world?.stop();
    expect(logs.leaks()).toEqual([]);
  });

  const lockSettings = () => ({ reportsContainer: world.reports }) as Settings;

  /** The lock as another run on another machine would hold it. */
  async function holdAsAnotherMachine() {
    const blob = blobs.getContainerClient(world.reports).getBlockBlobClient(RUN_LOCK);
    const lease = blob.getBlobLeaseClient();
    await lease.acquireLease(15);
    await blob.setMetadata(
      { job: 'monthly', host: 'func-instance-7', pid: '4242', started: '2026-09-29T03:00:00.000Z' },
      { conditions: { leaseId: lease.leaseId } },
    );
    return lease;
  }

  it('two daily runs started together (the timer and a laptop): both succeed, the second waits; one email, files as one run leaves them', async () => {
    clock.set(at(START));
    const [a, b] = await Promise.all([
      world.cli(['daily', '--now', at(START)]),
      world.cli(['daily', '--now', at(START)]),
    ]);
    logs.add(a.stderr, b.stderr);
    expect([a.code, b.code]).toEqual([0, 0]);
    // The holder is named once it has written its name (`daily on <host>…`), `one that has just started` before.
    const waited = [a, b].filter((r) =>
      /Another run \((daily on .*|one that has just started)\) is writing the reports; waiting/.test(r.stderr),
    );
    expect(waited.length).toBe(1);
    expect(waited[0].stderr).toMatch(/is complete already \(manifest\.json exists\); nothing is rewritten/);
    expect(emailsPerDay(world).get(START)).toBe(1);
    expect(await manifestProblems(world, world.reports, folderOf(START))).toEqual([]);
    const ids = (await csvRecordsOf(world, world.reports, `${folderOf(START)}activations.csv`)).map(
      (r) => r['Audit Id'],
    );
    expect(ids.length).toBeGreaterThan(0);
    expect(new Set(ids).size).toBe(ids.length);
  }, 60_000);

  it('daily and monthly at the same moment on the 2nd: both complete, one after the other', async () => {
    // The 2nd: September is sealed (the harvest covers its end plus the 24 h overlap), whichever runs first writes it.
    const day = '2026-10-02';
    clock.set(at(day));
    feed.add(at(START), at(day), 3);
    const [daily, monthly] = await Promise.all([
      world.cli(['daily', '--now', at(day)]),
      world.cli(['monthly', '--now', at(day)]),
    ]);
    logs.add(daily.stderr, monthly.stderr);
    expect([daily.code, monthly.code]).toEqual([0, 0]);
    expect([daily, monthly].filter((r) => /is writing the reports; waiting/.test(r.stderr)).length).toBe(1);
    expect(await finalDays(world)).toEqual([START, day]);
    expect((await world.cli(['verify', '--month', '2026-09'])).code).toBe(0);
    expect(emailsPerDay(world).get(day)).toBe(1);
  }, 60_000);

  it('held by a run elsewhere for longer than the wait: stops before anything, naming the holder; goes on once it is released', async () => {
    const lease = await holdAsAnotherMachine();
    const log = memoryLog();
    let ran = false;
    const ctx = { store, settings: lockSettings(), log };
    await expect(withRunLock(ctx, 'daily', async () => (ran = true), { waitMs: 600, pollMs: 200 })).rejects.toThrow(
      RunLockedError,
    );
    await expect(withRunLock(ctx, 'daily', async () => (ran = true), { waitMs: 600, pollMs: 200 })).rejects.toThrow(
      `another run (monthly on func-instance-7, pid 4242, started 2026-09-29T03:00:00.000Z) still holds ${world.reports}/${RUN_LOCK}`,
    );
    expect(ran).toBe(false);
    expect(log.lines.filter((l) => l.startsWith('info: Another run (monthly on func-instance-7')).length).toBe(2);

    setTimeout(() => void lease.releaseLease(), 500);
    expect(await withRunLock(ctx, 'daily', async () => 'done', { waitMs: 5_000, pollMs: 100 })).toBe('done');
    // Released when the run ends: the next run takes it at once.
    expect(await withRunLock(ctx, 'daily', async () => 'again', { waitMs: 0 })).toBe('again');
  });

  it('released when the run fails, too', async () => {
    const ctx = { store, settings: lockSettings(), log: memoryLog() };
    await expect(withRunLock(ctx, 'daily', async () => Promise.reject(new Error('Graph said no')))).rejects.toThrow(
      'Graph said no',
    );
    expect(await withRunLock(ctx, 'daily', async () => 'next', { waitMs: 0 })).toBe('next');
  });

  it('a holder gone from this machine is not taken over from once a new run holds the lease (its name not yet written)', async () => {
    const blob = blobs.getContainerClient(world.reports).getBlockBlobClient(RUN_LOCK);
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => gone.on('exit', resolve));
    // What a killed run leaves: its name and lease id in the metadata, its lease lapsed.
    await blob.setMetadata({
      job: 'daily',
      host: hostname().replace(/[^\x20-\x7e]/g, '?'),
      pid: String(gone.pid),
      started: '2026-10-02T06:00:00.000Z',
      lease: '0f0e0d0c-0b0a-4908-8706-050403020100',
    });
    // A new run has just taken the lease and has not written its own name yet.
    const newHolder = blob.getBlobLeaseClient();
    await newHolder.acquireLease(15);
    const ctx = { store, settings: lockSettings(), log: memoryLog() };
    await expect(withRunLock(ctx, 'monthly', async () => 'overlapped', { waitMs: 800, pollMs: 200 })).rejects.toThrow(
      RunLockedError,
    );
    expect((await blob.getProperties()).leaseState).toBe('leased');
    await newHolder.releaseLease();
  });

  it('a lease lost while held (another run took it) stops every write of the run', async () => {
    const ctx = { store, settings: lockSettings(), log: memoryLog() };
    const blob = blobs.getContainerClient(world.reports).getBlockBlobClient(RUN_LOCK);
    const outcome = withRunLock(ctx, 'daily', async () => {
      await store.writeText(world.reports, 'state/probe.txt', 'before', { contentType: 'text/plain' });
      // Storage ends the lease (as when renewals could not reach it in time) and another run takes it.
      await blob.getBlobLeaseClient().breakLease(0);
      const other = blob.getBlobLeaseClient();
      await other.acquireLease(15);
      await new Promise((resolve) => setTimeout(resolve, 5_500)); // the next renewal is refused
      try {
        await store.writeText(world.reports, 'state/probe.txt', 'after', { contentType: 'text/plain' });
      } finally {
        await other.releaseLease();
      }
    });
    await expect(outcome).rejects.toThrow(/the lease on .*state\/run\.lock was lost during this run .*writing stopped/);
    expect(await world.read(world.reports, 'state/probe.txt')).toBe('before');
    // Released, the store writes again.
    await store.writeText(world.reports, 'state/probe.txt', 'next', { contentType: 'text/plain' });
    await store.delete(world.reports, 'state/probe.txt');
  }, 20_000);

  /** Storage ends the run's lease (as when renewals could not reach it in time) and another run takes it. */
  async function takeTheLockAway() {
    const blob = blobs.getContainerClient(world.reports).getBlockBlobClient(RUN_LOCK);
    await blob.getBlobLeaseClient().breakLease(0);
    const other = blob.getBlobLeaseClient();
    await other.acquireLease(15);
    return other;
  }

  it("a lease lost after the run's last write: the run fails, it does not report success", async () => {
    const ctx = { store, settings: lockSettings(), log: memoryLog() };
    let other: Awaited<ReturnType<typeof takeTheLockAway>> | undefined;
    const outcome = withRunLock(ctx, 'daily', async () => {
      await store.writeText(world.reports, 'state/probe.txt', 'only', { contentType: 'text/plain' });
      other = await takeTheLockAway();
      await new Promise((resolve) => setTimeout(resolve, 5_500)); // the next renewal is refused
      return 'done';
    });
    await expect(outcome).rejects.toThrow(LeaseLostError);
    await expect(outcome).rejects.toThrow(
      /the lease on .*state\/run\.lock was lost during this run .*this run has not completed/,
    );
    await other?.releaseLease();
    await store.delete(world.reports, 'state/probe.txt');
  }, 20_000);

  it('a write in flight when the lease is lost is aborted, not left to land later; every write request carries a timeout shorter than the lease', async () => {
    const proxy = await startBlobProxy();
    try {
      const viaProxy = BlobStore.fromSettings(
        { kind: 'connectionString', connectionString: proxy.connectionString },
        undefined as never,
      );
      const ctx = { store: viaProxy, settings: lockSettings(), log: memoryLog() };
      // Storage never answers this write (a connection that hangs).
      proxy.onWrite = (w) => (w.blob === 'state/held.txt' ? 'hold' : 'pass');
      let other: Awaited<ReturnType<typeof takeTheLockAway>> | undefined;
      const started = Date.now();
      const outcome = withRunLock(ctx, 'daily', async () => {
        const write = viaProxy.writeText(world.reports, 'state/held.txt', 'late', { contentType: 'text/plain' });
        write.catch(() => undefined);
        other = await takeTheLockAway();
        await write;
        return 'done';
      });
      await expect(outcome).rejects.toThrow(LeaseLostError);
      expect(Date.now() - started).toBeLessThan(15_000);
      await other?.releaseLease();
      const writes = proxy.writes.filter((w) => w.blob === RUN_LOCK || w.blob === 'state/held.txt');
      expect(writes.length).toBeGreaterThan(1);
      expect(WRITE_TRY_TIMEOUT_MS).toBeLessThan(15_000);
      expect(writes.filter((w) => !new URL(w.url, 'http://x').searchParams.get('timeout'))).toEqual([]);
      expect(writes.map((w) => Number(new URL(w.url, 'http://x').searchParams.get('timeout')))).toEqual(
        writes.map(() => WRITE_TRY_TIMEOUT_MS / 1000),
      );
    } finally {
      proxy.clear();
      await proxy.stop();
    }
  }, 30_000);

  it('the watermark and the outbox are written only over the version the run read (ETag conditions)', async () => {
    const WATERMARK = 'state/activations-watermark.json';
    const reports = world.blobs.getContainerClient(world.reports);
    const original = await world.read(world.reports, WATERMARK);
    const mark = (through: string) => ({
      harvestedThroughUtc: through,
      coverageStartUtc: through,
      recent: {},
      gaps: [],
    });
    const [first, second] = [new StateStore(store, world.reports), new StateStore(store, world.reports)];
    const [firstHistory, secondHistory] = [
      new HistoryStore(store, world.reports),
      new HistoryStore(store, world.reports),
    ];
    try {
      await firstHistory.watermark();
      await secondHistory.watermark();
      await secondHistory.saveWatermark(mark('2030-01-02T00:00:00.000Z'));
      await expect(firstHistory.saveWatermark(mark('2030-01-01T00:00:00.000Z'))).rejects.toThrow(BlobChangedError);
      expect(JSON.parse((await world.read(world.reports, WATERMARK))!).harvestedThroughUtc).toBe(
        '2030-01-02T00:00:00.000Z',
      );
      // Once it has read the new one, it may write.
      await firstHistory.watermark();
      await firstHistory.saveWatermark(mark('2030-01-03T00:00:00.000Z'));

      const entry: OutboxEntry = {
        day: '2030-01-01',
        subject: 's',
        html: 'h',
        text: 't',
        createdUtc: '2030-01-01T06:00:00.000Z',
      };
      await second.addToOutbox(entry);
      expect((await first.outbox()).map((e) => e.day)).toContain('2030-01-01');
      await second.addToOutbox({ ...entry, accepted: 'operation-of-the-other-run' });
      await expect(first.addToOutbox({ ...entry, accepted: 'operation-of-this-run' })).rejects.toThrow(
        BlobChangedError,
      );
      expect(JSON.parse((await world.read(world.reports, 'state/outbox/2030-01-01.json'))!).accepted).toBe(
        'operation-of-the-other-run',
      );
    } finally {
      for (const day of ['2030-01-01', '2030-01-02'])
        await reports.getBlockBlobClient(`state/outbox/${day}.json`).deleteIfExists();
      if (original) await reports.getBlockBlobClient(WATERMARK).upload(original, Buffer.byteLength(original));
      else await reports.getBlockBlobClient(WATERMARK).deleteIfExists();
    }
  });

  it('a run killed on this machine: the next run takes the lock over at once instead of waiting for the lease to lapse', async () => {
    const day = addDays('2026-10-02', 1);
    clock.set(at(day));
    const child = spawnCli(['daily', '--now', at(day)], world.env);
    // Killed once it holds the lock and has begun reading Graph.
    const seen = world.graph.requests.length;
    const watcher = setInterval(() => {
      if (world.graph.requests.length > seen) child.kill();
    }, 5);
    const killed = await child.done;
    clearInterval(watcher);
    expect(killed.killed).toBe(true);
    const props = await blobs.getContainerClient(world.reports).getBlockBlobClient(RUN_LOCK).getProperties();
    expect(props.leaseState).toBe('leased');
    expect(props.metadata?.host).toBe(hostname().replace(/[^\x20-\x7e]/g, '?'));

    const started = Date.now();
    const again = await world.cli(['daily', '--now', at(day)]);
    logs.add(again.stderr);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/is no longer running on this machine; taking over/);
    expect(Date.now() - started).toBeLessThan(10_000); // the lease itself would hold for 15 s
    expect(await manifestProblems(world, world.reports, folderOf(day))).toEqual([]);
  }, 40_000);
});
