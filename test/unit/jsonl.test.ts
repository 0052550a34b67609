/**
 * The JSON-lines reader gives what node:readline (crlfDelay Infinity) and JSON.parse gave, whatever
 * the chunking; value lines (src/util/jsonl.ts) round-trip every JSON value and still read keyed
 * JSON lines, as files were written before them.
 */
import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { text } from 'node:stream/consumers';
import { jsonLineBatches, jsonLines, valueLineBatches, valueLinesBody } from '../../src/util/jsonl';
import { ASSIGNMENT_TABLE, type AssignmentRow } from '../../src/pim/model';
import { AZURE_ASSIGNMENT_TABLE } from '../../src/pim/azure';
import { SCHEDULES } from '../../src/jobs/state';

/** What the reader did before: readline's lines, blank ones skipped, each parsed. */
async function reference(bytes: Buffer): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const line of createInterface({ input: Readable.from([bytes]), crlfDelay: Infinity }))
    if (line.trim() !== '') out.push(JSON.parse(line));
  return out;
}

/** `bytes` as a stream of chunks cut at `cuts`. */
function chunked(bytes: Buffer, cuts: number[]): Readable {
  const chunks: Buffer[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    chunks.push(bytes.subarray(at, cut));
    at = cut;
  }
  return Readable.from(chunks);
}

async function readAll(stream: NodeJS.ReadableStream, size?: number): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const batch of jsonLineBatches(stream, size)) out.push(...batch);
  return out;
}

const values = [
  { name: 'Zoë 山田 😀', n: 1 },
  ['a', null, true, false, 0, -1.5, 'quote " and \\ backslash'],
  'line\nbreak\r\nand \u2028 separator',
  { nested: { deeper: ['é'] } },
];
const lines = Buffer.from(values.map((v) => `${JSON.stringify(v)}\n`).join(''), 'utf8');

