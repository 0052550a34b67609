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

const UPLOAD_BUFFER = 4 * 1024 * 1024;

export class BlobStore {
  private readonly ensured = new Map<string, Promise<unknown>>();

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
    if (!this.ensured.has(name)) this.ensured.set(name, client.createIfNotExists());
    await this.ensured.get(name);
    return client;
  }

  async writeStream(container: string, name: string, body: Readable, options: WriteOptions): Promise<void> {
    const blob = (await this.container(container)).getBlockBlobClient(name);
    try {
      await blob.uploadStream(body, UPLOAD_BUFFER, 2, {
        blobHTTPHeaders: { blobContentType: options.contentType },
        conditions: options.onlyIfAbsent ? { ifNoneMatch: '*' } : undefined,
      });
    } catch (error) {
      if (options.onlyIfAbsent && isConflict(error)) throw new BlobAlreadyExistsError(container, name);
      throw error;
    }
  }

  async writeText(container: string, name: string, text: string | Buffer, options: WriteOptions): Promise<void> {
    const blob = (await this.container(container)).getBlockBlobClient(name);
    const data = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    try {
      await blob.upload(data, data.length, {
        blobHTTPHeaders: { blobContentType: options.contentType },
        conditions: options.onlyIfAbsent ? { ifNoneMatch: '*' } : undefined,
      });
    } catch (error) {
      if (options.onlyIfAbsent && isConflict(error)) throw new BlobAlreadyExistsError(container, name);
      throw error;
    }
  }

  /** The blob's bytes, or undefined when it does not exist. */
  async read(container: string, name: string): Promise<Buffer | undefined> {
    const blob = (await this.container(container)).getBlockBlobClient(name);
    try {
      return await blob.downloadToBuffer();
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
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
      throw error;
    }
  }

  async exists(container: string, name: string): Promise<boolean> {
    return (await this.container(container)).getBlockBlobClient(name).exists();
  }

  async delete(container: string, name: string): Promise<void> {
    await (await this.container(container)).getBlockBlobClient(name).deleteIfExists();
  }

  /** Blob names under a prefix, in name order. */
  async *list(container: string, prefix: string): AsyncGenerator<string> {
    for await (const item of (await this.container(container)).listBlobsFlat({ prefix })) yield item.name;
  }
}

function isConflict(error: unknown): boolean {
  return error instanceof RestError && (error.statusCode === 409 || error.statusCode === 412);
}

function isNotFound(error: unknown): boolean {
  return error instanceof RestError && error.statusCode === 404;
}
