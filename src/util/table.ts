/**
 * A field table: one list per row type that says, for each column of its CSV, which value of the
 * row it shows and how. Everything that used to repeat the field list by hand follows from it: the
 * header, a row's cells, the compact form of the external sorter's run files, and reading a row
 * back from a file the app wrote. A new dataset is a row type and its table (see src/pim/model.ts).
 */
import type { SorterCodec } from './sorter';

/** How one value of a row is written into a cell, and read back from one. */
export interface CellFormat<V> {
  write(value: V): string;
  read(cell: string): V;
}

/** `2024-04-12 15:01:02` (UTC, seconds): Excel reads it as a date; blank when unknown. */
export function csvTime(iso: string | null | undefined): string {
  if (!iso) return '';
  return iso.slice(0, 19).replace('T', ' ');
}

/** The ISO time of a `csvTime` cell (its milliseconds are lost in the file). */
function isoOfCsvTime(cell: string): string {
  return `${cell.replace(' ', 'T')}.000Z`;
}

export const text: CellFormat<string> = { write: (value) => value, read: (cell) => cell };

/**
 * A string of a closed set (`'Eligible' | 'Active'`), written as it is. Read back as written and
 * not checked: only the app's own files are read.
 */
export function textOf<V extends string>(): CellFormat<V> {
  return text as CellFormat<string> as CellFormat<V>;
}

/** A time that may be unknown (null): a blank cell. */
export const utcTime: CellFormat<string | null> = {
  write: csvTime,
  read: (cell) => (cell ? isoOfCsvTime(cell) : null),
};

/** A time every row has. */
export const requiredUtcTime: CellFormat<string> = { write: csvTime, read: (cell) => (cell ? isoOfCsvTime(cell) : '') };

export const yesNo: CellFormat<boolean> = { write: (value) => (value ? 'Yes' : 'No'), read: (cell) => cell === 'Yes' };

/** Yes, No, or blank when unknown (a rule Graph did not return). */
export const optionalYesNo: CellFormat<boolean | null> = {
  write: (value) => (value === null ? '' : value ? 'Yes' : 'No'),
  read: (cell) => (cell === '' ? null : cell === 'Yes'),
};

/** A plain number (`0.5`, `8`, `365`), blank when unknown or not applicable. */
export const optionalNumber: CellFormat<number | null> = {
  write: (value) => (value === null ? '' : String(value)),
  read: (cell) => (cell === '' ? null : Number(cell)),
};

/** A value of the row in a column of its own: kept in the sorter's runs and read back from files. */
export type StoredField<Row> = {
  [K in keyof Row]-?: { key: K; column: string; format: CellFormat<Row[K]> };
}[keyof Row];

/**
 * A column worked out from the row (and a view of the run, such as administrative-unit names): not
 * a value of its own, so neither kept in the sorter's runs nor read back.
 */
export interface DerivedField<Row, View> {
  column: string;
  cell: (row: Row, view: View) => string;
}

export type Field<Row, View> = StoredField<Row> | DerivedField<Row, View>;

type KeyOf<F> = F extends { key: infer K } ? K : never;

export class RowTable<Row, View = undefined> {
  /** The CSV header, in order. */
  readonly columns: readonly string[];
  /** The row as an array of its values in the sorter's run files: a third of the bytes of keyed JSON. */
  readonly codec: SorterCodec<Row>;
  /** The row's own values (the stored fields' keys), in column order: the codec's array order. */
  readonly keys: readonly (keyof Row & string)[];
  private readonly stored: readonly StoredField<Row>[];
  private readonly cells: ReadonlyArray<(row: Row, view: View) => string>;

  constructor(readonly fields: readonly Field<Row, View>[]) {
    this.columns = fields.map((f) => f.column);
    const duplicate = this.columns.find((c, i) => this.columns.indexOf(c) !== i);
    if (duplicate !== undefined) throw new Error(`field table: column "${duplicate}" appears twice`);
    this.stored = fields.filter((f): f is StoredField<Row> => 'key' in f);
    const keys = this.stored.map((f) => f.key as keyof Row & string);
    this.keys = keys;
    const twice = keys.find((k, i) => keys.indexOf(k) !== i);
    if (twice !== undefined) throw new Error(`field table: value "${String(twice)}" appears twice`);
    this.cells = fields.map((f) => {
      if ('key' in f) {
        const { key, format } = f as { key: keyof Row; format: CellFormat<Row[keyof Row]> };
        return (row: Row) => format.write(row[key]);
      }
      return f.cell;
    });
    // Every decoded row starts as a copy of one object with all the keys, in order: V8 copies its
    // shape at once instead of growing a new object key by key (about twice as fast per row).
    const blank = Object.fromEntries(keys.map((key) => [key, undefined])) as Record<keyof Row, unknown>;
    this.codec = {
      encode: (row) => {
        const values: unknown[] = new Array(keys.length);
        for (let i = 0; i < keys.length; i++) values[i] = row[keys[i]];
        return values;
      },
      decode: (data) => {
        const values = data as unknown[];
        const row = { ...blank };
        for (let i = 0; i < keys.length; i++) row[keys[i]] = values[i];
        return row as Row;
      },
    };
  }

  /** A row's cells in column order, raw: the CSV writer neutralises them, JSON keeps them as they are. */
  values(row: Row, view: View): string[] {
    const out: string[] = new Array(this.cells.length);
    for (let i = 0; i < this.cells.length; i++) out[i] = this.cells[i](row, view);
    return out;
  }

  /**
   * Rows from the cells of a file with this `header` (the file's own, so columns found by name):
   * each stored value read back from its column; a column the file lacks reads as a blank cell.
   */
  reader(header: readonly string[]): (cells: readonly string[]) => Row {
    const places = this.stored.map((f) => ({
      key: f.key,
      format: f.format as CellFormat<unknown>,
      at: header.indexOf(f.column),
    }));
    return (cells) => {
      const row = {} as Record<keyof Row, unknown>;
      for (const { key, format, at } of places) row[key] = format.read(at < 0 ? '' : (cells[at] ?? ''));
      return row as Row;
    };
  }
}

/**
 * `rowTable<Row, View>()([...fields])`: a table that must give every value of `Row` a column; one
 * it leaves out is a compile error naming it (a new value of a row type cannot be forgotten).
 */
export function rowTable<Row, View = undefined>() {
  return <const F extends readonly Field<Row, View>[]>(
    fields: F &
      ([Exclude<keyof Row, KeyOf<F[number]>>] extends [never]
        ? unknown
        : { missingValues: Exclude<keyof Row, KeyOf<F[number]>> }),
  ): RowTable<Row, View> => new RowTable<Row, View>(fields);
}
