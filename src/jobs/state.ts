/**
 * What the app keeps under `state/` in the reports container to resume where it stopped:
 *
 *   state/activations-watermark.json           how far the audit log has been harvested
 *   state/activations/YYYY-MM/<run day>.jsonl  activations harvested by the run of that day, by event month
 *   state/snapshots/<day>.jsonl                one line per schedule, for the next digest's diff (last 7 kept)
 *   state/outbox/<day>.json                    a digest waiting to be emailed (deleted once sent)
 *   state/email/<day>.json                     proof a day's digest was sent
 *
 * Every write is a whole-blob replace of something derived again on a re-run, so a run killed at
 * any point leaves state the next run completes without losing or doubling anything.
 */
import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import type { BlobStore } from '../io/blob';
import type { ActivationRow, AssignmentRow, HarvestGap } from '../pim/model';

export type { HarvestGap };
import { JSON_CONTENT_TYPE } from './files';

const WATERMARK = 'state/activations-watermark.json';
const ACTIVATIONS = 'state/activations/';
const SNAPSHOTS = 'state/snapshots/';
const OUTBOX = 'state/outbox/';
const SENT = 'state/email/';
const JSONL = 'application/x-ndjson; charset=utf-8';
const KEPT_SNAPSHOTS = 7;


export interface Watermark {
  /** Every activation up to this time has been harvested. */
  harvestedThroughUtc: string;
  /** The first time ever harvested: nothing before it was ever in the app's hands. */
  coverageStartUtc: string;
  /** Audit ids (with their time) near the watermark, to de-duplicate the next run's overlap. */
  recent: Record<string, string>;
  /** Periods that could not be harvested (Graph had already dropped them). */
  gaps: HarvestGap[];
}

export interface OutboxEntry {
  day: string;
  subject: string;
  html: string;
  text: string;
  createdUtc: string;
  /** Set once ACS accepted the send: a later run resumes it instead of sending again. */
  accepted?: string;
}

export class StateStore {
  constructor(
    private readonly store: BlobStore,
    private readonly container: string,
  ) {}

  async watermark(): Promise<Watermark | undefined> {
    const text = await this.store.readText(this.container, WATERMARK);
    return text ? (JSON.parse(text) as Watermark) : undefined;
  }

  async saveWatermark(watermark: Watermark): Promise<void> {
    await this.store.writeText(this.container, WATERMARK, JSON.stringify(watermark), { contentType: JSON_CONTENT_TYPE });
  }

  /**
   * What the daily file of `runDay` must report: the activations harvested by earlier attempts of
   * that day, and by runs of earlier days that never became final (`isFinal` says which are): a
   * day that failed after its harvest is caught up by the next day's file, not lost from the
   * daily files. Stops at the newest earlier day that is final.
   */
  async activationsToReport(runDay: string, isFinal: (day: string) => Promise<boolean>): Promise<ActivationRow[]> {
    const byDay = new Map<string, string[]>();
    for await (const name of this.store.list(this.container, ACTIVATIONS)) {
      const day = name.slice(name.lastIndexOf('/') + 1, -'.jsonl'.length);
      if (day <= runDay) byDay.set(day, [...(byDay.get(day) ?? []), name]);
    }
    const rows: ActivationRow[] = [];
    for (const day of [...byDay.keys()].sort().reverse()) {
      if (day < runDay && (await isFinal(day))) break;
      for (const name of byDay.get(day)!) rows.push(...(await this.readJsonl<ActivationRow>(name)));
    }
    return rows;
  }

  /** Replaces the run day's files with `rows` (a superset of what an earlier attempt that day wrote). */
  async saveActivationsOfRunDay(runDay: string, rows: ActivationRow[]): Promise<void> {
    const byMonth = new Map<string, ActivationRow[]>();
    for (const row of rows) {
      const month = row.activated.slice(0, 7) || 'unknown';
      // push, not a copy per row: the spread made this quadratic (1.8 s of CPU for 18,000 activations).
      const list = byMonth.get(month);
      if (list) list.push(row);
      else byMonth.set(month, [row]);
    }
    for (const [month, monthRows] of byMonth) {
      await this.writeJsonl(`${ACTIVATIONS}${month}/${runDay}.jsonl`, monthRows);
    }
  }

  /** Every harvested activation whose time falls in `month` (YYYY-MM), each audit id once. */
  async activationsOfMonth(month: string): Promise<ActivationRow[]> {
    const byId = new Map<string, ActivationRow>();
    for await (const name of this.store.list(this.container, `${ACTIVATIONS}${month}/`)) {
      for (const row of await this.readJsonl<ActivationRow>(name)) byId.set(row.auditId, row);
    }
    return [...byId.values()];
  }

