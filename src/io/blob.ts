/**
 * Blob Storage for reports and the archive. Block-blob uploads commit only when the last block is
 * in, so a run that fails mid-file leaves no half-written blob that looks final.
 */
import { BlobServiceClient, RestError } from '@azure/storage-blob';
import type { ContainerClient } from '@azure/storage-blob';
import type { TokenCredential } from '@azure/identity';
import type { Readable } from 'node:stream';
import type { StorageSettings } from '../settings';

export interface WriteOptions {
  contentType: string;
  /** Create only if absent (archive blobs are written once: SPEC 6). */
  onlyIfAbsent?: boolean;
}

export class BlobAlreadyExistsError extends Error {
  constructor(readonly container: string, readonly blobName: string) {
    super(`${container}/${blobName} already exists and is never overwritten`);
    this.name = 'BlobAlreadyExistsError';
  }
}

/** A Blob Storage call that failed: names the store, the operation and the blob, never a key. */
export class BlobStorageError extends Error {
  constructor(message: string) {
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

export interface BlobLease {
  /** True once renewals have failed for the lease's length, or were refused: another may hold it now. */
  lost(): boolean;
  release(): Promise<void>;
}

interface HeldLease {
  where: string;
  renewedAt: number;
  refused: boolean;
}

function isLost(held: HeldLease): boolean {
  return held.refused || Date.now() - held.renewedAt > LEASE_SECONDS * 1000;
}

export class BlobStore {
  private readonly ensured = new Map<string, Promise<unknown>>();
  private readonly held = new Set<HeldLease>();

  constructor(private readonly service: BlobServiceClient) {}

  static fromSettings(storage: StorageSettings, credential: TokenCredential): BlobStore {
    const service =
      storage.kind === 'accountUrl'
        ? new BlobServiceClient(storage.accountUrl, credential)
        : BlobServiceClient.fromConnectionString(storage.connectionString);
    return new BlobStore(service);
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
    if (!(error instanceof RestError || (error as { name?: string } | null)?.name === 'RestError')) return error as Error;
    const e = (error ?? {}) as { statusCode?: number; code?: string; message?: string; details?: { errorCode?: string } };
    const reason = [e.statusCode ? `HTTP ${e.statusCode}` : '', e.details?.errorCode ?? e.code ?? ''].filter(Boolean).join(' ');
    const where = `${this.service.url.split('?')[0].replace(/\/+$/, '')}`;
    const detail = String(e.message ?? error).split('\n')[0];
    return new BlobStorageError(`Blob Storage at ${where}: ${action} ${container}${name ? `/${name}` : ''} failed${reason ? ` (${reason})` : ''}: ${detail}`);
  }

  async writeStream(container: string, name: string, body: Readable, options: WriteOptions): Promise<void> {
    this.checkLeases();
    const blob = (await this.container(container)).getBlockBlobClient(name);
    try {
      await blob.uploadStream(body, UPLOAD_BUFFER, UPLOAD_CONCURRENCY, {
        blobHTTPHeaders: { blobContentType: options.contentType },
        conditions: options.onlyIfAbsent ? { ifNoneMatch: '*' } : undefined,
      });
    } catch (error) {
      if (options.onlyIfAbsent && isConflict(error)) throw new BlobAlreadyExistsError(container, name);
      throw this.failure(error, 'writing', container, name);
    }
  }

  async writeText(container: string, name: string, text: string | Buffer, options: WriteOptions): Promise<void> {
    this.checkLeases();
    const blob = (await this.container(container)).getBlockBlobClient(name);
    const data = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    try {
      await blob.upload(data, data.length, {
        blobHTTPHeaders: { blobContentType: options.contentType },
        conditions: options.onlyIfAbsent ? { ifNoneMatch: '*' } : undefined,
      });
    } catch (error) {
      if (options.onlyIfAbsent && isConflict(error)) throw new BlobAlreadyExistsError(container, name);
      throw this.failure(error, 'writing', container, name);
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
    this.checkLeases();
    const blob = (await this.container(container)).getBlockBlobClient(name);
    try {
      await blob.deleteIfExists();
    } catch (error) {
      throw this.failure(error, 'deleting', container, name);
    }
  }

  /**
   * A lease on `name` (made as an empty blob if absent), renewed in the background until released,
   * with `metadata` (and the lease id, as `lease`) saying who holds it; or, when another holds it,
   * that holder's metadata. A holder that dies lets the lease lapse within LEASE_SECONDS. A lease
   * lost while held (renewals failing for that long, or refused) stops every write of this store
   * until it is released: two runs must never write at once.
   */
  async lease(container: string, name: string, metadata: Record<string, string>): Promise<{ lease?: BlobLease; holder?: Record<string, string> }> {
    const blob = (await this.container(container)).getBlockBlobClient(name);
    this.checkLeases();
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
    const held: HeldLease = { where: `${container}/${name}`, renewedAt: Date.now(), refused: false };
    this.held.add(held);
    const renewal = setInterval(() => {
      leases.renewLease().then(
        () => (held.renewedAt = Date.now()),
        (error: unknown) => (held.refused ||= isConflict(error)), // another lease is current: ours is gone
      );
    }, (LEASE_SECONDS * 1000) / 3);
    renewal.unref();
    const release = async () => {
      clearInterval(renewal);
      this.held.delete(held);
      // The holder's name goes with it (only a holder that died leaves its name behind); a
      // lease not released lapses by itself within LEASE_SECONDS.
      await blob.setMetadata({}, { conditions }).catch(() => undefined);
      await leases.releaseLease().catch(() => undefined);
    };
    try {
      await blob.setMetadata({ ...metadata, lease: leases.leaseId }, { conditions });
    } catch (error) {
      await release();
      throw this.failure(error, 'writing', container, name);
    }
    return { lease: { lost: () => isLost(held), release } };
  }

  /** Ends the lease `leaseId` on `name` if it is still the current one (its holder is known to be gone); false if another is. */
  async releaseLeaseOf(container: string, name: string, leaseId: string): Promise<boolean> {
    const blob = (await this.container(container)).getBlockBlobClient(name);
    try {
      await blob.getBlobLeaseClient(leaseId).releaseLease();
      return true;
    } catch (error) {
      // Another lease is current (a new holder took it meanwhile), or none: nothing to end.
      if (isConflict(error)) return false;
      throw this.failure(error, 'releasing the lease on', container, name);
    }
  }

  /** Every write stops once a lease this store holds is lost (see `lease`). */
  private checkLeases(): void {
    for (const held of this.held) {
      if (isLost(held)) {
        throw new BlobStorageError(
          `the lease on ${held.where} was lost during this run (Blob Storage unreachable for ${LEASE_SECONDS} s, or another run took it): writing stopped, so that two runs never write at once; the next run completes the work`,
        );
      }
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

function isConflict(error: unknown): boolean {
  return error instanceof RestError && (error.statusCode === 409 || error.statusCode === 412);
}

function isNotFound(error: unknown): boolean {
  return error instanceof RestError && error.statusCode === 404;
}
