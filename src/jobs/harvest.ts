/**
 * The activation harvest (docs/guarantees.md, "No activation lost or doubled"). Each run reads the audit
 * log from the stored watermark less an overlap (audit events arrive late; no public page states by how much: docs/guarantees.md)
 * to now, drops the audit ids it already has, and keeps the result under `state/activations/`
 * before it moves the watermark. Missed days are caught up while Graph still holds them; what
 * Graph has already dropped is recorded as a gap, never silently skipped.
 */
import { AUDIT_RETENTION_MS, harvestActivations, type HarvestWindow } from '../pim/activations';
import { activationRowCodec, compareActivationRows, type ActivationRow } from '../pim/model';
import { LIST_LIMIT } from '../pim/changes';
import { ExternalSorter } from '../util/sorter';
import { withActivatedScopes } from '../pim/snapshot';
import type { JobContext } from './context';
import { dailyManifest } from './files';
import { monthOfActivation, type HarvestGap, type StateStore, type Watermark } from './state';

/** How far back each run re-reads before the watermark by default (HARVEST_OVERLAP_HOURS): a day. */
export const HARVEST_OVERLAP_MS = 24 * 3600 * 1000;
/**
 * What a watermark written before `recentFromUtc` existed covers with its `recent` ids: the six
 * hours the app re-read then. Reading further back than the ids reach would report events twice.
 */
const LEGACY_RECENT_MS = 6 * 3600 * 1000;

export interface Harvest {
  /**
   * Every activation the day's file reports, oldest first, each audit id once: kept on disk, not
   * in memory (a first run reads 30 days of a large tenant). Call `dispose` when done.
   */
  activations: ExternalSorter<ActivationRow>;
  /** How many. */
  count: number;
  /** The newest few (LIST_LIMIT), newest first: what the digest lists. */
  latest: ActivationRow[];
  window?: HarvestWindow;
  /** Periods Graph no longer held, found by this run or by an earlier one no digest has told of. */
  newGaps: HarvestGap[];
  dispose(): Promise<void>;
}

/** Activations kept in memory before a sorted run is spilled: two runs' worth at most, about 4 MB. */
const RUN_SIZE = 5_000;
/** Activations given to the sorter at once: one await a batch, not one a row. */
const BATCH = 1_000;

/** The window to read, and any gap before it, given the watermark and the moment of the run. */
export function activationsWindow(
  watermark: Watermark | undefined,
  now: Date,
  overlapMs: number = HARVEST_OVERLAP_MS,
): { window?: HarvestWindow; gaps: HarvestGap[]; clockBehind: boolean } {
  const retentionStart = new Date(now.getTime() - AUDIT_RETENTION_MS);
  if (!watermark) return { window: { from: retentionStart, to: now }, gaps: [], clockBehind: false };
  const through = new Date(watermark.harvestedThroughUtc);
  if (now.getTime() < through.getTime()) return { gaps: [], clockBehind: true };
  // Never before the ids kept to de-duplicate reach (an overlap made longer since the last run).
  let from = new Date(Math.max(through.getTime() - overlapMs, recentFromOf(watermark)!));
  const gaps: HarvestGap[] = [];
  if (from < retentionStart) {
    if (through < retentionStart) {
      gaps.push({
        fromUtc: through.toISOString(),
        toUtc: retentionStart.toISOString(),
        reason: 'no run harvested them within the 30 days Graph keeps audit events',
      });
    }
    from = retentionStart;
  }
  return { window: { from, to: now }, gaps, clockBehind: false };
}

/** Where the watermark's `recent` ids start to be complete. */
function recentFromOf(watermark: Watermark | undefined): number | undefined {
  if (!watermark) return undefined;
  return watermark.recentFromUtc ? Date.parse(watermark.recentFromUtc) : Date.parse(watermark.harvestedThroughUtc) - LEGACY_RECENT_MS;
}

export interface HarvestOptions {
  /** Activations kept in memory before a sorted run is spilled (RUN_SIZE). */
  runSize?: number;
  /** Scope of each Activated schedule by request id: fills the Scope Id the audit records leave blank (snapshot.ts). */
  activatedScopes?: Promise<ReadonlyMap<string, string>>;
}

