/**
 * Rows to CSV bytes (SPEC 4.1 to 4.3): UTF-8 with BOM, CRLF, RFC 4180 quoting, UTC times that
 * Excel reads as dates, and no cell a spreadsheet would run as a formula.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { stringify } from 'csv-stringify/sync';
import type { ActivationRow, AssignmentRow } from '../pim/model';

/** The first seven are the Entra admin center's PIM export header, so existing sheets keep working. */
export const ASSIGNMENT_COLUMNS = [
  'Assignment State',
  'User Group Name',
  'Role Name',
  'PrincipalName',
  'Member Type',
  'Assignment Start Time (UTC)',
  'Assignment End Time (UTC)',
  'Principal Type',
  'Principal Id',
  'Via Group',
  'Via Group Id',
  'Role Id',
  'Scope',
  'Scope Id',
  'Assignment Type',
  'Permanent',
  'Privileged',
  'Outside PIM',
  'Created (UTC)',
  'Schedule Id',
] as const;

export const ACTIVATION_COLUMNS = [
  'Activated (UTC)',
  'User Group Name',
  'PrincipalName',
  'Principal Id',
  'Role Name',
  'Role Id',
  'Scope Id',
  'Start Time (UTC)',
  'End Time (UTC)',
  'Justification',
  'Ticket Number',
  'Ticket System',
  'Request Id',
  'Audit Id',
] as const;

/** `2024-04-12 15:01:02` (UTC, seconds): Excel reads it as a date; blank when unknown. */
export function csvTime(iso: string | null | undefined): string {
  if (!iso) return '';
  return iso.slice(0, 19).replace('T', ' ');
}

/** SPEC 4.3: a leading `'` keeps a typed-in `=cmd|...` from running as a formula. */
export function neutralise(cell: string): string {
  const c = cell.charCodeAt(0);
  // = + - @ TAB CR
  return c === 61 || c === 43 || c === 45 || c === 64 || c === 9 || c === 13 ? `'${cell}` : cell;
}

const yesNo = (b: boolean) => (b ? 'Yes' : 'No');

/** A scope id as people read it: `Directory`, or the administrative unit's name. */
export type ScopeNamer = (scopeId: string) => string;

/** A row's values in column order, raw; the CSV writer neutralises them, JSON keeps them as they are. */
export function assignmentValues(row: AssignmentRow, scopeName: ScopeNamer): string[] {
  return [
    row.state,
    row.principalDisplayName,
    row.roleName,
    row.principalName,
    row.memberType,
    csvTime(row.start),
    csvTime(row.end),
    row.principalType,
    row.principalId,
    row.viaGroup,
    row.viaGroupId,
    row.roleId,
    scopeName(row.scopeId),
    row.scopeId,
    row.assignmentType,
    yesNo(row.end === null),
    yesNo(row.privileged),
    yesNo(row.outsidePim),
    csvTime(row.created),
    row.scheduleId,
  ];
}

export function activationValues(row: ActivationRow): string[] {
  return [
    csvTime(row.activated),
    row.principalDisplayName,
    row.principalName,
    row.principalId,
    row.roleName,
    row.roleId,
    row.scopeId,
    csvTime(row.start),
    csvTime(row.end),
    row.justification,
    row.ticketNumber,
    row.ticketSystem,
    row.requestId,
    row.auditId,
  ];
}

/** What a written file was: for the manifest. */
export interface FileFacts {
  rows: number;
  bytes: number;
  sha256: string;
}

/** Bytes gathered before a chunk is handed to the stream: few, large writes instead of one per row. */
const CHUNK_CHARS = 16 * 1024;
const BOM = '\ufeff';

/**
 * A CSV byte stream from rows of values (neutralised here, SPEC 4.3), counting rows and hashing bytes as they pass, so the
 * manifest is known the moment the upload ends without reading the file back.
 *
 * Records as csv-stringify writes them with CRLF (see `csvRecord`). Rows are formatted in a loop and
 * handed over in chunks of about 16 KiB; the stream still honours backpressure, reading rows only
 * as its reader takes bytes.
 */
