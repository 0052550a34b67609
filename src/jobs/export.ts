/**
 * The on-demand export (docs/http-export.md): one dataset as CSV or JSON, streamed to whoever asked (a
 * file, stdout, an HTTP response). Knows nothing of HTTP: parameters arrive as plain strings and a
 * bad one is an ExportParameterError naming it, raised before anything is called or written.
 *
 * `eligible`, `active`, `role-settings` and `unused` are as of now, read live from Graph (`unused` with the
 * app's history), and `azure-eligible`, `azure-active` from ARM: `from` and `to` are refused for them. `activations` for a period: what Graph still
 * holds (30 days) comes from Graph, older days from the app's own harvest and the monthly archive,
 * merged by audit id; a period nothing covers is reported, never papered over.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { AUDIT_RETENTION_MS, harvestActivations } from '../pim/activations';
import { activationRowCodec, compareActivationRows, type ActivationRow } from '../pim/model';
import { groupRoleNames, readActivatedScopes, takeSnapshot, type GroupRoles } from '../pim/snapshot';
import { readRoleSettings } from '../pim/roleSettings';
import { StateStore } from './state';
import {
  ACTIVATION_COLUMNS,
  activationValues,
  ASSIGNMENT_COLUMNS,
  assignmentValues,
  csvStream,
  ROLE_SETTINGS_COLUMNS,
  roleSettingsValues,
  UNUSED_COLUMNS,
  unusedValues,
} from '../report/csv';
import { jsonArrayStream } from '../report/json';
import { ExternalSorter } from '../util/sorter';
import { map } from '../util/streams';
import { noSuchMoment } from '../util/time';
import type { JobContext } from './context';
import { CSV_CONTENT_TYPE, JSON_CONTENT_TYPE, utcDay } from './files';
import {
  ApprovalBook,
  HistoryStore,
  keptActivations,
  unusedEligibilities,
  uncoveredBefore,
  uniqueByAuditId,
  type HarvestGap,
} from '../history';
import { AZURE_DATASETS, azureExportRows, AzureExportUnavailableError } from './azure';

export const DATASETS = ['eligible', 'active', 'activations', 'role-settings', 'unused', ...AZURE_DATASETS] as const;
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

/** The datasets of a period (`from`..`to`); every other one is read as of now. */
const PERIOD_DATASETS: readonly Dataset[] = ['activations', 'azure-activations'];

function parseDay(parameter: string, value: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) throw new ExportParameterError(parameter, `must be a date written YYYY-MM-DD, got "${value}"`);
  const problem = noSuchMoment(Number(m[1]), Number(m[2]), Number(m[3]));
  if (problem) throw new ExportParameterError(parameter, `is "${value}", but ${problem}`);
  return value;
}

/** Validates every parameter; the defaults are CSV, the last 30 days up to today, not saved. */
export function parseExportRequest(params: Record<string, string | undefined>, now: Date): ExportRequest {
  const dataset = params.dataset;
  if (!dataset) throw new ExportParameterError('dataset', `is required: one of ${DATASETS.join(', ')}`);
  if (!(DATASETS as readonly string[]).includes(dataset)) {
    throw new ExportParameterError('dataset', `must be one of ${DATASETS.join(', ')}, got "${dataset}"`);
  }
  // A period asked of a dataset that has none would be ignored, and the rows taken for that period's.
  if (!PERIOD_DATASETS.includes(dataset as Dataset))
    for (const parameter of ['from', 'to'])
      if (params[parameter] !== undefined)
        throw new ExportParameterError(
          parameter,
          `does not apply to ${dataset}, which is read as of now; a period applies to ${PERIOD_DATASETS.join(' and ')} only`,
        );
  const format = params.format ?? 'csv';
  if (format !== 'csv' && format !== 'json')
    throw new ExportParameterError('format', `must be csv or json, got "${format}"`);
  const to = params.to !== undefined ? parseDay('to', params.to) : utcDay(now);
  const from =
    params.from !== undefined
      ? parseDay('from', params.from)
      : utcDay(new Date(Date.parse(`${to}T00:00:00Z`) - 29 * DAY_MS));
  if (from > to) throw new ExportParameterError('from', `(${from}) is after to (${to})`);
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS + 1;
  if (days > MAX_RANGE_DAYS)
    throw new ExportParameterError('to', `makes a range of ${days} days; at most ${MAX_RANGE_DAYS} days per export`);
  const save = params.save ?? 'false';
  if (save !== 'true' && save !== 'false')
    throw new ExportParameterError('save', `must be true or false, got "${save}"`);
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
  if (dataset.startsWith('azure-') && !settings.azure)
    throw new ExportParameterError('dataset', `${new AzureExportUnavailableError().message}`);
  const rows =
    dataset === 'azure-eligible' || dataset === 'azure-active' || dataset === 'azure-activations'
      ? await azureExportRows(ctx, dataset, request)
      : dataset === 'activations'
        ? await activationRows(ctx, request)
        : dataset === 'role-settings'
          ? await roleSettingsRows(ctx)
          : dataset === 'unused'
            ? await unusedRows(ctx)
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
  const { privilegedGroups: groups, roleNames } = snapshot;
  await snapshot.dispose();
  const { rows, incomplete } = await readRoleSettings(graph, {
    privilegedRoleIds: settings.privilegedRoleIds,
    groups,
    roleNames: Promise.resolve(roleNames),
    log,
  });
  for (const item of incomplete)
    log.warn(
      `Role settings incomplete: ${item.groupName || item.groupId ? `${item.groupName || item.groupId}: ` : ''}${item.reason}`,
    );
  return {
    columns: ROLE_SETTINGS_COLUMNS,
    values: async function* () {
      for (const row of rows) yield roleSettingsValues(row);
    },
    uncovered: [],
    dispose: async () => undefined,
  };
}

