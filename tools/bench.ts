/**
 * `npm run bench [-- --scale 2 --out bench-results/x.json]`: the daily job against a large simulated
 * tenant (issue 7). The tenant, Azurite and the simulators run in this process (or its children);
 * the product runs as `node dist/src/cli.js daily --now …` in a child process of its own, so the
 * peak RSS and CPU time reported are the product's alone (read by a tiny preload hook through
 * `process.resourceUsage()` at exit).
 *
 * Printed and written as JSON: wall time, peak RSS, CPU time, Graph requests per endpoint, and the
 * lower bound the data allows with the ratio:
 *   - requests: the fewest pages each list needs at Graph's largest page size (the PIM lists are
 *     server-paged at the simulator's page size; transitiveMembers 999, the audit log 1000), group
 *     lists 20 to a `$batch`, administrative units 1000 ids to a getByIds;
 *   - wall time: the longest chain of dependent requests at the simulated latency: the schedule
 *     lists page by page (nextLink), then one `$batch` round per page of the longest group list,
 *     alongside the audit log paged sequentially within its rate limit. It counts Graph only:
 *     process start, sorting and Blob writes are the product's overhead against it.
 * And the cold start: the time to require the Functions entry modules in a fresh process.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite } from './azurite';
import { createTestCertificate } from './certs';
import { startGraphSimulator, type GraphRequestRecord } from './graph-simulator';
import { startManagedIdentitySimulator } from './msi-simulator';
import { generateTenant, transitiveMemberIds } from './tenant/generate';
import type { SimTenant } from './tenant/model';
import { timeKey } from './tenant/time';

const ROOT = resolve(__dirname, '..', '..');
const DIST = resolve(__dirname, '..');
const CONTAINER = 'pim-reports';
const ACTIVATION_COMPLETED = 'Add member to role completed (PIM activation)';
const DAY_MS = 86_400_000;
/** Graph's largest page sizes where a client may ask ($top): directory lists 999, the audit log 1000. */
const MEMBERS_TOP = 999;
const AUDIT_TOP = 1000;
const BATCH_LIMIT = 20;
const GET_BY_IDS_LIMIT = 1000;