export function csvStream(
  columns: readonly string[],
  rows: AsyncIterable<string[]> | Iterable<string[]>,
): { stream: Readable; facts: () => FileFacts; rows: () => number } {
  if (Symbol.asyncIterator in rows) {
    const iterator = (rows as AsyncIterable<string[]>)[Symbol.asyncIterator]();
    return csvFromBatches(columns, async () => {
      const next = await iterator.next();
      return next.done ? undefined : [next.value];
    });
  }
  const iterator = (rows as Iterable<string[]>)[Symbol.iterator]();
  return csvFromBatches(columns, () => {
    const next = iterator.next();
    return next.done ? undefined : [next.value];
  });
}

/** As `csvStream`, from batches of rows (e.g. `ExternalSorter.sortedBatches`): one await per batch, not per row. */
export function csvStreamOfBatches(
  columns: readonly string[],
  batches: AsyncIterable<readonly string[][]>,
): { stream: Readable; facts: () => FileFacts; rows: () => number } {
  const iterator = batches[Symbol.asyncIterator]();
  return csvFromBatches(columns, async () => {
    const next = await iterator.next();
    return next.done ? undefined : next.value;
  });
}

function csvFromBatches(
  columns: readonly string[],
  nextBatch: () => Promise<readonly string[][] | undefined> | readonly string[][] | undefined,
): { stream: Readable; facts: () => FileFacts; rows: () => number } {
  const hash = createHash('sha256');
  let count = 0;
  let bytes = 0;
  let pending = BOM + csvRecord(columns, false);
  let ended = false;
  let busy = false;
  let wanted = false;

  const stream = new Readable({
    read() {
      wanted = true;
      if (busy) return;
      busy = true;
      void (async () => {
        try {
          // A read() that comes while a pump is running is remembered, never dropped.
          while (wanted && !ended && !stream.destroyed) {
            wanted = false;
            await pump();
          }
        } catch (error) {
          stream.destroy(error instanceof Error ? error : new Error(String(error)));
        } finally {
          busy = false;
        }
      })();
    },
  });
  const push = (text: string): boolean => {
    const chunk = Buffer.from(text, 'utf8');
    hash.update(chunk);
    bytes += chunk.length;
    return stream.push(chunk);
  };
  /** Formats rows until a chunk is full and the stream wants no more, or the rows end. */
  async function pump(): Promise<void> {
    for (;;) {
      const maybe = nextBatch();
      const batch = maybe instanceof Promise ? await maybe : maybe;
      if (batch === undefined) {
        ended = true;
        if (pending) push(pending);
        pending = '';
        stream.push(null);
        return;
      }
      for (const row of batch) {
        count++;
        pending += csvRecord(row, true);
      }
      if (pending.length >= CHUNK_CHARS) {
        const more = push(pending);
        pending = '';
        if (!more) return;
      }
    }
  }
  let digest: string | undefined;
  // facts() is final once the stream has ended: the digest can be taken only once.
  return { stream, rows: () => count, facts: () => ({ rows: count, bytes, sha256: (digest ??= hash.digest('hex')) }) };
}

