/**
 * `npm run demo`: the product on the embedded demo tenant, with no Azure account. Starts Azurite
 * and the simulated tenant (Graph, the managed-identity endpoint, ACS Email, all on 127.0.0.1 over
 * HTTPS with a certificate made now), then runs the three jobs as child processes exactly as an
 * admin would: `pim-reporter daily` for the last few days (the tenant changes between them, so the
 * last digest has new and removed assignments, group activations, approvals and unused
 * eligibilities), `monthly` for a past month, `verify` of that pack, and an `export`. Copies every
 * file it made to ./pim-reports-demo/ with an index.html linking them, and stops everything it started.
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
import type { SimTenant } from './tenant/model';

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
    // A short history window, so the demo's few days of history already tell who has not used a role.
    env.UNUSED_AFTER_DAYS = '14';
    const cli = (args: string[]) => run(process.execPath, [resolve(__dirname, '../src/cli.js'), ...args], env);
    const base = demoTenant(now);
    const DAYS = 4;
    const runs = Array.from({ length: DAYS }, (_, i) => new Date(now.getTime() - (DAYS - 1 - i) * DAY_MS));
    for (const [i, when] of runs.entries()) {
      graph.setNow(() => when);
      graph.setTenant(tenantAsOf(base, when, i === runs.length - 1));
      say(`Running: pim-reporter daily --now ${when.toISOString()}`);
      const code = await cli(['daily', '--now', when.toISOString()]);
      if (code !== 0) {
        say(`pim-reporter daily failed with exit status ${code}`);
        return code;
      }
    }
    graph.setNow(() => new Date());
    graph.setTenant(tenantAsOf(base, now, true));

    // The last month whose pack may be sealed now (its end plus the 24 hours audit events may lag).
    const month = previousMonthOf(new Date(now.getTime() - DAY_MS));
    say(`Running: pim-reporter monthly --month ${month}, then verify --month ${month}`);
    for (const args of [
      ['monthly', '--month', month, '--now', now.toISOString()],
      ['verify', '--month', month],
    ]) {
      const code = await cli(args);
      if (code !== 0) {
        say(`pim-reporter ${args[0]} failed with exit status ${code}`);
        return code;
      }
    }
    const exportsDir = join(OUT, 'exports');
    await mkdir(exportsDir, { recursive: true });
    const exported: string[] = [];
    for (const dataset of ['activations', 'unused']) {
      const file = `pim-${dataset}.csv`;
      say(`Running: pim-reporter export --dataset ${dataset} --out ${join('exports', file)}`);
      const code = await cli([
        'export',
        '--dataset',
        dataset,
        '--out',
        join(exportsDir, file),
        '--now',
        now.toISOString(),
      ]);
      if (code !== 0) {
        say(`pim-reporter export failed with exit status ${code}`);
        return code;
      }
      exported.push(`exports/${file}`);
    }

    // Every file the jobs wrote, copied out: the daily folders and the pack.
    const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const written: string[] = [];
    for (const [containerName, prefix, into] of [
      [CONTAINER, 'daily/', ''],
      ['pim-archive', `monthly/${month}/`, ''],
    ] as const) {
      const container = blobs.getContainerClient(containerName);
      if (!(await container.exists())) continue;
      for await (const blob of container.listBlobsFlat({ prefix })) {
        const local = join(OUT, into, blob.name);
        await mkdir(join(local, '..'), { recursive: true });
        await writeFile(local, await container.getBlockBlobClient(blob.name).downloadToBuffer());
        written.push(blob.name);
      }
    }
    const lastPrefix = `daily/${now.toISOString().slice(0, 10).replace(/-/g, '/')}/`;
    const manifest = JSON.parse(await readFile(join(OUT, lastPrefix, 'manifest.json'), 'utf8')) as {
      files: Array<{ name: string; rows: number }>;
      digest: { subject: string };
      graph: { requests: number };
    };
    await writeFile(join(OUT, 'index.html'), indexPage([...written, ...exported], lastPrefix, month));

    say('');
    say(`Digest: ${manifest.digest.subject}`);
    const digests = email.sent.filter((m) => m.recipients.to.some((r) => r.address === env.EMAIL_RECIPIENTS));
    say(`Emailed through the simulated ACS: ${digests.length} digest(s) to ${env.EMAIL_RECIPIENTS}`);
    for (const m of email.sent.filter((x) => !digests.includes(x)))
      say(`  expiry reminder to ${m.recipients.to.map((r) => r.address).join(', ')}: ${m.content.subject}`);
    for (const f of manifest.files.filter((f) => f.name.endsWith('.csv')))
      say(`  ${f.name.padEnd(28)} ${f.rows} row(s)`);
    say(`Graph requests (last day): ${manifest.graph.requests}`);
    say(`Monthly pack: monthly/${month}/ (verified)`);
    say(`In Azurite: data kept in ${join(OUT, '.azurite')}`);
    say(`Open ${join(OUT, 'index.html')} in a browser: every file the demo made, and the last digest.`);
    return 0;
  } finally {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * The demo tenant as it stood at `when`: assignments created later are not there yet (so each day
 * has new ones), and one eligibility is removed on the last day.
 */
function tenantAsOf(base: SimTenant, when: Date, last: boolean): SimTenant {
  const removed = base.eligibilitySchedules[0]?.id;
  const existed = (s: { createdDateTime: string | null }) =>
    !s.createdDateTime || Date.parse(s.createdDateTime) <= when.getTime();
  return {
    ...base,
    eligibilitySchedules: base.eligibilitySchedules.filter((s) => existed(s) && !(last && s.id === removed)),
    assignmentSchedules: base.assignmentSchedules.filter(existed),
  };
}

function previousMonthOf(at: Date): string {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
}

/** ./pim-reports-demo/index.html: a link to every file, the last digest first. */
function indexPage(files: string[], lastDay: string, month: string): string {
  const esc = (v: string) => v.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const items = (list: string[]) =>
    list
      .sort()
      .map((f) => `<li><a href="${esc(f)}">${esc(f)}</a></li>`)
      .join('\n');
  const daily = files.filter((f) => f.startsWith('daily/'));
  const pack = files.filter((f) => f.startsWith('monthly/'));
  const exports = files.filter((f) => f.startsWith('exports/'));
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>pim-reporter demo</title></head><body style="font-family:Segoe UI,Helvetica,Arial,sans-serif">
<h1>pim-reporter demo</h1>
<p><a href="${esc(lastDay)}digest.html">The last digest</a> (the email as sent).</p>
<h2>Daily folders</h2><ul>${items(daily)}</ul>
<h2>Monthly pack ${esc(month)}</h2><ul>${items(pack)}</ul>
<h2>Exports</h2><ul>${items(exports)}</ul>
</body></html>
`;
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
