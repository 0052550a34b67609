import { buffer, text } from 'node:stream/consumers';
import { ACTIVATION_TABLE, ASSIGNMENT_TABLE, type ActivationRow, type AssignmentRow } from '../../src/pim/model';
import {
  ACTIVATION_COLUMNS,
  ASSIGNMENT_COLUMNS,
  activationValues,
  assignmentValues,
  csvRecordBatches,
  csvRows,
  csvStream,
  csvTime,
  neutralise,
  sha256,
  unneutralise,
} from '../../src/report/csv';
import { stringify } from 'csv-stringify/sync';
import { jsonArrayStream } from '../../src/report/json';
import { ExternalSorter } from '../../src/util/sorter';

describe('CSV writing', () => {
  it('writes BOM, CRLF, RFC 4180 quoting and neutralised formulas, and reports facts', async () => {
    const rows = [
      ["=cmd|' /C calc'!A0", '+SUM(1)', '-1', '@x', '\tTab', 'a,b', 'say "hi"', 'line\nbreak', 'cr\rhere', 'plain'],
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

  it('writes each record exactly as csv-stringify does, plain records among quoted ones', async () => {
    // Records whose cells need no quoting are joined without csv-stringify: the bytes must not differ.
    const cells = [
      'plain',
      '',
      ' lead',
      'a,b',
      'say "hi"',
      'line\nbreak',
      'cr\rhere',
      'crlf\r\nx',
      '=1+1',
      '＝1',
      '\u00a0@x',
      'Zoë 山田',
      "'quoted",
      'end"',
    ];
    const rows: string[][] = [];
    for (let i = 0; i < cells.length; i++)
      rows.push([cells[i], 'x', cells[(i + 3) % cells.length]], ['a', 'b', 'c'], [cells[i]]);
    const columns = ['c1', 'c2', 'c3'];
    const expected =
      stringify([columns], { bom: true, record_delimiter: 'windows', quoted_match: /[\r\n]/ }) +
      stringify(rows, { record_delimiter: 'windows', quoted_match: /[\r\n]/, cast: { string: neutralise } });
    expect((await buffer(csvStream(columns, rows).stream)).toString('utf8')).toBe(expected);
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

  // Unicode forms a spreadsheet may fold to = + - @, and white space it may trim on import.
  const disguised = [
    '＝1+1',
    '＋SUM(1)',
    '－1',
    '＠x',
    ' =cmd|x',
    '\u00a0=1+1',
    '\u3000+1',
    ' \u00a0 ＝HYPERLINK(1)',
    '\ufeff=1',
  ];

  it('neutralises formulas in full-width forms or behind leading white space, keeping the value', () => {
    for (const cell of disguised) expect(neutralise(cell)).toBe(`'${cell}`);
    for (const cell of ['Ann = Bob', '山田 = 1', 'ｘ=1', ' plain', '\u00a0Zoë', "'quoted", '1-2', ''])
      expect(neutralise(cell)).toBe(cell);
    for (const cell of [...disguised, '=1', '\tTab', 'Ann = Bob', ' plain'])
      expect(unneutralise(neutralise(cell))).toBe(cell);
  });

  // A value that already starts with the mark: read back, it must not lose its own `'`.
  const marked = ["'=1+1", "''+x", "'＝1", "'", "''", "'quoted", "'-"];

  it("marks a value that itself starts with ' before a formula, so it reads back as it was", async () => {
    expect(neutralise("'=1+1")).toBe("''=1+1");
    expect(neutralise("''+x")).toBe("'''+x");
    for (const cell of ["'", "''", "'quoted", "'1-2"]) expect(neutralise(cell)).toBe(cell);
    for (const cell of [...marked, ...disguised]) expect(unneutralise(neutralise(cell))).toBe(cell);
    // The same through the CSV the app writes and reads back (the export of an archived month).
    const file = await buffer(
      csvStream(
        ['c'],
        [...marked, ...disguised].map((cell) => [cell]),
      ).stream,
    );
    const read: string[] = [];
    for await (const batch of csvRecordBatches([file])) for (const record of batch) read.push(unneutralise(record[0]));
    expect(read).toEqual(['c', ...marked, ...disguised]);
  });

  it('writes disguised formulas neutralised in the CSV', async () => {
    const body = (
      await buffer(
        csvStream(
          ['c'],
          disguised.map((d) => [d]),
        ).stream,
      )
    ).toString('utf8');
    expect(body).toBe(`\ufeffc\r\n${disguised.map((d) => `'${d}\r\n`).join('')}`);
  });

  it('streams JSON arrays keyed by column', async () => {
    const { stream, rows } = jsonArrayStream(
      ['A', 'B'],
      (async function* () {
        yield ['1', '=2'];
        yield ['3', '4'];
      })(),
    );
    expect(JSON.parse(await text(stream))).toEqual([
      { A: '1', B: '=2' },
      { A: '3', B: '4' },
    ]);
    expect(rows()).toBe(2);
    expect(JSON.parse(await text(jsonArrayStream(['A'], (async function* () {})()).stream))).toEqual([]);
  });
});

describe('field tables', () => {
  const activation: ActivationRow = {
    activated: '2026-11-03T08:15:00.000Z',
    principalDisplayName: "=cmd|' /C calc'!A0",
    principalName: 'ann@contoso.com',
    principalId: 'p-1',
    roleName: 'Global Administrator, "GA"',
    roleId: 'r-1',
    scopeId: '/',
    start: '2026-11-03T08:15:00.000Z',
    end: null,
    justification: 'Two\r\nlines, ＝1+1',
    ticketNumber: '-42',
    ticketSystem: '\u00a0@SN',
    requestId: 'q-1',
    auditId: 'a-1',
    activationType: 'Role',
    groupName: '',
    groupId: '',
    groupRoles: '',
    approvedBy: '',
    approved: null,
    groupAccess: '',
  };

  it("reads back what it writes, by the file's own header", async () => {
    const rows = [activation, { ...activation, auditId: 'a-2', justification: '', start: null }];
    const bytes = await buffer(csvStream(ACTIVATION_COLUMNS, rows.map(activationValues)).stream);
    const back: ActivationRow[] = [];
    for await (const batch of csvRows(ACTIVATION_TABLE, [bytes.subarray(0, 100), bytes.subarray(100)]))
      back.push(...batch);
    expect(back).toEqual(rows);
    // Columns in another order (an older file) are found by name; a column the file lacks reads blank.
    const read = ACTIVATION_TABLE.reader(['Audit Id', 'Activated (UTC)']);
    expect(read(['a-9', '2026-11-03 08:15:00'])).toMatchObject({
      auditId: 'a-9',
      activated: '2026-11-03T08:15:00.000Z',
      justification: '',
      end: null,
    });
  });

  it('gives the assignment columns, derived cells and a codec that keeps every value', () => {
    const row: AssignmentRow = {
      state: 'Active',
      principalDisplayName: 'Ann',
      principalName: 'ann@contoso.com',
      memberType: 'Group',
      start: '2026-01-01T00:00:00.000Z',
      end: null,
      principalType: 'User',
      principalId: 'p-1',
      viaGroup: 'Admins',
      viaGroupId: 'g-1',
      roleId: 'r-1',
      roleName: 'Global Administrator',
      scopeId: '/administrativeUnits/au-1',
      assignmentType: 'Assigned',
      privileged: true,
      outsidePim: false,
      created: null,
      scheduleId: 's-1',
    };
    const values = assignmentValues(row, (id) => (id === '/administrativeUnits/au-1' ? 'Paris' : id));
    expect(Object.fromEntries(ASSIGNMENT_COLUMNS.map((c, i) => [c, values[i]]))).toMatchObject({
      Scope: 'Paris',
      'Scope Id': '/administrativeUnits/au-1',
      Permanent: 'Yes',
      Privileged: 'Yes',
      'Outside PIM': 'No',
      'Assignment Start Time (UTC)': '2026-01-01 00:00:00',
      'Assignment End Time (UTC)': '',
      'Created (UTC)': '',
    });
    expect(ASSIGNMENT_TABLE.codec.decode(JSON.parse(JSON.stringify(ASSIGNMENT_TABLE.codec.encode(row))))).toEqual(row);
    expect(
      ACTIVATION_TABLE.codec.decode(JSON.parse(JSON.stringify(ACTIVATION_TABLE.codec.encode(activation)))),
    ).toEqual(activation);
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