/** csv-stringify's RFC 4180 with CRLF records; a lone CR or LF in a cell is quoted too (Excel would split the row). */
const STRINGIFY_OPTIONS = { record_delimiter: 'windows', quoted_match: /[\r\n]/ } as const;
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * One CSV record with its CRLF; cells neutralised (SPEC 4.3) unless it is the header. Quoting is
 * csv-stringify's; a record with no comma, quote or line break has nothing to quote and is joined
 * as it is (csv-stringify costs about 8 µs a record: 1.5 s of CPU for a large tenant's 177,000).
 */
function csvRecord(values: readonly unknown[], neutralised: boolean): string {
  const cells: string[] = new Array(values.length);
  let plain = true;
  for (let i = 0; i < values.length; i++) {
    const raw = values[i];
    let cell = typeof raw === 'string' ? raw : raw === null || raw === undefined ? '' : typeof raw === 'boolean' ? (raw ? '1' : '') : String(raw);
    if (neutralised && cell !== '') cell = neutralise(cell);
    if (plain && NEEDS_QUOTES.test(cell)) plain = false;
    cells[i] = cell;
  }
  return plain ? `${cells.join(',')}\r\n` : stringify([cells], STRINGIFY_OPTIONS);
}

/** Hash of any bytes, for files written whole (digest, JSON). */
export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Facts of a CSV already written (a re-run completing a half-written archive, a verification),
 * read as a stream: records are counted with quotes honoured, since a quoted cell may hold a line
 * break.
 */
export async function csvFacts(data: AsyncIterable<Buffer | string> | Iterable<Buffer | string>): Promise<FileFacts> {
  const hash = createHash('sha256');
  let bytes = 0;
  let records = 0;
  let quoted = false;
  let nonEmpty = false;
  for await (const piece of data) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
    hash.update(chunk);
    bytes += chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === 0x22) quoted = !quoted;
      else if (byte === 0x0a && !quoted) {
        if (nonEmpty) records++;
        nonEmpty = false;
        continue;
      }
      if (byte !== 0x0d && byte !== 0x0a) nonEmpty = true;
    }
  }
  if (nonEmpty) records++;
  return { rows: Math.max(0, records - 1), bytes, sha256: hash.digest('hex') };
}

/** Undoes `neutralise`, for values read back from our own CSVs. */
export function unneutralise(cell: string): string {
  return /^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell;
}

/**
 * RFC 4180 records of our own CSV files (BOM, CRLF, quoted cells with line breaks), read as a
 * stream and handed on a chunk's worth at a time: a month of a large tenant is never one string.
 * A lone CR outside quotes is data, as the writer never ends a record with one.
 */
export async function* csvRecordBatches(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<string[][]> {
  const decoder = new StringDecoder('utf8'); // a character split between chunks is joined again
  let record: string[] = [];
  let cell = '';
  let quoted = false;
  let quoteSeen = false; // a quote inside quotes: the end of the cell, or the first of a doubled pair
  let crSeen = false; // a CR outside quotes: the end of the record if an LF follows
  let started = false;
  const parse = (text: string, batch: string[][]) => {
    let i = 0;
    if (!started && text.length > 0) {
      started = true;
      if (text.charCodeAt(0) === 0xfeff) i = 1;
    }
    for (; i < text.length; i++) {
      const ch = text[i];
      if (quoteSeen) {
        quoteSeen = false;
        if (ch === '"') {
          cell += '"';
          continue;
        }
        quoted = false;
      } else if (quoted) {
        if (ch === '"') quoteSeen = true;
        else cell += ch;
        continue;
      }
      if (crSeen) {
        crSeen = false;
        if (ch === '\n') {
          record.push(cell);
          batch.push(record);
          record = [];
          cell = '';
          continue;
        }
        cell += '\r';
      }
      if (ch === '"') quoted = true;
      else if (ch === ',') {
        record.push(cell);
        cell = '';
      } else if (ch === '\r') crSeen = true;
      else if (ch === '\n') {
        record.push(cell);
        batch.push(record);
        record = [];
        cell = '';
      } else cell += ch;
    }
  };
  for await (const chunk of chunks) {
    const batch: string[][] = [];
    parse(typeof chunk === 'string' ? chunk : decoder.write(chunk), batch);
    if (batch.length > 0) yield batch;
  }
  const batch: string[][] = [];
  parse(decoder.end(), batch);
  if (crSeen) cell += '\r';
  if (cell !== '' || record.length > 0) {
    record.push(cell);
    batch.push(record);
  }
  if (batch.length > 0) yield batch;
}
