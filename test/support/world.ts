/**
 * A simulated world for end-to-end tests: a tenant behind the HTTPS Graph simulator, the managed-
 * identity endpoint, the ACS Email simulator, and this test run's Azurite with fresh containers.
 * The product is driven through its real entry points (the CLI's main, the Functions' handlers).
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { BlobServiceClient } from '@azure/storage-blob';
import { main } from '../../src/cli';
import { resetWorker } from '../../src/hosting';
import type { Timing } from '../../src/services';
import { startEmailSimulator, type EmailSimulator } from '../../tools/acs-simulator';
import { startGraphSimulator, type GraphSimulator, type GraphSimulatorOptions } from '../../tools/graph-simulator';
import { startManagedIdentitySimulator, type ManagedIdentitySimulator } from '../../tools/msi-simulator';
import type { SimTenant } from '../../tools/tenant/model';
import { testTls } from '../../tools/tls';
import { parseCsv } from './expected';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface World {
  graph: GraphSimulator;
  identity: ManagedIdentitySimulator;
  email: EmailSimulator;
  /** The app settings a deployment would have, pointing at the simulators. */
  env: Record<string, string>;
  reports: string;
  archive: string;
  blobs: BlobServiceClient;
  cli(args: string[], env?: Record<string, string | undefined>): Promise<CliRun>;
  /**
   * Every retry wait the Graph client asked for in `cli` runs, in order. The waits are recorded and
   * skipped; the simulator's wall clock (rate limit, request times) moves on by each of them.
   */
  waits: GraphWait[];
  /** A blob's text, or undefined. */
  read(container: string, name: string): Promise<string | undefined>;
  /** A CSV blob as records (header first). */
  csv(container: string, name: string): Promise<string[][]>;
  list(container: string, prefix?: string): Promise<string[]>;
  /** Puts the app settings into process.env, for the Functions handlers (they read it themselves). */
  useProcessEnv(): void;
  stop(): Promise<void>;
}

export interface GraphWait {
  ms: number;
  /** The endpoint asked again, ids collapsed: `/roleManagement/directory/roleEligibilitySchedules`. */
  endpoint: string;
}

/**
 * The Storage SDK's retries in `cli` runs: as many as by default, a few ms apart instead of
 * seconds (a storage-down run fails in well under a second).
 */
const STORAGE_RETRY = { maxTries: 4, retryDelayInMs: 5, maxRetryDelayInMs: 20 };

export interface WorldOptions extends Partial<Omit<GraphSimulatorOptions, 'tenant' | 'tls'>> {
  email?: 'endpoint' | 'connectionString' | 'none';
  /** How long the product's Graph and ARM clients wait for one answer (default: theirs, 100 s and 90 s). */
  requestTimeoutMs?: number;
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void) {
    this.text += chunk.toString();
    done();
  }
}

/** A user-assigned identity the identity endpoint knows (MANAGED_IDENTITY_CLIENT_ID). */
export const USER_ASSIGNED_CLIENT_ID = '3f9c2a1e-5b7d-4e8f-a012-6c4d8e9b7a55';

// One identity endpoint per test process: @azure/identity (MSAL) keeps the managed-identity
// source it found first for the life of the process, so the endpoint must not change.
let sharedIdentity: Promise<ManagedIdentitySimulator> | undefined;
afterAll(async () => {
  await (await sharedIdentity)?.stop();
  sharedIdentity = undefined;
});

export async function startWorld(tenant: SimTenant, options: WorldOptions = {}): Promise<World> {
  const tls = testTls();
  const connectionString = process.env.PIM_TEST_AZURITE_CONNECTION_STRING;
  if (!connectionString) throw new Error('Azurite is not running: run the tests with npm test');
  const { email: emailMode = 'endpoint', requestTimeoutMs, ...graphOptions } = options;
  const waits: GraphWait[] = [];
  let skipped = 0;
  const timing: Timing = {
    sleep: async (ms, endpoint) => {
      waits.push({ ms, endpoint });
      skipped += ms;
    },
    emailPollIntervalMs: 10,
    storageRetry: STORAGE_RETRY,
    requestTimeoutMs,
  };
  const graph = await startGraphSimulator({ tenant, tls, wallMs: () => Date.now() + skipped, ...graphOptions });
  sharedIdentity ??= startManagedIdentitySimulator({
    userAssigned: { [USER_ASSIGNED_CLIENT_ID]: '7d0b4ed2-8a76-4c3e-9a43-5d2c1f6e0b11' },
  });
  const identity = await sharedIdentity;
  await identity.down(false);
  identity.requests.length = 0;
  const email = await startEmailSimulator({ tls });
  const suffix = randomBytes(4).toString('hex');
  const reports = `reports-${suffix}`;
  const archive = `archive-${suffix}`;
  const env: Record<string, string> = {
    GRAPH_ENDPOINT: graph.url,
    IDENTITY_ENDPOINT: identity.endpoint,
    IDENTITY_HEADER: identity.header,
    REPORTS_STORAGE_CONNECTION_STRING: connectionString,
    REPORTS_CONTAINER: reports,
    ARCHIVE_CONTAINER: archive,
  };
  if (emailMode !== 'none') {
    Object.assign(env, {
      ...(emailMode === 'endpoint'
        ? { ACS_ENDPOINT: email.endpoint }
        : { ACS_CONNECTION_STRING: email.connectionString }),
      EMAIL_SENDER: 'DoNotReply@test.azurecomm.net',
      EMAIL_RECIPIENTS: 'secops@contoso.com,auditor@contoso.com',
    });
  }
  // @azure/identity reads IDENTITY_ENDPOINT from process.env itself.
  process.env.IDENTITY_ENDPOINT = identity.endpoint;
  process.env.IDENTITY_HEADER = identity.header;
  const blobs = BlobServiceClient.fromConnectionString(connectionString);

  const read = async (container: string, name: string) => {
    const blob = blobs.getContainerClient(container).getBlockBlobClient(name);
    if (!(await blob.exists())) return undefined;
    return (await blob.downloadToBuffer()).toString('utf8');
  };

  return {
    graph,
    identity,
    email,
    env,
    reports,
    archive,
    blobs,
    waits,
    async cli(args, extra = {}) {
      const stdout = new Capture();
      const stderr = new Capture();
      const merged: Record<string, string | undefined> = { ...env, ...extra };
      const code = await main(args, { env: merged, stdout, stderr, timing });
      return { code, stdout: stdout.text, stderr: stderr.text };
    },
    read,
    async csv(container, name) {
      const text = await read(container, name);
      if (text === undefined) throw new Error(`${container}/${name} does not exist`);
      return parseCsv(text);
    },
    async list(container, prefix) {
      const client = blobs.getContainerClient(container);
      if (!(await client.exists())) return [];
      const names: string[] = [];
      for await (const b of client.listBlobsFlat({ prefix })) names.push(b.name);
      return names;
    },
    useProcessEnv() {
      for (const [k, v] of Object.entries(env)) process.env[k] = v;
      resetWorker();
    },
    async stop() {
      await Promise.all([graph.stop(), email.stop()]);
    },
  };
}

/** Records (header first) as objects keyed by the header. */
export function records(rows: string[][]): Array<Record<string, string>> {
  const [header, ...rest] = rows;
  return rest.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
}