interface BenchOptions {
  scale: number;
  out: string;
  latencyMs: number;
  pageSize: number;
  auditRequests: number;
  auditWindowMs: number;
  activationsPerDay: number;
  seed: string;
  coldRuns: number;
  daily: boolean;
  profile: boolean;
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: 'string', default: '1' },
      out: { type: 'string' },
      latency: { type: 'string', default: '20' },
      'page-size': { type: 'string', default: '100' },
      'audit-window-ms': { type: 'string', default: '1000' },
      'activations-per-day': { type: 'string', default: '445' },
      seed: { type: 'string', default: 'bench' },
      'cold-runs': { type: 'string', default: '7' },
      'cold-only': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      [
        'Usage: npm run bench -- [options]',
        '  --scale N                 tenant size multiplier (1 = 50,000 eligible, 20,000 active, 3,000 groups, ~100,000 audit events)',
        '  --out FILE                JSON figures (default bench-results/bench-scale<N>.json)',
        '  --latency MS              simulated Graph latency per request (default 20)',
        '  --page-size N             server page size of the PIM lists (default 100)',
        '  --audit-window-ms MS      the audit log allows 5 requests per this window (default 1000: 10 s scaled down 10x)',
        '  --activations-per-day N   completed activations per day at scale 1 (default 445: ~100,000 audit events in 30 days)',
        '  --cold-runs N             fresh processes for the cold-start measurement (default 7)',
        '  --cold-only               measure the cold start only',
        '  --profile                 write a V8 CPU profile of the product next to the figures',
        '',
      ].join('\n'),
    );
    process.exit(0);
  }
  const num = (name: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got "${v}"`);
    return n;
  };
  const scale = num('scale', values.scale, 0.01);
  return {
    scale,
    out: resolve(values.out ?? join(ROOT, 'bench-results', `bench-scale${scale}.json`)),
    latencyMs: num('latency', values.latency, 0),
    pageSize: Math.round(num('page-size', values['page-size'], 1)),
    auditRequests: 5,
    auditWindowMs: num('audit-window-ms', values['audit-window-ms'], 1),
    activationsPerDay: num('activations-per-day', values['activations-per-day'], 0),
    seed: values.seed ?? 'bench',
    coldRuns: Math.round(num('cold-runs', values['cold-runs'], 0)),
    daily: !values['cold-only'],
    profile: Boolean(values.profile),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The lower bound the data allows
// ---------------------------------------------------------------------------------------------------------

interface LowerBound {
  requests: Record<string, number> & { total: number };
  wallMs: number;
  detail: Record<string, number>;
}

const pages = (items: number, size: number) => Math.max(1, Math.ceil(items / size));

/** Start of the last of `n` sequential requests (each `latency` long) under `limit` per `windowMs`, plus its latency. */
export function rateLimitedChainMs(n: number, latency: number, limit: number, windowMs: number): number {
  const starts: number[] = [];
  for (let k = 0; k < n; k++) {
    let s = k === 0 ? 0 : starts[k - 1] + latency;
    if (k >= limit) s = Math.max(s, starts[k - limit] + windowMs);
    starts.push(s);
  }
  return n === 0 ? 0 : starts[n - 1] + latency;
}

function lowerBound(tenant: SimTenant, now: Date, o: BenchOptions): LowerBound {
  const groupsById = new Map(tenant.groups.map((g) => [g.id, g]));
  const direct = [...tenant.eligibilitySchedules, ...tenant.assignmentSchedules].filter((s) => s.memberType === 'Direct');
  const roleGroups = new Set(direct.filter((s) => groupsById.has(s.principalId)).map((s) => s.principalId));
  const eligibleByGroup = new Map<string, number>();
  for (const s of tenant.groupEligibilitySchedules) eligibleByGroup.set(s.groupId, (eligibleByGroup.get(s.groupId) ?? 0) + 1);
  let subRequests = 0;
  let deepest = 0;
  let members = 0;
  for (const id of roleGroups) {
    const m = transitiveMemberIds(groupsById, id).size;
    members += m;
    const memberPages = pages(m, MEMBERS_TOP);
    const eligiblePages = pages(eligibleByGroup.get(id) ?? 0, o.pageSize);
    subRequests += memberPages + eligiblePages;
    deepest = Math.max(deepest, memberPages, eligiblePages);
  }
  const auScopes = new Set(direct.map((s) => s.directoryScopeId).filter((s) => s.startsWith('/administrativeUnits/')));
  const from = timeKey(new Date(now.getTime() - 30 * DAY_MS).toISOString())!;
  const to = timeKey(now.toISOString())!;
  let auditMatches = 0;
  for (const a of tenant.directoryAudits) {
    if (a.loggedByService !== 'PIM' || a.activityDisplayName !== ACTIVATION_COMPLETED) continue;
    const k = timeKey(a.activityDateTime);
    if (k && k >= from && k <= to) auditMatches++;
  }

  const requests = {
    roleDefinitions: pages(tenant.roleDefinitions.length, o.pageSize),
    roleEligibilitySchedules: pages(tenant.eligibilitySchedules.length, o.pageSize),
    roleAssignmentSchedules: pages(tenant.assignmentSchedules.length, o.pageSize),
    $batch: roleGroups.size ? Math.ceil(subRequests / BATCH_LIMIT) : 0,
    getByIds: Math.ceil(auScopes.size / GET_BY_IDS_LIMIT),
    directoryAudits: pages(auditMatches, AUDIT_TOP),
    total: 0,
  };
  requests.total = Object.entries(requests).reduce((sum, [k, v]) => (k === 'total' ? sum : sum + v), 0);

  const L = o.latencyMs;
  const lists = Math.max(requests.roleDefinitions, requests.roleEligibilitySchedules, requests.roleAssignmentSchedules) * L;
  const snapshot = lists + (roleGroups.size ? deepest * L : 0);
  const audit = rateLimitedChainMs(requests.directoryAudits, L, o.auditRequests, o.auditWindowMs);
  return {
    requests,
    wallMs: Math.max(snapshot, audit),
    detail: {
      snapshotChainMs: snapshot,
      auditChainMs: audit,
      groupsHoldingRoles: roleGroups.size,
      groupSubRequests: subRequests,
      transitiveMembers: members,
      administrativeUnitScopes: auScopes.size,
      auditEventsMatchingFilter: auditMatches,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Running the product
// ---------------------------------------------------------------------------------------------------------

/** Preloaded into the product's process: its own resource usage at exit, and memory sampled as it runs. */
const USAGE_HOOK = `
const { writeFileSync } = require('node:fs');
const peak = { heapUsed: 0, external: 0, arrayBuffers: 0, rss: 0 };
const sample = () => {
  const m = process.memoryUsage();
  for (const k of Object.keys(peak)) if (m[k] > peak[k]) peak[k] = m[k];
};
setInterval(sample, 100).unref();
process.on('exit', () => {
  sample();
  const u = process.resourceUsage();
  writeFileSync(process.env.PIM_BENCH_USAGE_FILE, JSON.stringify({
    maxRssKb: u.maxRSS, userCpuUs: u.userCPUTime, systemCpuUs: u.systemCPUTime, uptimeMs: process.uptime() * 1000, sampledPeak: peak,
  }));
});
`;

interface Usage {
  maxRssKb: number;
  userCpuUs: number;
  systemCpuUs: number;
  uptimeMs: number;
  sampledPeak: { heapUsed: number; external: number; arrayBuffers: number; rss: number };
}

function run(
  command: string,
  args: string[],
  env: Record<string, string>,
  logFile?: string,
): Promise<{ code: number; wallMs: number; stderr: string; startedAt: number }> {
  return new Promise((resolvePromise, reject) => {
    const startedAt = Date.now();
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      const done = () => resolvePromise({ code: code ?? 1, wallMs, stderr, startedAt });
      if (logFile) writeFile(logFile, stderr).then(done, done);
      else done();
    });
  });
}

function endpointOf(path: string): string {
  return path
    .replace(/^\/v1\.0/, '')
    .split('/')
    .map((s) => (/^[0-9a-f]{8}-[0-9a-f]{4}-/i.test(s) ? '{id}' : s))
    .join('/');
}

function countByEndpoint(records: GraphRequestRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) {
    const key = `${r.method} ${endpointOf(r.path)}${r.status === 429 ? ' (429)' : ''}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]));
}

