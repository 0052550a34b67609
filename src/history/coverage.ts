/**
 * What the history covers: the window each harvest reads, the gaps Graph left, when a month is
 * sealed, and which periods of a month or an export no source covers (docs/guarantees.md).
 */
import { AUDIT_RETENTION_MS, type HarvestWindow } from '../pim/activations';
import type { HarvestGap } from '../pim/model';
import { monthBounds, previousDay } from './calendar';
import type { Watermark } from './store';

/** How far back each run re-reads before the watermark by default (HARVEST_OVERLAP_HOURS): a day. */
export const HARVEST_OVERLAP_MS = 24 * 3600 * 1000;
/**
 * What a watermark written before `recentFromUtc` existed covers with its `recent` ids: the six
 * hours the app re-read then. Reading further back than the ids reach would report events twice.
 */
const LEGACY_RECENT_MS = 6 * 3600 * 1000;

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
  return { window: { from, to: now, unharvestedFrom: through }, gaps, clockBehind: false };
}

/** Where the watermark's `recent` ids start to be complete. */
export function recentFromOf(watermark: Watermark | undefined): number | undefined {
  if (!watermark) return undefined;
  return watermark.recentFromUtc
    ? Date.parse(watermark.recentFromUtc)
    : Date.parse(watermark.harvestedThroughUtc) - LEGACY_RECENT_MS;
}

/**
 * The watermark after a harvest of `window` that found `gaps`, on `day`: every id of the last
 * overlap is kept for the next run (`harvested`: the ids and times this run reports), so each event
 * whose time falls there was harvested by this run or by an earlier one whose ids are still kept.
 */
export function advancedWatermark(
  previous: Watermark | undefined,
  window: HarvestWindow,
  overlapMs: number,
  harvested: Record<string, string>,
  gaps: HarvestGap[],
  day: string,
  approvals: Watermark['approvals'] = [],
): Watermark {
  const keepFrom = window.to.getTime() - overlapMs;
  const recent: Record<string, string> = {};
  for (const [id, at] of Object.entries(previous?.recent ?? {})) if (Date.parse(at) >= keepFrom) recent[id] = at;
  for (const [id, at] of Object.entries(harvested)) if (Date.parse(at) >= keepFrom) recent[id] = at;
  return {
    harvestedThroughUtc: window.to.toISOString(),
    // Complete from where the last run's ids were (or from this window, on a first run) at best.
    recentFromUtc: new Date(
      Math.min(window.to.getTime(), Math.max(keepFrom, recentFromOf(previous) ?? window.from.getTime())),
    ).toISOString(),
    coverageStartUtc: previous?.coverageStartUtc ?? window.from.toISOString(),
    recent,
    gaps: [...(previous?.gaps ?? []), ...gaps.map((gap) => ({ ...gap, foundOn: day }))],
    ...(approvals.length > 0 ? { approvals } : {}),
  };
}

/**
 * Stored gaps found on `day` or on a day after the newest final day before it: found by an earlier
 * attempt of this day (it moved the watermark, then stopped) or by runs of days that never became
 * final, so no digest has told of them yet.
 */
export async function untoldGaps(
  gaps: HarvestGap[],
  day: string,
  isFinal: (day: string) => Promise<boolean>,
): Promise<HarvestGap[]> {
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

/** The moment from which `month` may be sealed: its end plus the harvest overlap. */
export function sealableFrom(month: string, overlapHours: number): Date {
  return new Date(monthBounds(month).end.getTime() + overlapHours * 3600 * 1000);
}

/** Sealed: the harvest has covered the month's end plus the overlap (audit events reach Graph late). */
export function isSealed(month: string, watermark: Watermark | undefined, overlapHours: number): boolean {
  return (
    watermark !== undefined && Date.parse(watermark.harvestedThroughUtc) >= sealableFrom(month, overlapHours).getTime()
  );
}

/** Periods of `month` the history lacks: before its coverage began, and the gaps it recorded. */
export function monthGaps(month: string, knownGaps: HarvestGap[], coverageStart: string | undefined): HarvestGap[] {
  const { start, end } = monthBounds(month);
  const gaps = knownGaps
    .filter((g) => Date.parse(g.fromUtc) < end.getTime() && Date.parse(g.toUtc) > start.getTime())
    .map(({ fromUtc, toUtc, reason }) => ({ fromUtc, toUtc, reason }));
  if (!coverageStart || Date.parse(coverageStart) > start.getTime()) {
    gaps.unshift({
      fromUtc: start.toISOString(),
      toUtc: coverageStart && Date.parse(coverageStart) < end.getTime() ? coverageStart : end.toISOString(),
      reason:
        'before the first harvest of this app (Graph had already dropped these events, or the app was not yet installed)',
    });
  }
  return gaps;
}

/**
 * Periods from `from` to `end` (older than Graph keeps) that the history does not cover: before its
 * first harvest, a stop longer than Graph keeps that no harvest has recorded yet, recorded gaps.
 */
export function uncoveredBefore(
  watermark: Watermark | undefined,
  from: Date,
  end: Date,
  retentionStart: Date,
): HarvestGap[] {
  const uncovered: HarvestGap[] = [];
  const coverageStart = watermark ? new Date(watermark.coverageStartUtc) : retentionStart;
  if (from < coverageStart) {
    uncovered.push({
      fromUtc: from.toISOString(),
      toUtc: (coverageStart < end ? coverageStart : end).toISOString(),
      reason: 'before the first harvest of this app, and beyond the 30 days Graph keeps',
    });
  }
  if (watermark && Date.parse(watermark.harvestedThroughUtc) < retentionStart.getTime()) {
    const gapFrom = new Date(Math.max(Date.parse(watermark.harvestedThroughUtc), from.getTime()));
    if (gapFrom < end)
      uncovered.push({
        fromUtc: gapFrom.toISOString(),
        toUtc: end.toISOString(),
        reason: 'no run harvested it within the 30 days Graph keeps audit events',
      });
  }
  for (const gap of watermark?.gaps ?? []) {
    if (Date.parse(gap.fromUtc) < end.getTime() && Date.parse(gap.toUtc) > from.getTime())
      uncovered.push({ fromUtc: gap.fromUtc, toUtc: gap.toUtc, reason: gap.reason });
  }
  return uncovered;
}
