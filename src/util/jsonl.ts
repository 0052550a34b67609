/** JSON lines (one JSON value a line) read and written in batches, never a whole file at once. */
import { Readable } from 'node:stream';

const LF = 0x0a;
/** Any of readline's line endings: CRLF, LF, or a CR alone. */
const LINE_ENDING = /\r\n|\r|\n/;

/** Each non-blank line of `stream`, parsed; the stream is destroyed when the reader stops, early or not. */
export async function* jsonLines<T>(stream: NodeJS.ReadableStream): AsyncGenerator<T> {
  for await (const batch of jsonLineBatches<T>(stream)) yield* batch;
}

/**
 * The lines of `stream` in batches of up to `size`; the stream is destroyed when the reader stops,
 * early or not. Lines end as node:readline ends them (LF, CRLF or a CR alone); blank lines are
 * skipped and a last line without a line break is read.
 *
 * Read straight from the stream's chunks rather than through node:readline, which costs a string
 * and an event per line: each chunk's complete lines are cut at its last LF byte (0x0A never occurs
 * inside a UTF-8 sequence, and JSON.stringify escapes line breaks in strings), decoded at once, and
 * the bytes after it kept for the next chunk (as Cursor.readBlock in src/util/sorter.ts does).
 */
export async function* jsonLineBatches<T>(stream: NodeJS.ReadableStream, size = 1_000): AsyncGenerator<T[]> {
  try {
    /** Bytes after the last line break seen so far: the start of a line not yet complete. */
    let tail: Buffer[] = [];
    let batch: T[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer | string>) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      const cut = bytes.lastIndexOf(LF) + 1;
      if (cut === 0) {
        tail.push(bytes);
        continue;
      }
      const block = tail.length === 0 ? bytes.subarray(0, cut) : Buffer.concat([...tail, bytes.subarray(0, cut)]);
      // A copy: a slice would keep the whole chunk alive for the sake of a few bytes.
      tail = cut < bytes.length ? [Buffer.from(bytes.subarray(cut))] : [];
      parseLines(block.toString('utf8'), batch);
      if (batch.length >= size) {
        const full = batch.length - (batch.length % size);
        for (let i = 0; i < full; i += size) yield batch.slice(i, i + size);
        batch = batch.slice(full);
      }
    }
    if (tail.length > 0) parseLines(Buffer.concat(tail).toString('utf8'), batch);
    for (let i = 0; i < batch.length; i += size) yield batch.slice(i, i + size);
  } finally {
    // A reader that stops early (a failure downstream) must not leave the download open. Leaving
    // the for-await above destroys a Readable already; this also covers a stream whose iterator does not.
    (stream as Readable).destroy();
  }
}

/** Adds the non-blank lines of `text`, parsed, to `rows`. */
function parseLines<T>(text: string, rows: T[]): void {
  // The app writes LF only; any CR (CRLF, or a CR alone, which readline also takes for a line end)
  // takes the general path.
  const lines = text.includes('\r') ? text.split(LINE_ENDING) : undefined;
  if (lines) {
    for (const line of lines) if (line.trim() !== '') rows.push(JSON.parse(line) as T);
    return;
  }
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    if (end > start) {
      const line = text.slice(start, end);
      if (line.trim() !== '') rows.push(JSON.parse(line) as T);
    }
    start = end + 1;
  }
}

/**
 * The rows of `batches` as JSON lines, gathered into chunks of about 64 KiB: an upload handles a
 * few hundred chunks, not one per row, and never a string (and a Buffer) the size of the whole file.
 */
export function jsonLinesBody(batches: AsyncIterable<unknown[]>): Readable {
  return Readable.from(
    (async function* () {
      let text = '';
      for await (const batch of batches) {
        for (const row of batch) text += `${JSON.stringify(row)}\n`;
        if (text.length >= 65_536) {
          yield text;
          text = '';
        }
      }
      if (text) yield text;
    })(),
  );
}

/**
 * What a file of value lines holds (`format`, `version`) and the keys of each line's values, in
 * order: its first line.
 */
