#!/usr/bin/env node
/**
 * `pim-reporter <daily|monthly|export|verify> [options]` (SPEC section 7): the same jobs as the
 * Functions, from a terminal, with the caller's own sign-in. Progress on stderr, data on stdout
 * only for `export --out -`, exit status non-zero on any failure.
 */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { runDaily } from './jobs/daily';
import { ExportParameterError, parseExportRequest, runExport } from './jobs/export';
import type { JobContext } from './jobs/context';
import { streamLog, type Log } from './log';
import { createServices } from './services';
import { describeSettings, loadSettings, SettingsError } from './settings';

const USAGE = `Usage: pim-reporter <command> [options]

Commands:
  daily   [--now <ISO time>] [--force-email]
          today's snapshot CSVs, activations, digest and email
  export  --dataset <eligible|active> [--format csv|json] [--out <file>|-]
          one dataset, now, to a file or stdout
Settings come from the environment (see README). Exit status 0 on success.`;

export class UsageError extends Error {}

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

function parseNow(value: string | undefined): Date {
  if (value === undefined) return new Date();
  const ms = Date.parse(value);
  if (Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}/.test(value)) throw new UsageError(`--now must be an ISO time such as 2026-11-24T06:00:00Z, got "${value}"`);
  return new Date(ms);
}

/** Runs one command; resolves to the exit status. Never calls process.exit (tests run it in-process). */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const log = streamLog(io.stderr);
  try {
    const [command, ...rest] = argv;
    if (!command || command === '--help' || command === '-h' || command === 'help') {
      io.stderr.write(`${USAGE}\n`);
      return command ? 0 : 2;
    }
    const { values } = parseCommand(command, rest);
    const now = parseNow(values.now as string | undefined);

    // Settings first: a malformed one stops the run before any Graph call or write.
    const settings = loadSettings(io.env);
    log.info(describeSettings(settings));
    const ctx: JobContext = { settings, ...createServices(settings, log), log, now };

    switch (command) {
      case 'daily': {
        const result = await runDaily(ctx, { forceEmail: Boolean(values['force-email']) });
        log.info(`Daily run done: ${result.folder}`);
        return 0;
      }
      case 'export': {
        const request = parseExportRequest({ dataset: values.dataset as string, format: values.format as string });
        const out = (values.out as string | undefined) ?? '-';
        const result = await runExport(ctx, request);
        await pipeline(result.body, out === '-' ? io.stdout : createWriteStream(out));
        log.info(`Exported ${result.rows()} ${request.dataset} row(s) to ${out === '-' ? 'stdout' : out}`);
        return 0;
      }
    }
    throw new UsageError(`unknown command "${command}"`);
  } catch (error) {
    if (error instanceof UsageError) {
      log.error(`${error.message}\n${USAGE}`);
      return 2;
    }
    if (error instanceof SettingsError || error instanceof ExportParameterError) {
      log.error(error.message);
      return 2;
    }
    log.error(error instanceof Error ? error.message : String(error));
    return 1;
  }
}

type OptionValues = Record<string, string | boolean | undefined>;

function parseCommand(command: string, args: string[]): { values: OptionValues } {
  const options = {
    daily: { now: { type: 'string' }, 'force-email': { type: 'boolean' } },
    export: { dataset: { type: 'string' }, format: { type: 'string' }, out: { type: 'string' }, now: { type: 'string' } },
  } as const;
  const spec = options[command as keyof typeof options];
  if (!spec) throw new UsageError(`unknown command "${command}"`);
  try {
    const { values } = parseArgs({ args, options: spec, strict: true, allowPositionals: false });
    return { values: values as OptionValues };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

if (require.main === module) {
  main(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr }).then(
    (code) => {
      process.exitCode = code;
    },
    (error) => {
      process.stderr.write(`${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
