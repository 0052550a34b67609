/**
 * PIM for Azure resources in a job: read alongside the Entra snapshot, written as
 * azure-eligible-assignments.csv and azure-active-assignments.csv. Off unless AZURE_RESOURCE_SCOPES
 * is set. An Azure failure never fails the run: the files are written with what could be read and
 * the digest and manifest say what could not (`incomplete`).
 */
import type { BlobStore } from '../io/blob';
import { routesUnreadFor, type IncompleteList } from '../pim/snapshot';
import {
  AZURE_ASSIGNMENT_TABLE,
  azureIncomplete,
  azureScopeType,
  takeAzureSnapshot,
  type AzureSnapshot,
} from '../pim/azure';
import { AssignmentChangeTracker, LIST_LIMIT, type AssignmentChanges } from '../pim/changes';
import type { AzureDigest } from '../report/azure-digest';
import { routesNotComparedText } from '../report/digest';
import { AZURE_ACTIVATION_TABLE, compareAzureActivations, type AzureActivationRow } from '../pim/azure-activations';
import type { AssignmentRow, ScopeNamer } from '../pim/model';
import { csvStreamOfBatches } from '../report/csv';
import { map, tapped } from '../util/streams';
import type { JobContext } from './context';
import { finished } from 'node:stream/promises';
import type { FileFacts } from '../report/csv';
import { CSV_CONTENT_TYPE, dailyManifest, type ManifestFile } from './files';
import { StateStore } from './state';

export const AZURE_FILES = {
  eligible: 'azure-eligible-assignments.csv',
  active: 'azure-active-assignments.csv',
} as const;

/** What the Azure reading gave: a snapshot, or the failure that stopped it (reported, not thrown). */
export type AzureReading =
  { snapshot: AzureSnapshot; failure?: undefined } | { snapshot?: undefined; failure: IncompleteList };

/** Starts reading Azure when it is on; never rejects. */
export function startAzureReading(ctx: JobContext): Promise<AzureReading> | undefined {
  const azure = ctx.settings.azure;
  if (!azure) return undefined;
  if (!ctx.arm) return Promise.resolve({ failure: azureIncomplete('no ARM client was configured') });
  return takeAzureSnapshot(ctx.arm, ctx.graph, {
    scopes: azure.scopes,
    privilegedRoleIds: azure.privilegedRoleIds,
    log: ctx.log,
  }).then(
    (snapshot) => ({ snapshot }),
    (error: unknown) => {
      const failure = azureIncomplete('the reading stopped, so no Azure assignment is reported', error);
      ctx.log.warn(failure.reason);
      return { failure };
    },
  );
}

export async function writeAzureAssignmentsCsv(
  store: BlobStore,
  container: string,
  name: string,
  batches: AsyncIterable<AssignmentRow[]>,
  scopeName: ScopeNamer,
  onlyIfAbsent = false,
): Promise<ManifestFile> {
  const { stream, facts } = csvStreamOfBatches(
    AZURE_ASSIGNMENT_TABLE.columns,
    map(batches, (batch) => batch.map((row) => AZURE_ASSIGNMENT_TABLE.values(row, scopeName))),
  );
  await store.writeStream(container, name, stream, { contentType: CSV_CONTENT_TYPE, onlyIfAbsent });
  return { name: name.slice(name.lastIndexOf('/') + 1), ...facts() };
}

async function* nothing(): AsyncGenerator<AssignmentRow[]> {
  // no rows: the file still has its header
}

