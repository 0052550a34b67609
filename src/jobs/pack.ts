/**
 * A month's compliance pack (docs/files.md): the assignment snapshot taken when it is made, every
 * activation of the month exactly once from the app's own history (src/history/), and a manifest
 * with each file's SHA-256, written once into ARCHIVE_CONTAINER and never overwritten. Shared by
 * the monthly job and the daily job (which writes the month just ended once it is sealed).
 *
 * The manifest is written last and marks the pack complete. A pack left half-written by a crash is
 * completed by the next run, which computes each file again: a blob already there is described in
 * the manifest only if it holds exactly those bytes; any other stops the run, and no manifest is
 * written over a file the app did not write.
 */
import { packRoleSettings } from './roleSettings';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { BlobAlreadyExistsError } from '../io/blob';
import {
  archiveFolder,
  harvestedActivationsOfMonth,
  isSealed,
  monthBounds,
  monthGaps,
  monthlyManifest,
  monthOf,
  previousMonth,
  type HarvestGap,
  type HistoryStore,
  unusedEligibilities,
} from '../history';
import { takeSnapshot, type Snapshot } from '../pim/snapshot';
import {
  AZURE_ACTIVATIONS_FILE,
  AZURE_FILES,
  azureActivationsPackFile,
  azureForPack,
  keepAzureAssignments,
  type AzureReading,
  type KeptAzure,
} from './azure';
import { activationRowCodec, compareActivationRows, type ActivationRow } from '../pim/model';
import { csvFacts, type FileFacts } from '../report/csv';
import { ExternalSorter } from '../util/sorter';
import { byteFactsOf } from '../util/streams';
import { APP_VERSION } from '../version';
import type { JobContext } from './context';
import {
  activationsCsv,
  CSV_CONTENT_TYPE,
  JSON_CONTENT_TYPE,
  writeAssignmentsCsv,
  writeTextFile,
  writeUnusedCsv,
  type ManifestFile,
  utcDay,
} from './files';

export { parseMonth } from '../history';

/** A file already in a pack that is not what the app writes there: the pack is not certified. */
export class ArchiveMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveMismatchError';
  }
}

/**
 * For the daily job, holding the run lock, after its harvest: writes the pack of the last complete
 * month once it is sealed (the monthly timer runs before the month's last events reached Graph).
 * Quiet when there is nothing to do; the monthly timer catches up older months.
 */
export async function archiveSealedMonth(ctx: JobContext, history: HistoryStore): Promise<string[]> {
  const { settings, store } = ctx;
  const month = previousMonth(monthOf(ctx.now));
  const watermark = await history.watermark();
  if (!watermark || Date.parse(watermark.coverageStartUtc) >= monthBounds(month).end.getTime()) return [];
  if (!isSealed(month, watermark, settings.harvestOverlapHours)) return [];
  if (await store.exists(settings.archiveContainer, monthlyManifest(month))) return [];
  // PIM for Azure resources: sealed only once the Azure harvest covers the month's end too. What
  // this reading stores first belongs to tomorrow's daily file (today's is final by now).
  const azure = await azureForPack(ctx, utcDay(new Date(ctx.now.getTime() + 24 * 3600 * 1000)), monthBounds(month).end);
  try {
    if (azure && !azure.covered) {
      ctx.log.warn(
        `${month} is not sealed yet: Azure activations are harvested only through ${azure.through ?? 'never'}, not the month's end`,
      );
      return [];
    }
    const snapshot = await takeSnapshot(ctx.graph, { privilegedRoleIds: settings.privilegedRoleIds, log: ctx.log });
    try {
      await archiveMonth(ctx, history, month, snapshot, watermark.gaps, watermark.coverageStartUtc, azure?.reading);
    } finally {
      await snapshot.dispose();
    }
  } finally {
    await azure?.reading.snapshot?.dispose();
  }
  return [month];
}

