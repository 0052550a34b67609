/**
 * What the app keeps under `state/` in the reports container to resume where it stopped:
 *
 *   state/activations-watermark.json           the activation history (src/history/store.ts)
 *   state/activations/YYYY-MM/<run day>.jsonl
 *   state/schedules/<day>.jsonl                one line per schedule, for the next digest's diff (last 7 kept;
 *                                              state/snapshots/ holds those of versions before value lines)
 *                                              (a header line, then each schedule's values: SCHEDULES below)
 *   state/role-settings/<day>.json             the day's role settings, for the next digest's changes (jobs/roleSettings.ts)
 *   state/outbox/<day>.json                    a digest waiting to be emailed (deleted once sent)
 *   state/email/<day>.json                     proof a day's digest was sent
 *   state/packs/YYYY-MM/                       a monthly pack's assignments until its manifest is written (monthly.ts)
 *   state/reminders/done.json                  expiry reminders sent: each (schedule, principal) and its thresholds done
 *   state/reminders/outbox/<id>.json           an expiry reminder being sent (deleted once recorded in done.json)
 *   state/run.lock                             leased by the run writing all this (lock.ts)
 *
 * Every write is a whole-blob replace of something derived again on a re-run, so a run killed at
 * any point leaves state the next run completes without losing or doubling anything.
 */
import type { Readable } from 'node:stream';
import type { BlobStore } from '../io/blob';
import { ASSIGNMENT_TABLE, type AssignmentRow } from '../pim/model';
import { GROUP_ELIGIBILITY_ROUTES, ROUTES_UNREAD_FOR, type PreviousSchedules } from '../pim/changes';
import { reminderKey, type ReminderRecord } from '../pim/reminders';
import { valueLineBatches, valueLinesBody, type ValueLinesHeader } from '../util/jsonl';
import { JSON_CONTENT_TYPE } from './files';

/**
 * Where the daily snapshots are kept: this version's files (value lines) in `current`, files of
 * versions before the value lines (keyed JSON lines) in `legacy`, still read as a baseline. A
 * folder of its own for the new format keeps an earlier build, should a deployment be rolled back,
 * from reading a file it cannot: it sees only its own folder, and compares with its own last file.
 */
export interface SnapshotFolders {
  current: string;
  legacy: string;
}

const SNAPSHOTS: SnapshotFolders = { current: 'state/schedules/', legacy: 'state/snapshots/' };
const OUTBOX = 'state/outbox/';
const SENT = 'state/email/';
const REMINDERS_DONE = 'state/reminders/done.json';
const REMINDER_OUTBOX = 'state/reminders/outbox/';
const JSONL = 'application/x-ndjson; charset=utf-8';
const KEPT_SNAPSHOTS = 7;
/** A day's snapshot file in its folder, `2026-12-02.jsonl`: the only names read, counted or pruned there. */
const DAY_FILE = /^\d{4}-\d{2}-\d{2}\.jsonl$/;

/**
 * A snapshot file: a header naming the keys, then one array of values per schedule, in that order
 * (the keys are about 40% of a keyed JSON line: fewer bytes, less CPU to write and read). The keys
 * are the assignment table's values (src/pim/model.ts); Azure's snapshots hold the same row type
 * (its table, AZURE_ASSIGNMENT_TABLE in src/pim/azure.ts, only adds a derived column). A file is
 * read by its own header's keys, so a key added later reads as absent from older files, as it did
 * from keyed JSON; files written before the header are keyed JSON lines, still read as such.
 */
export const SCHEDULES: ValueLinesHeader = {
  format: 'pim-reporter-schedules',
  version: 2,
  keys: ASSIGNMENT_TABLE.keys,
  // PIM-for-Groups eligibilities' routes into roles (groupEligibilityRoute in src/pim/model.ts):
  // a file written before them is no baseline for them, or every one would be new on the day after.
  holds: [GROUP_ELIGIBILITY_ROUTES],
};

export interface OutboxEntry {
  day: string;
  subject: string;
  html: string;
  text: string;
  createdUtc: string;
  /**
   * The ACS operation id (a GUID) of the send under way, stored before the send starts: a later
   * run asks ACS for that operation's status before it sends anything.
   */
  operationId?: string;
  /** Written by earlier versions: the serialized SDK poller of an accepted send (holds its operation URL). */
  accepted?: string;
}

/** An expiry reminder to one user: the email, and what to record once it is sent. */
export interface ReminderOutboxEntry extends OutboxEntry {
  /** `<day>-<principal id>`: one reminder per user per run. */
  id: string;
  principalId: string;
  to: string[];
  items: Array<Omit<ReminderRecord, 'remindedOn' | 'operationId'>>;
}

/** The operation id of an entry: its own, or the one in an older entry's serialized poller. */
export function outboxOperationId(entry: OutboxEntry): string | undefined {
  return entry.operationId ?? /\/emails\/operations\/([0-9a-f-]{36})/i.exec(entry.accepted ?? '')?.[1];
}