/** The two Azure assignment files of a folder; the manifest's `azure` record and what is incomplete. */
export async function writeAzureAssignments(
  ctx: JobContext,
  container: string,
  folder: string,
  reading: AzureReading,
): Promise<{
  files: ManifestFile[];
  incomplete: IncompleteList[];
  activations: AzureActivationRow[];
  manifest: Record<string, unknown>;
}> {
  const files: ManifestFile[] = [];
  const snapshot = reading.snapshot;
  const scopeName: ScopeNamer = snapshot?.scopeName ?? ((id) => id);
  for (const [name, rows] of [
    [AZURE_FILES.eligible, snapshot?.eligible],
    [AZURE_FILES.active, snapshot?.active],
  ] as const) {
    const file = await writeAzureAssignmentsCsv(
      ctx.store,
      container,
      `${folder}${name}`,
      rows ? rows.sortedBatches() : nothing(),
      scopeName,
    );
    files.push(file);
    ctx.log.info(`Wrote ${folder}${name} (${file.rows} row(s))`);
  }
  const incomplete = snapshot ? snapshot.incomplete : [reading.failure!];
  // Activations first stored today (none when Azure could not be read at all).
  const day = ctx.now.toISOString().slice(0, 10);
  const activations = snapshot ? await storeAzureActivations(ctx, day, snapshot) : [];
  files.push(await writeAzureActivationsCsv(ctx.store, container, `${folder}${AZURE_ACTIVATIONS_FILE}`, activations));
  ctx.log.info(`Wrote ${folder}${AZURE_ACTIVATIONS_FILE} (${activations.length} activation(s))`);
  return {
    files,
    incomplete,
    activations,
    manifest: {
      ...(snapshot?.counts ?? {}),
      activations: activations.length,
      activationsComplete: snapshot?.activationsWhole ?? false,
      incomplete: incomplete.length > 0,
    },
  };
}

const AZURE_SNAPSHOTS = { current: 'state/azure-schedules/', legacy: 'state/azure-snapshots/' };

/**
 * What the digest says of Azure: today's schedules against the last final day's Azure snapshot.
 * Findings are permanent active privileged assignments at management-group or subscription scope,
 * so rows at resource groups and resources are not marked privileged for that count (their CSV
 * rows keep `Privileged`). Today's snapshot is kept as the next baseline only when Azure was read
 * whole: a scope that could not be read would otherwise show as removed, then new again.
 */
export async function azureDigestOf(
  ctx: JobContext,
  day: string,
  snapshot: AzureSnapshot,
  readWhole: boolean,
  activations: AzureActivationRow[],
): Promise<AzureDigest> {
  const container = ctx.settings.reportsContainer;
  const state = new StateStore(ctx.store, container, AZURE_SNAPSHOTS);
  const previous = await state.previousSnapshotBatches(day, (d) => ctx.store.exists(container, dailyManifest(d)));
  const findingScope = (row: AssignmentRow): AssignmentRow => {
    const type = azureScopeType(row.scopeId);
    return row.privileged && type !== 'Management group' && type !== 'Subscription'
      ? { ...row, privileged: false }
      : row;
  };
  // The diff on the pass that stores today's snapshot: the schedules are merged once, not twice.
  const unread = routesUnreadFor(snapshot.incomplete);
  const tracker = new AssignmentChangeTracker(previous, {
    now: ctx.now,
    expiryWindowDays: ctx.settings.expiryWindowDays,
    excludedPrincipalIds: ctx.settings.excludedPrincipalIds,
    routesUnreadFor: unread,
  });
  const observe = (batch: AssignmentRow[]) => tracker.observe(batch.map(findingScope));
  let changes: AssignmentChanges;
  try {
    if (readWhole)
      await state.saveSnapshot(day, tapped(snapshot.schedules.sortedBatches(), observe), previous?.day, {
        routesUnreadFor: unread,
      });
    else {
      for await (const batch of snapshot.schedules.sortedBatches()) await observe(batch);
      ctx.log.warn('Azure was not read whole: today is not kept as the baseline of the next Azure comparison');
    }
    changes = await tracker.result();
    if (changes.routesNotCompared)
      ctx.log.warn(`Azure: ${routesNotComparedText(changes.routesNotCompared, previous!.day)}`);
  } finally {
    await tracker.close();
  }
  return {
    changes,
    scopeName: snapshot.scopeName,
    scopes: snapshot.counts.scopes,
    activations: { count: activations.length, items: activations.slice(-LIST_LIMIT).reverse() },
  };
}

/** The manifest's account of the Azure digest. */
export function azureDigestManifest(d: AzureDigest): Record<string, unknown> {
  const c = d.changes;
  return {
    new: c.added.count,
    removed: c.removed.count,
    expiring: c.expiring.count,
    permanentPrivilegedFindings: c.permanentPrivilegedFindings.count,
    baseline: c.baseline,
    ...(c.routesNotCompared ? { routesNotCompared: c.routesNotCompared } : {}),
  };
}

// --- Azure activations, kept beyond ARM's retention --------------------------------------------

