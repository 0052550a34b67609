/**
 * The activation harvest (docs/guarantees.md, "No activation lost or doubled"). Each run reads the audit
 * log from the stored watermark less an overlap (audit events arrive late; no public page states by how much: docs/guarantees.md)
 * to now, drops the audit ids it already has, and keeps the result under `state/activations/`
 * before it moves the watermark. Missed days are caught up while Graph still holds them; what
 * Graph has already dropped is recorded as a gap, never silently skipped.
 */
import { harvestActivations, type HarvestWindow } from '../pim/activations';
import { activationRowCodec, compareActivationRows, type ActivationRow, type HarvestGap } from '../pim/model';
import { LIST_LIMIT } from '../pim/changes';
import { ExternalSorter } from '../util/sorter';
import { tapped } from '../util/streams';
import { withActivatedScopes, withGroupRoles, type GroupRoles } from '../pim/snapshot';
import { GLOBAL_ADMINISTRATOR_ROLE_ID } from '../pim/roles';
import {
  activationsWindow,
  advancedWatermark,
  ApprovalBook,
  AuditIds,
  monthOfActivation,
  ofMonth,
  untoldGaps,
  type HistoryStore,
} from '../history';
import type { JobContext } from './context';

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
  /** The PIM-for-Groups activations among them: how many, and the newest few, newest first. */
  groupActivations: { count: number; items: ActivationRow[] };
  /** Activations of Global Administrator: direct (or through a group's eligibility), and through PIM-for-Groups membership of a group that holds it. */
  globalAdministratorActivations: { direct: number; throughGroups: number };
  /** The rows as the day's file reports them (Scope Id and Group Roles from the run's snapshot), sorted. */
  reported(): AsyncIterable<ActivationRow[]>;
  window?: HarvestWindow;
  /** Periods Graph no longer held, found by this run or by an earlier one no digest has told of. */
  newGaps: HarvestGap[];
  dispose(): Promise<void>;
}

/** Activations kept in memory before a sorted run is spilled: two runs' worth at most, about 4 MB. */
const RUN_SIZE = 5_000;
/** Activations given to the sorter at once: one await a batch, not one a row. */
const BATCH = 1_000;

export interface HarvestOptions {
  /** Activations kept in memory before a sorted run is spilled (RUN_SIZE). */
  runSize?: number;
  /** Scope of each Activated schedule by request id: fills the Scope Id the audit records leave blank (snapshot.ts). */
  activatedScopes?: Promise<ReadonlyMap<string, string>>;
  /** The roles each group holds in the run's snapshot: fills Group Roles of PIM-for-Groups activations. */
  groupRoles?: Promise<GroupRoles>;
}

