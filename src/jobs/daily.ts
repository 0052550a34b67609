/**
 * The daily job: today's snapshot CSVs and manifest in `daily/YYYY/MM/DD/` of the reports container.
 */
import { takeSnapshot } from '../pim/snapshot';
import { APP_VERSION } from '../version';
import type { JobContext } from './context';
import { dayFolder, JSON_CONTENT_TYPE, utcDay, writeAssignmentsCsv, writeTextFile, type ManifestFile } from './files';

export interface DailyOptions {
  forceEmail?: boolean;
}

export interface DailyResult {
  day: string;
  folder: string;
  files: ManifestFile[];
}

export async function runDaily(ctx: JobContext, _options: DailyOptions = {}): Promise<DailyResult> {
  const { settings, graph, store, log, now } = ctx;
  const started = new Date();
  const folder = dayFolder(now);
  const container = settings.reportsContainer;
  log.info(`Daily run for ${utcDay(now)} into ${store.location(container)}/${folder}`);

  const snapshot = await takeSnapshot(graph, { privilegedRoleIds: settings.privilegedRoleIds, log });
  try {
    const files: ManifestFile[] = [];
    files.push(await writeAssignmentsCsv(store, container, `${folder}eligible-assignments.csv`, snapshot.eligible.sorted(), snapshot.scopeName));
    log.info(`Wrote ${folder}eligible-assignments.csv (${files[0].rows} rows)`);
    files.push(await writeAssignmentsCsv(store, container, `${folder}active-assignments.csv`, snapshot.active.sorted(), snapshot.scopeName));
    log.info(`Wrote ${folder}active-assignments.csv (${files[1].rows} rows)`);

    const manifest = {
      kind: 'daily',
      day: utcDay(now),
      appVersion: APP_VERSION,
      runStartedUtc: started.toISOString(),
      runFinishedUtc: new Date().toISOString(),
      asOfUtc: now.toISOString(),
      files,
      counts: snapshot.counts,
      graph: graph.stats,
    };
    await writeTextFile(store, container, `${folder}manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`, JSON_CONTENT_TYPE);
    log.info(`Wrote ${folder}manifest.json (${graph.stats.requests} Graph requests)`);
    return { day: utcDay(now), folder, files };
  } finally {
    await snapshot.dispose();
  }
}
