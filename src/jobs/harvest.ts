/**
 * The activation harvest (SPEC section 6: no activation lost or doubled). Each run reads the audit
 * log from the stored watermark less an overlap (audit events arrive late: graph-pim.md section 8)
 * to now, drops the audit ids it already has, and keeps the result under `state/activations/`
 * before it moves the watermark. Missed days are caught up while Graph still holds them; what
 * Graph has already dropped is recorded as a gap, never silently skipped.
 */
import { AUDIT_RETENTION_MS, harvestActivations, type HarvestWindow } from '../pim/activations';
import { compareActivationRows, type ActivationRow } from '../pim/model';
import type { JobContext } from './context';
import { dailyManifest } from './files';
import type { HarvestGap, StateStore, Watermark } from './state';

/** How far back each run re-reads before the watermark. */
export const HARVEST_OVERLAP_MS = 6 * 3600 * 1000;

export interface Harvest {
  /** Every activation harvested by the run(s) of this day, oldest first, each audit id once. */
  rows: ActivationRow[];
  window?: HarvestWindow;
  /** Periods this run found Graph no longer holds. */
  newGaps: HarvestGap[];
}

/** The window to read, and any gap before it, given the watermark and the moment of the run. */
export function activationsWindow(
  watermark: Watermark | undefined,
  now: Date,
): { window?: HarvestWindow; gaps: HarvestGap[]; clockBehind: boolean } {
  const retentionStart = new Date(now.getTime() - AUDIT_RETENTION_MS);
  if (!watermark) return { window: { from: retentionStart, to: now }, gaps: [], clockBehind: false };
  const through = new Date(watermark.harvestedThroughUtc);
  if (now.getTime() < through.getTime()) return { gaps: [], clockBehind: true };
  let from = new Date(through.getTime() - HARVEST_OVERLAP_MS);
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

export async function harvestSince(ctx: JobContext, state: StateStore, day: string): Promise<Harvest> {
  const { graph, log, now } = ctx;
  const watermark = await state.watermark();
  const { window, gaps, clockBehind } = activationsWindow(watermark, now);
  for (const gap of gaps) log.warn(`Activations between ${gap.fromUtc} and ${gap.toUtc} are lost to this app: ${gap.reason}`);

  // What earlier attempts of this same day already harvested (a crash, or a forced re-run), and what
  // runs of earlier days harvested but never reported because they failed before their manifest.
  const byId = new Map<string, ActivationRow>();
  const isFinal = (d: string) => ctx.store.exists(ctx.settings.reportsContainer, dailyManifest(d));
  for (const row of await state.activationsToReport(day, isFinal)) byId.set(row.auditId, row);
  const known = watermark?.recent ?? {};

  let fresh = 0;
  if (clockBehind) {
    log.warn(
      `The clock (${now.toISOString()}) is earlier than the stored watermark (${watermark!.harvestedThroughUtc}); no activation is harvested and the watermark is kept`,
    );
  } else if (window) {
    log.info(`Harvesting activations from ${window.from.toISOString()} to ${window.to.toISOString()}`);
    for await (const row of harvestActivations(graph, window, log)) {
      if (known[row.auditId] !== undefined || byId.has(row.auditId)) continue;
      byId.set(row.auditId, row);
      fresh++;
    }
  }
  const rows = [...byId.values()].sort(compareActivationRows);
  log.info(`Harvested ${fresh} new activation(s); ${rows.length} for ${day}`);

  // Keep the rows before moving the watermark: a crash in between re-reads, and de-duplicates.
  await state.saveActivationsOfRunDay(day, rows);
  if (window) {
    const keepFrom = window.to.getTime() - HARVEST_OVERLAP_MS;
    const recent: Record<string, string> = {};
    for (const [id, at] of Object.entries(known)) if (Date.parse(at) >= keepFrom) recent[id] = at;
    for (const row of rows) if (Date.parse(row.activated) >= keepFrom) recent[row.auditId] = row.activated;
    await state.saveWatermark({
      harvestedThroughUtc: window.to.toISOString(),
      coverageStartUtc: watermark?.coverageStartUtc ?? window.from.toISOString(),
      recent,
      gaps: [...(watermark?.gaps ?? []), ...gaps],
    });
  }
  return { rows, window, newGaps: gaps };
}
