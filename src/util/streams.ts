/** Small helpers for async iterables and byte streams, shared by the report writers and the jobs. */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';

export async function* map<T, U>(items: AsyncIterable<T>, f: (item: T) => U): AsyncGenerator<U> {
  for await (const item of items) yield f(item);
}

/** Items in arrays of up to `size`: a consumer that awaits once per batch instead of once per item. */
export async function* batchesOf<T>(items: AsyncIterable<T> | Iterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const item of items) {
    batch.push(item);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** What passed through a `measuring` stream: its length and SHA-256 (hex), final once it has ended. */
export interface ByteFacts {
  bytes: number;
  sha256: string;
}

/**
 * A pass-through that counts and hashes the bytes on their way, so a file's facts are known the
 * moment its upload ends, without reading it back.
 */
export function measuring(): { stream: Transform; facts: () => ByteFacts } {
  const hash = createHash('sha256');
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  let digest: string | undefined;
  // The digest can be taken only once: facts() is final once the stream has ended.
  return { stream, facts: () => ({ bytes, sha256: (digest ??= hash.digest('hex')) }) };
}

/** SHA-256 (hex) of any bytes: files written whole (digest, JSON). */
export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Length and SHA-256 of bytes read as a stream (a stored file checked against its manifest). */
export async function byteFactsOf(data: AsyncIterable<Buffer | string>): Promise<ByteFacts> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const piece of data) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Each batch of `batches`, handed on once `see` has seen it: two consumers of one pass, the second in step. */
export async function* tapped<T>(
  batches: AsyncIterable<T[]>,
  see: (batch: T[]) => Promise<void> | void,
): AsyncGenerator<T[]> {
  for await (const batch of batches) {
    await see(batch);
    yield batch;
  }
}

/** Each item of `items` until `signal` aborts: the reader then fails with the abort's reason (an upload commits nothing). */
export async function* abortable<T>(items: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  for await (const item of items) {
    signal.throwIfAborted();
    yield item;
  }
}