export async function harvestSince(ctx: JobContext, state: StateStore, day: string, options: HarvestOptions = {}): Promise<Harvest> {
  const { graph, log, now } = ctx;
  const watermark = await state.watermark();
  const overlapMs = ctx.settings.harvestOverlapHours * 3600 * 1000;
  const { window, gaps, clockBehind } = activationsWindow(watermark, now, overlapMs);
  for (const gap of gaps) log.warn(`Activations between ${gap.fromUtc} and ${gap.toUtc} are lost to this app: ${gap.reason}`);

  const activations = new ExternalSorter<ActivationRow>(compareActivationRows, { runSize: options.runSize ?? RUN_SIZE, codec: activationRowCodec });
  try {
    // Audit ids only, not rows: what keeps each activation once across attempts and the overlap.
    const seen = new Set<string>();
    const months = new Set<string>();
    const known = watermark?.recent ?? {};
    /** Each audit id once; rows from Graph also skip what the last run already harvested. */
    const keep = (batch: ActivationRow[], fromGraph: boolean): Promise<void> => {
      const fresh: ActivationRow[] = [];
      for (const row of batch) {
        if (seen.has(row.auditId) || (fromGraph && known[row.auditId] !== undefined)) continue;
        seen.add(row.auditId);
        months.add(monthOfActivation(row));
        fresh.push(row);
      }
      return activations.addAll(fresh);
    };

    // What earlier attempts of this same day already harvested (a crash, or a forced re-run), and what
    // runs of earlier days harvested but never reported because they failed before their manifest.
    const isFinal = (d: string) => ctx.store.exists(ctx.settings.reportsContainer, dailyManifest(d));
    for await (const batch of state.activationsToReport(day, isFinal)) await keep(batch, false);
    const earlier = activations.size;

    if (clockBehind) {
      log.warn(
        `The clock (${now.toISOString()}) is earlier than the stored watermark (${watermark!.harvestedThroughUtc}); no activation is harvested and the watermark is kept`,
      );
    } else if (window) {
      log.info(`Harvesting activations from ${window.from.toISOString()} to ${window.to.toISOString()}`);
      let batch: ActivationRow[] = [];
      for await (const row of harvestActivations(graph, window, log, (gap) => gaps.push(gap))) {
        batch.push(row);
        if (batch.length >= BATCH) {
          await keep(batch, true);
          batch = [];
        }
      }
      await keep(batch, true);
    }
    const count = activations.size;
    log.info(`Harvested ${count - earlier} new activation(s); ${count} for ${day}`);

    // Keep the rows before moving the watermark: a crash in between re-reads, and de-duplicates.
    // One pass over the sorted rows per month file (a harvest spans two or three months at most).
    const scopes = await (options.activatedScopes ?? Promise.resolve(new Map<string, string>())).catch(() => new Map<string, string>());
    for (const month of [...months].sort()) {
      await state.saveActivationsOfRunDay(day, month, ofMonth(withActivatedScopes(activations.sortedBatches(), scopes), month));
    }
    // The digest's newest few, and every id of the last overlap for the next run: each event whose
    // time falls there was harvested by this run or by an earlier one whose ids are still kept.
    const keepFrom = window ? window.to.getTime() - overlapMs : Infinity;
    const recent: Record<string, string> = {};
    for (const [id, at] of Object.entries(known)) if (Date.parse(at) >= keepFrom) recent[id] = at;
    const latest: ActivationRow[] = [];
    for await (const batch of activations.sortedBatches()) {
      for (const row of batch) if (Date.parse(row.activated) >= keepFrom) recent[row.auditId] = row.activated;
      latest.push(...batch.slice(-LIST_LIMIT));
      latest.splice(0, Math.max(0, latest.length - LIST_LIMIT));
    }
    if (window) {
      await state.saveWatermark({
        harvestedThroughUtc: window.to.toISOString(),
        // Complete from where the last run's ids were (or from this window, on a first run) at best.
        recentFromUtc: new Date(Math.min(window.to.getTime(), Math.max(keepFrom, recentFromOf(watermark) ?? window.from.getTime()))).toISOString(),
        coverageStartUtc: watermark?.coverageStartUtc ?? window.from.toISOString(),
        recent,
        gaps: [...(watermark?.gaps ?? []), ...gaps.map((gap) => ({ ...gap, foundOn: day }))],
      });
    }
    // Gaps found since the last final day, by an earlier attempt of this day (it moved the watermark,
    // then stopped) or by runs of days that never became final: no digest has told of them yet.
    const untold = await untoldGaps(watermark?.gaps ?? [], day, isFinal);
    const newGaps = [...untold, ...gaps].map(({ fromUtc, toUtc, reason }) => ({ fromUtc, toUtc, reason }));
    return { activations, count, latest: latest.reverse(), window, newGaps, dispose: () => activations.dispose() };
  } catch (error) {
    await activations.dispose();
    throw error;
  }
}

/** Stored gaps found on `day` or on a day after the newest final day before it. */
async function untoldGaps(gaps: HarvestGap[], day: string, isFinal: (day: string) => Promise<boolean>): Promise<HarvestGap[]> {
  const candidates = gaps.filter((gap) => gap.foundOn && gap.foundOn <= day);
  const earliest = candidates.reduce((min, gap) => (gap.foundOn! < min ? gap.foundOn! : min), day);
  // Back from the day before, to the earliest candidate at most: usually one look (yesterday is final).
  let lastFinal = '';
  for (let d = previousDay(day); d >= earliest; d = previousDay(d)) {
    if (await isFinal(d)) {
      lastFinal = d;
      break;
    }
  }
  return candidates.filter((gap) => gap.foundOn! > lastFinal);
}

function previousDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) - 24 * 3600 * 1000).toISOString().slice(0, 10);
}

/** The rows of one month from rows sorted by time (those without a time first): stops past it. */
export async function* ofMonth(batches: AsyncIterable<ActivationRow[]>, month: string): AsyncGenerator<ActivationRow[]> {
  for await (const batch of batches) {
    const rows = batch.filter((row) => monthOfActivation(row) === month);
    if (rows.length > 0) yield rows;
    const last = batch[batch.length - 1];
    if (month === 'unknown' ? last.activated !== '' : last.activated.slice(0, 7) > month) return;
  }
}
