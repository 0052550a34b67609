/**
 * The CSV writer and reader and the external sorter give exactly what the plain, obvious ways
 * give. CSV bytes against a reference RFC 4180 formatter, from rows, async rows and batches,
 * with backpressure; the sorter across many runs, with and without a codec, lines longer than a
 * read block, rows added from two producers at once, read twice, read in batches, stopped early.
 */
import { readdir } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { stringify } from 'csv-stringify/sync';
import { csvFacts, csvRecordBatches, csvStream, csvStreamOfBatches, neutralise, sha256 } from '../../src/report/csv';
import { ExternalSorter } from '../../src/util/sorter';
import { assignmentRowCodec } from '../../src/pim/model';
import type { AssignmentRow } from '../../src/pim/model';

/** The rules as docs/files.md states them, written the slow and obvious way. */
function referenceCsv(columns: string[], rows: string[][]): Buffer {
  const cell = (v: string) => (/[",\r\n]/.test(v) ? `"${v.split('"').join('""')}"` : v);
  const lines = [columns.map(cell).join(','), ...rows.map((r) => r.map((v) => cell(neutralise(v))).join(','))];
  return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'utf8')]);
}

function randomRows(n: number, seed: number): string[][] {
  const parts = ['a', 'Zoë', '山田', ',', '"', '\r', '\n', '\r\n', ' ', '=', '+', '-', '@', '\t', "'", ''];
  let x = seed;
  const next = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  const cell = () =>
    Array.from({ length: Math.floor(next() * 6) }, () => parts[Math.floor(next() * parts.length)]).join('');
  return Array.from({ length: n }, () => Array.from({ length: 5 }, cell));
}

