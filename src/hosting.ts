/**
 * What the Functions share: settings read and validated once per worker, one credential (it caches
 * tokens), and a JobContext per invocation whose log is the invocation's own.
 */
import type { InvocationContext } from '@azure/functions';
import type { TokenCredential } from '@azure/identity';
import type { JobContext } from './jobs/context';
import { redact, redacting, type Log } from './log';
import { createCredential, createServices } from './services';
import { loadSettings, type Settings } from './settings';

let worker: { settings: Settings; credential: TokenCredential } | undefined;

export function invocationLog(invocation: InvocationContext): Log {
  return redacting({
    info: (m) => invocation.log(m),
    warn: (m) => invocation.warn(m),
    error: (m) => invocation.error(m),
  });
}

/** Throws SettingsError (a failed invocation naming the setting) before anything is called. */
export function jobContextFor(invocation: InvocationContext, now = new Date()): JobContext {
  if (!worker) {
    const settings = loadSettings();
    worker = { settings, credential: createCredential(settings) };
  }
  const log = invocationLog(invocation);
  return { settings: worker.settings, ...createServices(worker.settings, log, worker.credential), log, now };
}

/**
 * What a failed timer invocation hands the host, which logs it as it is: the reason, redacted (an
 * upstream error may echo a token or a key), under the original error's name.
 */
export function invocationFailure(error: unknown): Error {
  const failure = new Error(redact(error instanceof Error ? error.message : String(error)));
  failure.name = error instanceof Error ? error.name : 'Error';
  return failure;
}

/** For tests: forget the worker's settings so the next invocation reads the environment again. */
export function resetWorker(): void {
  worker = undefined;
}
