import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { GraphCredentialError, GraphRequestError } from '../graph/client';
import { invocationLog, jobContextFor } from '../hosting';
import { exportFailure, exportHeaders, exportParameters, exportSlot, releaseWhenDone, tooManyExports } from '../http';
import { ExportParameterError, parseExportRequest, runExport } from '../jobs/export';
import { redact } from '../log';
import { SettingsError } from '../settings';

/** GET /api/export?dataset=…&format=…&from=…&to=…&save=… (docs/http-export.md), streamed. */
export async function httpExport(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const invocation = { 'x-invocation-id': context.invocationId };
  const now = new Date();
  let parsed;
  try {
    parsed = parseExportRequest(exportParameters(request.query), now);
  } catch (error) {
    if (error instanceof ExportParameterError)
      return exportFailure(400, 'BadParameter', error.message, context, error.parameter);
    throw error;
  }
  let release: (() => void) | undefined;
  try {
    const ctx = jobContextFor(context, now);
    release = exportSlot(ctx.settings.exportMaxConcurrent);
    if (!release) return tooManyExports(ctx.settings.exportMaxConcurrent, context);
    const result = await runExport(ctx, parsed);
    releaseWhenDone(result.body, release);
    return { status: 200, body: result.body, headers: { ...invocation, ...exportHeaders(result) } };
  } catch (error) {
    release?.();
    // A parameter only the job can judge (an Azure dataset while PIM for Azure resources is off): 400, as any other.
    if (error instanceof ExportParameterError)
      return exportFailure(400, 'BadParameter', error.message, context, error.parameter);
    // The caller gets Graph's code and a short reason; details (and any stack) go to the redacted log only.
    invocationLog(context).error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    if (error instanceof GraphCredentialError) {
      return exportFailure(
        502,
        error.code,
        'the app could not get a token for Graph; the function log has the details under this invocation id',
        context,
      );
    }
    if (error instanceof GraphRequestError) return exportFailure(502, error.code, redact(error.message), context);
    if (error instanceof SettingsError)
      return exportFailure(
        500,
        'Configuration',
        `the app setting ${error.setting} is not valid; the function log says why`,
        context,
      );
    return exportFailure(
      500,
      'InternalError',
      'the export failed; the function log has the details under this invocation id',
      context,
    );
  }
}

app.http('export', { route: 'export', methods: ['GET'], authLevel: 'function', handler: httpExport });