export class StateStore {
  /**
   * The ETag of each outbox and reminder-state blob as this run last read or wrote it (null: absent).
   * Those writes are conditional on it: a blob another writer changed meanwhile is never
   * overwritten (BlobChangedError), whatever the run lock says.
   */
  private readonly etags = new Map<string, string | null>();

  constructor(
    private readonly store: BlobStore,
    private readonly container: string,
    /** Where the digest's daily snapshots are kept; Azure resources keep theirs apart (src/jobs/azure.ts). */
    private readonly snapshots: SnapshotFolders = SNAPSHOTS,
  ) {}

  private async readTracked(name: string): Promise<string | undefined> {
    const read = await this.store.readTextAndEtag(this.container, name);
    this.etags.set(name, read?.etag ?? null);
    return read?.text;
  }

  /** Replaces `name` only if it is as this run last saw it (looked up now if this run never has). */
  private async writeTracked(name: string, text: string): Promise<void> {
    if (!this.etags.has(name)) this.etags.set(name, (await this.store.etag(this.container, name)) ?? null);
    const seen = this.etags.get(name);
    const etag = await this.store.writeText(this.container, name, text, {
      contentType: JSON_CONTENT_TYPE,
      ...(seen ? { ifMatch: seen } : { onlyIfAbsent: true }),
    });
    this.etags.set(name, etag ?? null);
  }

  /**
   * The newest stored snapshot from a day before `day` that `isFinal` accepts: its day, and its
   * schedules streamed in stored order.
   */
  async previousSnapshot(
    day: string,
    isFinal: (day: string) => Promise<boolean>,
  ): Promise<{ day: string; schedules: AsyncIterable<AssignmentRow> } | undefined> {
    const previous = await this.previousSnapshotBatches(day, isFinal);
    if (!previous) return undefined;
    const batches = previous.schedules[Symbol.asyncIterator]();
    // The rows' generator, returned before it starts, would never reach the batches' return() itself.
    return {
      day: previous.day,
      schedules: closedOnReturn(rowsOf({ [Symbol.asyncIterator]: () => batches }), () => batches.return?.()),
    };
  }

  /** As `previousSnapshot`, its schedules in batches (one await per batch rather than per row). */
  async previousSnapshotBatches(
    day: string,
    isFinal: (day: string) => Promise<boolean>,
  ): Promise<(Omit<PreviousSchedules, 'schedules'> & { schedules: AsyncIterable<AssignmentRow[]> }) | undefined> {
    const byDay = await this.storedSnapshots();
    for (const latest of [...byDay.keys()]
      .filter((d) => d < day)
      .sort()
      .reverse()) {
      if (!(await isFinal(latest))) continue;
      const name = byDay.get(latest)!;
      const stream = await this.store.readStream(this.container, name);
      let header: { holds: readonly string[]; notes: Readonly<Record<string, readonly string[]>> } = {
        holds: [],
        notes: {},
      };
      return stream
        ? {
            day: latest,
            schedules: closedOnReturn(
              valueLineBatches<AssignmentRow>(stream, SCHEDULES, name, undefined, (h) => (header = h)),
              () => (stream as Readable).destroy(),
            ),
            holds: () => header.holds,
            routesUnreadFor: () => new Set(header.notes[ROUTES_UNREAD_FOR] ?? []),
          }
        : undefined;
    }
    return undefined;
  }

  /** Each stored snapshot's blob by its day; a day in both folders is this version's file. */
  private async storedSnapshots(): Promise<Map<string, string>> {
    const byDay = new Map<string, string>();
    for await (const { day, name } of this.snapshotFiles()) byDay.set(day, name);
    return byDay;
  }

  /**
   * Every day's snapshot blob, the earlier version's folder first, then this version's: only the
   * days' files (`DAY_FILE`), whatever else someone left there.
   */
  private async *snapshotFiles(): AsyncGenerator<{ day: string; name: string }> {
    for (const folder of [this.snapshots.legacy, this.snapshots.current]) {
      for await (const name of this.store.list(this.container, folder)) {
        const file = name.slice(folder.length);
        if (DAY_FILE.test(file)) yield { day: file.slice(0, -'.jsonl'.length), name };
      }
    }
  }

