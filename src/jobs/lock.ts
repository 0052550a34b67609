/**
 * One run at a time writes state. The daily and monthly jobs hold a lease on `state/run.lock` in
 * the reports container while they run. Functions never overlaps a timer with itself, but the two
 * timers can overlap each other (their schedules are settings), and a CLI run on an admin's laptop
 * can overlap either. Without the lease, two harvests could each rewrite the run day's activations
 * with their own rows, losing the other's, and both could send the digest.
 *
 * The lease is the run's permission to write: checked before every write and delete of the store
 * (a lost lease stops the run), watched while writes are in flight (they are aborted when it is
 * lost), and checked once more before the run reports success. Each write request is limited to
 * less than the lease's length (src/io/blob.ts, WRITE_TRY_TIMEOUT_MS).
 */
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import type { JobContext } from './context';
import type { BlobLease } from '../io/blob';

export const RUN_LOCK = 'state/run.lock';
/** How long a run waits for another to finish: a large tenant's daily run takes a minute or two. */
const WAIT_MS = 10 * 60_000;
const POLL_MS = 5_000;

export interface RunLockOptions {
  waitMs?: number;
  pollMs?: number;
}

/** The lease was lost while the run held it: nothing more is written, and the run has failed. */
export class LeaseLostError extends Error {
  constructor(where: string) {
    super(
      `the lease on ${where} was lost during this run (Blob Storage unreachable for its length, or another run took it): writing stopped, so that two runs never write at once, and this run has not completed; the next run completes the work`,
    );
    this.name = 'LeaseLostError';
  }
}

/** How often a held lease is looked at, to abort writes in flight once it is lost. */
const WATCH_MS = 500;

/** Runs `run` with every write of `store` conditional on `lease`; fails if the lease was lost, even after the last write. */
async function asHolder<T>(store: JobContext['store'], lease: BlobLease, run: () => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const check = () => {
    if (!lease.lost()) return;
    const error = new LeaseLostError(lease.where);
    abort.abort(error);
    throw error;
  };
  const watch = setInterval(() => {
    if (lease.lost() && !abort.signal.aborted) abort.abort(new LeaseLostError(lease.where));
  }, WATCH_MS);
  watch.unref();
  const unguard = store.guardWrites({ check, signal: abort.signal });
  try {
    const result = await run();
    check(); // a run whose lease lapsed after its last write has still not run alone
    return result;
  } finally {
    clearInterval(watch);
    unguard();
  }
}

export class RunLockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunLockedError';
  }
}

/** Runs `run` holding the lease, after waiting (up to 10 minutes) for a run that holds it. */
export async function withRunLock<T>(
  ctx: Pick<JobContext, 'store' | 'settings' | 'log'>,
  job: string,
  run: () => Promise<T>,
  options: RunLockOptions = {},
): Promise<T> {
  const { store, settings, log } = ctx;
  const container = settings.reportsContainer;
  const metadata = { job, host: thisHost(), pid: String(process.pid), started: new Date().toISOString() };
  const deadline = Date.now() + (options.waitMs ?? WAIT_MS);
  let waiting = false;
  for (;;) {
    const { lease, holder } = await store.lease(container, RUN_LOCK, metadata);
    if (lease) {
      if (waiting) log.info('The other run finished; this one goes on');
      try {
        return await asHolder(store, lease, run);
      } finally {
        await lease.release();
      }
    }
    const who = describeHolder(holder ?? {});
    if (holder?.lease && isGoneFromThisMachine(holder)) {
      // Killed, or stopped with Ctrl-C: its lease would lapse within 15 s, but nothing is gained by
      // waiting. Ended by its own id, so only if it is still the current lease: a new holder's
      // (whose name may not be written yet) is never ended for the one before it.
      if (await store.releaseLeaseOf(container, RUN_LOCK, holder.lease)) {
        log.warn(`The run that held ${RUN_LOCK} (${who}) is no longer running on this machine; taking over`);
        continue;
      }
    }
    if (Date.now() >= deadline) {
      throw new RunLockedError(
        `another run (${who}) still holds ${container}/${RUN_LOCK}: this ${job} run stopped before reading Graph or writing anything; the next scheduled run catches up`,
      );
    }
    if (!waiting) log.info(`Another run (${who}) is writing the reports; waiting for it to finish`);
    waiting = true;
    await delay(options.pollMs ?? POLL_MS);
  }
}

/** A holder on this machine whose process no longer exists. */
function isGoneFromThisMachine(holder: Record<string, string>): boolean {
  const pid = Number(holder.pid);
  if (holder.host !== thisHost() || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Metadata values must be ASCII. */
function thisHost(): string {
  return hostname().replace(/[^\x20-\x7e]/g, '?');
}

function describeHolder(holder: Record<string, string>): string {
  if (!holder.job) return 'one that has just started';
  return `${holder.job} on ${holder.host ?? '?'}, pid ${holder.pid ?? '?'}, started ${holder.started ?? '?'}`;
}
