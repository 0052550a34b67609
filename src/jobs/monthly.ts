/**
 * The monthly job: a final harvest, then the pack (./pack.ts) of every complete month the harvest
 * covers that is sealed and not yet archived, oldest first. A month is sealed only once the harvest
 * has covered its end plus the overlap (audit events reach Graph up to HARVEST_OVERLAP_HOURS late;
 * src/history/coverage.ts); otherwise the first daily run after that moment writes it
 * (`archiveSealedMonth` in pack.ts).
 */
import {
  archiveFolder,
  HistoryStore,
  isSealed,
  monthBounds,
  monthlyManifest,
  monthOf,
  previousMonth,
  sealableFrom,
  utcDay,
} from '../history';
import { readActivatedScopes, takeSnapshot, type Snapshot } from '../pim/snapshot';
import type { JobContext } from './context';
import { harvestSince } from './harvest';
import { withRunLock, type RunLockOptions } from './lock';
import { archiveMonth } from './pack';
import { azureForPack } from './azure';

export interface MonthlyOptions {
  /** YYYY-MM; by default every complete month not yet archived, up to the month before `now`. */
  month?: string;
  /** How long to wait for another run that is writing the reports (lock.ts). */
  lock?: RunLockOptions;
}

export interface MonthlyResult {
  archived: string[];
  alreadyArchived: string[];
  /** Months not sealed yet: the harvest has not covered their end plus the overlap. */
  notSealed: string[];
}

function notSealedYet(month: string, overlapHours: number, through: string): string {
  return `${month} is not sealed yet: its pack is written once the harvest covers ${sealableFrom(month, overlapHours).toISOString()} (the month's end plus HARVEST_OVERLAP_HOURS=${overlapHours}, as audit events reach Graph late), and ${through}; the first daily run after that writes it; nothing is written now`;
}

export async function runMonthly(ctx: JobContext, options: MonthlyOptions = {}): Promise<MonthlyResult> {
  if (options.month && options.month > previousMonth(monthOf(ctx.now))) {
    ctx.log.info(
      notSealedYet(
        options.month,
        ctx.settings.harvestOverlapHours,
        `the month is not over at ${ctx.now.toISOString()}`,
      ),
    );
    return { archived: [], alreadyArchived: [], notSealed: [options.month] };
  }
  return withRunLock(ctx, 'monthly', () => monthly(ctx, options), options.lock);
}

async function monthly(ctx: JobContext, options: MonthlyOptions): Promise<MonthlyResult> {
  const { settings, store, log, now } = ctx;
  const archive = settings.archiveContainer;
  const history = new HistoryStore(store, settings.reportsContainer);
  const lastComplete = previousMonth(monthOf(now));

  // A final harvest, so the month's last hours (after the last daily run) are in. What it finds
  // belongs to the next daily file still open: today's, or tomorrow's if today's is final.
  const today = utcDay(now);
  const todayFinal = await history.isDayFinal(today);
  // Never left to reject unheard if the harvest fails first; without it Scope Id stays blank.
  const activatedScopes = readActivatedScopes(ctx.graph).catch((error: unknown) => {
    log.warn(
      `Activated schedules could not be read (${(error as Error).message}); activations without a scope keep Scope Id blank`,
    );
    return new Map<string, string>();
  });
  await (
    await harvestSince(ctx, history, todayFinal ? utcDay(new Date(now.getTime() + 24 * 3600 * 1000)) : today, {
      activatedScopes,
    })
  ).dispose();
  const watermark = await history.watermark();
  const coverageStart = watermark?.coverageStartUtc;
  // PIM for Azure resources: a final Azure harvest too, and the Azure assignments for the packs.
  const azure = await azureForPack(
    ctx,
    todayFinal ? utcDay(new Date(now.getTime() + 24 * 3600 * 1000)) : today,
    new Date(now),
  );

  let months: string[];
  if (options.month) {
    months = [options.month];
  } else {
    // Every complete month the harvest covers, oldest first: months missed while the app was
    // stopped are caught up.
    months = [];
    const first = coverageStart ? monthOf(new Date(coverageStart)) : lastComplete;
    for (let m = lastComplete; m >= first; m = previousMonth(m)) months.unshift(m);
  }

  const result: MonthlyResult = { archived: [], alreadyArchived: [], notSealed: [] };
  let snapshot: Snapshot | undefined;
  try {
    for (const month of months) {
      const folder = archiveFolder(month);
      if (await store.exists(archive, monthlyManifest(month))) {
        log.info(`${month} is archived already (${folder}manifest.json exists); nothing is rewritten`);
        result.alreadyArchived.push(month);
        continue;
      }
      if (!isSealed(month, watermark, settings.harvestOverlapHours)) {
        const through = watermark ? `the harvest reaches ${watermark.harvestedThroughUtc}` : 'nothing is harvested yet';
        log.info(notSealedYet(month, settings.harvestOverlapHours, through));
        result.notSealed.push(month);
        continue;
      }
      // Sealed only once the Azure harvest has covered the month's end, as the audit log's has.
      if (azure && (!azure.through || Date.parse(azure.through) < monthBounds(month).end.getTime())) {
        log.info(
          `${month} is not sealed yet: Azure activations are harvested only through ${azure.through ?? 'never'}, not the month's end; a later run writes it`,
        );
        result.notSealed.push(month);
        continue;
      }
      snapshot ??= await takeSnapshot(ctx.graph, { privilegedRoleIds: settings.privilegedRoleIds, log });
      await archiveMonth(ctx, history, month, snapshot, watermark?.gaps ?? [], coverageStart, azure?.reading);
      result.archived.push(month);
    }
  } finally {
    await Promise.all([snapshot?.dispose(), azure?.reading.snapshot?.dispose()]);
  }
  return result;
}
