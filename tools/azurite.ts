/**
 * Starts Azurite's blob service as a child process on a free port (https://learn.microsoft.com/azure/storage/common/storage-use-azurite).
 * `--skipApiVersionCheck` is required: @azure/storage-blob sends an x-ms-version newer than Azurite 3.35 knows.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export const DEVSTORE_ACCOUNT = 'devstoreaccount1';
export const DEVSTORE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteHandle {
  connectionString: string;
  /** http://127.0.0.1:<port>/devstoreaccount1 */
  blobEndpoint: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/**
 * The child is started through a tiny wrapper that exits when its IPC channel to us closes, so Azurite dies
 * with the test process even when that process is killed with SIGKILL (an 'exit' handler would not run).
 */
const WRAPPER = [
  "process.on('disconnect', () => process.exit(0));",
  // The channel must not keep Azurite alive once its server has closed on SIGTERM.
  'process.channel && process.channel.unref();',
  'const main = process.argv[1];',
  'require(main);',
].join('\n');

const LISTENING = /successfully listens on https?:\/\/[^:\s]+:(\d+)/;

export interface AzuriteOptions {
  /** Fixed port; default: a free one chosen by the OS. */
  port?: number;
  /** Persist data in this folder (created if missing); default: in memory only. */
  location?: string;
  startTimeoutMs?: number;
}

export async function startAzurite(opts: AzuriteOptions = {}): Promise<AzuriteHandle> {
  const main = require.resolve('azurite/dist/src/blob/main.js');
  const location = opts.location ? path.resolve(opts.location) : undefined; // the child runs in the temp dir
  // Port 0 lets the OS pick a free port; Azurite prints the one it got, so there is no probe-then-bind race.
  const port = opts.port ?? 0;
  const args = [
    '-e',
    WRAPPER,
    '--',
    main,
    '--silent',
    '--skipApiVersionCheck',
    '--disableTelemetry',
    // Azurite refuses --inMemoryPersistence together with --location.
    ...(location ? ['--location', location] : ['--inMemoryPersistence', '--extentMemoryLimit', '512']),
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    String(port),
  ];
  if (location) await mkdir(location, { recursive: true });
  const child = spawn(process.execPath, args, {
    cwd: os.tmpdir(), // Azurite may create debug/db files in its working directory; keep them out of the repo
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  // Neither the process nor its pipes may keep the parent's event loop alive (jest must be able to exit).
  child.unref();
  child.channel?.unref();
  const killOnExit = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);

  let output = '';
  const actualPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      child.kill('SIGKILL');
      reject(new Error(`Azurite did not start within ${opts.startTimeoutMs ?? 20000} ms. Output:\n${output}`));
    }, opts.startTimeoutMs ?? 20000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = LISTENING.exec(output);
      if (m) {
        cleanup();
        resolve(Number(m[1]));
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`Azurite exited (code ${code}) before listening. Output:\n${output}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', onExit);
  });
  // Keep draining output so a chatty Azurite never blocks on a full pipe; don't let the pipes hold the loop.
  child.stdout?.resume();
  child.stderr?.resume();
  (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();

  const blobEndpoint = `http://127.0.0.1:${actualPort}/${DEVSTORE_ACCOUNT}`;
  return {
    port: actualPort,
    pid: child.pid ?? -1,
    blobEndpoint,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${DEVSTORE_ACCOUNT};AccountKey=${DEVSTORE_KEY};` +
      `BlobEndpoint=${blobEndpoint};`,
    stop: () => stopChild(child, killOnExit),
  };
}

async function stopChild(child: ChildProcess, killOnExit: () => void): Promise<void> {
  process.off('exit', killOnExit);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
