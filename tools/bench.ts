/**
 * `npm run bench [-- --scale 2 --out bench-results/x.json]`: the daily job against a large simulated
 * tenant (docs/performance.md). The tenant, Azurite and the simulators run in this process (or its children);
 * the product runs as `node dist/src/cli.js daily --now …` in a child process of its own, so the
 * peak RSS and CPU time reported are the product's alone (read by a tiny preload hook through
 * `process.resourceUsage()` at exit).
 *
 * Printed and written as JSON: wall time, peak RSS, CPU time, Graph requests per endpoint, and the
 * lower bound the data allows with the ratio:
 *   - requests: the fewest pages each list needs at 999 a page (the `$top` the product asks of every
 *     list; the simulator serves 25 a page to a client that does not ask), group lists 20 to a
 *     `$batch`, administrative units 1000 ids to a getByIds, the audit log's approvals and
 *     completions as two queries, and the role settings (the roles' policies, one list, and the
 *     member policy of each group holding a highly privileged role, 20 to a `$batch`);
 *   - wall time: the longest chain of dependent requests at the simulated latency: the schedule
 *     lists page by page (nextLink), then one `$batch` round per page of the longest group list,
 *     alongside the audit log paged sequentially within its rate limit. It counts Graph only:
 *     process start, sorting and Blob writes are the product's overhead against it.
 * The simulated latency of a request counts from its arrival to its answer (the simulators wait only
 * what is left of it once the page is built and serialized, as a real server's latency includes its
 * own work), so on these shared cores the simulators add no time of their own on top of it unless a
 * request's work outlasts the latency. The "measured" lower bound times the same chains with what
 * one request really takes here (a bare client times the simulator first). `--repeat N` runs the job
 * N times and reports the median run.
 * And the cold start: the time to require the Functions entry modules in a fresh process.
 * PIM_BENCH_NODE_ARGS adds node options to the product's process (e.g. `--max-old-space-size=160`).
 * This process (the simulators, which hold the whole tenant) runs with semi-spaces of 64 MB
 * (`npm run bench` passes `--max-semi-space-size=64`; the young generation is three of them:
 * https://nodejs.org/api/cli.html#--max-semi-space-sizesize-in-mib): with the default, its
 * collections copied the pages it had just rendered, and the simulators took 7.5 s of CPU beside a
 * run at twice the size, on the cores the product needs (4.4 s with it; docs/performance.md). The
 * product's own process keeps Node's defaults.
 *
 * Stored history (`--history-days N`, default 90; 0: off, a first run on an empty store): before the
 * measured run, the product's own daily job runs against the same simulated tenant at `now - 1 day`,
 * `now - 31 days`, … (the simulator's clock moved with it), 30 days apart, so the oldest, a first run,
 * harvests the 30 days before it and each later one the 30 days since the last: what the app itself
 * keeps under `state/` (month files, run-day files, watermark, the last run day's manifest and
 * snapshot) then covers at least N days before `now`, written by the product's code, never by the
 * bench. The tenant's audit log then spans those days too (same activations a day). The measured run
 * is then the day after yesterday's run: it harvests from the watermark less the overlap (two days,
 * not 30), and reads the whole stored window to list the unused eligibilities. The audit log's lower
 * bound counts the events of the window that run reads (`activationsWindow` of src/history on the
 * seeded watermark), not 30 days; the other lists are a first run's. Seeding time is printed apart.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BlobServiceClient } from '@azure/storage-blob';
import { simulatedAppSettings } from './app-env';
import { startAzurite } from './azurite';
import { createTestCertificate } from './certs';
import { startGraphSimulator, type GraphRequestRecord } from './graph-simulator';
import { fakeAccessToken, startManagedIdentitySimulator } from './msi-simulator';
import { startArmSimulator } from './arm-simulator';
import { generateAzureEstate } from './tenant/azure';
import { generateTenant, transitiveMemberIds } from './tenant/generate';
import type { SimTenant } from './tenant/model';
import { timeKey } from './tenant/time';
import { CISA_PRIVILEGED_ROLE_IDS } from '../src/pim/roles';
import { DEFAULT_MAX_CONCURRENT as ARM_IN_FLIGHT } from '../src/arm/client';
import { activationsWindow, type Watermark } from '../src/history';

const ROOT = resolve(__dirname, '..', '..');
const DIST = resolve(__dirname, '..');
const CONTAINER = 'pim-reports';
const ARCHIVE = 'pim-archive';
const ACTIVATION_COMPLETED = 'Add member to role completed (PIM activation)';
const ACTIVATION_APPROVED = 'Add member to role request approved (PIM activation)';
const DAY_MS = 86_400_000;
/** The page size a client may ask of every list ($top 1..999, as public tools send it to the PIM lists). */
const MEMBERS_TOP = 999;
const PIM_TOP = 999;
const AUDIT_TOP = 999;
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
  repeat: number;
  daily: boolean;
  profile: boolean;
  /** Subscriptions of the Azure estate read with AZURE_RESOURCE_SCOPES=root (0: Azure off). */
  azureSubscriptions: number;
  /** Days of the app's own stored history before the run (0: none, a first run). */
  historyDays: number;
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: 'string', default: '1' },
      out: { type: 'string' },
      latency: { type: 'string', default: '50' },
      'page-size': { type: 'string', default: '25' },
      'audit-window-ms': { type: 'string', default: '1000' },
      'activations-per-day': { type: 'string', default: '445' },
      seed: { type: 'string', default: 'bench' },
      'cold-runs': { type: 'string', default: '7' },
      repeat: { type: 'string', default: '1' },
      'cold-only': { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'azure-subscriptions': { type: 'string', default: '500' },
      'history-days': { type: 'string', default: '90' },
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
        '  --latency MS              simulated Graph latency per request (default 50)',
        '  --page-size N             page size the simulator serves the PIM lists without $top (default 25)',
        '  --audit-window-ms MS      the audit log allows 5 requests per this window (default 1000: 10 s scaled down 10x)',
        '  --activations-per-day N   completed activations per day at scale 1 (default 445: ~100,000 audit events in 30 days)',
        '  --repeat N                run the daily job N times (each a first run) and report the median (default 1)',
        '  --cold-runs N             fresh processes for the cold-start measurement (default 7)',
        '  --cold-only               measure the cold start only',
        '  --profile                 write a V8 CPU profile of the product next to the figures',
        '  --azure-subscriptions N   subscriptions of the Azure estate (PIM for Azure resources at root; default 500, 0: off)',
        "  --history-days N          days of stored history the product's own earlier daily runs leave before the run (default 90: UNUSED_AFTER_DAYS; 0: off, a first run)",
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
    repeat: Math.max(1, Math.round(num('repeat', values.repeat, 1))),
    daily: !values['cold-only'],
    profile: Boolean(values.profile),
    azureSubscriptions: num('azure-subscriptions', values['azure-subscriptions'], 0),
    historyDays: Math.round(num('history-days', values['history-days'], 0)),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The lower bound the data allows
// ---------------------------------------------------------------------------------------------------------

interface LowerBound {
  requests: Record<string, number> & { total: number };
  wallMs: number;
  shape: Shape;
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
  const direct = [...tenant.eligibilitySchedules, ...tenant.assignmentSchedules].filter(
    (s) => s.memberType === 'Direct',
  );
  const roleGroups = new Set(direct.filter((s) => groupsById.has(s.principalId)).map((s) => s.principalId));
  const eligibleByGroup = new Map<string, number>();
  for (const s of tenant.groupEligibilitySchedules)
    eligibleByGroup.set(s.groupId, (eligibleByGroup.get(s.groupId) ?? 0) + 1);
  let subRequests = 0;
  let deepest = 0;
  let members = 0;
  for (const id of roleGroups) {
    const m = transitiveMemberIds(groupsById, id).size;
    members += m;
    const memberPages = pages(m, MEMBERS_TOP);
    const eligiblePages = pages(eligibleByGroup.get(id) ?? 0, PIM_TOP);
    subRequests += memberPages + eligiblePages;
    deepest = Math.max(deepest, memberPages, eligiblePages);
  }
  const auScopes = new Set(direct.map((s) => s.directoryScopeId).filter((s) => s.startsWith('/administrativeUnits/')));
  const from = timeKey(new Date(now.getTime() - 30 * DAY_MS).toISOString())!;
  const to = timeKey(now.toISOString())!;
  // The product asks the audit log twice, by name: the approvals, then the completions.
  let auditMatches = 0;
  let approvalMatches = 0;
  for (const a of tenant.directoryAudits) {
    if (a.loggedByService !== 'PIM') continue;
    const completed = a.activityDisplayName === ACTIVATION_COMPLETED;
    if (!completed && a.activityDisplayName !== ACTIVATION_APPROVED) continue;
    const k = timeKey(a.activityDateTime);
    if (k && k >= from && k <= to) {
      if (completed) auditMatches++;
      else approvalMatches++;
    }
  }

  // Role settings: the roles' policies (one list) and the member policy of each group that holds a
  // highly privileged role through a schedule of its own, 20 to a `$batch` (src/pim/roleSettings.ts).
  const privilegedGroups = new Set(
    direct
      .filter((s) => groupsById.has(s.principalId) && CISA_PRIVILEGED_ROLE_IDS.has(s.roleDefinitionId.toLowerCase()))
      .map((s) => s.principalId),
  );
  const requests = {
    // Asked without $top, which live tenants refuse on this list (src/pim/roleNames.ts): the server's pages.
    roleDefinitions: pages(tenant.roleDefinitions.length, o.pageSize),
    roleManagementPolicyAssignments: 1,
    roleSettingsGroupBatches: Math.ceil(privilegedGroups.size / BATCH_LIMIT),
    roleEligibilitySchedules: pages(tenant.eligibilitySchedules.length, PIM_TOP),
    roleAssignmentSchedules: pages(tenant.assignmentSchedules.length, PIM_TOP),
    $batch: roleGroups.size ? Math.ceil(subRequests / BATCH_LIMIT) : 0,
    getByIds: Math.ceil(auScopes.size / GET_BY_IDS_LIMIT),
    directoryAudits: pages(approvalMatches, AUDIT_TOP) + pages(auditMatches, AUDIT_TOP),
    total: 0,
  };
  requests.total = Object.entries(requests).reduce((sum, [k, v]) => (k === 'total' ? sum : sum + v), 0);

  const shape = {
    listPages: Math.max(requests.roleDefinitions, requests.roleEligibilitySchedules, requests.roleAssignmentSchedules),
    batchRounds: roleGroups.size ? deepest : 0,
    auditPages: requests.directoryAudits,
  };
  const L = o.latencyMs;
  const wall = wallBound(shape, { page: L, batch: L, audit: L }, o);
  return {
    requests,
    wallMs: wall.wallMs,
    shape,
    detail: {
      snapshotChainMs: wall.snapshotMs,
      auditChainMs: wall.auditMs,
      groupsHoldingRoles: roleGroups.size,
      groupsHoldingPrivilegedRoles: privilegedGroups.size,
      groupSubRequests: subRequests,
      transitiveMembers: members,
      administrativeUnitScopes: auScopes.size,
      auditEventsMatchingFilter: auditMatches,
      approvalEventsMatchingFilter: approvalMatches,
    },
  };
}

interface Shape {
  /** Pages of the longest schedule list: a chain of dependent requests (each needs the last one's nextLink). */
  listPages: number;
  /** `$batch` rounds after the lists: one per page of the longest group list. */
  batchRounds: number;
  auditPages: number;
}

/** The longest chain of dependent requests, given how long each kind of request takes. */
function wallBound(shape: Shape, ms: { page: number; batch: number; audit: number }, o: BenchOptions) {
  const snapshotMs = shape.listPages * ms.page + shape.batchRounds * ms.batch;
  const auditMs = rateLimitedChainMs(shape.auditPages, ms.audit, o.auditRequests, o.auditWindowMs);
  return {
    snapshotMs: Math.round(snapshotMs),
    auditMs: Math.round(auditMs),
    wallMs: Math.round(Math.max(snapshotMs, auditMs)),
  };
}

/**
 * What one request really takes here (the simulated latency, which includes the simulator's own
 * work unless that outlasts it, plus TLS and the loopback), measured by a bare client in a fresh process: a schedules page with its principals,
 * a page of 1,000 audit events, a `$batch` of 20 group lists. The "measured" lower bound uses these.
 */
const CALIBRATE = `
const { base, token, eligible, audit, batch } = JSON.parse(process.env.PIM_BENCH_CALIBRATE);
const headers = { authorization: 'Bearer ' + token, 'content-type': 'application/json' };
const time = async (n, send) => {
  await send(); // warm: connection, TLS, server caches
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await send();
  return Number(process.hrtime.bigint() - t0) / 1e6 / n;
};
(async () => {
  let next = base + eligible;
  const page = await time(30, async () => {
    const body = await (await fetch(next, { headers })).json();
    next = body['@odata.nextLink'] ?? base + eligible;
  });
  const auditMs = await time(3, async () => { const r = await fetch(base + audit, { headers }); if (!r.ok) throw new Error('audit ' + r.status); await r.arrayBuffer(); });
  const batchMs = await time(5, async () => { await (await fetch(base + '/v1.0/$batch', { method: 'POST', headers, body: JSON.stringify(batch) })).arrayBuffer(); });
  process.stdout.write(JSON.stringify({ page, batch: batchMs, audit: auditMs }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

async function calibrate(
  graphUrl: string,
  tenant: SimTenant,
  now: Date,
  env: Record<string, string>,
): Promise<{ page: number; batch: number; audit: number }> {
  const groupIds = new Set(tenant.groups.map((g) => g.id));
  const held = [
    ...new Set(tenant.eligibilitySchedules.filter((s) => groupIds.has(s.principalId)).map((s) => s.principalId)),
  ].slice(0, 10);
  const batch = {
    requests: held.flatMap((id, i) => [
      {
        id: `m${i}`,
        method: 'GET',
        url: `/groups/${id}/transitiveMembers?$select=id,displayName,userPrincipalName,appId&$top=999`,
      },
      {
        id: `e${i}`,
        method: 'GET',
        url: `/identityGovernance/privilegedAccess/group/eligibilitySchedules?$filter=${encodeURIComponent(`groupId eq '${id}'`)}&$expand=principal&$top=${PIM_TOP}`,
      },
    ]),
  };
  const odata = (t: Date) => t.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const filter = `loggedByService eq 'PIM' and activityDisplayName eq '${ACTIVATION_COMPLETED}' and activityDateTime ge ${odata(new Date(now.getTime() - 30 * DAY_MS))} and activityDateTime le ${odata(now)}`;
  const input = {
    base: graphUrl,
    // Its own identity: the audit log's rate limit is per app and tenant, and the product's must start fresh.
    token: fakeAccessToken({ aud: 'https://graph.microsoft.com', oid: '0bench00-0000-4000-8000-calibration0' }).token,
    eligible: `/v1.0/roleManagement/directory/roleEligibilitySchedules?$expand=principal&$top=${PIM_TOP}`,
    audit: `/v1.0/auditLogs/directoryAudits?$filter=${encodeURIComponent(filter)}&$orderby=${encodeURIComponent('activityDateTime asc')}&$top=${AUDIT_TOP}`,
    batch,
  };
  const out = await new Promise<string>((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['-e', CALIBRATE], {
      env: { ...env, PIM_BENCH_CALIBRATE: JSON.stringify(input) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolvePromise(text) : reject(new Error(`calibration exited with ${code}`)),
    );
  });
  const measured = JSON.parse(out) as { page: number; batch: number; audit: number };
  return { page: round(measured.page), batch: round(measured.batch), audit: round(measured.audit) };
}

// ---------------------------------------------------------------------------------------------------------
// Running the product
// ---------------------------------------------------------------------------------------------------------

/** Preloaded into the product's process: its own resource usage at exit, and memory sampled as it runs. */
const USAGE_HOOK = `
const { writeFileSync } = require('node:fs');
const peak = { heapUsed: 0, external: 0, arrayBuffers: 0, rss: 0 };
const timeline = [];
let ticks = 0;
const mb = (n) => Math.round(n / 1048576);
const sample = () => {
  const m = process.memoryUsage();
  for (const k of Object.keys(peak)) if (m[k] > peak[k]) peak[k] = m[k];
  if (ticks++ % 5 === 0) timeline.push([Math.round(process.uptime() * 1000), mb(m.rss), mb(m.heapUsed), mb(m.arrayBuffers)]);
};
setInterval(sample, 100).unref();
process.on('exit', () => {
  sample();
  const u = process.resourceUsage();
  writeFileSync(process.env.PIM_BENCH_USAGE_FILE, JSON.stringify({
    maxRssKb: u.maxRSS, userCpuUs: u.userCPUTime, systemCpuUs: u.systemCPUTime, uptimeMs: process.uptime() * 1000, sampledPeak: peak, timeline,
  }));
});
`;

interface Manifest {
  files: Array<{ name: string; rows: number; bytes: number }>;
  digest?: { unusedEligibilities: number; unusedComplete: boolean };
  activations?: { count: number };
  runStartedUtc: string;
  runFinishedUtc: string;
  graph: { requests: number; retries: number; throttled: number; byEndpoint: Record<string, number> };
}

/** A process's CPU time so far (user + system), from /proc (Linux); 0 where that cannot be read. */
async function processCpuMs(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) in brackets: utime and stime are the 12th and
    // 13th, in clock ticks, 100 a second on Linux (`getconf CLK_TCK`;
    // https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

interface RunFigures {
  wallMs: number;
  /** PIM for Azure resources: what the product asked of ARM (absent when off). */
  arm?: {
    requests: number;
    throttled: number;
    lowerBound: number;
    chainRequests: number;
    scopes: number;
    incomplete: boolean;
    firstMs: number | null;
    lastMs: number | null;
  };
  jobMs: number;
  peakRssMb: number;
  liveHeapAfterFullGcMb: number | null;
  cpuMs: { user: number; system: number; total: number };
  /** CPU of the simulators (the bench's own process) and of Azurite during the run. */
  othersCpuMs: { simulators: number; azurite: number };
  sampledPeakMb: Record<string, number>;
  memoryTimeline: string;
  memory: number[][];
  graph: {
    requests: number;
    throttled: number;
    byEndpoint: Record<string, number>;
    batchedSubRequests: Record<string, number>;
    timelineMs: Record<string, { first: number; last: number; count: number }>;
    reportedByProduct: Manifest['graph'];
  };
  files: Array<{ name: string; rows: number; bytes: number }>;
  /** The unused eligibilities the run listed (manifest, digest.txt), against the eligible rows. */
  unused: { rows: number; complete: boolean; digestCount: number | null; eligibleRows: number };
  /** Monthly packs this run wrote (with stored history, the month just ended once sealed). */
  monthlyPacksWritten: string[];
}

interface Usage {
  maxRssKb: number;
  userCpuUs: number;
  systemCpuUs: number;
  uptimeMs: number;
  sampledPeak: { heapUsed: number; external: number; arrayBuffers: number; rss: number };
  /** [ms since start, rss MB, heap used MB, array buffers MB] every 500 ms. */
  timeline: number[][];
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

/** The largest heap left after a full collection (`Mark-Compact a (b) -> c (d) MB` lines of --trace-gc). */
function liveHeapMb(output: string): number | null {
  let max: number | null = null;
  for (const m of output.matchAll(/Mark-Compact [\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/g))
    max = Math.max(max ?? 0, Number(m[1]));
  return max;
}

/** When each endpoint was first and last called, in ms from the product's start: where the time went. */
function timeline(
  records: GraphRequestRecord[],
  startedAt: number,
): Record<string, { first: number; last: number; count: number }> {
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
// Stored history
// ---------------------------------------------------------------------------------------------------------

/** Daily runs 30 days apart (the audit log's retention) whose harvests cover `days` before the run's day. */
export function seedingRunsFor(days: number): number {
  return Math.max(1, Math.ceil((days - 1) / 30));
}

/** When the seeding runs happen, oldest first: yesterday, and every 30 days before it. */
export function seedingTimes(now: Date, days: number): Date[] {
  const n = seedingRunsFor(days);
  return Array.from({ length: n }, (_, k) => new Date(now.getTime() - DAY_MS - (n - 1 - k) * 30 * DAY_MS));
}

interface Seeding {
  ms: number;
  runs: Array<{ nowUtc: string; wallMs: number; activations: number }>;
  /** Activations the seeding runs harvested (each audit id once: the runs' windows overlap by de-duplicated hours only). */
  activations: number;
  watermark: Watermark;
}

/**
 * The app's own history, as the app writes it: its daily job run at each of `times` with the
 * simulator's clock there (the audit log's 30 days move with it), each after the last, on the
 * run's container. Then the clock is back at `now`.
 */
async function seedHistory(args: {
  graph: { setNow(now: () => Date): void; resetRateLimits(): void };
  now: Date;
  times: Date[];
  env: Record<string, string>;
  connectionString: string;
  container: string;
  logFile: string;
}): Promise<Seeding> {
  const started = Date.now();
  const blobs = BlobServiceClient.fromConnectionString(args.connectionString).getContainerClient(args.container);
  const runs: Seeding['runs'] = [];
  let log = '';
  try {
    for (const at of args.times) {
      args.graph.setNow(() => at);
      args.graph.resetRateLimits();
      const child = await run(
        process.execPath,
        [join(DIST, 'src', 'cli.js'), 'daily', '--now', at.toISOString()],
        args.env,
      );
      log += child.stderr;
      if (child.code !== 0)
        throw new Error(
          `seeding: pim-reporter daily --now ${at.toISOString()} exited with ${child.code}:\n${child.stderr.split('\n').slice(-15).join('\n')}`,
        );
      const day = at.toISOString().slice(0, 10).replace(/-/g, '/');
      const manifest = JSON.parse(
        (await blobs.getBlockBlobClient(`daily/${day}/manifest.json`).downloadToBuffer()).toString('utf8'),
      ) as Manifest;
      runs.push({
        nowUtc: at.toISOString(),
        wallMs: round(child.wallMs),
        activations: manifest.activations?.count ?? 0,
      });
    }
  } finally {
    args.graph.setNow(() => args.now);
    args.graph.resetRateLimits();
    await writeFile(args.logFile, log);
  }
  const watermark = JSON.parse(
    (await blobs.getBlockBlobClient('state/activations-watermark.json').downloadToBuffer()).toString('utf8'),
  ) as Watermark;
  return {
    ms: Date.now() - started,
    runs,
    activations: runs.reduce((n, r) => n + r.activations, 0),
    watermark,
  };
}

/** The months whose pack is complete in `container`. */
async function monthlyPacks(connectionString: string, container: string): Promise<string[]> {
  const client = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container);
  if (!(await client.exists())) return [];
  const months: string[] = [];
  for await (const b of client.listBlobsFlat({ prefix: 'monthly/' }))
    if (b.name.endsWith('/manifest.json')) months.push(b.name.slice('monthly/'.length, -'/manifest.json'.length));
  return months;
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
      const child = spawn(process.execPath, ['-e', COLD_PROBE, DIST], {
        stdio: ['ignore', 'pipe', 'ignore'],
        env: { PATH: process.env.PATH ?? '' },
      });
      let text = '';
      child.stdout.on('data', (c: Buffer) => (text += c.toString()));
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0 ? resolvePromise(text) : reject(new Error(`cold-start probe exited with ${code}`)),
      );
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
  const result: Record<string, unknown> = {
    when: new Date().toISOString(),
    machine,
    options: { ...o, out: undefined },
  };

  if (o.daily) {
    let now = new Date(Math.floor(Date.now() / 1000) * 1000);
    // A daily run on the 2nd (UTC) after one on the 1st also seals and packs the month just ended
    // (src/jobs/daily.ts, archiveSealedMonth): a second snapshot, the monthly job's work, not the
    // daily run's. With stored history the measured run follows a seeded one, so it is moved back to
    // the last day of the month before.
    if (o.historyDays > 0 && now.getUTCDate() === 2) {
      now = new Date(now.getTime() - 2 * DAY_MS);
      say(`The 2nd of the month would pack the month just ended: the run is dated ${now.toISOString()} instead`);
    }
    const size = {
      users: Math.round(20_000 * o.scale),
      groups: Math.round(3_000 * o.scale),
      eligible: Math.round(50_000 * o.scale),
      active: Math.round(20_000 * o.scale),
      activationsPerDay: Math.round(o.activationsPerDay * o.scale),
      // With stored history, the audit log spans it too: the earlier runs harvested it from there.
      auditDays: o.historyDays > 0 ? 1 + 30 * seedingRunsFor(o.historyDays) : 30,
    };
    say(
      `Generating the tenant (scale ${o.scale}: ${size.eligible} eligible, ${size.active} active, ${size.groups} groups)`,
    );
    const genStarted = Date.now();
    const tenant = generateTenant({ seed: o.seed, now, ...size });
    const generateMs = Date.now() - genStarted;
    let bound = lowerBound(tenant, now, o);
    const tenantFacts = {
      ...size,
      eligibilitySchedules: tenant.eligibilitySchedules.length,
      assignmentSchedules: tenant.assignmentSchedules.length,
      groupEligibilitySchedules: tenant.groupEligibilitySchedules.length,
      auditEvents: tenant.directoryAudits.length,
      generateMs,
    };
    say(
      `  ${tenant.directoryAudits.length} audit events, ${bound.detail.groupsHoldingRoles} groups holding roles (${generateMs} ms)`,
    );

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
        // Reuse connections as against Graph (at the default 2 s, Node's fetch reconnects every request).
        keepAliveMs: 10_000,
      });
      stoppers.push(() => graph.stop());
      const identity = await startManagedIdentitySimulator();
      stoppers.push(() => identity.stop());
      // PIM for Azure resources: an estate under the tenant root group, read alongside the Entra snapshot.
      const estate =
        o.azureSubscriptions > 0
          ? generateAzureEstate(tenant, {
              seed: o.seed,
              now,
              tenantId: identity.tenantId,
              managementGroups: Math.max(3, Math.round(o.azureSubscriptions / 25)),
              subscriptions: o.azureSubscriptions,
              eligiblePerSubscription: 6,
              activePerSubscription: 4,
              requestsPerSubscription: 6,
            })
          : undefined;
      const arm = estate
        ? await startArmSimulator({ estate, tls: cert, pageSize: 100, latencyMs: o.latencyMs, now: () => now })
        : undefined;
      if (arm) stoppers.push(() => arm.stop());
      if (estate)
        say(
          `  Azure estate: ${estate.managementGroups.length} management groups, ${estate.subscriptions.length} subscriptions, ${estate.eligibility.length} eligible and ${estate.assignments.length} active schedules, ${estate.requests.length} requests`,
        );
      const hook = join(scratch, 'usage-hook.js');
      const usageFile = join(scratch, 'usage.json');
      await writeFile(hook, USAGE_HOOK);
      await mkdir(dirname(o.out), { recursive: true });
      const logFile = o.out.replace(/\.json$/, '') + '.log';

      say(
        `Running: pim-reporter daily --now ${now.toISOString()} (latency ${o.latencyMs} ms, page ${o.pageSize}, audit ${o.auditRequests}/${o.auditWindowMs} ms)`,
      );
      const env: Record<string, string> = {
        ...simulatedAppSettings({
          certPath: cert.certPath,
          graphUrl: graph.url,
          identity,
          storageConnectionString: azurite.connectionString,
          reportsContainer: CONTAINER,
        }),
        PIM_BENCH_USAGE_FILE: usageFile,
        TMPDIR: scratch,
        ...(arm ? { AZURE_RESOURCE_SCOPES: 'root', ARM_ENDPOINT: arm.url } : {}),
      };
      // --trace-gc: the heap left after each full collection is the live set (RSS also holds garbage V8 has not collected yet).
      const nodeArgs = [
        '--trace-gc',
        ...(o.profile ? ['--cpu-prof', '--cpu-prof-dir', dirname(o.out)] : []),
        ...(process.env.PIM_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
      ];
      // Each run's container (one per repeat) is seeded first, then the clock is put back to `now`.
      const containerOf = (i: number) => (o.repeat > 1 ? `${CONTAINER}-${i + 1}` : CONTAINER);
      const archiveOf = (i: number) => (o.repeat > 1 ? `${ARCHIVE}-${i + 1}` : ARCHIVE);
      let seeding: Seeding | undefined;
      if (o.historyDays > 0) {
        for (let i = 0; i < o.repeat; i++) {
          say(
            `Seeding ${o.historyDays} days of stored history into ${containerOf(i)}: the product's daily job at ${seedingTimes(
              now,
              o.historyDays,
            )
              .map((t) => t.toISOString().slice(0, 10))
              .join(', ')}`,
          );
          const seeded = await seedHistory({
            graph,
            now,
            times: seedingTimes(now, o.historyDays),
            // Entra only: the Azure estate is read by the measured run alone, as without history.
            env: {
              ...Object.fromEntries(
                Object.entries(env).filter(([k]) => k !== 'AZURE_RESOURCE_SCOPES' && k !== 'ARM_ENDPOINT'),
              ),
              REPORTS_CONTAINER: containerOf(i),
              ARCHIVE_CONTAINER: archiveOf(i),
            },
            connectionString: azurite.connectionString,
            container: containerOf(i),
            logFile: logFile.replace(/\.log$/, `-seeding${o.repeat > 1 ? `-${i + 1}` : ''}.log`),
          });
          say(
            `  ${seeded.activations} activations harvested by ${seeded.runs.length} runs, history since ${seeded.watermark.coverageStartUtc} (${(seeded.ms / 1000).toFixed(1)} s)`,
          );
          seeding ??= seeded;
          if (i > 0) seeding.ms += seeded.ms;
        }
        // The audit log's bound: the events of the window the measured run reads, as the product works it out.
        const { window } = activationsWindow(seeding!.watermark, now);
        const from = timeKey(window!.from.toISOString())!;
        bound = lowerBound(
          {
            ...tenant,
            directoryAudits: tenant.directoryAudits.filter((a) => (timeKey(a.activityDateTime) ?? '') >= from),
          },
          now,
          o,
        );
        result.history = {
          days: o.historyDays,
          seedingMs: seeding!.ms,
          runs: seeding!.runs,
          activations: seeding!.activations,
          historySinceUtc: seeding!.watermark.coverageStartUtc,
          harvestedThroughUtc: seeding!.watermark.harvestedThroughUtc,
          measuredRunWindow: { fromUtc: window!.from.toISOString(), toUtc: now.toISOString() },
        };
      }

      say('Calibrating: what one request takes here, by a bare client (schedules page, audit page, $batch)');
      const perRequest = await calibrate(graph.url, tenant, now, {
        PATH: env.PATH,
        NODE_EXTRA_CA_CERTS: env.NODE_EXTRA_CA_CERTS,
      });
      graph.resetRateLimits();
      const measuredBound = wallBound(bound.shape, perRequest, o);
      say(
        `  ${perRequest.page} ms a schedules page, ${perRequest.audit} ms an audit page, ${perRequest.batch} ms a $batch (latency ${o.latencyMs} ms)`,
      );
      result.tenant = tenantFacts;
      result.lowerBound = { ...bound, measured: { perRequestMs: perRequest, ...measuredBound } };

      // Each repeat writes into a container of its own: a first run (a 30-day harvest), or with
      // stored history the day after its container's seeding runs.
      const runs: RunFigures[] = [];
      for (let i = 0; i < o.repeat; i++) {
        if (o.repeat > 1) say(`Run ${i + 1} of ${o.repeat}`);
        graph.resetRateLimits();
        const container = containerOf(i);
        const packsBefore = seeding ? await monthlyPacks(azurite.connectionString, archiveOf(i)) : [];
        const firstRequest = graph.requests.length;
        const firstArmRequest = arm?.requests.length ?? 0;
        const benchCpuBefore = process.cpuUsage();
        const azuriteCpuBefore = await processCpuMs(azurite.pid);
        const child = await run(
          process.execPath,
          [...nodeArgs, '-r', hook, join(DIST, 'src', 'cli.js'), 'daily', '--now', now.toISOString()],
          { ...env, REPORTS_CONTAINER: container, ...(seeding ? { ARCHIVE_CONTAINER: archiveOf(i) } : {}) },
          o.repeat > 1 ? logFile.replace(/\.log$/, `-${i + 1}.log`) : logFile,
        );
        if (child.code !== 0)
          throw new Error(
            `pim-reporter daily exited with ${child.code}:\n${child.stderr.split('\n').slice(-15).join('\n')}`,
          );
        // What the rest of the machine spent meanwhile: the simulators (this process) and Azurite share
        // the two cores with the product, so their CPU is time the product could not have.
        const benchCpu = process.cpuUsage(benchCpuBefore);
        const othersCpuMs = {
          simulators: round((benchCpu.user + benchCpu.system) / 1000),
          azurite: round((await processCpuMs(azurite.pid)) - azuriteCpuBefore),
        };
        const usage = JSON.parse(await readFile(usageFile, 'utf8')) as Usage;
        const day = now.toISOString().slice(0, 10).replace(/-/g, '/');
        const blobs = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(container);
        const manifest = JSON.parse(
          (await blobs.getBlockBlobClient(`daily/${day}/manifest.json`).downloadToBuffer()).toString('utf8'),
        ) as Manifest;
        const unusedRows = manifest.files.find((f) => f.name === 'unused-eligibilities.csv')?.rows ?? 0;
        const digestText = (await blobs.getBlockBlobClient(`daily/${day}/digest.txt`).downloadToBuffer()).toString(
          'utf8',
        );
        const digestUnused = /^Eligible but unused \((\d+)\)$/m.exec(digestText);
        const packed = seeding
          ? (await monthlyPacks(azurite.connectionString, archiveOf(i))).filter((m) => !packsBefore.includes(m))
          : [];
        const productRequests = graph.requests.slice(firstRequest);
        const http = productRequests.filter((r) => !r.batched);
        runs.push({
          wallMs: round(child.wallMs),
          jobMs: Date.parse(manifest.runFinishedUtc) - Date.parse(manifest.runStartedUtc),
          peakRssMb: round(usage.maxRssKb / 1024),
          liveHeapAfterFullGcMb: liveHeapMb(child.stderr),
          cpuMs: {
            user: round(usage.userCpuUs / 1000),
            system: round(usage.systemCpuUs / 1000),
            total: round((usage.userCpuUs + usage.systemCpuUs) / 1000),
          },
          othersCpuMs,
          sampledPeakMb: Object.fromEntries(Object.entries(usage.sampledPeak).map(([k, v]) => [k, round(v / 2 ** 20)])),
          memoryTimeline: '[ms since start, rss MB, heapUsed MB, arrayBuffers MB] every 500 ms',
          memory: usage.timeline,
          graph: {
            requests: http.length,
            throttled: http.filter((r) => r.status === 429).length,
            byEndpoint: countByEndpoint(http),
            batchedSubRequests: countByEndpoint(productRequests.filter((r) => r.batched)),
            timelineMs: timeline(http, child.startedAt),
            reportedByProduct: manifest.graph,
          },
          files: manifest.files.map((f) => ({ name: f.name, rows: f.rows, bytes: f.bytes })),
          arm:
            arm && estate
              ? armFigures(arm.requests.slice(firstArmRequest), estate, manifest, child.startedAt)
              : undefined,
          unused: {
            rows: unusedRows,
            complete: manifest.digest?.unusedComplete ?? false,
            digestCount: digestUnused ? Number(digestUnused[1]) : null,
            eligibleRows: manifest.files.find((f) => f.name === 'eligible-assignments.csv')?.rows ?? 0,
          },
          monthlyPacksWritten: packed,
        });
        const r = runs[runs.length - 1];
        if (packed.length > 0)
          say(`  this run also wrote the monthly pack of ${packed.join(', ')} (sealed today): a second snapshot`);
        say(
          `  wall ${(r.wallMs / 1000).toFixed(2)} s, peak RSS ${r.peakRssMb.toFixed(0)} MB, CPU ${(r.cpuMs.total / 1000).toFixed(2)} s, ${r.graph.requests} requests`,
        );
      }

      // The median run by wall time stands for the lot; every run is kept.
      const median = [...runs].sort((a, b) => a.wallMs - b.wallMs)[Math.floor(runs.length / 2)];
      const spread = (f: (r: RunFigures) => number) => {
        const xs = runs.map(f).sort((a, b) => a - b);
        return { min: xs[0], median: xs[Math.floor(xs.length / 2)], max: xs[xs.length - 1] };
      };
      const { wallMs, peakRssMb } = median;
      const requests = median.graph.requests;
      result.run = median;
      if (runs.length > 1) {
        result.spread = {
          wallMs: spread((r) => r.wallMs),
          peakRssMb: spread((r) => r.peakRssMb),
          cpuMs: spread((r) => r.cpuMs.total),
        };
        result.runs = runs.map(({ memory: _memory, ...rest }) => rest);
      }
      result.ratios = {
        requests: round(requests / bound.requests.total, 3),
        wall: round(wallMs / bound.wallMs, 3),
        wallMeasured: round(wallMs / measuredBound.wallMs, 3),
      };
      // With Azure on, the ARM reading runs beside Graph's: the bound is the longer of the two chains
      // (ARM's scope lists, read side by side, then the rest of its fewest requests as many in flight
      // as the product's ARM client allows, at the latency), and the Azure groups' two lists each,
      // 20 to a $batch, are Graph requests the Entra bound does not count (a group holding both an
      // Entra and an Azure role is expanded by each snapshot: counted twice, as the product does).
      const azureGroups = estate
        ? new Set(
            [...estate.eligibility, ...estate.assignments]
              .filter((x) => x.principal.type === 'Group')
              .map((x) => x.principal.id),
          ).size
        : 0;
      const requestBound = bound.requests.total + Math.ceil((2 * azureGroups) / BATCH_LIMIT);
      const wallBoundMs = Math.max(bound.wallMs, median.arm ? median.arm.chainRequests * o.latencyMs : 0);
      result.azureBound = estate ? { groups: azureGroups, requests: requestBound, wallMs: wallBoundMs } : undefined;
      result.targets = {
        ...(median.arm
          ? {
              armRequestsWithin10Percent: median.arm.requests <= median.arm.lowerBound * 1.1,
              azureComplete: median.arm.incomplete === false,
            }
          : {}),
        // The run read the stored history: the list is complete, has rows, and the digest shows them.
        ...(seeding
          ? {
              unusedComplete:
                median.unused.complete &&
                median.unused.rows > 0 &&
                median.unused.rows < median.unused.eligibleRows &&
                median.unused.digestCount === median.unused.rows,
            }
          : {}),
        peakRssUnder300Mb: peakRssMb < 300,
        requestsWithin10Percent: requests <= requestBound * 1.1,
        wallWithin1_5xPlus2s: wallMs <= wallBoundMs * 1.5 + 2000,
      };
      say('');
      if (runs.length > 1) say(`Median of ${runs.length} runs by wall time:`);
      say(
        `Wall time      ${(wallMs / 1000).toFixed(2)} s   lower bound ${(bound.wallMs / 1000).toFixed(2)} s   ratio ${(wallMs / bound.wallMs).toFixed(2)}`,
      );
      say(
        `               measured lower bound ${(measuredBound.wallMs / 1000).toFixed(2)} s   ratio ${(wallMs / measuredBound.wallMs).toFixed(2)}`,
      );
      say(
        `Peak RSS       ${peakRssMb.toFixed(0)} MB   (live heap after full GC at most ${median.liveHeapAfterFullGcMb ?? '?'} MB)`,
      );
      say(
        `CPU time       ${(median.cpuMs.total / 1000).toFixed(2)} s (user ${(median.cpuMs.user / 1000).toFixed(2)}, system ${(median.cpuMs.system / 1000).toFixed(2)})`,
      );
      say(
        `               meanwhile the bench's process (simulators) ${(median.othersCpuMs.simulators / 1000).toFixed(2)} s, Azurite ${(median.othersCpuMs.azurite / 1000).toFixed(2)} s (of ${((cpus().length * wallMs) / 1000).toFixed(1)} s on ${cpus().length} cores)`,
      );
      say(
        `Graph requests ${requests}   lower bound ${bound.requests.total}   ratio ${(requests / bound.requests.total).toFixed(3)}`,
      );
      for (const [k, v] of Object.entries(median.graph.byEndpoint)) say(`  ${String(v).padStart(6)}  ${k}`);
      say(
        `  lower bound: ${Object.entries(bound.requests)
          .filter(([k]) => k !== 'total')
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
      for (const [k, v] of Object.entries(median.graph.timelineMs)) {
        say(`  ${k.padEnd(52)} ${(v.first / 1000).toFixed(2)} s .. ${(v.last / 1000).toFixed(2)} s`);
      }
      if (median.arm) {
        say(
          `With Azure     Graph requests bound ${requestBound} (${azureGroups} Azure groups), wall bound ${(wallBoundMs / 1000).toFixed(2)} s`,
        );
        say(
          `ARM requests   ${median.arm.requests}   lower bound ${median.arm.lowerBound}   (${median.arm.throttled} throttled, ${median.arm.scopes} scopes)${median.arm.firstMs === null ? '' : `, ${(median.arm.firstMs / 1000).toFixed(2)} s .. ${(median.arm.lastMs! / 1000).toFixed(2)} s`}`,
        );
      }
      say(
        `Rows           ${median.files
          .filter((f) => f.name.endsWith('.csv'))
          .map((f) => `${f.name} ${f.rows}`)
          .join(', ')}`,
      );
      if (seeding)
        say(
          `History        ${o.historyDays} days seeded in ${(seeding.ms / 1000).toFixed(1)} s (not in the figures above): ${seeding.activations} activations since ${seeding.watermark.coverageStartUtc.slice(0, 10)}; unused ${median.unused.rows} of ${median.unused.eligibleRows} eligible rows (digest: ${median.unused.digestCount ?? 'no section'}, complete: ${median.unused.complete})`,
        );
      say(`Progress log   ${logFile}`);
    } finally {
      for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
      await rm(scratch, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    }
  }

  if (o.coldRuns > 0) {
    say(`Cold start: requiring dist/src/index.js and dist/src/functions/*.js in ${o.coldRuns} fresh processes`);
    const cold = await coldStart(o.coldRuns);
    result.coldStart = cold;
    if (cold)
      say(
        `  load ${cold.loadMs.median} ms median (min ${cold.loadMs.min}, max ${cold.loadMs.max}), ${cold.modules} modules; process ${cold.processWallMs.median} ms`,
      );
  }

  await mkdir(dirname(o.out), { recursive: true });
  await writeFile(o.out, `${JSON.stringify(result, null, 2)}\n`);
  say(`Figures written to ${o.out}`);
}

/** What the product asked of ARM, against the fewest requests: one page per list per scope (each holds under 100 rows), plus the subscriptions and descendants pages. */
function armFigures(
  records: Array<{ path: string; status: number; at: number }>,
  estate: { subscriptions: unknown[]; managementGroups: unknown[] },
  manifest: Manifest,
  startedAt: number,
) {
  const scopes = estate.subscriptions.length + estate.managementGroups.length;
  const listPages = (n: number) => Math.max(1, Math.ceil(n / 100));
  // Four lists a scope: eligibility and assignment schedules, assignment schedule instances (Outside PIM), requests.
  const scopePages = { subscriptions: listPages(estate.subscriptions.length + 1), descendants: listPages(scopes - 1) };
  const lowerBound = scopePages.subscriptions + scopePages.descendants + 4 * scopes;
  // Requests one after the other at best: the longer of the two scope lists (src/pim/azure.ts reads
  // them side by side; each page needs the last one's nextLink), then the lists of every scope, the
  // ARM client's cap on requests in flight at a time.
  const chainRequests =
    Math.max(scopePages.subscriptions, scopePages.descendants) + Math.ceil((4 * scopes) / ARM_IN_FLIGHT);
  const azure = (manifest as unknown as { azure?: { incomplete?: boolean } }).azure;
  return {
    requests: records.length,
    throttled: records.filter((r) => r.status === 429).length,
    lowerBound,
    chainRequests,
    scopes,
    incomplete: azure?.incomplete ?? true,
    /** When the first and the last ARM request arrived, ms after the product's start. */
    firstMs: records.length > 0 ? Math.min(...records.map((r) => r.at)) - startedAt : null,
    lastMs: records.length > 0 ? Math.max(...records.map((r) => r.at)) - startedAt : null,
  };
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
