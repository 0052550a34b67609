/**
 * Blob Storage for reports and the archive. Block-blob uploads commit only when the last block is
 * in, so a run that fails mid-file leaves no half-written blob that looks final.
 */
import { BlobServiceClient, RestError } from '@azure/storage-blob';
import type { ContainerClient, StoragePipelineOptions, StorageRetryOptions } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/identity';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { StorageSettings } from '../settings';
import { settled } from '../util/promises';

export interface WriteOptions {
  contentType: string;
  /** Create only if absent (archive blobs are written once: docs/guarantees.md, "Idempotent"). */
  onlyIfAbsent?: boolean;
  /** Replace only the version with this ETag (read by this run): a blob changed meanwhile is not overwritten. */
  ifMatch?: string;
}

/** A write conditioned on an ETag found the blob changed (or created) since it was read. */
export class BlobChangedError extends Error {
  constructor(
    readonly container: string,
    readonly blobName: string,
  ) {
    super(
      `${container}/${blobName} was changed by someone else since this run read it (its ETag no longer matches): not overwritten`,
    );
    this.name = 'BlobChangedError';
  }
}

/**
 * Asked before every write and delete (`guardWrites`): `check` throws to stop it, and `signal`
 * aborts the requests of writes in flight. The policy (which lease, when it counts as lost) is the
 * jobs' (src/jobs/lock.ts); the store only applies it.
 */
export interface WriteGuard {
  check(): void;
  signal: AbortSignal;
}

export class BlobAlreadyExistsError extends Error {
  constructor(
    readonly container: string,
    readonly blobName: string,
  ) {
    super(`${container}/${blobName} already exists and is never overwritten`);
    this.name = 'BlobAlreadyExistsError';
  }
}

/**
 * A Blob Storage call that failed: names the store, the operation and the blob, never a key, and
 * keeps what Storage said: its HTTP status (0 when no answer came) and its error code
 * (`AuthorizationFailure`, `LeaseIdMismatchWithBlobOperation`; a network fault's own code such as
 * `ECONNREFUSED`), https://learn.microsoft.com/rest/api/storageservices/blob-service-error-codes
 */
export class BlobStorageError extends Error {
  constructor(
    message: string,
    readonly statusCode = 0,
    readonly code = '',
  ) {
    super(message);
    this.name = 'BlobStorageError';
  }
}

/**
 * Block size and blocks in flight for streamed uploads: 1 MiB x 4 keeps about 5 MiB of a file in
 * memory (4 MiB x 2 kept 10 and more), and a CSV of 100 MB is still only 100 blocks (of 50,000 allowed).
 */
const UPLOAD_BUFFER = 1024 * 1024;
const UPLOAD_CONCURRENCY = 4;
/** A lease's length (Storage allows 15 to 60 s): a holder that dies frees it this soon. Renewed every third of it. */
const LEASE_SECONDS = 15;
/**
 * How long Storage may take over any one write request (each try) before it gives up on it: shorter
 * than the lease, so that a write cannot land long after the lease it started under lapsed. Sent as
 * the `timeout` parameter Storage honours on every operation
 * (https://learn.microsoft.com/rest/api/storageservices/setting-timeouts-for-blob-service-operations).
 * Reads are not limited this way (a large download may take longer, and reads change nothing).
 */
export const WRITE_TRY_TIMEOUT_MS = 10_000;

export interface BlobLease {
  where: string;
  /**
   * True once Storage refused a renewal (another lease is current), or no renewal was sent with
   * success within the lease's length: another run may hold it now. Counted from when each
   * renewal was sent, not answered, so that it is never later than Storage's own expiry.
   */
  lost(): boolean;
  release(): Promise<void>;
}

export class BlobStore {
  private readonly ensured = new Map<string, Promise<unknown>>();
  private readonly guards = new Set<WriteGuard>();
  private readonly writer: BlobServiceClient;