export async function archiveMonth(
  ctx: JobContext,
  history: HistoryStore,
  month: string,
  snapshot: Snapshot,
  knownGaps: HarvestGap[],
  coverageStart: string | undefined,
  azure?: AzureReading,
): Promise<void> {
  const { store, log } = ctx;
  log.info(`Archiving ${month} into ${store.location(ctx.settings.archiveContainer)}/${archiveFolder(month)}`);

  const gaps = monthGaps(month, knownGaps, coverageStart);
  for (const gap of gaps)
    log.warn(`${month}: activations between ${gap.fromUtc} and ${gap.toUtc} are not in the pack: ${gap.reason}`);

  // Each audit id once (a run day's file may repeat an earlier attempt's), sorted on disk.
  const activations = new ExternalSorter<ActivationRow>(compareActivationRows, { codec: activationRowCodec });
  try {
    for await (const batch of harvestedActivationsOfMonth(history, month)) await activations.addAll(batch);
    await writePack(ctx, history, month, snapshot, activations, gaps, azure);
  } finally {
    await activations.dispose();
  }
}

/**
 * The pack's files, then its manifest. A file an earlier run left (it stopped before the manifest)
 * is computed again and must hold exactly those bytes: otherwise the run stops naming it.
 */
async function writePack(
  ctx: JobContext,
  history: HistoryStore,
  month: string,
  snapshot: Snapshot,
  activations: ExternalSorter<ActivationRow>,
  gaps: HarvestGap[],
  azure?: AzureReading,
): Promise<void> {
  const { settings, store, log, graph } = ctx;
  const archive = settings.archiveContainer;
  const folder = archiveFolder(month);
  const { start, end } = monthBounds(month);

  // The pack's assignments as first computed, kept under state/ until the manifest is written:
  // a run completing the pack writes and checks against those bytes, not against a snapshot taken
  // later (assignments change, and a file already in the archive cannot be replaced).
  const reports = settings.reportsContainer;
  const kept = `state/packs/${month}/`;
  const keptText = await store.readText(reports, `${kept}snapshot.json`);
  let taken = keptText ? (JSON.parse(keptText) as PackSnapshot) : undefined;
  if (!taken) {
    await writeAssignmentsCsv(
      store,
      reports,
      `${kept}eligible-assignments.csv`,
      snapshot.eligible.sortedBatches(),
      snapshot.scopeName,
    );
    await writeAssignmentsCsv(
      store,
      reports,
      `${kept}active-assignments.csv`,
      snapshot.active.sortedBatches(),
      snapshot.scopeName,
    );
    // The role settings as Graph gives them now, with the member policies of groups that hold highly privileged roles.
    const roleSettings = await packRoleSettings(
      ctx,
      reports,
      `${kept}role-settings.csv`,
      snapshot.privilegedGroups,
      snapshot.roleNames,
    );
    // Eligibilities nobody used, as of the pack (docs/files.md), kept with the assignments they come from.
    const unused = await unusedEligibilities({
      history,
      store,
      archiveContainer: archive,
      eligible: snapshot.eligible.sortedBatches(),
      groupRoles: snapshot.groupRoles,
      now: ctx.now,
      afterDays: settings.unusedAfterDays,
    });
    try {
      await writeUnusedCsv(
        store,
        reports,
        `${kept}unused-eligibilities.csv`,
        unused.rows.sortedBatches(),
        snapshot.scopeName,
      );
    } finally {
      await unused.dispose();
    }
    taken = {
      unused: {
        count: unused.count,
        complete: unused.complete,
        completeFrom: unused.completeFrom,
        historySince: unused.historySince,
        afterDays: unused.afterDays,
        gaps: unused.gaps,
      },
      takenUtc: new Date().toISOString(),
      counts: snapshot.counts,
      incomplete: [...snapshot.incomplete, ...roleSettings.incomplete].map(
        ({ list, groupId, groupName, status, code, reason }) => ({
          list,
          groupId,
          groupName,
          status,
          code,
          reason,
        }),
      ),
      ...(azure ? { azure: await keepAzureAssignments(ctx, kept, azure) } : {}),
    };
    // Written last: the files above are whole once this exists.
    await store.writeText(reports, `${kept}snapshot.json`, JSON.stringify(taken), { contentType: JSON_CONTENT_TYPE });
  } else {
    log.info(`${month}: completing the pack with the assignments an earlier run took at ${taken.takenUtc}`);
  }
  const keptCopy = (name: string): PackFile => {
    const read = async () => (await store.readStream(reports, `${kept}${name}`)) as Readable;
    return {
      expected: async () => csvFacts(await read()),
      write: async (path) => {
        const facts = await csvFacts(await read());
        await store.writeStream(archive, path, await read(), { contentType: CSV_CONTENT_TYPE, onlyIfAbsent: true });
        return facts;
      },
    };
  };
  const activationsFile: PackFile = {
    expected: async () => {
      const { stream, facts } = activationsCsv(activations.sortedBatches());
      stream.resume(); // read to the end, only for its facts
      await finished(stream);
      return facts();
    },
    write: async (path) => {
      const { stream, facts } = activationsCsv(activations.sortedBatches());
      await store.writeStream(archive, path, stream, { contentType: CSV_CONTENT_TYPE, onlyIfAbsent: true });
      return facts();
    },
  };

  const files: ManifestFile[] = [];
  const once = async (name: string, file: PackFile) => {
    const path = `${folder}${name}`;
    if (!(await store.exists(archive, path))) {
      try {
        files.push({ name, ...(await file.write(path)) });
        log.info(`Wrote ${path}`);
        return;
      } catch (error) {
        if (!(error instanceof BlobAlreadyExistsError)) throw error;
      }
    }
    // Already there: the manifest certifies it only if it is byte for byte what this run writes.
    const computed = await file.expected();
    const stored = await csvFacts((await store.readStream(archive, path))!);
    if (stored.sha256 !== computed.sha256) {
      throw new ArchiveMismatchError(
        `${archive}/${path} is already in the archive but is not what this app writes there (SHA-256 ${stored.sha256}, ${stored.bytes} bytes; computed from the harvest and the pack's snapshot: ${computed.sha256}, ${computed.bytes} bytes): no manifest is written for ${month}; find out who wrote it`,
      );
    }
    files.push({ name, ...computed });
    log.info(`${path} was already written by an earlier run, with exactly these bytes; kept`);
  };
  await once('eligible-assignments.csv', keptCopy('eligible-assignments.csv'));
  await once('active-assignments.csv', keptCopy('active-assignments.csv'));
  await once('activations.csv', activationsFile);
  if (await store.exists(reports, `${kept}role-settings.csv`))
    await once('role-settings.csv', keptCopy('role-settings.csv'));
  else
    log.warn(
      `${month}: the pack's snapshot was taken by an earlier version without role settings; role-settings.csv is not in this pack`,
    );
  if (taken.azure) {
    await once(AZURE_FILES.eligible, keptCopy(AZURE_FILES.eligible));
    await once(AZURE_FILES.active, keptCopy(AZURE_FILES.active));
    await once(AZURE_ACTIVATIONS_FILE, azureActivationsPackFile(ctx, month));
  }
  // A pack begun by a version without the list has none kept: it is completed without it.
  if (taken.unused) await once('unused-eligibilities.csv', keptCopy('unused-eligibilities.csv'));

  const manifest = {
    kind: 'monthly',
    month,
    periodStartUtc: start.toISOString(),
    periodEndUtc: end.toISOString(),
    generatedUtc: new Date().toISOString(),
    asOfUtc: ctx.now.toISOString(),
    appVersion: APP_VERSION,
    files,
    activations: { count: activations.size, complete: gaps.length === 0, gaps },
    snapshot: {
      note: 'assignments as Graph reported them when this pack was generated',
      ...taken.counts,
      takenUtc: taken.takenUtc,
    },
    ...(taken.azure
      ? {
          azure: {
            ...taken.azure.counts,
            activations: files.find((f) => f.name === AZURE_ACTIVATIONS_FILE)?.rows ?? 0,
            incomplete: taken.azure.incomplete.length > 0,
          },
        }
      : {}),
    incomplete: [...taken.incomplete, ...(taken.azure?.incomplete ?? [])],
    ...(taken.unused ? { unusedEligibilities: taken.unused } : {}),
    graph: graph.stats,
  };
  await writeTextFile(
    store,
    archive,
    `${folder}manifest.json`,
    `${JSON.stringify(manifest, null, 2)}\n`,
    JSON_CONTENT_TYPE,
    true,
  );
  log.info(
    `Wrote ${folder}manifest.json: ${activations.size} activation(s)${gaps.length ? `, ${gaps.length} gap(s)` : ''}`,
  );
  for (const name of [
    'eligible-assignments.csv',
    'active-assignments.csv',
    'role-settings.csv',
    'unused-eligibilities.csv',
    ...(taken.azure ? [AZURE_FILES.eligible, AZURE_FILES.active] : []),
    'snapshot.json',
  ])
    await store.delete(reports, `${kept}${name}`);
}