const AZURE_ACTIVATIONS = 'state/azure-activations/';
const AZURE_WATERMARK = 'state/azure-activations-watermark.json';
export const AZURE_ACTIVATIONS_FILE = 'azure-activations.csv';
/** How far back ARM still lists requests when the app first harvests (it keeps them about 30 days). */
const ARM_REQUEST_RETENTION_DAYS = 30;

interface StoredAzureActivation {
  /** The run day that first stored it: that day's folder lists it. */
  day: string;
  row: AzureActivationRow;
}

export interface AzureWatermark {
  /** Every provisioned self-activation ARM listed up to this time is stored. */
  harvestedThroughUtc: string;
  /** Before this, ARM had already forgotten requests when the app first harvested. */
  coverageStartUtc: string;
}

const monthFile = (month: string) => `${AZURE_ACTIVATIONS}${month}.jsonl`;

async function readMonth(ctx: JobContext, month: string): Promise<StoredAzureActivation[]> {
  const text = await ctx.store.readText(ctx.settings.reportsContainer, monthFile(month));
  return (text ?? '')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as StoredAzureActivation);
}

export async function azureWatermark(ctx: Pick<JobContext, 'store' | 'settings'>): Promise<AzureWatermark | undefined> {
  const text = await ctx.store.readText(ctx.settings.reportsContainer, AZURE_WATERMARK);
  return text ? (JSON.parse(text) as AzureWatermark) : undefined;
}

/**
 * Stores what ARM lists that the app has not stored yet (by request id), per month of activation,
 * and returns the activations first stored on `day` (so a re-run of the day lists the same ones).
 * The watermark moves only when every scope's requests were read.
 */
export async function storeAzureActivations(
  ctx: JobContext,
  day: string,
  snapshot: AzureSnapshot,
): Promise<AzureActivationRow[]> {
  const container = ctx.settings.reportsContainer;
  const byMonth = new Map<string, AzureActivationRow[]>();
  for (const row of snapshot.activations) {
    const month = row.activated.slice(0, 7);
    byMonth.set(month, [...(byMonth.get(month) ?? []), row]);
  }
  // The run day's own month and the one before are read too: a day's list comes from them.
  for (const month of [
    day.slice(0, 7),
    new Date(Date.parse(`${day.slice(0, 7)}-01T00:00:00Z`) - 1).toISOString().slice(0, 7),
  ])
    byMonth.set(month, byMonth.get(month) ?? []);
  const ofDay: AzureActivationRow[] = [];
  for (const [month, rows] of byMonth) {
    const stored = await readMonth(ctx, month);
    const known = new Set(stored.map((s) => s.row.requestId));
    const added = rows.filter((r) => !known.has(r.requestId)).map((row) => ({ day, row }));
    if (added.length > 0) {
      const all = [...stored, ...added].sort((a, b) => compareAzureActivations(a.row, b.row));
      await ctx.store.writeText(container, monthFile(month), all.map((s) => JSON.stringify(s)).join('\n') + '\n', {
        contentType: 'application/x-ndjson; charset=utf-8',
      });
    }
    for (const s of [...stored, ...added]) if (s.day === day) ofDay.push(s.row);
  }
  if (snapshot.activationsWhole) {
    const previous = await azureWatermark(ctx);
    const watermark: AzureWatermark = {
      harvestedThroughUtc: ctx.now.toISOString(),
      coverageStartUtc:
        previous?.coverageStartUtc ??
        new Date(ctx.now.getTime() - ARM_REQUEST_RETENTION_DAYS * 86_400_000).toISOString(),
    };
    await ctx.store.writeText(container, AZURE_WATERMARK, JSON.stringify(watermark), {
      contentType: 'application/json; charset=utf-8',
    });
  }
  ctx.log.info(
    `Azure: ${snapshot.activations.length} provisioned self-activation(s) listed by ARM; ${ofDay.length} first stored on ${day}`,
  );
  return ofDay.sort(compareAzureActivations);
}

/** Every stored Azure activation of a month, in order, each request once. */
export async function azureActivationsOfMonth(ctx: JobContext, month: string): Promise<AzureActivationRow[]> {
  const seen = new Set<string>();
  return (await readMonth(ctx, month))
    .map((s) => s.row)
    .filter((r) => r.activated.startsWith(month) && !seen.has(r.requestId) && seen.add(r.requestId));
}

