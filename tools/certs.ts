/**
 * A throw-away TLS certificate for the local simulators. The Graph SDK only attaches the bearer token to
 * https URLs, and the ACS client refuses token auth over http (Graph: https://github.com/microsoftgraph/msgraph-sdk-javascript/blob/dev/changelogs/v3-upgrade-guide.md;
 * ACS: https://learn.microsoft.com/rest/api/communication/dataplane/email/send), so the Graph and
 * ACS simulators must speak TLS with a certificate the test process trusts (NODE_EXTRA_CA_CERTS).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { generate } from 'selfsigned';

export interface TestCertificate {
  certPath: string;
  keyPath: string;
  cert: string;
  key: string;
}

/** Creates a self-signed certificate for CN=127.0.0.1 (SAN: IP 127.0.0.1, DNS localhost) in `dir`. */
export async function createTestCertificate(dir: string): Promise<TestCertificate> {
  const notBeforeDate = new Date(Date.now() - 24 * 3600 * 1000); // tolerate clock skew and `--now` backdating
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate: new Date(notBeforeDate.getTime() + 30 * 24 * 3600 * 1000),
    extensions: [
      // A self-signed leaf that is also its own CA: Node accepts it as a trust anchor via NODE_EXTRA_CA_CERTS.
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 7, ip: '127.0.0.1' },
          { type: 2, value: 'localhost' },
        ],
      },
    ],
  });
  await fs.mkdir(dir, { recursive: true });
  const certPath = path.join(dir, 'test-cert.pem');
  const keyPath = path.join(dir, 'test-key.pem');
  await fs.writeFile(certPath, pems.cert, { mode: 0o600 });
  await fs.writeFile(keyPath, pems.private, { mode: 0o600 });
  return { certPath, keyPath, cert: pems.cert, key: pems.private };
}