  /** `writer` (the same account) sends the writes, with WRITE_TRY_TIMEOUT_MS; `service` the reads. */
  constructor(
    private readonly service: BlobServiceClient,
    writer?: BlobServiceClient,
  ) {
    this.writer = writer ?? service;
  }

  /** `retryOptions`: the Storage SDK's own retries, its defaults unless given (tests make them short). */
  static fromSettings(
    storage: StorageSettings,
    credential: TokenCredential,
    retryOptions?: StorageRetryOptions,
  ): BlobStore {
    const client = (options?: StoragePipelineOptions) =>
      storage.kind === 'accountUrl'
        ? new BlobServiceClient(storage.accountUrl, credential, options)
        : BlobServiceClient.fromConnectionString(storage.connectionString, options);
    return new BlobStore(
      client({ retryOptions }),
      client({ retryOptions: { ...retryOptions, tryTimeoutInMs: WRITE_TRY_TIMEOUT_MS } }),
    );
  }

  /** Every later write and delete asks `guard` first (until the returned function removes it). */
  guardWrites(guard: WriteGuard): () => void {
    this.guards.add(guard);
    return () => this.guards.delete(guard);
  }

  /** Stops a write a guard refuses; the signal that aborts it if a guard refuses while it runs. */
  private guarded(): AbortSignal | undefined {
    for (const guard of this.guards) guard.check();
    const signals = [...this.guards].map((g) => g.signal);
    return signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
  }

  /** The reason a guard aborted a write in flight (the lease lost), rather than the SDK's AbortError. */
  private abortReason(signal: AbortSignal | undefined): Error | undefined {
    return signal?.aborted ? (signal.reason as Error) : undefined;
  }

  private async writeContainer(name: string): Promise<ContainerClient> {
    await this.container(name);
    return this.writer.getContainerClient(name);
  }

  /** Where blobs go, for progress lines: `http://127.0.0.1:10000/devstoreaccount1/pim-reports`. */
  location(container: string): string {
    return this.service.getContainerClient(container).url;
  }

  private async container(name: string): Promise<ContainerClient> {
    const client = this.service.getContainerClient(name);
    if (!this.ensured.has(name)) {
      const created = client.createIfNotExists();
      this.ensured.set(name, created);
      // A failed attempt is not remembered: the next call tries again.
      created.catch(() => this.ensured.delete(name));
    }
    try {
      await this.ensured.get(name);
    } catch (error) {
      throw this.failure(error, 'creating the container', name);
    }
    return client;
  }

  /** Storage's error as one line that says where and what: `Blob Storage at <url>: writing <blob> failed (HTTP 403 AuthorizationFailure): …`. */
  private failure(error: unknown, action: string, container: string, name?: string): Error {
    // Only Storage's own failures (HTTP or network): an error from the data being written is the caller's.
    if (!(error instanceof RestError || (error as { name?: string } | null)?.name === 'RestError'))
      return error as Error;
    const e = (error ?? {}) as {
      statusCode?: number;
      code?: string;
      message?: string;
      details?: { errorCode?: string };
    };
    const reason = [e.statusCode ? `HTTP ${e.statusCode}` : '', e.details?.errorCode ?? e.code ?? '']
      .filter(Boolean)
      .join(' ');
    const where = `${this.service.url.split('?')[0].replace(/\/+$/, '')}`;
    const detail = String(e.message ?? error).split('\n')[0];
    return new BlobStorageError(
      `Blob Storage at ${where}: ${action} ${container}${name ? `/${name}` : ''} failed${reason ? ` (${reason})` : ''}: ${detail}`,
      e.statusCode ?? 0,
      e.details?.errorCode ?? e.code ?? '',
    );
  }

