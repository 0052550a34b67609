/** The simulators' TLS material, made by tools/run-tests.ts before jest starts (see tools/certs.ts for why). */
import { readFileSync } from 'node:fs';

export interface TlsMaterial {
  cert: string;
  key: string;
}

let cached: TlsMaterial | undefined;

/** Reads PIM_TEST_TLS_CERT / PIM_TEST_TLS_KEY (file paths). Throws when the tests were not started by `npm test`. */
export function testTls(): TlsMaterial {
  if (cached) return cached;
  const certPath = process.env.PIM_TEST_TLS_CERT;
  const keyPath = process.env.PIM_TEST_TLS_KEY;
  if (!certPath || !keyPath) {
    throw new Error(
      'PIM_TEST_TLS_CERT / PIM_TEST_TLS_KEY are not set: run the tests with npm test ' +
        "(node dist/tools/run-tests.js), which creates the simulators' certificate and trusts it via NODE_EXTRA_CA_CERTS.",
    );
  }
  cached = { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
  return cached;
}
