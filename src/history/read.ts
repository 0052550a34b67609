/**
 * Reading old activations back: from the app's own harvest under `state/`, or from a month's
 * archived CSV once the harvest no longer has it, each audit id once.
 */
import type { Readable } from 'node:stream';
import { ACTIVATION_TABLE, type ActivationRow } from '../pim/model';
import { csvRows } from '../report/csv';
import { archiveFolder, monthBounds, nextMonth } from './calendar';
import type { HistoryBlobs, HistoryStore } from './store';

/**
 * Keeps each audit id once. The same event can come from two sources (the harvest or the archive,
 * and Graph) with times of different precision, so adjacency in sorted order is not enough; the
 * ids of one month or one export's period are few enough to remember (ids, not rows).
 */
export class AuditIds {
  private readonly seen = new Set<string>();
  /** True the first time `auditId` is offered. */
  first(auditId: string): boolean {
    if (this.seen.has(auditId)) return false;
    this.seen.add(auditId);
    return true;
  }
  has(auditId: string): boolean {
    return this.seen.has(auditId);
  }
}

/** Each audit id once, in the order given. */
export async function* uniqueByAuditId(rows: AsyncIterable<ActivationRow>): AsyncGenerator<ActivationRow> {
  const ids = new AuditIds();
  for await (const row of rows) if (ids.first(row.auditId)) yield row;
}

/** Every harvested activation of `month` whose time falls in it, each audit id once, in batches. */
export async function* harvestedActivationsOfMonth(
  history: HistoryStore,
  month: string,
): AsyncGenerator<ActivationRow[]> {
  const { start, end } = monthBounds(month);
  const ids = new AuditIds();
  for await (const batch of history.activationsOfMonth(month)) {
    const rows = batch.filter((row) => {
      const at = Date.parse(row.activated);
      return at >= start.getTime() && at < end.getTime() && ids.first(row.auditId);
    });
    if (rows.length > 0) yield rows;
  }
}

/** A month's activations read back from its archived CSV, streamed in batches. */
export async function* archivedActivations(
  store: HistoryBlobs,
  archiveContainer: string,
  month: string,
): AsyncGenerator<ActivationRow[]> {
  const data = await store.readStream(archiveContainer, `${archiveFolder(month)}activations.csv`);
  if (!data) return;
  try {
    yield* csvRows(ACTIVATION_TABLE, data);
  } finally {
    (data as Readable).destroy();
  }
}

/**
 * The kept activations of each month from `from`'s to `lastMonth`: the harvest under state/ for the
 * months it has, the archive for those it lacks. Batches are filtered to `from`..`end` (exclusive);
 * an audit id may come twice (across attempts), the caller keeps one.
 */
export async function* keptActivations(
  history: HistoryStore,
  store: HistoryBlobs,
  archiveContainer: string,
  from: Date,
  end: Date,
  lastMonth: string,
  /** A run day whose files are left out (its run is writing them, and adds its rows itself). */
  exceptRunDay?: string,
): AsyncGenerator<ActivationRow[]> {
  const inRange = (row: ActivationRow) => {
    const at = Date.parse(row.activated);
    return at >= from.getTime() && at < end.getTime();
  };
  for (let m = from.toISOString().slice(0, 7); m <= lastMonth; m = nextMonth(m)) {
    let found = false;
    for await (const batch of history.activationsOfMonth(m, exceptRunDay)) {
      found = true;
      yield batch.filter(inRange);
    }
    if (!found) {
      for await (const batch of archivedActivations(store, archiveContainer, m)) yield batch.filter(inRange);
    }
  }
}