export interface ValueLinesHeader {
  format: string;
  version: number;
  keys: readonly string[];
  /**
   * What the file's rows include beyond an earlier writer's, named: a reader tells an older file
   * (which names none) from one that had nothing of the kind. Readers that do not know the field ignore it.
   */
  holds?: readonly string[];
  /** What else the writer says of its rows, for readers that know the key (a domain's own words). */
  notes?: Readonly<Record<string, readonly string[]>>;
}

/**
 * Objects as value lines: the header, then one JSON array per object of its values in the header's
 * key order: without the keys in every line, fewer bytes than keyed JSON lines (60% for a schedule),
 * and cheaper to write and to read back.
 */
export function valueLinesBody<T extends object>(header: ValueLinesHeader, batches: AsyncIterable<T[]>): Readable {
  const keys = header.keys;
  return jsonLinesBody(
    (async function* () {
      yield [header];
      for await (const batch of batches) {
        const lines: unknown[][] = new Array(batch.length);
        for (let r = 0; r < batch.length; r++) {
          const row = batch[r] as Record<string, unknown>;
          const values: unknown[] = new Array(keys.length);
          for (let i = 0; i < keys.length; i++) values[i] = row[keys[i]];
          lines[r] = values;
        }
        yield lines;
      }
    })(),
  );
}

/**
 * The objects of `stream`, in batches: a file that starts with a header of `format` is read by its
 * own keys (a key the file lacks is absent from its objects, as it would be from keyed JSON); a
 * file without one is read as keyed JSON lines, as files were written before value lines.
 * `version` is the one version of `format` this reader knows; another is refused, not guessed at.
 * `source` names the file in errors. `onHeader` is told the header (`holds` and `notes` empty for
 * keyed JSON lines) before the first batch.
 */
export async function* valueLineBatches<T>(
  stream: NodeJS.ReadableStream,
  expected: { format: string; version: number },
  source: string,
  size = 1_000,
  onHeader?: (header: { holds: readonly string[]; notes: Readonly<Record<string, readonly string[]>> }) => void,
): AsyncGenerator<T[]> {
  /** undefined until the first line is read; null for keyed JSON lines. */
  let keys: readonly string[] | null | undefined;
  let shape: Record<string, undefined> | undefined;
  let line = 0;
  for await (const lines of jsonLineBatches<unknown>(stream, size)) {
    let from = 0;
    if (keys === undefined) {
      keys = headerKeys(lines[0], expected, source);
      const header = keys ? (lines[0] as ValueLinesHeader) : undefined;
      onHeader?.({ holds: strings(header?.holds), notes: stringLists(header?.notes) });
      if (keys) {
        from = 1;
        shape = Object.fromEntries(keys.map((k) => [k, undefined]));
      }
    }
    line += lines.length;
    if (keys === null) {
      yield lines as T[];
      continue;
    }
    const rows: T[] = new Array(lines.length - from);
    for (let r = from; r < lines.length; r++) {
      const values = lines[r];
      if (!Array.isArray(values))
        throw new Error(`${source}: line ${line - lines.length + r + 1} is not an array of values`);
      let row: Record<string, unknown>;
      if (values.length >= keys.length) {
        // A copy of an object that has the keys already, then stores to them: every row one shape,
        // without adding its keys one by one (about half the time).
        row = { ...shape! };
        for (let i = 0; i < keys.length; i++) row[keys[i]] = values[i];
      } else {
        // A shorter line (not one the app writes): the keys it has no value for are absent.
        row = {};
        for (let i = 0; i < values.length; i++) row[keys[i]] = values[i];
      }
      rows[r - from] = row as T;
    }
    if (rows.length > 0) yield rows;
  }
}

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

function stringLists(value: unknown): Record<string, string[]> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strings(v)]));
}

/** The keys of a value-lines header, or null when `first` is not one (a keyed JSON line). */
function headerKeys(
  first: unknown,
  expected: { format: string; version: number },
  source: string,
): readonly string[] | null {
  if (typeof first !== 'object' || first === null || Array.isArray(first)) return null;
  const header = first as Partial<ValueLinesHeader>;
  if (header.format !== expected.format) return null;
  if (header.version !== expected.version)
    throw new Error(
      `${source}: ${expected.format} version ${String(header.version)}, which this version of pim-reporter does not read (it reads version ${expected.version})`,
    );
  const keys = header.keys;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string'))
    throw new Error(`${source}: the ${expected.format} header has no list of keys`);
  return keys;
}
