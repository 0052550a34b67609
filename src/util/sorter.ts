/**
 * Sorting without holding a tenant in memory: rows are kept in memory up to a bound, then spilled
 * as sorted runs of JSON lines to a temporary folder and merged back in order. The CSVs want
 * their rows sorted (docs/files.md) and memory must not grow with the tenant (docs/guarantees.md,
 * "Bounded memory"); this gives both.
 *
 * Cheap per row: adding is a push (a run is written in the background while the next fills, at most
 * one at a time), runs are written and read back in large blocks, and the merge awaits only when a
 * run's block is used up, never per row. Memory is two runs' worth of rows plus a fixed read budget
 * shared by the runs, whatever the number of runs.
 */
import { open, mkdtemp, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { awaitedLater, settled } from './promises';

export interface SorterOptions<T = unknown> {
  /** Items kept in memory before a run is spilled to disk. */
  runSize?: number;
  /** Folder for the runs; the OS temp folder by default (Functions: the instance's local disk). */
  directory?: string;
  /** A compact JSON form for the runs (e.g. values without their keys); items as they are by default. */
  codec?: SorterCodec<T>;
}

export interface SorterCodec<T> {
  encode(item: T): unknown;
  decode(data: unknown): T;
}

/** Bytes of run files read at once, shared by all runs of a merge (each gets 64 to 512 KiB). */
const READ_BUDGET = 2 * 1024 * 1024;
const MIN_BLOCK = 64 * 1024;
const MAX_BLOCK = 512 * 1024;
/** Items per line of a run file: one JSON array each, one stringify and one parse per line. */
const LINE_ITEMS = 100;
/** Bytes of lines written to a run file at once. */
const WRITE_BYTES = 1024 * 1024;
const DONE: Promise<void> = Promise.resolve();

export class ExternalSorter<T> {
  private buffer: T[] = [];
  private runs: string[] = [];
  private folder?: string;
  private readonly runSize: number;
  private count = 0;
  /** The run being written in the background, if any. */
  private writing?: Promise<void>;
  private sortedUpTo = 0;

  constructor(
    private readonly compare: (a: T, b: T) => number,
    private readonly options: SorterOptions<T> = {},
  ) {
    this.runSize = options.runSize ?? 20_000;
  }

  get size(): number {
    return this.count;
  }

  /** Resolves at once unless a run must be written first (then it waits for the previous one). */
  add(item: T): Promise<void> {
    this.buffer.push(item);
    this.count++;
    this.sortedUpTo = 0;
    return this.buffer.length >= this.runSize ? this.spill() : DONE;
  }

  /** Adds many items: one await for a page of rows instead of one per row. */
  addAll(items: Iterable<T>): Promise<void> {
    for (const item of items) {
      this.buffer.push(item);
      this.count++;
    }
    this.sortedUpTo = 0;
    return this.buffer.length >= this.runSize ? this.spill() : DONE;
  }

  /** Every item added, in order. Can be read more than once; call `dispose` when done. */
  async *sorted(): AsyncGenerator<T> {
    for await (const batch of this.sortedBatches()) yield* batch;
  }

  /**
   * The same order in arrays of up to `size` items: a consumer that awaits once per batch instead of
   * once per item (CSV writing, a snapshot upload) saves most of the per-row cost of an async loop.
   * A quarter of a thousand: a batch's rows are alive until its consumer is done with them, and the
   * fewer rows are alive, the less the young generation's collections copy (no wall time gained that
   * the bench could tell from its noise: docs/performance.md).
   */
  async *sortedBatches(size = 250): AsyncGenerator<T[]> {
    await this.writing;
    if (this.sortedUpTo !== this.buffer.length) {
      this.buffer.sort(this.compare);
      this.sortedUpTo = this.buffer.length;
    }
    if (this.runs.length === 0) {
      for (let i = 0; i < this.buffer.length; i += size) yield this.buffer.slice(i, i + size);
      return;
    }
    const block = Math.min(MAX_BLOCK, Math.max(MIN_BLOCK, Math.floor(READ_BUDGET / (this.runs.length + 1))));
    const cursors: Cursor<T>[] = [];
    try {
      for (const file of this.runs) cursors.push(await Cursor.open<T>(file, block, this.options.codec));
      cursors.push(Cursor.of(this.buffer));
      // k-way merge on a binary heap of cursors, ordered by each cursor's current item.
      const heap = new CursorHeap<T>(this.compare);
      for (const cursor of cursors) if (await cursor.ready()) heap.push(cursor);
      let batch: T[] = [];
      while (heap.size > 0) {
        const top = heap.peek();
        batch.push(top.take());
        // Awaits only when the cursor's block is used up: once per block, not per row.
        if (top.hasItem() || (await top.ready())) heap.fixTop();
        else heap.pop();
        if (batch.length >= size) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length > 0) yield batch;
    } finally {
      await Promise.all(cursors.map((c) => c.close()));
    }
  }

  async dispose(): Promise<void> {
    await settled(this.writing); // its failure was reported to the caller that saw it
    this.buffer = [];
    if (this.folder) await rm(this.folder, { recursive: true, force: true });
    this.folder = undefined;
    this.runs = [];
  }

  /**
   * Hands the full buffer to a background write and starts a new one. Waits only for the previous
   * write (so at most two runs are in memory) and surfaces its failure.
   */
  private async spill(): Promise<void> {
    const previous = this.writing;
    if (previous) await previous;
    if (this.buffer.length < this.runSize) return; // another caller spilled while we waited
    const items = this.buffer;
    this.buffer = [];
    this.sortedUpTo = 0;
    const file = this.nextRunFile();
    // A failure is reported to the next add, sorted or dispose.
    this.writing = awaitedLater(this.writeRun(items, file));
  }

  private nextRunFile(): string {
    const index = this.runs.length;
    this.runs.push('');
    return String(index);
  }

  private async writeRun(items: T[], index: string): Promise<void> {
    items.sort(this.compare);
    this.folder ??= await mkdtemp(join(this.options.directory ?? tmpdir(), 'pim-sort-'));
    const file = join(this.folder, `run-${index}.jsonl`);
    const handle = await open(file, 'w');
    const encode = this.options.codec?.encode;
    try {
      // Lines gathered into writes of about 1 MiB: one write (and one await) per line cost more CPU
      // than the encoding itself (a run of 10,000 rows is about 3.5 MB). Each line is a Buffer of its
      // own (outside the heap) rather than part of a 1 MiB string, which V8 would keep in its old
      // generation until a full collection.
      let chunks: Buffer[] = [];
      let bytes = 0;
      for (let i = 0; i < items.length; i += LINE_ITEMS) {
        const end = Math.min(items.length, i + LINE_ITEMS);
        const line: unknown[] = new Array(end - i);
        for (let j = i; j < end; j++) line[j - i] = encode ? encode(items[j]) : items[j];
        const chunk = Buffer.from(`${JSON.stringify(line)}\n`);
        chunks.push(chunk);
        bytes += chunk.length;
        if (bytes >= WRITE_BYTES) {
          await writeAll(handle, chunks, bytes);
          chunks = [];
          bytes = 0;
        }
      }
      if (chunks.length > 0) await writeAll(handle, chunks, bytes);
    } finally {
      await handle.close();
    }
    this.runs[Number(index)] = file;
  }
}

/** Writes every byte of `chunks` (writev may write fewer than asked). */
async function writeAll(handle: FileHandle, chunks: Buffer[], bytes: number): Promise<void> {
  const { bytesWritten } = await handle.writev(chunks);
  if (bytesWritten === bytes) return;
  let rest = Buffer.concat(chunks).subarray(bytesWritten);
  while (rest.length > 0) rest = rest.subarray((await handle.write(rest)).bytesWritten);
}

/**
 * A sorted source of items: a run file read a block at a time, or the in-memory buffer. A block's
 * lines are parsed one at a time as the merge reaches them, not all at once: the items parsed but
 * not yet merged are what the young generation's collections copy, and a block's worth for each
 * run (some 1,500 rows each) cost more in copying than in parsing.
 */
class Cursor<T> {
  private items: T[] = [];
  private index = 0;
  /** The complete lines of the block read last, and how far they have been parsed. */
  private text = '';
  private parsed = 0;
  /** Bytes read but not yet parsed (a line cut off at the end of a block) sit at the start. */
  private filled = 0;
  private done = false;

  private constructor(
    private readonly handle: FileHandle | undefined,
    private block: Buffer,
    private readonly codec?: SorterCodec<T>,
  ) {}

  static async open<T>(file: string, blockSize: number, codec?: SorterCodec<T>): Promise<Cursor<T>> {
    return new Cursor<T>(await open(file, 'r'), Buffer.allocUnsafe(blockSize), codec);
  }

  static of<T>(items: T[]): Cursor<T> {
    const cursor = new Cursor<T>(undefined, Buffer.alloc(0));
    cursor.items = items;
    cursor.done = true;
    return cursor;
  }

  /** True when an item is at hand, parsing the block's next line if need be (never reads the file). */
  hasItem(): boolean {
    return this.index < this.items.length || this.parseLine();
  }

  current(): T {
    return this.items[this.index];
  }

  take(): T {
    return this.items[this.index++];
  }

  /** True when an item is available, reading the next block if needed; false at the end. */
  async ready(): Promise<boolean> {
    while (!this.hasItem()) {
      if (this.done) return false;
      await this.readBlock();
    }
    return true;
  }

  /**
   * The next non-empty line of the block as the current items; false when the block has none left.
   * JSON.stringify escapes line breaks, so a bare \n only ever ends a line (of up to LINE_ITEMS items).
   */
  private parseLine(): boolean {
    const text = this.text;
    while (this.parsed < text.length) {
      const start = this.parsed;
      let nl = text.indexOf('\n', start);
      if (nl === -1) nl = text.length;
      this.parsed = nl + 1;
      if (nl === start) continue;
      const data = JSON.parse(text.slice(start, nl)) as unknown[];
      if (data.length === 0) continue; // never written (a line holds 1 to LINE_ITEMS items), but no item either
      const decode = this.codec?.decode;
      this.items = decode ? data.map((d) => decode(d)) : (data as T[]);
      this.index = 0;
      return true;
    }
    this.text = '';
    this.parsed = 0;
    return false;
  }

  /** Reads a block and keeps its complete lines. Lines are cut on the byte 0x0A, which never occurs inside a UTF-8 sequence. */
  private async readBlock(): Promise<void> {
    if (this.filled === this.block.length) {
      // A line longer than the block: grow it.
      const bigger = Buffer.allocUnsafe(this.block.length * 2);
      this.block.copy(bigger, 0, 0, this.filled);
      this.block = bigger;
    }
    const { bytesRead } = await this.handle!.read(this.block, this.filled, this.block.length - this.filled, null);
    const end = this.filled + bytesRead;
    if (bytesRead === 0) this.done = true;
    const cut = bytesRead === 0 ? end : this.block.lastIndexOf(0x0a, end - 1) + 1;
    this.text = cut > 0 ? this.block.toString('utf8', 0, cut) : '';
    this.parsed = 0;
    this.block.copy(this.block, 0, cut, end);
    this.filled = end - cut;
  }

  async close(): Promise<void> {
    await this.handle?.close();
  }
}

/** A binary min-heap of cursors by their current item; ties go to the earlier run (a stable merge). */
class CursorHeap<T> {
  private readonly heap: Array<{ cursor: Cursor<T>; order: number }> = [];
  private pushed = 0;

  constructor(private readonly compare: (a: T, b: T) => number) {}

  get size(): number {
    return this.heap.length;
  }

  peek(): Cursor<T> {
    return this.heap[0].cursor;
  }

  push(cursor: Cursor<T>): void {
    this.heap.push({ cursor, order: this.pushed++ });
    let i = this.heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): void {
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.fixTop();
    }
  }

  /** Restores the heap after the top cursor moved on to its next item. */
  fixTop(): void {
    const n = this.heap.length;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) return;
      const right = left + 1;
      const child = right < n && this.less(right, left) ? right : left;
      if (!this.less(child, i)) return;
      this.swap(i, child);
      i = child;
    }
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a];
    const y = this.heap[b];
    const c = this.compare(x.cursor.current(), y.cursor.current());
    return c < 0 || (c === 0 && x.order < y.order);
  }

  private swap(a: number, b: number): void {
    const t = this.heap[a];
    this.heap[a] = this.heap[b];
    this.heap[b] = t;
  }
}
