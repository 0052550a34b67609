/**
 * The on-demand export (docs/http-export.md): one dataset as CSV or JSON, streamed to whoever asked (a
 * file, stdout, an HTTP response). Knows nothing of HTTP: parameters arrive as plain strings and a
 * bad one is an ExportParameterError naming it, raised before anything is called or written.
 *
 * `eligible`, `active` and `role-settings` are read live from Graph. `activations` for a period: what Graph still
 * holds (30 days) comes from Graph, older days from the app's own harvest and the monthly archive,
 * merged by audit id; a period nothing covers is reported, never papered over.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { AUDIT_RETENTION_MS, harvestActivations } from '../pim/activations';
import { ACTIVATION_TABLE, activationRowCodec, compareActivationRows, type ActivationRow } from '../pim/model';
import { readActivatedScopes, takeSnapshot } from '../pim/snapshot';
import { privilegedGroupsOf, readRoleSettings } from '../pim/roleSettings';
import {
  ACTIVATION_COLUMNS,
  activationValues,
  ASSIGNMENT_COLUMNS,
  assignmentValues,
  csvRows,
  csvStream,
  ROLE_SETTINGS_COLUMNS,
  roleSettingsValues,
} from '../report/csv';
import { jsonArrayStream } from '../report/json';
import { ExternalSorter } from '../util/sorter';
import { map } from '../util/streams';
import type { JobContext } from './context';
import { CSV_CONTENT_TYPE, JSON_CONTENT_TYPE, utcDay } from './files';
import { archiveFolder, monthBounds } from './pack';
import { StateStore, type HarvestGap } from './state';
import { AZURE_DATASETS, azureExportRows, AzureExportUnavailableError } from './azure';

export const DATASETS = ['eligible', 'active', 'activations', 'role-settings', ...AZURE_DATASETS] as const;
export type Dataset = (typeof DATASETS)[number];
export type ExportFormat = 'csv' | 'json';
const DAY_MS = 24 * 3600 * 1000;
const MAX_RANGE_DAYS = 366;

export interface ExportRequest {
  dataset: Dataset;
  format: ExportFormat;
  /** Inclusive UTC days, YYYY-MM-DD; used by `activations`. */
  from: string;
  to: string;
  save: boolean;
}

export class ExportParameterError extends Error {
  constructor(
    readonly parameter: string,
    problem: string,
  ) {
    super(`${parameter} ${problem}`);
    this.name = 'ExportParameterError';
  }
}

