/**
 * Shared by the fault-injection suite and the soak (docs/faults.md): a clock the Graph simulator follows,
 * new activations appended to a running tenant, and the invariants read back from Blob and ACS.
 */
import { createHash } from 'node:crypto';
import { activationEvents, type AuditContext } from '../../tools/tenant/audit';
import type { SimTenant } from '../../tools/tenant/model';
import { Rng } from '../../tools/tenant/random';
import { expectedActivations, parseCsv, type ActivationRow } from './expected';
import { leakedSecrets } from './secrets';
import { generateTenant } from '../../tools/tenant/generate';
import { records, startWorld, type World, type WorldOptions } from './world';

export const DAY_MS = 86_400_000;
export const HOUR_MS = 3_600_000;

export const dayOf = (at: Date | string) => new Date(at).toISOString().slice(0, 10);
export const addDays = (day: string, n: number) => dayOf(new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS));
export const at = (day: string, hour = 6) => `${day}T${String(hour).padStart(2, '0')}:00:00Z`;
export const folderOf = (day: string) => `daily/${day.replace(/-/g, '/')}/`;

/** A moment the simulator's audit retention follows (pass `clock.now` as the world's `now`). */
export class Clock {
  private current: Date;
  constructor(start: string | Date) {
    this.current = new Date(start);
  }
  readonly now = () => this.current;
  set(to: string | Date): Date {
    this.current = new Date(to);
    return this.current;
  }
}

/**
 * The small tenant the Blob, kill and overlap suites run days of (two activations a day), its world
 * on `clock` with the audit log unthrottled, and a feed of new activations for the days to come.
 */
export async function startSmallWorld(
  seed: string,
  clock: Clock,
  options: WorldOptions = {},
): Promise<{ world: World; feed: ActivationFeed }> {
  const tenant = generateTenant({
    seed,
    now: clock.now(),
    users: 15,
    groups: 2,
    eligible: 10,
    active: 6,
    auditDays: 31,
    activationsPerDay: 2,
  });
  const world = await startWorld(tenant, {
    auditRateLimit: { requests: 1000, perMs: 1000 },
    now: clock.now,
    ...options,
  });
  return { world, feed: new ActivationFeed(world, seed) };
}

/**
 * Completed Entra-role activations added to a tenant as time goes by, in Graph's own record shape
 * (tools/tenant/audit.ts: shuffled targets, 3 to 7 fractional digits, optional keys missing).
 */
export class ActivationFeed {
  private readonly rng: Rng;
  constructor(
    private readonly world: World,
    seed: string,
  ) {
    this.rng = new Rng(seed);
  }

  private get tenant(): SimTenant {
    return this.world.graph.tenant;
  }

  /** `count` activations spread over [from, to), published at once (setTenant rebuilds the indexes). */
  add(from: Date | string, to: Date | string, count: number): void {
    const lo = new Date(from).getTime();
    const hi = new Date(to).getTime();
    for (let i = 0; i < count; i++) this.push(new Date(this.rng.int(lo, hi - 1)));
    this.world.graph.setTenant(this.tenant);
  }

  private push(start: Date): void {
    const t = this.tenant;
    const user = this.rng.pick(t.users);
    const role = this.rng.pick(t.roleDefinitions);
    const ctx: AuditContext = {
      rng: this.rng,
      tenantId: t.tenantId,
      tenantName: t.displayName ?? 'Contoso',
      now: new Date(start.getTime() + 1),
    };
    t.directoryAudits.push(
      ...activationEvents(ctx, {
        principal: {
          id: user.id,
          displayName: user.displayName,
          userPrincipalName: user.userPrincipalName,
          kind: 'User',
        },
        role: { id: role.id, displayName: role.displayName, isBuiltIn: role.isBuiltIn },
        directoryScopeId: '/',
        requestedAt: new Date(start.getTime() - this.rng.int(2000, 50_000)),
        start,
        end: new Date(start.getTime() + this.rng.int(1, 8) * HOUR_MS),
        justification: this.rng.chance(0.2)
          ? '=HYPERLINK("http://evil","click")'
          : `Change CHG-${this.rng.int(1000, 9999)}`,
        requestId: this.rng.guid(),
      }),
    );
  }
}

export const DAILY_FILES = [
  'activations.csv',
  'eligible-assignments.csv',
  'active-assignments.csv',
  'role-settings.csv',
  'digest.html',
  'digest.txt',
];

