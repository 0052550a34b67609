/**
 * Rows to CSV bytes and back: UTF-8 with BOM, CRLF, RFC 4180 quoting, UTC times that Excel reads
 * as dates (docs/files.md), and no cell a spreadsheet would run as a formula. Written by
 * csv-stringify, read by csv-parse (https://csv.js.org/); the columns and cells of each row type
 * come from its field table (src/pim/model.ts).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse, type Options as ParseOptions } from 'csv-parse';
import { stringify, type Options as StringifyOptions } from 'csv-stringify/sync';
import {
  ACTIVATION_TABLE,
  ASSIGNMENT_TABLE,
  ROLE_SETTINGS_TABLE,
  type ActivationRow,
  type RoleSettingsRow,
  type AssignmentRow,
  type ScopeNamer,
  UNUSED_TABLE,
  type UnusedEligibilityRow,
} from '../pim/model';
import { batchesOf, measuring } from '../util/streams';
import type { RowTable } from '../util/table';
import { awaitedLater, settled } from '../util/promises';

export { csvTime } from '../util/table';
export { sha256 } from '../util/streams';

export const ASSIGNMENT_COLUMNS = ASSIGNMENT_TABLE.columns;
export const ACTIVATION_COLUMNS = ACTIVATION_TABLE.columns;
export const ROLE_SETTINGS_COLUMNS = ROLE_SETTINGS_TABLE.columns;

/** A row's values in column order, raw; the CSV writer neutralises them, JSON keeps them as they are. */
export function assignmentValues(row: AssignmentRow, scopeName: ScopeNamer): string[] {
  return ASSIGNMENT_TABLE.values(row, scopeName);
}

export function activationValues(row: ActivationRow): string[] {
  return ACTIVATION_TABLE.values(row, undefined);
}

export function roleSettingsValues(row: RoleSettingsRow): string[] {
  return ROLE_SETTINGS_TABLE.values(row, undefined);
}

export const UNUSED_COLUMNS = UNUSED_TABLE.columns;

export function unusedValues(row: UnusedEligibilityRow, scopeName: ScopeNamer): string[] {
  return UNUSED_TABLE.values(row, scopeName);
}

/** What a spreadsheet takes as the start of a formula once white space is trimmed (OWASP, https://owasp.org/www-community/attacks/CSV_Injection). */
const FORMULA_START_TRIMMED = /^[=+\-@]/;

/**
 * True when a spreadsheet could run `cell` as a formula: it starts with `= + - @ TAB CR`, or does so
 * once compatibility forms are folded (NFKC: the full-width `＝ ＋ － ＠`) and leading white space
 * (a space, a no-break space) is trimmed, as some spreadsheets do on import.
 */
function runsAsFormula(cell: string): boolean {
  const c = cell.charCodeAt(0);
  // = + - @ TAB CR, by code: this runs for every cell of every file.
  if (c === 0x3d || c === 0x2b || c === 0x2d || c === 0x40 || c === 0x09 || c === 0x0d) return true;
  // A printable ASCII first character is the same after NFKC and trimming (nothing composes into = + - @).
  if (c > 0x20 && c < 0x7f) return false;
  return FORMULA_START_TRIMMED.test(cell.normalize('NFKC').trimStart());
}

/**
 * True when `cell` runs as a formula, or would once the `'` marks at its start were taken off: a
 * value that itself starts `'=` gets a mark too, so reading back takes off exactly the one added
 * and `'=x` is not read back as `=x`.
 */
function takesMark(cell: string): boolean {
  if (cell.charCodeAt(0) !== 0x27) return runsAsFormula(cell);
  let i = 1;
  while (cell.charCodeAt(i) === 0x27) i++;
  return i < cell.length && runsAsFormula(cell.slice(i));
}

/** A leading `'` keeps a typed-in `=cmd|...` from running as a formula; the value itself is kept as it is. */
export function neutralise(cell: string): string {
  return cell !== '' && takesMark(cell) ? `'${cell}` : cell;
}

/** Undoes `neutralise`, for values read back from our own CSVs. */
export function unneutralise(cell: string): string {
  return cell.charCodeAt(0) === 0x27 && takesMark(cell.slice(1)) ? cell.slice(1) : cell;
}

/** What a written file was: for the manifest. */
export interface FileFacts {
  rows: number;
  bytes: number;
  sha256: string;
}

/** RFC 4180 with CRLF records; a lone CR or LF in a cell is quoted too (Excel would split the row). */
const STRINGIFY_OPTIONS: StringifyOptions = { record_delimiter: 'windows', quoted_match: /[\r\n]/ };
const HEADER_OPTIONS: StringifyOptions = { ...STRINGIFY_OPTIONS, bom: true };
const RECORD_OPTIONS: StringifyOptions = { ...STRINGIFY_OPTIONS, cast: { string: neutralise } };
/**
 * Rows per csv-stringify call, about 16 KB of text: cheaper than a thousand rows a call (0.95 s
 * against 1.2 s of CPU for 177,000 records), the garbage of each call being smaller and shorter-lived.
 */
const CHUNK_ROWS = 100;