/** When the pack's assignments were taken, and how many (state/packs/<month>/snapshot.json). */
interface PackSnapshot {
  takenUtc: string;
  /** unused-eligibilities.csv as kept: its count and whether the history covered the window. */
  unused?: {
    count: number;
    complete: boolean;
    completeFrom?: string;
    historySince?: string;
    afterDays: number;
    gaps?: HarvestGap[];
  };
  counts: Snapshot['counts'];
  /** The lists Graph did not give in full for those files. */
  incomplete: Array<
    Pick<Snapshot['incomplete'][number], 'groupId' | 'groupName' | 'status' | 'code' | 'reason'> & { list: string }
  >;
  /** PIM for Azure resources: its assignments kept beside the Entra ones, when on. */
  azure?: KeptAzure;
}

/** A file of a pack: written once, or computed again to check a copy already there. */
interface PackFile {
  write(path: string): Promise<FileFacts>;
  expected(): Promise<FileFacts>;
}
export interface VerifyResult {
  month: string;
  ok: boolean;
  problems: string[];
  checked: string[];
}

/** Recomputes each archived file's SHA-256 and compares it with the month's manifest. */
export async function verifyMonth(
  ctx: Pick<JobContext, 'settings' | 'store' | 'log'>,
  month: string,
): Promise<VerifyResult> {
  const { settings, store, log } = ctx;
  const folder = archiveFolder(month);
  const text = await store.readText(settings.archiveContainer, `${folder}manifest.json`);
  if (!text)
    return { month, ok: false, problems: [`${folder}manifest.json not found: ${month} is not archived`], checked: [] };
  const manifest = JSON.parse(text) as { files: ManifestFile[] };
  const problems: string[] = [];
  const checked: string[] = [];
  for (const file of manifest.files) {
    // Streamed: a month of a large tenant's assignments is tens of megabytes.
    const data = await store.readStream(settings.archiveContainer, `${folder}${file.name}`);
    if (!data) {
      problems.push(`${folder}${file.name} is missing`);
      continue;
    }
    // Bytes only: a file that is not the CSV it should be is a mismatch to report, not a parse error.
    const actual = (await byteFactsOf(data)).sha256;
    if (actual !== file.sha256)
      problems.push(`${folder}${file.name} does not match the manifest: SHA-256 ${actual}, manifest ${file.sha256}`);
    else checked.push(file.name);
    log.info(`${folder}${file.name}: ${actual === file.sha256 ? 'OK' : 'MISMATCH'}`);
  }
  return { month, ok: problems.length === 0, problems, checked };
}