/** When each endpoint was first and last called, in ms from the product's start: where the time went. */
function timeline(records: GraphRequestRecord[], startedAt: number): Record<string, { first: number; last: number; count: number }> {
  const out: Record<string, { first: number; last: number; count: number }> = {};
  for (const r of records) {
    const key = `${r.method} ${endpointOf(r.path)}`;
    const t = r.at - startedAt;
    const e = (out[key] ??= { first: t, last: t, count: 0 });
    e.first = Math.min(e.first, t);
    e.last = Math.max(e.last, t);
    e.count++;
  }
  return Object.fromEntries(Object.entries(out).sort((a, b) => a[1].first - b[1].first));
}

// ---------------------------------------------------------------------------------------------------------
// Cold start
// ---------------------------------------------------------------------------------------------------------

const COLD_PROBE = `
const t0 = process.hrtime.bigint();
const { readdirSync } = require('node:fs');
const { join } = require('node:path');
const dist = process.argv[1];
require(join(dist, 'src', 'index.js'));
for (const f of readdirSync(join(dist, 'src', 'functions')).filter((f) => f.endsWith('.js'))) require(join(dist, 'src', 'functions', f));
const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
// @azure/functions prints to stdout when it loads: mark our line.
process.stdout.write('\\n@@cold-start@@' + JSON.stringify({ loadMs, sinceProcessStartMs: process.uptime() * 1000, modules: Object.keys(require.cache).length }) + '\\n');
`;

interface ColdStart {
  runs: number;
  loadMs: { median: number; min: number; max: number; all: number[] };
  processWallMs: { median: number; min: number; max: number };
  modules: number;
}

async function coldStart(runs: number): Promise<ColdStart | undefined> {
  if (runs < 1) return undefined;
  const loads: number[] = [];
  const walls: number[] = [];
  let modules = 0;
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    const out = await new Promise<string>((resolvePromise, reject) => {
      const child = spawn(process.execPath, ['-e', COLD_PROBE, DIST], { stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: process.env.PATH ?? '' } });
      let text = '';
      child.stdout.on('data', (c: Buffer) => (text += c.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolvePromise(text) : reject(new Error(`cold-start probe exited with ${code}`))));
    });
    walls.push(Number(process.hrtime.bigint() - started) / 1e6);
    const line = out.split('\n').find((l) => l.startsWith('@@cold-start@@'));
    if (!line) throw new Error(`cold-start probe printed no figures: ${out}`);
    const probe = JSON.parse(line.slice('@@cold-start@@'.length)) as { loadMs: number; modules: number };
    loads.push(probe.loadMs);
    modules = probe.modules;
  }
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { median: round(s[Math.floor(s.length / 2)]), min: round(s[0]), max: round(s[s.length - 1]) };
  };
  return { runs, loadMs: { ...stats(loads), all: loads.map(round) }, processWallMs: stats(walls), modules };
}

