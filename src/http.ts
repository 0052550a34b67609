/** The export's HTTP shape (docs/http-export.md): query to parameters, result to headers, failures to JSON. Functions glue; the job knows no HTTP. */
import type { Readable } from 'node:stream';
import type { HttpResponseInit, InvocationContext } from '@azure/functions';
import { ExportParameterError, type ExportResult } from './jobs/export';

const KNOWN = new Set(['dataset', 'format', 'from', 'to', 'save']);
/** `code` carries the function key when it is not sent as a header. */
const IGNORED = new Set(['code']);

export function exportParameters(query: URLSearchParams): Record<string, string | undefined> {
  const params: Record<string, string | undefined> = {};
  for (const [name, value] of query) {
    if (IGNORED.has(name)) continue;
    if (!KNOWN.has(name))
      throw new ExportParameterError(name, `is not a parameter of the export (known: ${[...KNOWN].join(', ')})`);
    if (params[name] !== undefined) throw new ExportParameterError(name, 'is given more than once');
    params[name] = value;
  }
  return params;
}

export function exportHeaders(result: ExportResult): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': result.contentType,
    'content-disposition': `attachment; filename="${result.filename}"`,
    'cache-control': 'no-store',
  };
  if (result.savedAs) headers['x-pim-blob-path'] = result.savedAs;
  if (result.uncovered.length > 0) {
    headers['x-pim-uncovered'] = result.uncovered.map((g) => `${g.fromUtc}/${g.toUtc}`).join(', ');
  }
  return headers;
}

/**
 * Exports streaming from this instance right now. Each holds Graph paging, a response stream and
 * (with save=true) an upload open until its body ends, so an instance runs only a few at once.
 */
let exportsRunning = 0;

/** A slot for one export, or undefined when `limit` are already running; release it once, when the body ends. */
export function exportSlot(limit: number): (() => void) | undefined {
  if (exportsRunning >= limit) return undefined;
  exportsRunning++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    exportsRunning--;
  };
}

/** Releases the slot when the body is done: read to its end, failed, or closed by a caller who went away. */
export function releaseWhenDone(body: Readable, release: () => void): void {
  body.once('close', release);
  body.once('error', release);
}

/** How long a caller turned away is told to wait before trying again. */
const EXPORT_RETRY_AFTER_SECONDS = 30;

/** 429 with Retry-After: the instance already runs as many exports as EXPORT_MAX_CONCURRENT allows. */
export function tooManyExports(limit: number, context: InvocationContext): HttpResponseInit {
  const response = exportFailure(
    429,
    'TooManyExports',
    `this instance already runs ${limit} export(s), the most EXPORT_MAX_CONCURRENT allows; try again in ${EXPORT_RETRY_AFTER_SECONDS} s`,
    context,
  );
  return {
    ...response,
    headers: { ...(response.headers as Record<string, string>), 'retry-after': String(EXPORT_RETRY_AFTER_SECONDS) },
  };
}

/** A JSON error naming what is wrong; never a stack trace. */
export function exportFailure(
  status: number,
  code: string,
  message: string,
  context: InvocationContext,
  parameter?: string,
): HttpResponseInit {
  return {
    status,
    headers: { 'x-invocation-id': context.invocationId, 'cache-control': 'no-store' },
    jsonBody: { error: { code, message, ...(parameter ? { parameter } : {}) }, invocationId: context.invocationId },
  };
}
