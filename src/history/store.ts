/**
 * Where the activation history is kept, under `state/` in the reports container:
 *
 *   state/activations-watermark.json           how far the audit log has been harvested, its coverage and gaps
 *   state/activations/YYYY-MM/<run day>.jsonl  activations harvested by the run of that day, by event month
 *
 * and the one fact of the reports the history depends on: a day is final once its manifest exists.
 * Every write is a whole-blob replace of something derived again on a re-run, so a run killed at
 * any point leaves a history the next run completes without losing or doubling anything.
 */
import type { BlobStore } from '../io/blob';
import type { Approval } from '../pim/activations';
import { withTrailDefaults, type ActivationRow, type HarvestGap } from '../pim/model';
import { jsonLineBatches, jsonLinesBody } from '../util/jsonl';
import { dailyManifest } from './calendar';

export type { HarvestGap };

const WATERMARK = 'state/activations-watermark.json';
const ACTIVATIONS = 'state/activations/';
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
const JSONL = 'application/x-ndjson; charset=utf-8';

/** What the history needs of Blob Storage (src/io/blob.ts): nothing of leases or containers' life. */
export type HistoryBlobs = Pick<
  BlobStore,
  'readTextAndEtag' | 'etag' | 'writeText' | 'readStream' | 'writeStream' | 'exists' | 'list' | 'readText'
>;

export interface Watermark {
  /** Every activation up to this time has been harvested. */
  harvestedThroughUtc: string;
  /** The first time ever harvested: nothing before it was ever in the app's hands. */
  coverageStartUtc: string;
  /** Audit ids (with their time) near the watermark, to de-duplicate the next run's overlap. */
  recent: Record<string, string>;
  /**
   * `recent` holds every harvested id whose time is from here to the watermark; a run never reads
   * from earlier. Absent in watermarks written before it existed (they kept six hours).
   */
  recentFromUtc?: string;
  /** Periods that could not be harvested (Graph had already dropped them). */
  gaps: HarvestGap[];
  /** Approvals harvested whose activation has not been harvested yet (history/approvals.ts). */
  approvals?: Approval[];
}

export class HistoryStore {
  /**
   * The ETag of the watermark as this store last read or wrote it (null: absent). Its write is
   * conditional on it: a watermark another writer changed meanwhile is never overwritten
   * (BlobChangedError), whatever the run lock says.
   */
  private watermarkEtag: string | null | undefined;

  constructor(
    private readonly store: HistoryBlobs,
    /** The reports container: the history lives under its `state/`, beside the daily folders. */
    private readonly container: string,
  ) {}

  async watermark(): Promise<Watermark | undefined> {
    const read = await this.store.readTextAndEtag(this.container, WATERMARK);
    this.watermarkEtag = read?.etag ?? null;
    return read ? (JSON.parse(read.text) as Watermark) : undefined;
  }

  /** Replaces the watermark only if it is as this store last saw it (looked up now if it never has). */
  async saveWatermark(watermark: Watermark): Promise<void> {
    if (this.watermarkEtag === undefined)
      this.watermarkEtag = (await this.store.etag(this.container, WATERMARK)) ?? null;
    const seen = this.watermarkEtag;
    const etag = await this.store.writeText(this.container, WATERMARK, JSON.stringify(watermark), {
      contentType: JSON_CONTENT_TYPE,
      ...(seen ? { ifMatch: seen } : { onlyIfAbsent: true }),
    });
    this.watermarkEtag = etag ?? null;
  }

  /** "Is this day final?": its daily manifest exists. */
  isDayFinal(day: string): Promise<boolean> {
    return this.store.exists(this.container, dailyManifest(day));
  }

  /**
   * What the daily file of `runDay` must report: the activations harvested by earlier attempts of
   * that day, and by runs of earlier days that never became final: a day that failed after its
   * harvest is caught up by the next day's file, not lost from the daily files. Stops at the newest
   * earlier day that is final. Streamed in batches; an audit id may come more than once (each
   * attempt's file is a superset of the last), the caller keeps one.
   */
  async *activationsToReport(runDay: string): AsyncGenerator<ActivationRow[]> {
    const byDay = new Map<string, string[]>();
    for await (const name of this.store.list(this.container, ACTIVATIONS)) {
      const day = name.slice(name.lastIndexOf('/') + 1, -'.jsonl'.length);
      if (day <= runDay) byDay.set(day, [...(byDay.get(day) ?? []), name]);
    }
    for (const day of [...byDay.keys()].sort().reverse()) {
      if (day < runDay && (await this.isDayFinal(day))) break;
      for (const name of byDay.get(day)!) yield* this.readActivations(name);
    }
  }

  /**
   * Replaces the run day's file for one month of activations (`monthOfActivation`) with `batches`:
   * every activation of that month the day reports, a superset of what an earlier attempt wrote.
   */
  async saveActivationsOfRunDay(runDay: string, month: string, batches: AsyncIterable<ActivationRow[]>): Promise<void> {
    await this.store.writeStream(this.container, `${ACTIVATIONS}${month}/${runDay}.jsonl`, jsonLinesBody(batches), {
      contentType: JSONL,
    });
  }

  /** Every harvested activation whose time falls in `month` (YYYY-MM), in batches; an audit id may come more than once. */
  async *activationsOfMonth(month: string, exceptRunDay?: string): AsyncGenerator<ActivationRow[]> {
    const except = exceptRunDay && `${ACTIVATIONS}${month}/${exceptRunDay}.jsonl`;
    for await (const name of this.store.list(this.container, `${ACTIVATIONS}${month}/`)) {
      // Left out, but the month has files: an empty batch says so (keptActivations then reads no archive instead).
      if (name === except) yield [];
      else yield* this.readActivations(name);
    }
  }

  /** Rows kept by earlier versions lack the trail's fields: read as role activations. */
  private async *readActivations(name: string): AsyncGenerator<ActivationRow[]> {
    for await (const batch of this.readJsonl<ActivationRow>(name)) yield batch.map(withTrailDefaults);
  }

  private async *readJsonl<T>(name: string): AsyncGenerator<T[]> {
    const stream = await this.store.readStream(this.container, name);
    if (stream) yield* jsonLineBatches<T>(stream);
  }
}