/** The roles each group holds in the newest snapshot of a final day (state/schedules/, or state/snapshots/ from earlier versions). */
async function latestGroupRoles(ctx: JobContext): Promise<GroupRoles> {
  const history = new HistoryStore(ctx.store, ctx.settings.reportsContainer);
  const latest = await new StateStore(ctx.store, ctx.settings.reportsContainer).previousSnapshot(
    utcDay(new Date(ctx.now.getTime() + DAY_MS)),
    (d) => history.isDayFinal(d),
  );
  const held = new Map<string, Array<{ roleId: string; roleName: string }>>();
  for await (const row of latest?.schedules ?? []) {
    if (row.principalType !== 'Group' || row.memberType !== 'Direct') continue;
    const key = row.principalId.toLowerCase();
    held.set(key, [...(held.get(key) ?? []), { roleId: row.roleId, roleName: row.roleName }]);
  }
  return held;
}

/** unused-eligibilities as of now: the live snapshot's eligibilities against the app's own history. */
async function unusedRows(ctx: JobContext): Promise<Rows> {
  const { settings, store, now, log } = ctx;
  const snapshot = await takeSnapshot(ctx.graph, { privilegedRoleIds: settings.privilegedRoleIds, log });
  try {
    const unused = await unusedEligibilities({
      history: new HistoryStore(store, settings.reportsContainer),
      store,
      archiveContainer: settings.archiveContainer,
      eligible: snapshot.eligible.sortedBatches(),
      groupRoles: snapshot.groupRoles,
      now,
      afterDays: settings.unusedAfterDays,
    });
    // The snapshot is read once into the list; the list is what the export streams.
    await snapshot.dispose();
    const windowStart = new Date(now.getTime() - settings.unusedAfterDays * DAY_MS).toISOString();
    const uncovered: HarvestGap[] = unused.complete
      ? []
      : [
          ...(unused.historySince === undefined || Date.parse(unused.historySince) > Date.parse(windowStart)
            ? [
                {
                  fromUtc: windowStart,
                  toUtc: unused.historySince ?? now.toISOString(),
                  reason: `the app's own history is shorter than UNUSED_AFTER_DAYS (${settings.unusedAfterDays}); the list is complete from ${unused.completeFrom}`,
                },
              ]
            : []),
          ...(unused.gaps ?? []).map((gap) => ({
            ...gap,
            reason: `${gap.reason}; the list is complete from ${unused.completeFrom}`,
          })),
        ];
    if (!unused.complete) log.warn(`Unused eligibilities are not known yet: ${uncovered[0].reason}`);
    return {
      columns: UNUSED_COLUMNS,
      values: () => map(unused.rows.sorted(), (row) => unusedValues(row, snapshot.scopeName)),
      uncovered,
      dispose: () => unused.dispose(),
    };
  } catch (error) {
    await snapshot.dispose();
    throw error;
  }
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
      const history = new HistoryStore(store, settings.reportsContainer);
      const watermark = await history.watermark();
      const oldEnd = end < retentionStart ? end : retentionStart;
      for await (const batch of keptActivations(
        history,
        store,
        settings.archiveContainer,
        from,
        end,
        oldEnd.toISOString().slice(0, 7),
      ))
        await sorter.addAll(batch);
      uncovered.push(...uncoveredBefore(watermark, from, oldEnd, retentionStart));
    }
    // What Graph still holds comes from Graph.
    if (end > retentionStart) {
      const window = { from: from > retentionStart ? from : retentionStart, to: end < now ? end : now };
      if (window.from < window.to) {
        // The Scope Id the audit records leave blank, from the Activated schedule of the same request.
        const scopes = await readActivatedScopes(graph).catch((error: unknown) => {
          log.warn(
            `Activated schedules could not be read (${(error as Error).message}); activations without a scope keep Scope Id blank`,
          );
          return new Map<string, string>();
        });
        // Group Roles as the last final day's snapshot has them (a live snapshot would cost the whole tenant).
        const groupRoles = await latestGroupRoles(ctx);
        const withRoles = (row: ActivationRow) =>
          row.activationType !== 'Group' || row.groupRoles || row.groupAccess === 'Owner'
            ? row
            : { ...row, groupRoles: groupRoleNames(groupRoles, row.groupId) };
        // Approvals read in the window, and those the harvest kept for completions not yet seen.
        const approvals = new ApprovalBook(
          (await new HistoryStore(store, settings.reportsContainer).watermark())?.approvals,
        );
        for await (const read of harvestActivations(
          graph,
          window,
          log,
          (gap) => uncovered.push(gap),
          (approval) => approvals.note(approval),
        )) {
          const row = withRoles(approvals.fill(read));
          if (inRange(row))
            await sorter.add(
              row.scopeId || !row.requestId ? row : { ...row, scopeId: scopes.get(row.requestId.toLowerCase()) ?? '' },
            );
        }
      }
    }
    for (const gap of uncovered)
      log.warn(`No source covers activations from ${gap.fromUtc} to ${gap.toUtc}: ${gap.reason}`);
    return {
      columns: ACTIVATION_COLUMNS,
      values: () => map(uniqueByAuditId(sorter.sorted()), activationValues),
      uncovered,
      dispose: () => sorter.dispose(),
    };
  } catch (error) {
    await sorter.dispose();
    throw error;
  }
}
