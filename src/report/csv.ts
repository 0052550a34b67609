/**
 * Rows to CSV bytes (SPEC 4.1 to 4.3): UTF-8 with BOM, CRLF, RFC 4180 quoting, UTC times that
 * Excel reads as dates, and no cell a spreadsheet would run as a formula.
 */
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { stringify } from 'csv-stringify';
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
  return /^[=+\-@\t\r]/.test(cell) ? `'${cell}` : cell;
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

/**
 * A CSV byte stream from rows of values (neutralised here, SPEC 4.3), counting rows and hashing bytes as they pass, so the
 * manifest is known the moment the upload ends without reading the file back.
 */
export function csvStream(
  columns: readonly string[],
  rows: AsyncIterable<string[]> | Iterable<string[]>,
): { stream: Readable; facts: () => FileFacts; rows: () => number } {
  const hash = createHash('sha256');
  let count = 0;
  let bytes = 0;
  const stringifier = stringify({
    bom: true,
    header: true,
    columns: [...columns],
    record_delimiter: 'windows',
    // csv-stringify leaves a lone CR or LF unquoted; RFC 4180 readers need them quoted.
    quoted_match: /[\r\n]/,
  });
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const source = Readable.from(
    (async function* () {
      for await (const cells of rows) {
        count++;
        yield cells.map(neutralise);
      }
    })(),
  );
  source.on('error', (e) => counter.destroy(e));
  stringifier.on('error', (e) => counter.destroy(e));
  source.pipe(stringifier).pipe(counter);
  let digest: string | undefined;
  // facts() is final once the stream has ended: the digest can be taken only once.
  return { stream: counter, rows: () => count, facts: () => ({ rows: count, bytes, sha256: (digest ??= hash.digest('hex')) }) };
}

/** Hash of any bytes, for files written whole (digest, JSON). */
export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Facts of a CSV already written (a re-run completing a half-written archive): records are
 * counted with quotes honoured, since a quoted cell may hold a line break.
 */
export function csvFacts(data: Buffer): FileFacts {
  let records = 0;
  let quoted = false;
  let nonEmpty = false;
  for (let i = 0; i < data.length; i++) {
    const byte = data[i];
    if (byte === 0x22) quoted = !quoted;
    else if (byte === 0x0a && !quoted) {
      if (nonEmpty) records++;
      nonEmpty = false;
      continue;
    }
    if (byte !== 0x0d && byte !== 0x0a) nonEmpty = true;
  }
  if (nonEmpty) records++;
  return { rows: Math.max(0, records - 1), bytes: data.length, sha256: sha256(data) };
}

/** Undoes `neutralise`, for values read back from our own CSVs. */
export function unneutralise(cell: string): string {
  return /^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell;
}

/** RFC 4180 records of our own CSV files (BOM, CRLF, quoted cells with line breaks). */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let cell = '';
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      record.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      // end of record on CRLF; a lone CR outside quotes is data
    } else if (ch === '\n') {
      record.push(cell);
      records.push(record);
      record = [];
      cell = '';
    } else cell += ch;
  }
  if (cell !== '' || record.length > 0) {
    record.push(cell);
    records.push(record);
  }
  return records;
}
