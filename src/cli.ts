#!/usr/bin/env node
/**
 * `pim-reporter <daily|monthly|export|verify> [options]` (docs/cli.md): the same jobs as the
 * Functions, from a terminal, with the caller's own sign-in. Progress on stderr, data on stdout
 * only for `export --out -`, exit status non-zero on any failure.
 */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { runDaily } from './jobs/daily';
import { runMonthly } from './jobs/monthly';
import { parseMonth, verifyMonth } from './jobs/pack';
import { ExportParameterError, parseExportRequest, runExport } from './jobs/export';
import type { JobContext } from './jobs/context';
import { streamLog } from './log';
import { createServices, type Timing } from './services';
import { describeSettings, loadSettings, SettingsError } from './settings';
import { limitHeapGrowth } from './util/heap';
import { noSuchMoment } from './util/time';

const USAGE = `Usage: pim-reporter <command> [options]

Commands:
  daily    [--now <ISO time>] [--force-email]
           today's snapshot CSVs, harvested activations, digest and email
  monthly  [--month YYYY-MM] [--now <ISO time>]
           the compliance pack of a month (default: every complete month not yet archived)
  export   --dataset <eligible|active|activations|role-settings|unused|azure-eligible|azure-active|azure-activations> [--from YYYY-MM-DD] [--to YYYY-MM-DD]
           [--format csv|json] [--out <file>|-] [--save] [--now <ISO time>]
           one dataset to a file or stdout; --from/--to only for activations and azure-activations
           (default the last 30 days), the others are read as of now
  verify   --month YYYY-MM [--now <ISO time>]
           recompute each archived file's SHA-256 against the month's manifest
Settings come from the environment (see README). Exit status 0 on success.`;

export class UsageError extends Error {}

export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** How the clients wait; the real timer unless a test sets it. */
  timing?: Timing;
}

function parseMonthOption(value: string): string {
  try {
    return parseMonth(value);
  } catch (error) {
    throw new UsageError(`--month: ${(error as Error).message}`);
  }
}

function parseNow(value: string | undefined): Date {
  if (value === undefined) return new Date();
  // A time without Z or an offset would be read as the machine's local time: refuse the ambiguity.
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.exec(value);
  if (!m) throw new UsageError(`--now must be an ISO time with a zone, such as 2026-11-24T06:00:00Z, got "${value}"`);
  // Date.parse rolls a day or hour that does not exist over to another: a backfill would write, and
  // make final, a day nobody asked for.
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map((v) => Number(v ?? 0));
  const problem = noSuchMoment(year, month, day, hour, minute, second);
  if (problem) throw new UsageError(`--now is "${value}", but ${problem}`);
  const ms = Date.parse(value);
  // An offset beyond the clock's (+25:00) is no zone at all.
  if (Number.isNaN(ms))
    throw new UsageError(`--now must be an ISO time with a zone, such as 2026-11-24T06:00:00Z, got "${value}"`);
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
    const ctx: JobContext = { settings, ...createServices(settings, log, undefined, io.timing), log, now };

    switch (command) {
      case 'daily': {
        const result = await runDaily(ctx, { forceEmail: Boolean(values['force-email']) });
        log.info(`Daily run done: ${result.folder}${result.subject ? ` (${result.subject})` : ''}`);
        return 0;
      }
      case 'monthly': {
        const result = await runMonthly(ctx, {
          month: values.month ? parseMonthOption(values.month as string) : undefined,
        });
        log.info(
          `Monthly run done: archived ${result.archived.join(', ') || 'nothing new'}${
            result.alreadyArchived.length ? `; already archived: ${result.alreadyArchived.join(', ')}` : ''
          }${result.notSealed.length ? `; not sealed yet: ${result.notSealed.join(', ')}` : ''}`,
        );
        return 0;
      }
      case 'export': {
        const request = parseExportRequest(
          {
            dataset: values.dataset as string | undefined,
            format: values.format as string | undefined,
            from: values.from as string | undefined,
            to: values.to as string | undefined,
            save: values.save ? 'true' : 'false',
          },
          now,
        );
        const out = (values.out as string | undefined) ?? '-';
        const result = await runExport(ctx, request);
        await pipeline(result.body, out === '-' ? io.stdout : createWriteStream(out));
        for (const gap of result.uncovered)
          log.warn(`not covered by any source: ${gap.fromUtc} to ${gap.toUtc} (${gap.reason})`);
        log.info(`Exported ${result.rows()} ${request.dataset} row(s) to ${out === '-' ? 'stdout' : out}`);
        return 0;
      }
      case 'verify': {
        if (!values.month) throw new UsageError('verify needs --month YYYY-MM');
        const result = await verifyMonth(ctx, parseMonthOption(values.month as string));
        for (const problem of result.problems) log.error(problem);
        log.info(
          result.ok
            ? `${result.month}: every archived file matches its manifest`
            : `${result.month}: verification FAILED`,
        );
        return result.ok ? 0 : 1;
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
    monthly: { month: { type: 'string' }, now: { type: 'string' } },
    export: {
      dataset: { type: 'string' },
      format: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
      save: { type: 'boolean' },
      now: { type: 'string' },
    },
    verify: { month: { type: 'string' }, now: { type: 'string' } },
  } as const;
  const spec = options[command as keyof typeof options];
  if (!spec) throw new UsageError(`unknown command "${command}"`);
  let parsed;
  try {
    parsed = parseArgs({ args, options: spec, strict: true, allowPositionals: false, tokens: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  // parseArgs keeps the last of a repeated option: `--now A --now B` would run, write and email B.
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name} is given more than once`);
    seen.add(token.name);
  }
  return { values: parsed.values as OptionValues };
}

if (require.main === module) {
  // The process is the run's alone (src/util/heap.ts); tests that call main() in their own process are left as they are.
  limitHeapGrowth();
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
