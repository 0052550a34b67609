/** Rows as a streamed JSON array of objects keyed by the CSV column names (the export's `format=json`). */
import { Readable } from 'node:stream';

export function jsonArrayStream(
  columns: readonly string[],
  rows: AsyncIterable<string[]>,
): { stream: Readable; rows: () => number } {
  let count = 0;
  const stream = Readable.from(
    (async function* () {
      yield '[';
      for await (const cells of rows) {
        const record: Record<string, string> = {};
        columns.forEach((column, i) => (record[column] = cells[i] ?? ''));
        yield `${count === 0 ? '\n' : ',\n'}${JSON.stringify(record)}`;
        count++;
      }
      yield count === 0 ? ']\n' : '\n]\n';
    })(),
  );
  return { stream, rows: () => count };
}
