import { buffer, text } from 'node:stream/consumers';
import { ASSIGNMENT_COLUMNS, csvStream, csvTime, neutralise, sha256 } from '../../src/report/csv';
import { jsonArrayStream } from '../../src/report/json';
import { ExternalSorter } from '../../src/util/sorter';

describe('CSV writing', () => {
  it('writes BOM, CRLF, RFC 4180 quoting and neutralised formulas, and reports facts', async () => {
    const rows = [
      ['=cmd|\' /C calc\'!A0', '+SUM(1)', '-1', '@x', '\tTab', 'a,b', 'say "hi"', 'line\nbreak', 'cr\rhere', 'plain'],
    ];
    const columns = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9', 'c10'];
    const { stream, facts } = csvStream(columns, rows);
    const bytes = await buffer(stream);
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const body = bytes.toString('utf8');
    expect(body).toBe(
      '\ufeffc1,c2,c3,c4,c5,c6,c7,c8,c9,c10\r\n' +
        `'=cmd|' /C calc'!A0,'+SUM(1),'-1,'@x,'\tTab,"a,b","say ""hi""","line\nbreak","cr\rhere",plain\r\n`,
    );
    const f = facts();
    expect(f.rows).toBe(1);
    expect(f.bytes).toBe(bytes.length);
    expect(f.sha256).toBe(sha256(bytes));
  });

  it('has the admin center export header first', () => {
    expect(ASSIGNMENT_COLUMNS.slice(0, 7)).toEqual([
      'Assignment State',
      'User Group Name',
      'Role Name',
      'PrincipalName',
      'Member Type',
      'Assignment Start Time (UTC)',
      'Assignment End Time (UTC)',
    ]);
    expect(ASSIGNMENT_COLUMNS).toHaveLength(20);
  });

  it('formats times for Excel and neutralises only formula starts', () => {
    expect(csvTime('2024-04-12T15:01:02.123Z')).toBe('2024-04-12 15:01:02');
    expect(csvTime(null)).toBe('');
    expect(neutralise('\rx')).toBe("'\rx");
    expect(neutralise('Ann = Bob')).toBe('Ann = Bob');
  });

  it('streams JSON arrays keyed by column', async () => {
    const { stream, rows } = jsonArrayStream(['A', 'B'], (async function* () {
      yield ['1', '=2'];
      yield ['3', '4'];
    })());
    expect(JSON.parse(await text(stream))).toEqual([{ A: '1', B: '=2' }, { A: '3', B: '4' }]);
    expect(rows()).toBe(2);
    expect(JSON.parse(await text(jsonArrayStream(['A'], (async function* () {})()).stream))).toEqual([]);
  });
});

describe('ExternalSorter', () => {
  it('sorts across spilled runs and cleans up', async () => {
    const sorter = new ExternalSorter<{ n: number }>((a, b) => a.n - b.n, { runSize: 7 });
    const numbers = Array.from({ length: 100 }, (_, i) => (i * 37) % 101);
    for (const n of numbers) await sorter.add({ n });
    const out: number[] = [];
    for await (const item of sorter.sorted()) out.push(item.n);
    expect(out).toEqual([...numbers].sort((a, b) => a - b));
    const again: number[] = [];
    for await (const item of sorter.sorted()) again.push(item.n);
    expect(again).toEqual(out);
    await sorter.dispose();
  });
});
