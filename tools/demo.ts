/**
 * `npm run demo`: the product on the embedded demo tenant, with no Azure account. Starts Azurite
 * and the simulated tenant (Graph, the managed-identity endpoint, ACS Email, all on 127.0.0.1 over
 * HTTPS with a certificate made now), runs `pim-reporter daily` as a child process exactly as an
 * admin would, copies the day's files to ./pim-reports-demo/, prints where they are, and stops
 * everything it started.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { startEmailSimulator } from './acs-simulator';
import { simulatedAppSettings } from './app-env';
import { startAzurite } from './azurite';
import { createTestCertificate } from './certs';
import { startGraphSimulator } from './graph-simulator';
import { startManagedIdentitySimulator } from './msi-simulator';
import { demoTenant } from './tenant/demo';

const OUT = resolve(process.env.PIM_DEMO_OUT ?? 'pim-reports-demo');
const CONTAINER = 'pim-reports';

type Stoppable = { stop(): Promise<void> };

async function main(): Promise<number> {
  const now = new Date();
  const started: Stoppable[] = [];
  const scratch = await mkdtemp(join(tmpdir(), 'pim-demo-'));
  try {
    say(`Starting Azurite and the simulated tenant "Contoso" (nothing leaves this machine)`);
    const cert = await createTestCertificate(scratch);
    // A fresh Azurite each time, so every demo run is a first run; the data stays after it stops.
    await rm(join(OUT, '.azurite'), { recursive: true, force: true });
    const azurite = await startAzurite({ location: join(OUT, '.azurite') });
    started.push(azurite);
    const graph = await startGraphSimulator({ tenant: demoTenant(now), tls: cert, now: () => new Date() });
    started.push(graph);
    const identity = await startManagedIdentitySimulator();
    started.push(identity);
    const email = await startEmailSimulator({ tls: cert });
    started.push(email);

    const env: Record<string, string> = {
      ...simulatedAppSettings({
        certPath: cert.certPath,
        graphUrl: graph.url,
        identity,
        storageConnectionString: azurite.connectionString,
        reportsContainer: CONTAINER,
      }),
      ACS_ENDPOINT: email.endpoint,
      EMAIL_SENDER: 'DoNotReply@contoso-demo.azurecomm.net',
      EMAIL_RECIPIENTS: 'secops@contoso.com',
      // Reminders to the people whose roles end soon: the simulated ACS shows them next to the digest.
      EXPIRY_REMINDER_DAYS: '14,7,1',
    };
    say('Running: pim-reporter daily');
    const code = await run(process.execPath, [resolve(__dirname, '../src/cli.js'), 'daily'], env);
    if (code !== 0) {
      say(`pim-reporter daily failed with exit status ${code}`);
      return code;
    }

    const day = now.toISOString().slice(0, 10);
    const prefix = `daily/${day.replace(/-/g, '/')}/`;
    const folder = join(OUT, day);
    await mkdir(folder, { recursive: true });
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER);
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat({ prefix })) {
      const name = blob.name.slice(prefix.length);
      await writeFile(join(folder, name), await container.getBlockBlobClient(blob.name).downloadToBuffer());
      names.push(name);
    }
    const manifest = JSON.parse(await readFile(join(folder, 'manifest.json'), 'utf8')) as {
      files: Array<{ name: string; rows: number }>;
      digest: { subject: string };
      graph: { requests: number };
    };

    say('');
    say(`Digest: ${manifest.digest.subject}`);
    const digests = email.sent.filter((m) => m.recipients.to.some((r) => r.address === env.EMAIL_RECIPIENTS));
    say(`Emailed through the simulated ACS: ${digests.length} digest(s) to ${env.EMAIL_RECIPIENTS}`);
    for (const m of email.sent.filter((x) => !digests.includes(x))) say(`  expiry reminder to ${m.recipients.to.map((r) => r.address).join(', ')}: ${m.content.subject}`);
    for (const f of manifest.files.filter((f) => f.name.endsWith('.csv'))) say(`  ${f.name.padEnd(28)} ${f.rows} row(s)`);
    say(`Graph requests: ${manifest.graph.requests}`);
    say(`In Azurite: ${container.url}/${prefix} (data kept in ${join(OUT, '.azurite')})`);
    say(`On disk:    ${folder}/ (${names.join(', ')})`);
    say(`Open ${join(folder, 'digest.html')} in a browser to see the email.`);
    return 0;
  } finally {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function run(command: string, args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => resolvePromise(code ?? 1));
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
