/**
 * The on-demand export: one dataset as CSV or JSON, streamed to whoever asked (a file, stdout, an
 * HTTP response). Knows nothing of HTTP: parameters come in as plain strings and bad ones are
 * reported as ExportParameterError naming the parameter.
 */
import type { Readable } from 'node:stream';
import { takeSnapshot } from '../pim/snapshot';
import { ASSIGNMENT_COLUMNS, assignmentValues, csvStream } from '../report/csv';
import { jsonArrayStream } from '../report/json';
import type { JobContext } from './context';
import { CSV_CONTENT_TYPE, JSON_CONTENT_TYPE, map, utcDay } from './files';

export const DATASETS = ['eligible', 'active'] as const;
export type Dataset = (typeof DATASETS)[number];
export type ExportFormat = 'csv' | 'json';

export interface ExportRequest {
  dataset: Dataset;
  format: ExportFormat;
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

export function parseExportRequest(params: Record<string, string | undefined>): ExportRequest {
  const dataset = params.dataset;
  if (!dataset) throw new ExportParameterError('dataset', `is required: one of ${DATASETS.join(', ')}`);
  if (!(DATASETS as readonly string[]).includes(dataset)) {
    throw new ExportParameterError('dataset', `must be one of ${DATASETS.join(', ')}, got "${dataset}"`);
  }
  const format = params.format ?? 'csv';
  if (format !== 'csv' && format !== 'json') throw new ExportParameterError('format', `must be csv or json, got "${format}"`);
  return { dataset: dataset as Dataset, format };
}

export interface ExportResult {
  filename: string;
  contentType: string;
  body: Readable;
  /** Rows written so far; final once `body` has ended. */
  rows(): number;
}

export async function runExport(ctx: JobContext, request: ExportRequest): Promise<ExportResult> {
  const { graph, settings, log, now } = ctx;
  const snapshot = await takeSnapshot(graph, { privilegedRoleIds: settings.privilegedRoleIds, log });
  const sorter = request.dataset === 'eligible' ? snapshot.eligible : snapshot.active;
  const values = map(sorter.sorted(), (row) => assignmentValues(row, snapshot.scopeName));
  const filename = `pim-${request.dataset}-${utcDay(now)}.${request.format}`;
  let body: Readable;
  let rows: () => number;
  if (request.format === 'csv') {
    const csv = csvStream(ASSIGNMENT_COLUMNS, values);
    body = csv.stream;
    rows = csv.rows;
  } else {
    const json = jsonArrayStream(ASSIGNMENT_COLUMNS, values);
    body = json.stream;
    rows = json.rows;
  }
  body.once('close', () => void snapshot.dispose());
  return { filename, contentType: request.format === 'csv' ? CSV_CONTENT_TYPE : JSON_CONTENT_TYPE, body, rows };
}
