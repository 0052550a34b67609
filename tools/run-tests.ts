/**
 * `npm test` entry point. NODE_EXTRA_CA_CERTS is read only when a Node process starts, so the certificate the
 * simulators serve must exist before jest (and its workers) start: make it, then run jest as a child process.
 * Arguments are passed through to jest, e.g. `node dist/tools/run-tests.js test/tools -t paging`.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTestCertificate } from './certs';

async function main(): Promise<number> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pim-reporter-tests-'));
  try {
    const { certPath, keyPath } = await createTestCertificate(dir);
    const jestBin = require.resolve('jest/bin/jest');
    const child = spawn(process.execPath, [jestBin, ...process.argv.slice(2)], {
      stdio: 'inherit',
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: certPath,
        PIM_TEST_TLS_CERT: certPath,
        PIM_TEST_TLS_KEY: keyPath,
      },
    });
    // Forward Ctrl-C / termination so jest can run its global teardown (which stops Azurite).
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    const onInt = forward('SIGINT');
    const onTerm = forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const code = await new Promise<number>((resolve) => {
      child.on('error', (err) => {
        process.stderr.write(`run-tests: cannot start jest: ${err.message}\n`);
        resolve(1);
      });
      child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
    });
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    return code;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`run-tests: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