export async function writeAzureActivationsCsv(
  store: BlobStore,
  container: string,
  name: string,
  rows: AzureActivationRow[],
  onlyIfAbsent = false,
): Promise<ManifestFile> {
  const batches = (async function* () {
    for (let i = 0; i < rows.length; i += 1000)
      yield rows.slice(i, i + 1000).map((r) => AZURE_ACTIVATION_TABLE.values(r, undefined));
  })();
  const { stream, facts } = csvStreamOfBatches(AZURE_ACTIVATION_TABLE.columns, batches);
  await store.writeStream(container, name, stream, { contentType: CSV_CONTENT_TYPE, onlyIfAbsent });
  return { name: name.slice(name.lastIndexOf('/') + 1), ...facts() };
}

// --- The monthly pack ----------------------------------------------------------------------------

/** True when the stored Azure activations cover the month's end (the pack may be sealed). */
export async function azureCoversMonth(
  ctx: JobContext,
  monthEnd: Date,
): Promise<{ covered: boolean; through?: string }> {
  const watermark = await azureWatermark(ctx);
  return {
    covered: !!watermark && Date.parse(watermark.harvestedThroughUtc) >= monthEnd.getTime(),
    through: watermark?.harvestedThroughUtc,
  };
}

/** What a pack keeps of its Azure assignments (beside state/packs/<month>/snapshot.json). */
export interface KeptAzure {
  counts: Record<string, unknown>;
  incomplete: Array<Pick<IncompleteList, 'list' | 'groupId' | 'groupName' | 'status' | 'code' | 'reason'>>;
}

/**
 * The pack's Azure assignments as first read, kept under the pack's state folder until its manifest
 * (as the Entra ones are), so a run completing the pack writes and checks those bytes.
 */
export async function keepAzureAssignments(ctx: JobContext, kept: string, reading: AzureReading): Promise<KeptAzure> {
  const reports = ctx.settings.reportsContainer;
  const snapshot = reading.snapshot;
  const scopeName: ScopeNamer = snapshot?.scopeName ?? ((id) => id);
  await writeAzureAssignmentsCsv(
    ctx.store,
    reports,
    `${kept}${AZURE_FILES.eligible}`,
    snapshot ? snapshot.eligible.sortedBatches() : nothing(),
    scopeName,
  );
  await writeAzureAssignmentsCsv(
    ctx.store,
    reports,
    `${kept}${AZURE_FILES.active}`,
    snapshot ? snapshot.active.sortedBatches() : nothing(),
    scopeName,
  );
  const incomplete = (snapshot ? snapshot.incomplete : [reading.failure!]).map(
    ({ list, groupId, groupName, status, code, reason }) => ({ list, groupId, groupName, status, code, reason }),
  );
  return { counts: { ...(snapshot?.counts ?? {}) }, incomplete };
}

/** azure-activations.csv of a pack: every stored Azure activation of the month, computed the same way each time. */
export function azureActivationsPackFile(
  ctx: JobContext,
  month: string,
): { write(path: string): Promise<FileFacts>; expected(): Promise<FileFacts> } {
  const csv = async () => {
    const rows = await azureActivationsOfMonth(ctx, month);
    return csvStreamOfBatches(
      AZURE_ACTIVATION_TABLE.columns,
      (async function* () {
        for (let i = 0; i < rows.length; i += 1000)
          yield rows.slice(i, i + 1000).map((r) => AZURE_ACTIVATION_TABLE.values(r, undefined));
      })(),
    );
  };
  return {
    expected: async () => {
      const { stream, facts } = await csv();
      stream.resume();
      await finished(stream);
      return facts();
    },
    write: async (path) => {
      const { stream, facts } = await csv();
      await ctx.store.writeStream(ctx.settings.archiveContainer, path, stream, {
        contentType: CSV_CONTENT_TYPE,
        onlyIfAbsent: true,
      });
      return facts();
    },
  };
}

/**
 * For a pack about to be sealed: a fresh Azure reading, its activations stored (first stored on
 * `day`), and whether the Azure harvest covers the month's end. Undefined when Azure is off.
 */
