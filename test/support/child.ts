/**
 * The CLI as a separate process (`node dist/src/cli.js …`), so a test can kill it with SIGKILL at a
 * chosen moment, as a host crash or a scale-in would. `npm test` builds dist/ first.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

export const CLI = path.resolve(__dirname, '../../dist/src/cli.js');

export interface ChildRun {
  /** Exit status, or null when killed. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  killed: boolean;
}

export interface ChildCli {
  /** Resolves when the process has ended. */
  done: Promise<ChildRun>;
  /** SIGKILL, at most once. */
  kill(): void;
}

export function spawnCli(args: string[], env: Record<string, string | undefined>): ChildCli {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run the tests with npm test (it builds first)`);
  const child = spawn(process.execPath, [CLI, ...args], {
    env: {
      PATH: process.env.PATH,
      TMPDIR: process.env.TMPDIR,
      NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let killed = false;
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<ChildRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, killed }));
  });
  return {
    done,
    kill() {
      if (killed || child.exitCode !== null || child.signalCode !== null) return;
      killed = true;
      child.kill('SIGKILL');
    },
  };
}