describe('csvStream', () => {
  const columns = ['Plain', 'With, comma', 'With "quote"', 'Line\nbreak', 'x'];

  it.each([0, 1, 3, 5000])(
    'writes the reference bytes for %i hostile rows, from rows, async rows and batches',
    async (n) => {
      const rows = randomRows(n, n + 1);
      const expected = referenceCsv(columns, rows);
      const sources = [
        csvStream(columns, rows),
        csvStream(
          columns,
          (async function* () {
            yield* rows;
          })(),
        ),
        csvStreamOfBatches(
          columns,
          (async function* () {
            for (let i = 0; i < rows.length; i += 333) yield rows.slice(i, i + 333);
          })(),
        ),
      ];
      for (const { stream, facts } of sources) {
        const bytes = await buffer(stream);
        expect(bytes.equals(expected)).toBe(true);
        expect(facts()).toEqual({ rows: n, bytes: expected.length, sha256: sha256(expected) });
      }
    },
  );

  it('writes what csv-stringify writes for the whole file (BOM, CRLF records, a lone CR or LF quoted)', async () => {
    const rows = randomRows(5000, 42);
    const expected = Buffer.from(
      stringify([columns, ...rows.map((r) => r.map(neutralise))], {
        bom: true,
        record_delimiter: 'windows',
        quoted_match: /[\r\n]/,
      }),
      'utf8',
    );
    expect(rows.some((r) => r.every((v) => !/[",\r\n]/.test(v)))).toBe(true); // plain records and quoted ones
    expect(rows.some((r) => r.some((v) => /[",\r\n]/.test(v)))).toBe(true);
    const bytes = await buffer(csvStream(columns, rows).stream);
    expect(bytes.toString('utf8')).toBe(expected.toString('utf8'));
  });

  it('describes a stored CSV from its bytes as the writer did, whatever the chunks (quoted line breaks, CRLF split)', async () => {
    const rows = randomRows(2000, 7);
    const { stream, facts } = csvStream(columns, rows);
    const bytes = await buffer(stream);
    for (const size of [1, 2, 3, 1000, bytes.length]) {
      const chunks = (function* () {
        for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
      })();
      expect(await csvFacts(chunks)).toEqual(facts());
    }
  });

  it('reads its own files back, record for record, whatever the chunks (a character, a CRLF or a doubled quote split)', async () => {
    const rows = randomRows(1500, 11);
    rows.push(['Zoë 山田', '"', '\r', 'end\r', '']); // multi-byte characters, a lone CR, one at the end of a cell
    const bytes = await buffer(csvStream(columns, rows).stream);
    const expected = [columns, ...rows.map((r) => r.map(neutralise))];
    for (const size of [1, 2, 3, 7, 4096, bytes.length]) {
      const chunks = (async function* () {
        for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
      })();
      const records: string[][] = [];
      for await (const batch of csvRecordBatches(chunks)) records.push(...batch);
      expect(records).toEqual(expected);
    }
  });

  it('reads rows only as its reader takes bytes (backpressure)', async () => {
    let produced = 0;
    const { stream } = csvStream(
      ['a', 'b'],
      (async function* () {
        for (let i = 0; i < 200_000; i++) {
          produced++;
          yield [`row ${i}`, 'x'.repeat(20)];
        }
      })(),
    );
    const reader = stream[Symbol.asyncIterator]();
    await reader.next();
    // Event-loop turns, not wall time: an eager producer would run ahead within them (its loop is microtasks).
    for (let turn = 0; turn < 50; turn++) await new Promise((r) => setImmediate(r));
    expect(produced).toBeLessThan(10_000);
    let chunks = 1;
    while (!(await reader.next()).done) chunks++;
    expect(produced).toBe(200_000);
    expect(chunks).toBeGreaterThan(100);
  });

  it('fails the stream when the rows fail', async () => {
    const { stream } = csvStream(
      ['a'],
      (async function* () {
        yield ['1'];
        throw new Error('Graph went away');
      })(),
    );
    await expect(buffer(stream)).rejects.toThrow('Graph went away');
  });
});

describe('ExternalSorter', () => {
  const row = (i: number, name: string): AssignmentRow => ({
    state: i % 3 ? 'Eligible' : 'Active',
    principalDisplayName: name,
    principalName: `user${i}@contoso.com`,
    memberType: i % 2 ? 'Direct' : 'Group',
    start: i % 5 ? '2026-01-01T00:00:00.000Z' : null,
    end: i % 7 ? null : '2027-01-01T00:00:00.000Z',
    principalType: 'User',
    principalId: `p-${(i * 7919) % 1009}`,
    viaGroup: '',
    viaGroupId: '',
    roleId: 'r',
    roleName: `Role ${(i * 104729) % 13}`,
    scopeId: '/',
    assignmentType: '',
    privileged: i % 2 === 0,
    outsidePim: i % 11 === 0,
    created: null,
    scheduleId: `s-${i}`,
  });
  const compare = (a: AssignmentRow, b: AssignmentRow) =>
    a.roleName < b.roleName
      ? -1
      : a.roleName > b.roleName
        ? 1
        : a.scheduleId < b.scheduleId
          ? -1
          : a.scheduleId > b.scheduleId
            ? 1
            : 0;

  let directory: string;
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'pim-sorter-test-'));
  });
  afterEach(async () => rm(directory, { recursive: true, force: true }));

  it.each([
    ['keyed JSON', undefined],
    ['a codec', assignmentRowCodec],
  ])('sorts across many runs with %s, from two producers at once, read twice and in batches', async (_, codec) => {
    const rows = Array.from({ length: 5000 }, (_, i) => row(i, i % 97 ? `Name ${i}` : `Zoë "Q", 山田\r\n${i}`));
    const sorter = new ExternalSorter<AssignmentRow>(compare, { runSize: 301, directory, codec });
    await Promise.all([
      (async () => {
        for (const r of rows.slice(0, 2500)) await sorter.add(r);
      })(),
      (async () => {
        for (let i = 2500; i < rows.length; i += 37) await sorter.addAll(rows.slice(i, i + 37));
      })(),
    ]);
    const expected = [...rows].sort(compare);
    for (let round = 0; round < 2; round++) {
      const out: AssignmentRow[] = [];
      for await (const r of sorter.sorted()) out.push(r);
      expect(out).toEqual(expected);
    }
    const batches: AssignmentRow[][] = [];
    for await (const b of sorter.sortedBatches(400)) batches.push(b);
    expect(batches.every((b) => b.length <= 400)).toBe(true);
    expect(batches.flat()).toEqual(expected);
    expect(sorter.size).toBe(rows.length);
    await sorter.dispose();
    expect(await readdir(directory)).toEqual([]);
  });

  it('reads lines longer than its read block, and cleans up after a reader that stops early', async () => {
    const long = 'é山"\n'.repeat(20_000);
    const sorter = new ExternalSorter<{ k: number; s: string }>((a, b) => a.k - b.k, { runSize: 50, directory });
    for (let i = 0; i < 400; i++) await sorter.add({ k: (i * 37) % 401, s: `${long}${i}` });
    const keys: number[] = [];
    for await (const item of sorter.sorted()) {
      expect(item.s.startsWith(long)).toBe(true);
      keys.push(item.k);
    }
    expect(keys).toEqual([...keys].sort((a, b) => a - b));
    expect(keys).toHaveLength(400);
    for await (const item of sorter.sorted()) {
      expect(item.k).toBe(keys[0]);
      break;
    }
    await sorter.dispose();
    expect(await readdir(directory)).toEqual([]);
  });
});