export async function azureForPack(
  ctx: JobContext,
  day: string,
  monthEnd: Date,
): Promise<{ reading: AzureReading; covered: boolean; through?: string } | undefined> {
  const reading = await startAzureReading(ctx);
  if (!reading) return undefined;
  if (reading.snapshot) await storeAzureActivations(ctx, day, reading.snapshot);
  return { reading, ...(await azureCoversMonth(ctx, monthEnd)) };
}

// --- On demand -----------------------------------------------------------------------------------

export const AZURE_DATASETS = ['azure-eligible', 'azure-active', 'azure-activations'] as const;
export type AzureDataset = (typeof AZURE_DATASETS)[number];

/** An export's rows (src/jobs/export.ts): columns, values, what no source covers, and clean-up. */
export interface AzureExportRows {
  columns: readonly string[];
  values: () => AsyncIterable<string[]>;
  uncovered: Array<{ fromUtc: string; toUtc: string; reason: string }>;
  dispose: () => Promise<void>;
}

/**
 * `azure-eligible` and `azure-active`: read from ARM now. `azure-activations` from `from` to `to`
 * (inclusive UTC days): what the app has stored, and what ARM lists now, each request once. An
 * Azure failure here fails the export (nothing to degrade into: the caller asked for Azure only).
 */
export async function azureExportRows(
  ctx: JobContext,
  dataset: AzureDataset,
  range: { from: string; to: string },
): Promise<AzureExportRows> {
  const azure = ctx.settings.azure;
  if (!azure || !ctx.arm) throw new AzureExportUnavailableError();
  const snapshot = await takeAzureSnapshot(ctx.arm, ctx.graph, {
    scopes: azure.scopes,
    privilegedRoleIds: azure.privilegedRoleIds,
    log: ctx.log,
  });
  for (const item of snapshot.incomplete) ctx.log.warn(item.reason);
  if (dataset !== 'azure-activations') {
    const sorter = dataset === 'azure-eligible' ? snapshot.eligible : snapshot.active;
    return {
      columns: AZURE_ASSIGNMENT_TABLE.columns,
      values: () => map(sorter.sorted(), (row) => AZURE_ASSIGNMENT_TABLE.values(row, snapshot.scopeName)),
      uncovered: snapshot.incomplete.map((i) => ({
        fromUtc: ctx.now.toISOString(),
        toUtc: ctx.now.toISOString(),
        reason: i.reason,
      })),
      dispose: () => snapshot.dispose(),
    };
  }
  try {
    const from = Date.parse(`${range.from}T00:00:00Z`);
    const end = Date.parse(`${range.to}T00:00:00Z`) + 86_400_000;
    const byId = new Map<string, AzureActivationRow>();
    for (
      let m = range.from.slice(0, 7);
      m <= range.to.slice(0, 7);
      m = new Date(Date.UTC(Number(m.slice(0, 4)), Number(m.slice(5, 7)), 1)).toISOString().slice(0, 7)
    ) {
      for (const row of await azureActivationsOfMonth(ctx, m)) byId.set(row.requestId, row);
    }
    for (const row of snapshot.activations) byId.set(row.requestId, byId.get(row.requestId) ?? row);
    const rows = [...byId.values()]
      .filter((r) => Date.parse(r.activated) >= from && Date.parse(r.activated) < end)
      .sort(compareAzureActivations);
    const watermark = await azureWatermark(ctx);
    const coverageStart = watermark
      ? Date.parse(watermark.coverageStartUtc)
      : ctx.now.getTime() - ARM_REQUEST_RETENTION_DAYS * 86_400_000;
    const uncovered =
      from < coverageStart
        ? [
            {
              fromUtc: new Date(from).toISOString(),
              toUtc: new Date(Math.min(coverageStart, end)).toISOString(),
              reason: 'before the first Azure harvest of this app, and beyond what ARM keeps',
            },
          ]
        : [];
    return {
      columns: AZURE_ACTIVATION_TABLE.columns,
      values: async function* () {
        for (const row of rows) yield AZURE_ACTIVATION_TABLE.values(row, undefined);
      },
      uncovered,
      dispose: () => snapshot.dispose(),
    };
  } catch (error) {
    await snapshot.dispose();
    throw error;
  }
}

export class AzureExportUnavailableError extends Error {
  constructor() {
    super('the Azure datasets need AZURE_RESOURCE_SCOPES (PIM for Azure resources is off)');
    this.name = 'AzureExportUnavailableError';
  }
}