  async writeStream(container: string, name: string, body: Readable, options: WriteOptions): Promise<void> {
    const abortSignal = this.guarded();
    const blob = (await this.writeContainer(container)).getBlockBlobClient(name);
    try {
      await blob.uploadStream(body, UPLOAD_BUFFER, UPLOAD_CONCURRENCY, {
        blobHTTPHeaders: { blobContentType: options.contentType },
        conditions: writeConditions(options),
        abortSignal,
      });
    } catch (error) {
      // The SDK stops reading the body and rejects without ending it: end it here, and wait until it
      // has, so that what feeds it (a sorter's merge) lets go of its run files before the caller
      // disposes of them.
      body.destroy();
      await finished(body).catch(() => undefined);
      throw this.abortReason(abortSignal) ?? this.writeFailure(error, options, container, name);
    }
  }

  /** Writes the blob whole; returns its new ETag (for a later `ifMatch`). */
  async writeText(
    container: string,
    name: string,
    text: string | Buffer,
    options: WriteOptions,
  ): Promise<string | undefined> {
    const abortSignal = this.guarded();
    const blob = (await this.writeContainer(container)).getBlockBlobClient(name);
    const data = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    try {
      const response = await blob.upload(data, data.length, {
        blobHTTPHeaders: { blobContentType: options.contentType },
        conditions: writeConditions(options),
        abortSignal,
      });
      return response.etag;
    } catch (error) {
      throw this.abortReason(abortSignal) ?? this.writeFailure(error, options, container, name);
    }
  }

  private writeFailure(error: unknown, options: WriteOptions, container: string, name: string): Error {
    if (options.onlyIfAbsent && isConflict(error)) return new BlobAlreadyExistsError(container, name);
    if (options.ifMatch && isConflict(error)) return new BlobChangedError(container, name);
    return this.failure(error, 'writing', container, name);
  }

  /** The blob's text and ETag, or undefined when it does not exist. */
  async readTextAndEtag(container: string, name: string): Promise<{ text: string; etag: string } | undefined> {
    const blob = (await this.container(container)).getBlockBlobClient(name);
    try {
      const response = await blob.download();
      const chunks: Buffer[] = [];
      for await (const chunk of response.readableStreamBody!) chunks.push(Buffer.from(chunk as Buffer));
      return { text: Buffer.concat(chunks).toString('utf8'), etag: response.etag! };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.failure(error, 'reading', container, name);
    }
  }

  /** The blob's ETag, or undefined when it does not exist. */
  async etag(container: string, name: string): Promise<string | undefined> {
    const blob = (await this.container(container)).getBlockBlobClient(name);
    try {
      return (await blob.getProperties()).etag;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.failure(error, 'looking for', container, name);
    }
  }

  /** The blob's bytes, or undefined when it does not exist. */
  async read(container: string, name: string): Promise<Buffer | undefined> {
    const blob = (await this.container(container)).getBlockBlobClient(name);
    try {
      return await blob.downloadToBuffer();
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.failure(error, 'reading', container, name);
    }
  }

  async readText(container: string, name: string): Promise<string | undefined> {
    return (await this.read(container, name))?.toString('utf8');
  }

  /** A download stream, or undefined when the blob does not exist. */
  async readStream(container: string, name: string): Promise<NodeJS.ReadableStream | undefined> {
    const blob = (await this.container(container)).getBlockBlobClient(name);
    try {
      const response = await blob.download();
      return response.readableStreamBody;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.failure(error, 'reading', container, name);
    }
  }

  async exists(container: string, name: string): Promise<boolean> {
    const blob = (await this.container(container)).getBlockBlobClient(name);
    try {
      return await blob.exists();
    } catch (error) {
      throw this.failure(error, 'looking for', container, name);
    }
  }

  async delete(container: string, name: string): Promise<void> {
    const abortSignal = this.guarded();
    const blob = (await this.writeContainer(container)).getBlockBlobClient(name);
    try {
      await blob.deleteIfExists({ abortSignal });
    } catch (error) {
      throw this.abortReason(abortSignal) ?? this.failure(error, 'deleting', container, name);
    }
  }