describe('jsonLineBatches', () => {
  it('reads the same values with the stream cut at every byte, inside characters and lines', async () => {
    // 'ë', '山' and '😀' are 2, 3 and 4 bytes: some cuts fall inside each.
    expect(lines.length).toBeGreaterThan(lines.toString('utf8').length);
    for (let cut = 0; cut <= lines.length; cut++) expect(await readAll(chunked(lines, [cut]))).toEqual(values);
  });

  it('reads the same values from one-byte chunks and from two cuts at once', async () => {
    const everyByte = Array.from({ length: lines.length - 1 }, (_, i) => i + 1);
    expect(await readAll(chunked(lines, everyByte))).toEqual(values);
    for (let a = 1; a < lines.length; a += 3)
      for (let b = a; b < lines.length; b += 5) expect(await readAll(chunked(lines, [a, b]))).toEqual(values);
  });

  it('takes CRLF, a CR alone and LF as readline does, a CR and its LF in different chunks included', async () => {
    const mixed = Buffer.from('{"a":1}\r\n{"b":"x\\r\\ny"}\r{"c":3}\n\r\n[4]\r\n', 'utf8');
    const expected = await reference(mixed);
    expect(expected).toEqual([{ a: 1 }, { b: 'x\r\ny' }, { c: 3 }, [4]]);
    for (let cut = 0; cut <= mixed.length; cut++) expect(await readAll(chunked(mixed, [cut]))).toEqual(expected);
  });

  it('skips blank and whitespace-only lines, and reads a last line without a line break', async () => {
    const bytes = Buffer.from('\n\n{"a":1}\n   \n\t\n{"b":2}\n\n{"c":3}', 'utf8');
    expect(await reference(bytes)).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }]);
    for (let cut = 0; cut <= bytes.length; cut++)
      expect(await readAll(chunked(bytes, [cut]))).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }]);
    expect(await readAll(Readable.from([Buffer.from('[1]')]))).toEqual([[1]]);
    expect(await readAll(Readable.from([Buffer.from('')]))).toEqual([]);
  });

  it('reads a line longer than many chunks', async () => {
    const long = { text: 'ü'.repeat(300_000) };
    const bytes = Buffer.from(`[1]\n${JSON.stringify(long)}\n[2]`, 'utf8');
    const cuts = Array.from({ length: Math.floor(bytes.length / 1000) }, (_, i) => (i + 1) * 1000 + 1);
    expect(await readAll(chunked(bytes, cuts))).toEqual([[1], long, [2]]);
  });

  it('reads chunks given as strings (a stream with an encoding set)', async () => {
    const decoded = chunked(lines, [5, 13, 40]);
    decoded.setEncoding('utf8');
    expect(await readAll(decoded)).toEqual(values);
  });

  it('gives batches of exactly the size asked, but the last, in order', async () => {
    const many = Buffer.from(Array.from({ length: 2_345 }, (_, i) => `[${i}]\n`).join(''), 'utf8');
    const cuts = Array.from({ length: 60 }, (_, i) => 7 + i * 197);
    const sizes: number[] = [];
    const rows: unknown[] = [];
    for await (const batch of jsonLineBatches(chunked(many, cuts), 100)) {
      sizes.push(batch.length);
      rows.push(...batch);
    }
    expect(sizes).toEqual([...Array<number>(23).fill(100), 45]);
    expect(rows).toEqual(Array.from({ length: 2_345 }, (_, i) => [i]));
  });

  it('fails on a malformed line, as JSON.parse does', async () => {
    await expect(readAll(Readable.from([Buffer.from('[1]\n{"a":\n')]))).rejects.toThrow(SyntaxError);
  });

  it('destroys the stream when the reader stops early, by break or by a failure', async () => {
    const many = Buffer.from(Array.from({ length: 5_000 }, (_, i) => `[${i}]\n`).join(''), 'utf8');
    const first = chunked(many, [100, 200, 300]);
    for await (const batch of jsonLineBatches(first, 10)) {
      expect(batch).toHaveLength(10);
      break;
    }
    expect(first.destroyed).toBe(true);

    const second = chunked(many, [100]);
    for await (const row of jsonLines(second)) {
      expect(row).toEqual([0]);
      break;
    }
    expect(second.destroyed).toBe(true);

    const third = chunked(many, [100]);
    await expect(
      (async () => {
        for await (const _ of jsonLineBatches(third)) throw new Error('downstream');
      })(),
    ).rejects.toThrow('downstream');
    expect(third.destroyed).toBe(true);
  });
});

const HEADER = { format: 'test-rows', version: 2, keys: ['s', 'n', 'b', 'z', 'o'] };

async function* batchesOf<T>(rows: T[], size: number): AsyncGenerator<T[]> {
  for (let i = 0; i < rows.length; i += size) yield rows.slice(i, i + size);
}

async function readValues<T>(bytes: Buffer | string, cuts: number[] = []): Promise<T[]> {
  const out: T[] = [];
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  for await (const batch of valueLineBatches<T>(chunked(buf, cuts), HEADER, 'test.jsonl', 3)) out.push(...batch);
  return out;
}