/** What makes csv-stringify quote a cell with these options: the delimiter, the quote, CR or LF. */
const NEEDS_QUOTES = /[",\r\n]/;

/** A record as its cells neutralised and joined, or undefined when a cell needs quoting. */
function plainRecord(row: readonly string[]): string | undefined {
  let line = '';
  for (let c = 0; c < row.length; c++) {
    const cell = neutralise(row[c]);
    if (NEEDS_QUOTES.test(cell)) return undefined;
    line = c === 0 ? cell : `${line},${cell}`;
  }
  return `${line}\r\n`;
}

/** Records `from` to `to` of a batch as CSV text (see `csvStreamOfBatches`). */
function records(batch: readonly string[][], from: number, to: number): string {
  let text = '';
  for (let r = from; r < to; r++) text += plainRecord(batch[r]) ?? stringify([batch[r]], RECORD_OPTIONS);
  return text;
}

/** A CSV byte stream from rows of values (see `csvStreamOfBatches`). */
export function csvStream(
  columns: readonly string[],
  rows: AsyncIterable<string[]> | Iterable<string[]>,
): { stream: Readable; facts: () => FileFacts; rows: () => number } {
  return csvStreamOfBatches(columns, batchesOf(rows, CHUNK_ROWS));
}

/**
 * A CSV byte stream from batches of rows (e.g. `ExternalSorter.sortedBatches`), cells neutralised,
 * counting rows and hashing bytes as they pass, so the manifest is known the moment the upload
 * ends without reading the file back. A record none of whose cells needs quoting is its cells
 * joined by commas (what csv-stringify writes for it, byte for byte); any other record goes through
 * csv-stringify. Since the lists are read 999 a page the product's own CPU bounds the bench's wall
 * time, and csv-stringify for every record cost 0.82 s of CPU for the 177,000 assignment records
 * of `npm run bench` at scale 1 against 0.14 s joined (docs/performance.md). Batches are formatted
 * only as the reader takes bytes (backpressure), and a failure of the rows fails the stream.
 */
export function csvStreamOfBatches(
  columns: readonly string[],
  batches: AsyncIterable<readonly string[][]>,
): { stream: Readable; facts: () => FileFacts; rows: () => number } {
  let count = 0;
  async function* text(): AsyncGenerator<string> {
    yield stringify([columns as string[]], HEADER_OPTIONS);
    for await (const batch of batches) {
      if (batch.length === 0) continue;
      count += batch.length;
      for (let i = 0; i < batch.length; i += CHUNK_ROWS)
        yield records(batch, i, Math.min(batch.length, i + CHUNK_ROWS));
    }
  }
  const measured = measuring();
  // The reader reads `measured.stream`: a failure anywhere destroys it with the error, which the
  // reader sees; the promise itself has nothing more to say.
  void settled(pipeline(Readable.from(text(), { objectMode: false }), measured.stream));
  return { stream: measured.stream, rows: () => count, facts: () => ({ rows: count, ...measured.facts() }) };
}

/** csv-parse for our own files: the BOM dropped, CRLF records, cells as strings. */
const PARSE_OPTIONS: ParseOptions = { bom: true, record_delimiter: '\r\n', skip_empty_lines: true };

type Chunks = AsyncIterable<Buffer | string> | Iterable<Buffer | string>;
const readable = (data: Chunks): Readable =>
  data instanceof Readable ? data : Readable.from(data, { objectMode: false });

/**
 * Facts of a CSV already written (a re-run completing a half-written archive, a verification),
 * read as a stream: the bytes hashed as they are, the records counted by csv-parse (a quoted cell
 * may hold a line break).
 */
export async function csvFacts(data: Chunks): Promise<FileFacts> {
  const measured = measuring();
  let records = 0;
  await pipeline(readable(data), measured.stream, parse(PARSE_OPTIONS), async (parsed: AsyncIterable<string[]>) => {
    for await (const _record of parsed) records++;
  });
  return { rows: Math.max(0, records - 1), ...measured.facts() };
}

/**
 * The records of one of our CSV files (header first), read as a stream and handed on in batches:
 * a month of a large tenant is never one string.
 */
export async function* csvRecordBatches(data: Chunks, size = 1_000): AsyncGenerator<string[][]> {
  const parser = parse(PARSE_OPTIONS);
  // A failure of the data destroys the parser, so the loop below sees it; stopping the loop early
  // destroys the parser, which ends the data too.
  const piped = awaitedLater(pipeline(readable(data), parser));
  yield* batchesOf(parser as AsyncIterable<string[]>, size);
  await piped;
}

/** Rows of a dataset read back from a CSV the app wrote: columns found by the file's own header, cells un-neutralised. */
export async function* csvRows<Row, View>(table: RowTable<Row, View>, data: Chunks): AsyncGenerator<Row[]> {
  let read: ((cells: readonly string[]) => Row) | undefined;
  for await (const records of csvRecordBatches(data)) {
    if (!read) read = table.reader(records.shift()!);
    if (records.length > 0) yield records.map((record) => read!(record.map(unneutralise)));
  }
}