/** Problems with a daily folder that has a manifest: every file it lists must exist with its SHA-256. */
export async function manifestProblems(world: World, container: string, folder: string): Promise<string[]> {
  const text = await world.read(container, `${folder}manifest.json`);
  if (text === undefined) return [`${folder}manifest.json is missing`];
  const manifest = JSON.parse(text) as { files: Array<{ name: string; sha256: string }> };
  const problems: string[] = [];
  // A daily manifest describes the whole day: the three CSVs and the digest.
  const required = folder.startsWith('daily/') ? DAILY_FILES : [];
  for (const name of required)
    if (!manifest.files.some((f) => f.name === name)) problems.push(`${folder}manifest.json does not list ${name}`);
  for (const file of manifest.files) {
    const blob = world.blobs.getContainerClient(container).getBlockBlobClient(`${folder}${file.name}`);
    if (!(await blob.exists())) {
      problems.push(`${folder}${file.name} is listed in the manifest but missing`);
      continue;
    }
    const sha = createHash('sha256')
      .update(await blob.downloadToBuffer())
      .digest('hex');
    if (sha !== file.sha256) problems.push(`${folder}${file.name} does not match its manifest`);
  }
  return problems;
}

/** The days whose daily folder is final (has manifest.json), sorted. */
export async function finalDays(world: World): Promise<string[]> {
  const names = await world.list(world.reports, 'daily/');
  return names
    .filter((n) => n.endsWith('/manifest.json'))
    .map((n) => n.slice('daily/'.length, -'/manifest.json'.length).replace(/\//g, '-'))
    .sort();
}

/** Activation rows of every final daily file, with the day each came from. */
export async function dailyActivations(world: World): Promise<Array<ActivationRow & { day: string }>> {
  const rows: Array<ActivationRow & { day: string }> = [];
  for (const day of await finalDays(world)) {
    for (const r of records(await world.csv(world.reports, `${folderOf(day)}activations.csv`)))
      rows.push({ ...(r as ActivationRow), day });
  }
  return rows;
}

/** Audit ids that appear more than once in `rows`. */
export function duplicates(rows: Array<Record<string, string>>): string[] {
  const seen = new Map<string, number>();
  for (const r of rows) seen.set(r['Audit Id'], (seen.get(r['Audit Id']) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([id]) => id);
}

/**
 * Every activation the tenant holds in [from, to) appears exactly once across the final daily files,
 * with the oracle's values; returns what is missing, doubled or different.
 */
export async function dailyFilesProblems(
  world: World,
  from: Date,
  to: Date,
): Promise<{ missing: string[]; doubled: string[]; extra: string[]; different: string[] }> {
  const rows = await dailyActivations(world);
  const expected = expectedActivations(world.graph.tenant, from, to);
  const byId = new Map(rows.map((r) => [r['Audit Id'], r]));
  const expectedIds = new Set(expected.map((r) => r['Audit Id']));
  const different: string[] = [];
  for (const e of expected) {
    const got = byId.get(e['Audit Id']);
    if (!got) continue;
    const { day: _day, ...values } = got;
    if (JSON.stringify(values) !== JSON.stringify(e)) different.push(e['Audit Id']);
  }
  return {
    missing: expected.filter((e) => !byId.has(e['Audit Id'])).map((e) => e['Audit Id']),
    doubled: duplicates(rows),
    extra: rows.filter((r) => !expectedIds.has(r['Audit Id'])).map((r) => r['Audit Id']),
    different,
  };
}

/** Emails the ACS simulator delivered, counted per digest day (from the subject). */
export function emailsPerDay(world: World): Map<string, number> {
  const counts = new Map<string, number>();
  for (const mail of world.email.sent) {
    const day = /PIM digest (\d{4}-\d{2}-\d{2})/.exec(mail.content.subject)?.[1] ?? '?';
    counts.set(day, (counts.get(day) ?? 0) + 1);
  }
  return counts;
}

/** Rows of a CSV blob as records, or [] when absent. */
export async function csvRecordsOf(
  world: World,
  container: string,
  name: string,
): Promise<Array<Record<string, string>>> {
  const text = await world.read(container, name);
  return text === undefined ? [] : records(parseCsv(text));
}

/**
 * Every log line a test file produced, to search for secrets once at the end
 * (`afterAll(() => logs.expectNoSecrets())`).
 */
export class LogBook {
  private readonly texts: string[] = [];
  private readonly known: Array<string | undefined> = [];
  add(...texts: string[]): void {
    this.texts.push(...texts);
  }
  /** Secrets of a world (identity header, ACS access key) to look for verbatim. */
  knowSecretsOf(world: World): void {
    this.known.push(world.identity.header, world.email.accessKey);
  }
  get size(): number {
    return this.texts.length;
  }
  leaks(): string[] {
    return leakedSecrets(this.texts.join('\n'), this.known);
  }
}