  /**
   * A lease on `name` (made as an empty blob if absent), renewed in the background until released,
   * with `metadata` (and the lease id, as `lease`) saying who holds it; or, when another holds it,
   * that holder's metadata. A holder that dies lets the lease lapse within LEASE_SECONDS. What a
   * lost lease stops is the caller's to decide (src/jobs/lock.ts).
   */
  async lease(
    container: string,
    name: string,
    metadata: Record<string, string>,
  ): Promise<{ lease?: BlobLease; holder?: Record<string, string> }> {
    this.guarded();
    const blob = (await this.writeContainer(container)).getBlockBlobClient(name);
    try {
      await blob.upload('', 0, { conditions: { ifNoneMatch: '*' } });
    } catch (error) {
      // Already there (409), or there and leased (412): either way, try for the lease.
      if (!isConflict(error)) throw this.failure(error, 'creating', container, name);
    }
    const leases = blob.getBlobLeaseClient();
    try {
      await leases.acquireLease(LEASE_SECONDS);
    } catch (error) {
      if (!isConflict(error)) throw this.failure(error, 'leasing', container, name);
      try {
        return { holder: (await blob.getProperties()).metadata ?? {} };
      } catch {
        return { holder: {} }; // released meanwhile, or unreadable: the caller tries again
      }
    }
    const conditions = { leaseId: leases.leaseId };
    // Counted from the moment each request was sent: Storage's lease runs from no earlier.
    const held = { renewedAt: Date.now(), refused: false };
    const renewal = setInterval(
      () => {
        const sent = Date.now();
        leases.renewLease().then(
          () => (held.renewedAt = Math.max(held.renewedAt, sent)),
          (error: unknown) => (held.refused ||= isConflict(error)), // another lease is current: ours is gone
        );
      },
      (LEASE_SECONDS * 1000) / 3,
    );
    renewal.unref();
    const release = async () => {
      clearInterval(renewal);
      // The holder's name goes with it (only a holder that died leaves its name behind); a
      // lease not released lapses by itself within LEASE_SECONDS, so a failure here is let go.
      await settled(blob.setMetadata({}, { conditions }));
      await settled(leases.releaseLease());
    };
    try {
      await blob.setMetadata({ ...metadata, lease: leases.leaseId }, { conditions });
    } catch (error) {
      await release();
      throw this.failure(error, 'writing', container, name);
    }
    const lost = () => held.refused || Date.now() - held.renewedAt >= LEASE_SECONDS * 1000;
    return { lease: { where: `${container}/${name}`, lost, release } };
  }

  /** Ends the lease `leaseId` on `name` if it is still the current one (its holder is known to be gone); false if another is. */
  async releaseLeaseOf(container: string, name: string, leaseId: string): Promise<boolean> {
    const blob = (await this.writeContainer(container)).getBlockBlobClient(name);
    try {
      await blob.getBlobLeaseClient(leaseId).releaseLease();
      return true;
    } catch (error) {
      // Another lease is current (a new holder took it meanwhile), or none: nothing to end.
      if (isConflict(error)) return false;
      throw this.failure(error, 'releasing the lease on', container, name);
    }
  }

  /** Blob names under a prefix, in name order. */
  async *list(container: string, prefix: string): AsyncGenerator<string> {
    const items = (await this.container(container)).listBlobsFlat({ prefix })[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<{ name: string }>;
      try {
        next = await items.next();
      } catch (error) {
        throw this.failure(error, 'listing', container, `${prefix}*`);
      }
      if (next.done) return;
      yield next.value.name;
    }
  }
}

function writeConditions(options: WriteOptions): { ifNoneMatch?: string; ifMatch?: string } | undefined {
  if (options.onlyIfAbsent) return { ifNoneMatch: '*' };
  if (options.ifMatch) return { ifMatch: options.ifMatch };
  return undefined;
}

function isConflict(error: unknown): boolean {
  return error instanceof RestError && (error.statusCode === 409 || error.statusCode === 412);
}

function isNotFound(error: unknown): boolean {
  return error instanceof RestError && error.statusCode === 404;
}