describe('value lines', () => {
  const rows = [
    { s: 'plain', n: 1, b: true, z: null, o: { x: [1, 'two'] } },
    { s: 'quote " backslash \\ slash /', n: -0.25, b: false, z: null, o: null },
    { s: 'new\nline, CR\r, CRLF\r\n, tab\t, \u2028\u2029', n: 1e21, b: true, z: 'was null', o: [] },
    { s: 'Zoë 山田 😀 \u0000 \ud7ff', n: 0, b: false, z: null, o: {} },
    { s: '', n: 123456789, b: true, z: null, o: 'text' },
  ];

  it('writes a header, then one array of values per row, in the header order', async () => {
    const body = await text(valueLinesBody(HEADER, batchesOf(rows, 2)));
    const lines = body.split('\n');
    expect(lines).toHaveLength(rows.length + 2);
    expect(lines.pop()).toBe('');
    expect(JSON.parse(lines[0])).toEqual(HEADER);
    expect(JSON.parse(lines[1])).toEqual(['plain', 1, true, null, { x: [1, 'two'] }]);
    expect(body.length).toBeLessThan(rows.map((r) => `${JSON.stringify(r)}\n`).join('').length);
  });

  it('round-trips every JSON value type, whatever the chunking', async () => {
    const bytes = Buffer.from(await text(valueLinesBody(HEADER, batchesOf(rows, 2))), 'utf8');
    expect(await readValues(bytes)).toEqual(rows);
    for (let cut = 0; cut <= bytes.length; cut += 7) expect(await readValues(bytes, [cut, cut + 3])).toEqual(rows);
  });

  it('reads an empty file, and a header alone, as no rows', async () => {
    expect(await readValues('')).toEqual([]);
    expect(await readValues(await text(valueLinesBody(HEADER, batchesOf([], 1))))).toEqual([]);
  });

  it('reads a file by its own keys: a key it lacks is absent, one it has beyond the reader’s is kept', async () => {
    const older = `${JSON.stringify({ format: 'test-rows', version: 2, keys: ['n', 's', 'later'] })}\n[1,"a","x"]\n[2,"b"]\n`;
    const read = await readValues<Record<string, unknown>>(older);
    expect(read).toEqual([
      { n: 1, s: 'a', later: 'x' },
      { n: 2, s: 'b' },
    ]);
    expect('b' in read[0]).toBe(false);
    expect('later' in read[1]).toBe(false);
  });

  it('reads a file without the header as keyed JSON lines, as written before', async () => {
    const keyed = rows.map((r) => `${JSON.stringify(r)}\n`).join('');
    expect(await readValues(keyed)).toEqual(rows);
    const partial = '{"s":"a"}\n\n{"n":2,"extra":true}';
    expect(await readValues(partial)).toEqual([{ s: 'a' }, { n: 2, extra: true }]);
  });

  it('refuses a version it does not know and a line that is not an array, naming the file', async () => {
    await expect(readValues(`${JSON.stringify({ ...HEADER, version: 3 })}\n["a"]\n`)).rejects.toThrow(
      /test\.jsonl: test-rows version 3/,
    );
    await expect(readValues(`${JSON.stringify(HEADER)}\n["a"]\n{"s":"b"}\n`)).rejects.toThrow(
      'test.jsonl: line 3 is not an array of values',
    );
    await expect(readValues(`${JSON.stringify({ format: 'test-rows', version: 2 })}\n`)).rejects.toThrow(
      'test.jsonl: the test-rows header has no list of keys',
    );
  });

  it('keeps every value of a schedule, Entra or Azure (the same row type and values)', async () => {
    expect(AZURE_ASSIGNMENT_TABLE.keys).toEqual(ASSIGNMENT_TABLE.keys);
    expect(SCHEDULES.keys).toEqual(ASSIGNMENT_TABLE.keys);
    const row: AssignmentRow = {
      state: 'Active',
      principalDisplayName: 'Zoë "Z" 山田\nsecond line',
      principalName: 'zoe@contoso.com',
      memberType: 'Group',
      start: '2026-11-01T00:00:00.123Z',
      end: null,
      principalType: 'User',
      principalId: 'p1',
      viaGroup: 'Admins',
      viaGroupId: 'g1',
      roleId: 'r1',
      roleName: 'Global Administrator',
      scopeId: '/',
      assignmentType: 'Assigned',
      privileged: true,
      outsidePim: false,
      created: null,
      scheduleId: 's1',
    };
    expect(Object.keys(row).sort()).toEqual([...SCHEDULES.keys].sort());
    const body = Buffer.from(await text(valueLinesBody(SCHEDULES, batchesOf([row], 1))), 'utf8');
    const read: AssignmentRow[] = [];
    for await (const batch of valueLineBatches<AssignmentRow>(Readable.from([body]), SCHEDULES, 's'))
      read.push(...batch);
    expect(read).toEqual([row]);
  });
});