  /**
   * The newest stored snapshot from a day before `day` that `isFinal` accepts: its day, and its
   * schedules streamed in stored order.
   */
  async previousSnapshot(
    day: string,
    isFinal: (day: string) => Promise<boolean> = async () => true,
  ): Promise<{ day: string; schedules: AsyncIterable<AssignmentRow> } | undefined> {
    const days: string[] = [];
    for await (const name of this.store.list(this.container, SNAPSHOTS)) {
      const d = name.slice(SNAPSHOTS.length, -'.jsonl'.length);
      if (d < day) days.push(d);
    }
    for (const latest of days.sort().reverse()) {
      if (!(await isFinal(latest))) continue;
      const stream = await this.store.readStream(this.container, `${SNAPSHOTS}${latest}.jsonl`);
      return stream ? { day: latest, schedules: jsonLines<AssignmentRow>(stream) } : undefined;
    }
    return undefined;
  }

  /**
   * Streams the schedules (in the order given) to `state/snapshots/<day>.jsonl`, then prunes all
   * but the newest few, never `baseline` (the last final day's, which the next diff may still need).
   */
  async saveSnapshot(day: string, batches: AsyncIterable<AssignmentRow[]>, baseline?: string): Promise<void> {
    // Lines gathered into chunks of about 64 KiB: the upload handles a few hundred chunks, not one per schedule.
    const body = Readable.from(
      (async function* () {
        let text = '';
        for await (const batch of batches) {
          for (const row of batch) text += `${JSON.stringify(row)}\n`;
          if (text.length >= 65_536) {
            yield text;
            text = '';
          }
        }
        if (text) yield text;
      })(),
    );
    await this.store.writeStream(this.container, `${SNAPSHOTS}${day}.jsonl`, body, { contentType: JSONL });
    // Only the newest matters for the next diff; a few more are kept for a person investigating.
    const names: string[] = [];
    for await (const name of this.store.list(this.container, SNAPSHOTS)) names.push(name);
    const keep = baseline ? `${SNAPSHOTS}${baseline}.jsonl` : undefined;
    for (const old of names.sort().slice(0, -KEPT_SNAPSHOTS)) if (old !== keep) await this.store.delete(this.container, old);
  }

  async outbox(): Promise<OutboxEntry[]> {
    const entries: OutboxEntry[] = [];
    for await (const name of this.store.list(this.container, OUTBOX)) {
      const text = await this.store.readText(this.container, name);
      if (text) entries.push(JSON.parse(text) as OutboxEntry);
    }
    return entries.sort((a, b) => (a.day < b.day ? -1 : 1));
  }

  async addToOutbox(entry: OutboxEntry): Promise<void> {
    await this.store.writeText(this.container, `${OUTBOX}${entry.day}.json`, JSON.stringify(entry), { contentType: JSON_CONTENT_TYPE });
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
  async markSent(day: string, details: { subject: string; sentUtc: string; operationId: string; recipients: number }): Promise<void> {
    await this.store.writeText(this.container, `${SENT}${day}.json`, JSON.stringify({ day, ...details }), { contentType: JSON_CONTENT_TYPE });
    await this.store.delete(this.container, `${OUTBOX}${day}.json`);
  }

  async dropFromOutbox(day: string): Promise<void> {
    await this.store.delete(this.container, `${OUTBOX}${day}.json`);
  }

  private async readJsonl<T>(name: string): Promise<T[]> {
    const text = await this.store.readText(this.container, name);
    if (!text) return [];
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as T);
  }

  private async writeJsonl(name: string, rows: unknown[]): Promise<void> {
    // Streamed in chunks of about 64 KiB: never a string (and a Buffer) the size of the whole file.
    const body = Readable.from(
      (function* () {
        let text = '';
        for (let i = 0; i < rows.length; i++) {
          text += `${i ? '\n' : ''}${JSON.stringify(rows[i])}`;
          if (text.length >= 65_536) {
            yield text;
            text = '';
          }
        }
        if (text) yield text;
      })(),
    );
    await this.store.writeStream(this.container, name, body, { contentType: JSONL });
  }
}

async function* jsonLines<T>(stream: NodeJS.ReadableStream): AsyncGenerator<T> {
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    if (line.trim() !== '') yield JSON.parse(line) as T;
  }
}
