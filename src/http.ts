/** The export's HTTP shape (SPEC section 8): query to parameters, result to headers, failures to JSON. Functions glue; the job knows no HTTP. */
import type { HttpResponseInit, InvocationContext } from '@azure/functions';
import { ExportParameterError, type ExportResult } from './jobs/export';

const KNOWN = new Set(['dataset', 'format', 'from', 'to', 'save']);
/** `code` carries the function key when it is not sent as a header. */
const IGNORED = new Set(['code']);

export function exportParameters(query: URLSearchParams): Record<string, string | undefined> {
  const params: Record<string, string | undefined> = {};
  for (const [name, value] of query) {
    if (IGNORED.has(name)) continue;
    if (!KNOWN.has(name)) throw new ExportParameterError(name, `is not a parameter of the export (known: ${[...KNOWN].join(', ')})`);
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