export async function harvestSince(
  ctx: JobContext,
  history: HistoryStore,
  day: string,
  options: HarvestOptions = {},
): Promise<Harvest> {
  const { graph, log, now } = ctx;
  const watermark = await history.watermark();
  const overlapMs = ctx.settings.harvestOverlapHours * 3600 * 1000;
  const { window, gaps, clockBehind } = activationsWindow(watermark, now, overlapMs);
  for (const gap of gaps)
    log.warn(`Activations between ${gap.fromUtc} and ${gap.toUtc} are lost to this app: ${gap.reason}`);

  const activations = new ExternalSorter<ActivationRow>(compareActivationRows, {
    runSize: options.runSize ?? RUN_SIZE,
    codec: activationRowCodec,
  });
  try {
    // Audit ids only, not rows: what keeps each activation once across attempts and the overlap.
    const seen = new AuditIds();
    const months = new Set<string>();
    const known = watermark?.recent ?? {};
    // Approvals come before the completions they approve, in this run or in an earlier one.
    const approvals = new ApprovalBook(watermark?.approvals);
    /** Each audit id once; rows from Graph also skip what the last run already harvested. */
    const keep = (batch: ActivationRow[], fromGraph: boolean): Promise<void> => {
      const fresh: ActivationRow[] = [];
      for (const row of batch) {
        if ((fromGraph && known[row.auditId] !== undefined) || !seen.first(row.auditId)) continue;
        months.add(monthOfActivation(row));
        fresh.push(fromGraph ? approvals.fill(row) : row);
      }
      return activations.addAll(fresh);
    };

    // What earlier attempts of this same day already harvested (a crash, or a forced re-run), and what
    // runs of earlier days harvested but never reported because they failed before their manifest.
    for await (const batch of history.activationsToReport(day)) await keep(batch, false);
    const earlier = activations.size;

    if (clockBehind) {
      log.warn(
        `The clock (${now.toISOString()}) is earlier than the stored watermark (${watermark!.harvestedThroughUtc}); no activation is harvested and the watermark is kept`,
      );
    } else if (window) {
      log.info(`Harvesting activations from ${window.from.toISOString()} to ${window.to.toISOString()}`);
      let batch: ActivationRow[] = [];
      for await (const row of harvestActivations(
        graph,
        window,
        log,
        (gap) => gaps.push(gap),
        (approval) => approvals.note(approval),
      )) {
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

    const scopes = await (options.activatedScopes ?? Promise.resolve(new Map<string, string>())).catch(
      () => new Map<string, string>(),
    );
    const groupRoles: GroupRoles = await (options.groupRoles ?? Promise.resolve(new Map())).catch(() => new Map());
    const reported = () => withGroupRoles(withActivatedScopes(activations.sortedBatches(), scopes), groupRoles);
    // The digest's newest few, and the ids of the last overlap for the next run's watermark: seen on
    // the way of the last month's file, whose pass reads every row (ofMonth in src/history/calendar.ts
    // stops only past its month, and rows without a time sort first), not on a pass of their own.
    const keepFrom = window ? window.to.getTime() - overlapMs : Infinity;
    const grantsGlobalAdministrator = (groupId: string) =>
      (groupRoles.get(groupId.toLowerCase()) ?? []).some(
        (r) => r.roleId.toLowerCase() === GLOBAL_ADMINISTRATOR_ROLE_ID,
      );
    let observed = 0;
    const harvested: Record<string, string> = {};
    const latest: ActivationRow[] = [];
    const groupActivations = { count: 0, items: [] as ActivationRow[] };
    const globalAdministratorActivations = { direct: 0, throughGroups: 0 };
    const observe = (batch: ActivationRow[]) => {
      observed += batch.length;
      for (const row of batch) {
        if (Date.parse(row.activated) >= keepFrom) harvested[row.auditId] = row.activated;
        if (row.activationType === 'Group') {
          groupActivations.count++;
          groupActivations.items.push(row);
          if (row.groupAccess !== 'Owner' && grantsGlobalAdministrator(row.groupId))
            globalAdministratorActivations.throughGroups++;
        } else if (row.roleId.toLowerCase() === GLOBAL_ADMINISTRATOR_ROLE_ID) {
          globalAdministratorActivations.direct++;
        }
      }
      groupActivations.items.splice(0, Math.max(0, groupActivations.items.length - LIST_LIMIT));
      latest.push(...batch.slice(-LIST_LIMIT));
      latest.splice(0, Math.max(0, latest.length - LIST_LIMIT));
    };
    // Keep the rows before moving the watermark: a crash in between re-reads, and de-duplicates.
    // One pass over the sorted rows per month file (a harvest spans two or three months at most).
    const inOrder = [...months].sort();
    const readsAll = inOrder.filter((m) => m !== 'unknown').at(-1) ?? inOrder[0];
    for (const month of inOrder) {
      const rows = month === readsAll ? tapped(reported(), observe) : reported();
      await history.saveActivationsOfRunDay(day, month, ofMonth(rows, month));
    }
    if (observed !== activations.size)
      throw new Error(`internal: the last month's file saw ${observed} of ${activations.size} activation(s)`);
    if (window)
      await history.saveWatermark(
        advancedWatermark(watermark, window, overlapMs, harvested, gaps, day, approvals.unclaimed(now)),
      );
    const untold = await untoldGaps(watermark?.gaps ?? [], day, (d) => history.isDayFinal(d));
    const newGaps = [...untold, ...gaps].map(({ fromUtc, toUtc, reason }) => ({ fromUtc, toUtc, reason }));
    return {
      activations,
      count,
      latest: latest.reverse(),
      groupActivations: { count: groupActivations.count, items: groupActivations.items.reverse() },
      globalAdministratorActivations,
      reported,
      window,
      newGaps,
      dispose: () => activations.dispose(),
    };
  } catch (error) {
    await activations.dispose();
    throw error;
  }
}