function parseDay(parameter: string, value: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`)) || new Date(`${value}T00:00:00Z`).toISOString().slice(0, 10) !== value) {
    throw new ExportParameterError(parameter, `must be a date written YYYY-MM-DD, got "${value}"`);
  }
  return value;
}

/** Validates every parameter; the defaults are CSV, the last 30 days up to today, not saved. */
export function parseExportRequest(params: Record<string, string | undefined>, now: Date): ExportRequest {
  const dataset = params.dataset;
  if (!dataset) throw new ExportParameterError('dataset', `is required: one of ${DATASETS.join(', ')}`);
  if (!(DATASETS as readonly string[]).includes(dataset)) {
    throw new ExportParameterError('dataset', `must be one of ${DATASETS.join(', ')}, got "${dataset}"`);
  }
  const format = params.format ?? 'csv';
  if (format !== 'csv' && format !== 'json') throw new ExportParameterError('format', `must be csv or json, got "${format}"`);
  const to = params.to !== undefined ? parseDay('to', params.to) : utcDay(now);
  const from = params.from !== undefined ? parseDay('from', params.from) : utcDay(new Date(Date.parse(`${to}T00:00:00Z`) - 29 * DAY_MS));
  if (from > to) throw new ExportParameterError('from', `(${from}) is after to (${to})`);
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS + 1;
  if (days > MAX_RANGE_DAYS) throw new ExportParameterError('to', `makes a range of ${days} days; at most ${MAX_RANGE_DAYS} days per export`);
  const save = params.save ?? 'false';
  if (save !== 'true' && save !== 'false') throw new ExportParameterError('save', `must be true or false, got "${save}"`);
  return { dataset: dataset as Dataset, format, from, to, save: save === 'true' };
}

export interface ExportResult {
  filename: string;
  contentType: string;
  body: Readable;
  /** Rows written so far; final once `body` has ended. */
  rows(): number;
  /** Periods of an activations export that no source covers. */
  uncovered: HarvestGap[];
  /** Blob path (in the reports container) when saved. */
  savedAs?: string;
}

interface Rows {
  columns: readonly string[];
  values: () => AsyncIterable<string[]>;
  uncovered: HarvestGap[];
  dispose: () => Promise<void>;
}

export async function runExport(ctx: JobContext, request: ExportRequest): Promise<ExportResult> {
  const { log, now, store, settings } = ctx;
  const dataset = request.dataset;
  if (dataset.startsWith('azure-') && !settings.azure) throw new ExportParameterError('dataset', `${new AzureExportUnavailableError().message}`);
  const rows =
    dataset === 'azure-eligible' || dataset === 'azure-active' || dataset === 'azure-activations'
      ? await azureExportRows(ctx, dataset, request)
      : dataset === 'activations'
        ? await activationRows(ctx, request)
        : dataset === 'role-settings'
          ? await roleSettingsRows(ctx)
          : await assignmentRows(ctx, dataset);
  // docs/http-export.md: pim-<dataset>-<date>, the day of the export; the period of an activations export is in its rows.
  const filename = `pim-${request.dataset}-${utcDay(now)}.${request.format}`;
  const contentType = request.format === 'csv' ? CSV_CONTENT_TYPE : JSON_CONTENT_TYPE;
  const encode = () => (request.format === 'csv' ? csvStream : jsonArrayStream)(rows.columns, rows.values());

  let savedAs: string | undefined;
  try {
    if (request.save) {
      // Saved first, then streamed again from the same sorted rows: the blob exists when the reply starts.
      // Unique per export, and never written over: two saves in the same second keep both files.
      const stamp = `${now.toISOString().slice(11, 19).replace(/:/g, '')}-${randomBytes(3).toString('hex')}`;
      savedAs = `exports/${now.toISOString().slice(0, 10).replace(/-/g, '/')}/${stamp}-${filename}`;
      await store.writeStream(settings.reportsContainer, savedAs, encode().stream, { contentType, onlyIfAbsent: true });
      log.info(`Saved the export to ${settings.reportsContainer}/${savedAs}`);
    }
  } catch (error) {
    await rows.dispose();
    throw error;
  }
  const encoded = encode();
  encoded.stream.once('close', () => void rows.dispose());
  return { filename, contentType, body: encoded.stream, rows: encoded.rows, uncovered: rows.uncovered, savedAs };
}

async function assignmentRows(ctx: JobContext, dataset: 'eligible' | 'active'): Promise<Rows> {
  const snapshot = await takeSnapshot(ctx.graph, { privilegedRoleIds: ctx.settings.privilegedRoleIds, log: ctx.log });
  const sorter = dataset === 'eligible' ? snapshot.eligible : snapshot.active;
  return {
    columns: ASSIGNMENT_COLUMNS,
    values: () => map(sorter.sorted(), (row) => assignmentValues(row, snapshot.scopeName)),
    uncovered: [],
    dispose: () => snapshot.dispose(),
  };
}

/** The role settings as the daily file has them; the snapshot only names the groups that hold highly privileged roles. */
async function roleSettingsRows(ctx: JobContext): Promise<Rows> {
  const { graph, log, settings } = ctx;
  const snapshot = await takeSnapshot(graph, { privilegedRoleIds: settings.privilegedRoleIds, log });
  let groups: Map<string, string>;
  try {
    groups = await privilegedGroupsOf(snapshot.schedules.sortedBatches());
  } finally {
    await snapshot.dispose();
  }
  const { rows, incomplete } = await readRoleSettings(graph, { privilegedRoleIds: settings.privilegedRoleIds, groups, log });
  for (const item of incomplete) log.warn(`Role settings incomplete: ${item.groupName || item.groupId ? `${item.groupName || item.groupId}: ` : ''}${item.reason}`);
  return {
    columns: ROLE_SETTINGS_COLUMNS,
    values: async function* () {
      for (const row of rows) yield roleSettingsValues(row);
    },
    uncovered: [],
    dispose: async () => undefined,
  };
}

async function activationRows(ctx: JobContext, request: ExportRequest): Promise<Rows> {
  const { graph, log, now, store, settings } = ctx;
  const from = new Date(`${request.from}T00:00:00Z`);
  const end = new Date(Date.parse(`${request.to}T00:00:00Z`) + DAY_MS); // exclusive
  const inRange = (row: ActivationRow) => {
    const at = Date.parse(row.activated);
    return at >= from.getTime() && at < end.getTime();
  };
  const sorter = new ExternalSorter<ActivationRow>(compareActivationRows, { codec: activationRowCodec });
  const retentionStart = new Date(now.getTime() - AUDIT_RETENTION_MS);

  try {
    // Older than Graph's retention: the harvest kept under state/, then the archive for months it lacks.
    const uncovered: HarvestGap[] = [];
    if (from < retentionStart) {
      const state = new StateStore(store, settings.reportsContainer);
      const watermark = await state.watermark();
      const oldEnd = end < retentionStart ? end : retentionStart;
      for (let m = from.toISOString().slice(0, 7); m <= oldEnd.toISOString().slice(0, 7); m = nextMonth(m)) {
        let found = false;
        for await (const batch of state.activationsOfMonth(m)) {
          found = true;
          await sorter.addAll(batch.filter(inRange));
        }
        if (!found) {
          for await (const batch of archivedActivations(ctx, m)) {
            found = true;
            await sorter.addAll(batch.filter(inRange));
          }
        }
      }
      const coverageStart = watermark ? new Date(watermark.coverageStartUtc) : retentionStart;
      if (from < coverageStart) {
        uncovered.push({
          fromUtc: from.toISOString(),
          toUtc: (coverageStart < oldEnd ? coverageStart : oldEnd).toISOString(),
          reason: 'before the first harvest of this app, and beyond the 30 days Graph keeps',
        });
      }
      // Stopped for longer than Graph keeps events, and no harvest has recorded the gap yet.
      if (watermark && Date.parse(watermark.harvestedThroughUtc) < retentionStart.getTime()) {
        const gapFrom = new Date(Math.max(Date.parse(watermark.harvestedThroughUtc), from.getTime()));
        if (gapFrom < oldEnd) uncovered.push({ fromUtc: gapFrom.toISOString(), toUtc: oldEnd.toISOString(), reason: 'no run harvested it within the 30 days Graph keeps audit events' });
      }
      for (const gap of watermark?.gaps ?? []) {
        if (Date.parse(gap.fromUtc) < oldEnd.getTime() && Date.parse(gap.toUtc) > from.getTime()) uncovered.push({ fromUtc: gap.fromUtc, toUtc: gap.toUtc, reason: gap.reason });
      }
    }
    // What Graph still holds comes from Graph.
    if (end > retentionStart) {
      const window = { from: from > retentionStart ? from : retentionStart, to: end < now ? end : now };
      if (window.from < window.to) {
        // The Scope Id the audit records leave blank, from the Activated schedule of the same request.
        const scopes = await readActivatedScopes(graph).catch((error: unknown) => {
          log.warn(`Activated schedules could not be read (${(error as Error).message}); activations without a scope keep Scope Id blank`);
          return new Map<string, string>();
        });
        for await (const row of harvestActivations(graph, window, log, (gap) => uncovered.push(gap))) {
          if (inRange(row)) await sorter.add(row.scopeId || !row.requestId ? row : { ...row, scopeId: scopes.get(row.requestId.toLowerCase()) ?? '' });
        }
      }
    }
    for (const gap of uncovered) log.warn(`No source covers activations from ${gap.fromUtc} to ${gap.toUtc}: ${gap.reason}`);
    return {
      columns: ACTIVATION_COLUMNS,
      values: () => map(unique(sorter.sorted()), activationValues),
      uncovered,
      dispose: () => sorter.dispose(),
    };
  } catch (error) {
    await sorter.dispose();
    throw error;
  }
}

/**
 * Each audit id once. The same event can come from two sources (the harvest or the archive, and
 * Graph) with times of different precision, so adjacency is not enough; the ids of one export's
 * period are few enough to remember.
 */
async function* unique(rows: AsyncIterable<ActivationRow>): AsyncGenerator<ActivationRow> {
  const seen = new Set<string>();
  for await (const row of rows) {
    if (seen.has(row.auditId)) continue;
    seen.add(row.auditId);
    yield row;
  }
}

function nextMonth(month: string): string {
  return monthBounds(month).end.toISOString().slice(0, 7);
}

/** A month's activations read back from its archived CSV, streamed in batches. */
async function* archivedActivations(ctx: JobContext, month: string): AsyncGenerator<ActivationRow[]> {
  const data = await ctx.store.readStream(ctx.settings.archiveContainer, `${archiveFolder(month)}activations.csv`);
  if (!data) return;
  try {
    yield* csvRows(ACTIVATION_TABLE, data);
  } finally {
    (data as Readable).destroy();
  }
}
