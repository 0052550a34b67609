/** JSON lines (one JSON value a line) read and written in batches, never a whole file at once. */
import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';

/** Each non-blank line of `stream`, parsed. */
export async function* jsonLines<T>(stream: NodeJS.ReadableStream): AsyncGenerator<T> {
  for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
    if (line.trim() !== '') yield JSON.parse(line) as T;
  }
}

/** The lines of `stream` in batches of up to `size`; the stream is destroyed when the reader stops, early or not. */
export async function* jsonLineBatches<T>(stream: NodeJS.ReadableStream, size = 1_000): AsyncGenerator<T[]> {
  try {
    let batch: T[] = [];
    for await (const row of jsonLines<T>(stream)) {
      batch.push(row);
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  } finally {
    // A reader that stops early (a failure downstream) must not leave the download open.
    (stream as Readable).destroy();
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