// ---------------------------------------------------------------------------------------------------------

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    memoryGb: round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
  const result: Record<string, unknown> = { when: new Date().toISOString(), machine, options: { ...o, out: undefined } };

  if (o.daily) {
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const size = {
      users: Math.round(20_000 * o.scale),
      groups: Math.round(3_000 * o.scale),
      eligible: Math.round(50_000 * o.scale),
      active: Math.round(20_000 * o.scale),
      activationsPerDay: Math.round(o.activationsPerDay * o.scale),
      auditDays: 30,
    };
    say(`Generating the tenant (scale ${o.scale}: ${size.eligible} eligible, ${size.active} active, ${size.groups} groups)`);
    const genStarted = Date.now();
    const tenant = generateTenant({ seed: o.seed, now, ...size });
    const generateMs = Date.now() - genStarted;
    const bound = lowerBound(tenant, now, o);
    const tenantFacts = {
      ...size,
      eligibilitySchedules: tenant.eligibilitySchedules.length,
      assignmentSchedules: tenant.assignmentSchedules.length,
      groupEligibilitySchedules: tenant.groupEligibilitySchedules.length,
      auditEvents: tenant.directoryAudits.length,
      generateMs,
    };
    say(`  ${tenant.directoryAudits.length} audit events, ${bound.detail.groupsHoldingRoles} groups holding roles (${generateMs} ms)`);

    const scratch = await mkdtemp(join(tmpdir(), 'pim-bench-'));
    const stoppers: Array<() => Promise<void>> = [];
    try {
      const cert = await createTestCertificate(scratch);
      const azurite = await startAzurite({ location: join(scratch, 'azurite') });
      stoppers.push(() => azurite.stop());
      const graph = await startGraphSimulator({
        tenant,
        tls: cert,
        pageSize: o.pageSize,
        latencyMs: o.latencyMs,
        auditRateLimit: { requests: o.auditRequests, perMs: o.auditWindowMs },
        now: () => now,
      });
      stoppers.push(() => graph.stop());
      const identity = await startManagedIdentitySimulator();
      stoppers.push(() => identity.stop());
      const hook = join(scratch, 'usage-hook.js');
      const usageFile = join(scratch, 'usage.json');
      await writeFile(hook, USAGE_HOOK);
      await mkdir(dirname(o.out), { recursive: true });
      const logFile = o.out.replace(/\.json$/, '') + '.log';

      say(`Running: pim-reporter daily --now ${now.toISOString()} (latency ${o.latencyMs} ms, page ${o.pageSize}, audit ${o.auditRequests}/${o.auditWindowMs} ms)`);
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '',
        NODE_EXTRA_CA_CERTS: cert.certPath,
        GRAPH_ENDPOINT: graph.url,
        IDENTITY_ENDPOINT: identity.endpoint,
        IDENTITY_HEADER: identity.header,
        REPORTS_STORAGE_CONNECTION_STRING: azurite.connectionString,
        REPORTS_CONTAINER: CONTAINER,
        PIM_BENCH_USAGE_FILE: usageFile,
        TMPDIR: scratch,
      };
      const nodeArgs = [...(o.profile ? ['--cpu-prof', '--cpu-prof-dir', dirname(o.out)] : []), ...(process.env.PIM_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
      const child = await run(
        process.execPath,
        [...nodeArgs, '-r', hook, join(DIST, 'src', 'cli.js'), 'daily', '--now', now.toISOString()],
        env,
        logFile,
      );
      if (child.code !== 0) throw new Error(`pim-reporter daily exited with ${child.code}:\n${child.stderr.split('\n').slice(-15).join('\n')}`);
      const usage = JSON.parse(await readFile(usageFile, 'utf8')) as Usage;

      const day = now.toISOString().slice(0, 10).replace(/-/g, '/');
      const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER);
      const manifest = JSON.parse((await blobs.getBlockBlobClient(`daily/${day}/manifest.json`).downloadToBuffer()).toString('utf8')) as {
        files: Array<{ name: string; rows: number; bytes: number }>;
        runStartedUtc: string;
        runFinishedUtc: string;
        graph: { requests: number; retries: number; throttled: number; byEndpoint: Record<string, number> };
      };

      const http = graph.requests.filter((r) => !r.batched);
      const requests = http.length;
      const wallMs = child.wallMs;
      result.tenant = tenantFacts;
      result.lowerBound = bound;
      result.run = {
        wallMs: round(wallMs),
        jobMs: Date.parse(manifest.runFinishedUtc) - Date.parse(manifest.runStartedUtc),
        peakRssMb: round(usage.maxRssKb / 1024),
        sampledPeakMb: Object.fromEntries(Object.entries(usage.sampledPeak).map(([k, v]) => [k, round(v / 2 ** 20)])),
        cpuMs: { user: round(usage.userCpuUs / 1000), system: round(usage.systemCpuUs / 1000), total: round((usage.userCpuUs + usage.systemCpuUs) / 1000) },
        graph: {
          requests,
          throttled: http.filter((r) => r.status === 429).length,
          byEndpoint: countByEndpoint(http),
          batchedSubRequests: countByEndpoint(graph.requests.filter((r) => r.batched)),
          timelineMs: timeline(http, child.startedAt),
          reportedByProduct: manifest.graph,
        },
        files: manifest.files.map((f) => ({ name: f.name, rows: f.rows, bytes: f.bytes })),
      };
      result.ratios = {
        requests: round(requests / bound.requests.total, 3),
        wall: round(wallMs / bound.wallMs, 3),
      };
      result.targets = {
        peakRssUnder300Mb: usage.maxRssKb / 1024 < 300,
        requestsWithin10Percent: requests <= bound.requests.total * 1.1,
        wallWithin1_5x: wallMs <= bound.wallMs * 1.5,
      };
      say('');
      say(`Wall time      ${(wallMs / 1000).toFixed(2)} s   lower bound ${(bound.wallMs / 1000).toFixed(2)} s   ratio ${(wallMs / bound.wallMs).toFixed(2)}`);
      say(`Peak RSS       ${(usage.maxRssKb / 1024).toFixed(0)} MB`);
      say(`CPU time       ${((usage.userCpuUs + usage.systemCpuUs) / 1e6).toFixed(2)} s (user ${(usage.userCpuUs / 1e6).toFixed(2)}, system ${(usage.systemCpuUs / 1e6).toFixed(2)})`);
      say(`Graph requests ${requests}   lower bound ${bound.requests.total}   ratio ${(requests / bound.requests.total).toFixed(3)}`);
      for (const [k, v] of Object.entries(countByEndpoint(http))) say(`  ${String(v).padStart(6)}  ${k}`);
      say(`  lower bound: ${Object.entries(bound.requests).filter(([k]) => k !== 'total').map(([k, v]) => `${k} ${v}`).join(', ')}`);
      for (const [k, v] of Object.entries(timeline(http, child.startedAt))) {
        say(`  ${k.padEnd(52)} ${(v.first / 1000).toFixed(2)} s .. ${(v.last / 1000).toFixed(2)} s`);
      }
      say(`Rows           ${manifest.files.filter((f) => f.name.endsWith('.csv')).map((f) => `${f.name} ${f.rows}`).join(', ')}`);
      say(`Progress log   ${logFile}`);
    } finally {
      for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
      await rm(scratch, { recursive: true, force: true });
    }
  }

  if (o.coldRuns > 0) {
    say(`Cold start: requiring dist/src/index.js and dist/src/functions/*.js in ${o.coldRuns} fresh processes`);
    const cold = await coldStart(o.coldRuns);
    result.coldStart = cold;
    if (cold) say(`  load ${cold.loadMs.median} ms median (min ${cold.loadMs.min}, max ${cold.loadMs.max}), ${cold.modules} modules; process ${cold.processWallMs.median} ms`);
  }

  await mkdir(dirname(o.out), { recursive: true });
  await writeFile(o.out, `${JSON.stringify(result, null, 2)}\n`);
  say(`Figures written to ${o.out}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