  /**
   * Streams the schedules (in the order given) to `state/schedules/<day>.jsonl`, then prunes all
   * but the newest few, never `baseline` (the last final day's, which the next diff may still need).
   * `routesUnreadFor`: the groups (lower-case ids; `''` for all) whose PIM-for-Groups list could not
   * be read today, so that the file does not hold all their routes: named in its header, so the
   * next day does not compare theirs with it (src/pim/changes.ts).
   */
  async saveSnapshot(
    day: string,
    batches: AsyncIterable<AssignmentRow[]>,
    baseline?: string,
    options: { routesUnreadFor?: ReadonlySet<string> } = {},
  ): Promise<void> {
    const saved = `${this.snapshots.current}${day}.jsonl`;
    const unread = [...(options.routesUnreadFor ?? [])].sort();
    const header = unread.length > 0 ? { ...SCHEDULES, notes: { [ROUTES_UNREAD_FOR]: unread } } : SCHEDULES;
    await this.store.writeStream(this.container, saved, valueLinesBody(header, batches), { contentType: JSONL });
    // Only the newest matters for the next diff; a few more days are kept for a person investigating,
    // in either folder (an earlier version's files go as the days pass).
    const files: Array<{ day: string; name: string }> = [];
    for await (const file of this.snapshotFiles()) files.push(file);
    const kept = new Set([...new Set(files.map((f) => f.day))].sort().slice(-KEPT_SNAPSHOTS));
    if (baseline !== undefined) kept.add(baseline);
    for (const { day: d, name } of files)
      if (!kept.has(d) && name !== saved) await this.store.delete(this.container, name);
  }

  async outbox(): Promise<OutboxEntry[]> {
    const entries: OutboxEntry[] = [];
    for await (const name of this.store.list(this.container, OUTBOX)) {
      const text = await this.readTracked(name);
      if (text) entries.push(JSON.parse(text) as OutboxEntry);
    }
    return entries.sort((a, b) => (a.day < b.day ? -1 : 1));
  }

  async addToOutbox(entry: OutboxEntry): Promise<void> {
    await this.writeTracked(`${OUTBOX}${entry.day}.json`, JSON.stringify(entry));
  }

  /** The record of the day's last send, if any. */
  async sentRecord(day: string): Promise<{ sentUtc: string } | undefined> {
    const text = await this.store.readText(this.container, `${SENT}${day}.json`);
    return text ? (JSON.parse(text) as { sentUtc: string }) : undefined;
  }

  async wasSent(day: string): Promise<boolean> {
    return this.store.exists(this.container, `${SENT}${day}.json`);
  }

  /** Records the send first, then empties the outbox slot: a crash in between never sends twice. */
  async markSent(
    day: string,
    details: { subject: string; sentUtc: string; operationId: string; recipients: number },
  ): Promise<void> {
    await this.store.writeText(this.container, `${SENT}${day}.json`, JSON.stringify({ day, ...details }), {
      contentType: JSON_CONTENT_TYPE,
    });
    await this.dropFromOutbox(day);
  }

  async dropFromOutbox(day: string): Promise<void> {
    await this.store.delete(this.container, `${OUTBOX}${day}.json`);
    this.etags.set(`${OUTBOX}${day}.json`, null);
  }

  /** Every (schedule, principal) reminded of its end, by `reminderKey`. */
  async reminderRecords(): Promise<Map<string, ReminderRecord>> {
    const text = await this.readTracked(REMINDERS_DONE);
    const records = text ? (JSON.parse(text) as { records: ReminderRecord[] }).records : [];
    return new Map(records.map((r) => [reminderKey(r.scheduleId, r.principalId), r]));
  }

  /** Replaces the records, without those whose end has passed (the assignment is gone). */
  async saveReminderRecords(records: ReadonlyMap<string, ReminderRecord>, now: Date): Promise<void> {
    const kept = [...records.values()].filter((r) => Date.parse(r.end) > now.getTime());
    await this.writeTracked(REMINDERS_DONE, JSON.stringify({ records: kept }));
  }

  async reminderOutbox(): Promise<ReminderOutboxEntry[]> {
    const entries: ReminderOutboxEntry[] = [];
    for await (const name of this.store.list(this.container, REMINDER_OUTBOX)) {
      const text = await this.readTracked(name);
      if (text) entries.push(JSON.parse(text) as ReminderOutboxEntry);
    }
    return entries.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async addReminderToOutbox(entry: ReminderOutboxEntry): Promise<void> {
    await this.writeTracked(`${REMINDER_OUTBOX}${entry.id}.json`, JSON.stringify(entry));
  }

  async dropReminderFromOutbox(id: string): Promise<void> {
    await this.store.delete(this.container, `${REMINDER_OUTBOX}${id}.json`);
    this.etags.set(`${REMINDER_OUTBOX}${id}.json`, null);
  }
}

async function* rowsOf<T>(batches: AsyncIterable<T[]>): AsyncGenerator<T> {
  for await (const batch of batches) yield* batch;
}

/**
 * `items`, with `close` (the download destroyed) when its reader stops early, even before reading
 * anything: `return()` on a generator that never started does not run its body, so its own clean-up
 * would not.
 */
function closedOnReturn<T>(items: AsyncGenerator<T>, close: () => unknown): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => items.next(),
      return: async (value?: unknown) => {
        await close();
        return items.return(value as never);
      },
    }),
  };
}
