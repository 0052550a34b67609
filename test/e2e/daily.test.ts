/**
 * End to end (docs/guarantees.md, docs/digest.md): the activation harvest across many days with gaps, the digest's counts and
 * lists, one email a day through ACS, and recovery from a failed send.
 */
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { PassThrough } from 'node:stream';
import { harvestSince } from '../../src/jobs/harvest';
import { HistoryStore } from '../../src/history';
import { streamLog } from '../../src/log';
import { createServices } from '../../src/services';
import { loadSettings } from '../../src/settings';
import { generateTenant } from '../../tools/tenant/generate';
import type { SimTenant } from '../../tools/tenant/model';
import { expectedActivations } from '../support/expected';
import { rewriteAsKeyedLines } from '../support/snapshots';
import { records, startWorld, type World } from '../support/world';

const DAY = 86400000;
const at = (iso: string) => new Date(iso);
const dayPath = (d: Date) => `daily/${d.toISOString().slice(0, 10).replace(/-/g, '/')}/`;

describe('the daily digest', () => {
  let world: World;

  /**
   * The next day's change: a user's eligibility removed, and one added (schedule `id`) for a user who
   * held none, renamed "Newcomer Nadia" to be found in the digest. Returns the removed schedule.
   */
  function swapOneEligibility(tenant: SimTenant, id: string, created?: Date) {
    const removed = tenant.eligibilitySchedules.find((s) => tenant.users.some((u) => u.id === s.principalId))!;
    const newcomer = tenant.users.find((u) => !tenant.eligibilitySchedules.some((s) => s.principalId === u.id))!;
    newcomer.displayName = 'Newcomer Nadia';
    tenant.eligibilitySchedules = tenant.eligibilitySchedules.filter((s) => s !== removed);
    tenant.eligibilitySchedules.push({
      ...removed,
      id,
      principalId: newcomer.id,
      ...(created ? { createdDateTime: created.toISOString() } : {}),
    });
    world.graph.setTenant(tenant);
    return removed;
  }
  afterEach(async () => world?.stop());

  async function runDay(when: Date, args: string[] = []) {
    world.graph.setNow(() => when);
    return world.cli(['daily', '--now', when.toISOString(), ...args]);
  }

  it('harvests every activation into exactly one day, across fifty days with gaps', async () => {
    const end = at('2026-11-24T06:00:00Z');
    const tenant = generateTenant({
      seed: 'fifty-days',
      now: end,
      users: 60,
      groups: 6,
      eligible: 80,
      active: 40,
      auditDays: 90,
      activationsPerDay: 4,
    });
    world = await startWorld(tenant, { email: 'none', auditRateLimit: { requests: 1000, perMs: 10000 } });

    const first = new Date(end.getTime() - 50 * DAY);
    const runs: Date[] = [];
    // Daily, with gaps of 3, 5 and 9 days (all shorter than Graph's 30-day retention).
    for (let d = first.getTime(), i = 0; d <= end.getTime(); i++) {
      runs.push(new Date(d));
      d += (i % 7 === 3 ? 5 : i % 11 === 5 ? 9 : i % 5 === 2 ? 3 : 1) * DAY;
    }
    if (runs[runs.length - 1].getTime() !== end.getTime()) runs.push(end);
    expect(runs.length).toBeGreaterThan(15);
    for (const when of runs) {
      const run = await runDay(when);
      if (run.code !== 0) throw new Error(`run of ${when.toISOString()} failed:\n${run.stderr}`);
    }

    const seen = new Map<string, string>();
    for (const when of runs) {
      for (const row of records(await world.csv(world.reports, `${dayPath(when)}activations.csv`))) {
        expect(seen.get(row['Audit Id'])).toBeUndefined();
        seen.set(row['Audit Id'], when.toISOString());
      }
    }
    // Everything from 30 days before the first run (what Graph held then) up to the last run.
    const expected = expectedActivations(tenant, new Date(first.getTime() - 30 * DAY), new Date(end.getTime() + 1));
    expect(expected.length).toBeGreaterThan(100);
    expect([...seen.keys()].sort()).toEqual(expected.map((r) => r['Audit Id']).sort());
    // And the rows themselves are right (requests, deactivations, Core Directory and PIM-for-Groups events excluded).
    const all = (await Promise.all(runs.map((w) => world.csv(world.reports, `${dayPath(w)}activations.csv`)))).flatMap(
      records,
    );
    const byId = new Map(all.map((r) => [r['Audit Id'], r]));
    for (const row of expected) expect(byId.get(row['Audit Id'])).toEqual(row);
  });

  it('keeps the harvest on disk: many sorted runs, a state file per month, the newest 50 for the digest, nothing left behind', async () => {
    const now = at('2026-11-03T06:00:00Z');
    const tenant = generateTenant({
      seed: 'harvest-spill',
      now,
      users: 40,
      groups: 4,
      eligible: 40,
      active: 10,
      auditDays: 35,
      activationsPerDay: 5,
    });
    world = await startWorld(tenant, { email: 'none', auditRateLimit: { requests: 1000, perMs: 10000 } });
    world.graph.setNow(() => now);
    world.useProcessEnv();
    const settings = loadSettings(world.env);
    const log = streamLog(new PassThrough().resume());
    const ctx = { settings, ...createServices(settings, log), log, now };
    const sortFolders = async () => (await readdir(tmpdir())).filter((n) => n.startsWith('pim-sort-')).sort();
    const foldersBefore = await sortFolders();

    const expected = expectedActivations(tenant, new Date(now.getTime() - 30 * DAY), now).map((r) => r['Audit Id']);
    expect(expected.length).toBeGreaterThan(100); // with runs of 7: more than a dozen spilled runs
    const harvest = await harvestSince(ctx, new HistoryStore(ctx.store, settings.reportsContainer), '2026-11-03', {
      runSize: 7,
    });
    try {
      expect(harvest.count).toBe(expected.length);
      const sorted: string[] = [];
      for await (const row of harvest.activations.sorted()) sorted.push(row.auditId);
      expect(sorted).toEqual(expected);
      expect(harvest.latest.map((r) => r.auditId)).toEqual(expected.slice(-50).reverse());
    } finally {
      await harvest.dispose();
    }
    expect(await sortFolders()).toEqual(foldersBefore);

    // One file per month, each with exactly that month's activations, oldest first.
    const files = await world.list(world.reports, 'state/activations/');
    expect(files).toEqual(['state/activations/2026-10/2026-11-03.jsonl', 'state/activations/2026-11/2026-11-03.jsonl']);
    const stored: string[] = [];
    for (const file of files) {
      const month = file.split('/')[2];
      const rows = (await world.read(world.reports, file))!
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { auditId: string; activated: string });
      expect(rows.every((r) => r.activated.startsWith(month))).toBe(true);
      stored.push(...rows.map((r) => r.auditId));
    }
    expect(stored).toEqual(expected);
  });

  it('reports a gap longer than Graph keeps, in the digest and the manifest', async () => {
    const end = at('2026-11-24T06:00:00Z');
    const tenant = generateTenant({
      seed: 'gap',
      now: end,
      users: 30,
      groups: 3,
      eligible: 30,
      active: 10,
      auditDays: 90,
      activationsPerDay: 2,
    });
    world = await startWorld(tenant, { email: 'none', auditRateLimit: { requests: 1000, perMs: 10000 } });
    const before = new Date(end.getTime() - 45 * DAY);
    expect((await runDay(before)).code).toBe(0);
    expect((await runDay(end)).code).toBe(0);
    const manifest = JSON.parse((await world.read(world.reports, `${dayPath(end)}manifest.json`))!);
    expect(manifest.activations.gaps).toEqual([
      {
        fromUtc: before.toISOString(),
        toUtc: new Date(end.getTime() - 30 * DAY).toISOString(),
        reason: expect.stringContaining('30 days'),
      },
    ]);
    const text = (await world.read(world.reports, `${dayPath(end)}digest.txt`))!;
    expect(text).toContain('could not be harvested');

    // The same run stopped just before its manifest (the watermark, with the gap, already moved):
    // the re-run finds no gap of its own, and still tells of the one no digest has told of.
    await world.blobs
      .getContainerClient(world.reports)
      .getBlockBlobClient(`${dayPath(end)}manifest.json`)
      .delete();
    await world.blobs
      .getContainerClient(world.reports)
      .getBlockBlobClient(`${dayPath(end)}digest.txt`)
      .delete();
    expect((await runDay(end)).code).toBe(0);
    const again = JSON.parse((await world.read(world.reports, `${dayPath(end)}manifest.json`))!);
    expect(again.activations.gaps).toEqual(manifest.activations.gaps);
    expect((await world.read(world.reports, `${dayPath(end)}digest.txt`))!).toContain('could not be harvested');

    // And if that day never becomes final, the next day's run tells of it; the day after, told, not again.
    await world.blobs
      .getContainerClient(world.reports)
      .getBlockBlobClient(`${dayPath(end)}manifest.json`)
      .delete();
    const next = new Date(end.getTime() + DAY);
    expect((await runDay(next)).code).toBe(0);
    expect(JSON.parse((await world.read(world.reports, `${dayPath(next)}manifest.json`))!).activations.gaps).toEqual(
      manifest.activations.gaps,
    );
    const after = new Date(next.getTime() + DAY);
    expect((await runDay(after)).code).toBe(0);
    expect(JSON.parse((await world.read(world.reports, `${dayPath(after)}manifest.json`))!).activations.gaps).toEqual(
      [],
    );
    expect((await world.read(world.reports, `${dayPath(after)}digest.txt`))!).not.toContain('could not be harvested');
  });

  it('counts new, expiring and permanent assignments as the tenant says, and names changes the next day', async () => {
    const now = at('2026-11-24T06:00:00Z');
    const tenant = generateTenant({ seed: 'digest-counts', now, users: 80, groups: 8, eligible: 120, active: 60 });
    world = await startWorld(tenant);
    expect((await runDay(now)).code).toBe(0);

    const expected = expectedCounts(tenant, now);
    const manifest = JSON.parse((await world.read(world.reports, `${dayPath(now)}manifest.json`))!);
    expect(manifest.digest.subject).toBe(
      `PIM digest 2026-11-24: ${expected.new} new, ${expected.expiring} expiring, ${expected.permanent} permanent`,
    );
    expect(world.email.sent).toHaveLength(1);
    expect(world.email.sent[0].content.subject).toBe(manifest.digest.subject);
    expect(world.email.sent[0].content.html).toBe(await world.read(world.reports, `${dayPath(now)}digest.html`));
    expect(world.email.sent[0].recipients.to.map((r) => r.address)).toEqual([
      'secops@contoso.com',
      'auditor@contoso.com',
    ]);

    // Next day: one schedule removed, one added, for principals with recognisable names.
    const next = new Date(now.getTime() + DAY);
    const removed = swapOneEligibility(tenant, 'new-schedule-0001', new Date(now.getTime() + 3600000));
    expect((await runDay(next)).code).toBe(0);
    const day2 = JSON.parse((await world.read(world.reports, `${dayPath(next)}manifest.json`))!);
    expect(day2.digest.new).toBe(1);
    expect(day2.digest.removed).toBe(1);
    const text = (await world.read(world.reports, `${dayPath(next)}digest.txt`))!;
    const section = (title: string) =>
      text.slice(text.indexOf(title), text.indexOf('\n\n', text.indexOf(title) + title.length + 1));
    expect(section('New assignments')).toContain('Newcomer Nadia');
    const removedName = tenant.users.find((u) => u.id === removed.principalId)!.displayName;
    expect(section('Removed assignments')).toContain(removedName);
    expect(world.email.sent).toHaveLength(2);
  });

  it('a PIM-for-Groups eligibility into a group that holds a role is new, then removed, as a route of its own; against a snapshot stored before routes, not new', async () => {
    const now = at('2026-11-24T06:00:00Z');
    const tenant = generateTenant({ seed: 'group-routes', now, users: 60, groups: 8, eligible: 160, active: 40 });
    world = await startWorld(tenant, { email: 'none' });
    expect((await runDay(now)).code).toBe(0);

    // The group with most roles of its own (not activated), and a user not yet eligible for it.
    const held = (groupId: string) =>
      [...tenant.eligibilitySchedules, ...tenant.assignmentSchedules].filter(
        (x) => x.principalId === groupId && x.memberType === 'Direct' && x.assignmentType !== 'Activated',
      ).length;
    const [group, other] = [...tenant.groups].sort((a, b) => held(b.id) - held(a.id));
    expect(held(group.id)).toBeGreaterThan(0);
    expect(held(other.id)).toBeGreaterThan(0);
    const routeTo = (userId: string, id: string, into = group) => ({
      id: `${into.id}_member_${id}`,
      groupId: into.id,
      principalId: userId,
      accessId: 'member' as const,
      memberType: 'direct' as const,
      status: 'Provisioned',
      createdDateTime: new Date(now.getTime() + 3600000).toISOString(),
      createdUsing: null,
      modifiedDateTime: null,
      scheduleInfo: {
        startDateTime: new Date(now.getTime() + 3600000).toISOString(),
        recurrence: null,
        expiration: { type: 'noExpiration' as const, endDateTime: null, duration: null },
      },
    });
    const outsiders = tenant.users.filter((u) => !tenant.groupEligibilitySchedules.some((g) => g.principalId === u.id));
    const [diego, emma] = [outsiders[0], outsiders[1]];
    diego.displayName = 'Routed Diego';
    emma.displayName = 'Routed Emma';

    // Day 2: Diego made a permanent eligible member of the group.
    const next = new Date(now.getTime() + DAY);
    tenant.groupEligibilitySchedules.push(routeTo(diego.id, 'diego'));
    world.graph.setTenant(tenant);
    expect((await runDay(next)).code).toBe(0);
    const day2 = JSON.parse((await world.read(world.reports, `${dayPath(next)}manifest.json`))!);
    expect(day2.digest).toMatchObject({ new: held(group.id), removed: 0 });
    const text2 = (await world.read(world.reports, `${dayPath(next)}digest.txt`))!;
    const newSection = text2.slice(text2.indexOf('New assignments'), text2.indexOf('Removed assignments'));
    expect(newSection).toContain(`Routed Diego | `);
    expect(newSection).toContain(`Eligible through ${group.displayName} (PIM for Groups)`);

    // Unread: the group's PIM-for-Groups list answers 403 one day, while Frank becomes eligible. Its
    // routes are then neither removed that day nor new the day after (nothing is known of them), and
    // both digests say so; the other group, read whole, gets Gina's route reported new that day.
    const [frank, gina] = [outsiders[2], outsiders[3]];
    frank.displayName = 'Routed Frank';
    gina.displayName = 'Routed Gina';
    const unreadDay = new Date(next.getTime() + DAY);
    tenant.groupEligibilitySchedules.push(routeTo(frank.id, 'frank'), routeTo(gina.id, 'gina', other));
    world.graph.setTenant(tenant);
    world.graph.inject({ path: new RegExp(`privilegedAccess/group/eligibilitySchedules.*${group.id}`), status: 403 });
    const unreadRun = await runDay(unreadDay);
    expect(unreadRun.code).toBe(0);
    const unreadManifest = JSON.parse((await world.read(world.reports, `${dayPath(unreadDay)}manifest.json`))!);
    expect(unreadManifest.incomplete).toEqual([expect.objectContaining({ list: 'pimForGroups', groupId: group.id })]);
    expect(unreadManifest.digest).toMatchObject({
      new: held(other.id),
      removed: 0,
      routesNotCompared: { count: 0, groups: [group.displayName] },
    });
    const unreadText = (await world.read(world.reports, `${dayPath(unreadDay)}digest.txt`))!;
    expect(unreadText.slice(unreadText.indexOf('New assignments'))).toContain('Routed Gina | ');
    expect(unreadText.slice(0, unreadText.indexOf('New assignments'))).toContain(
      `Not compared: PIM-for-Groups eligibilities through ${group.displayName} (0 route(s) into roles today) were not compared with the snapshot of 2026-11-25`,
    );
    const afterUnread = new Date(unreadDay.getTime() + DAY);
    const afterRun = await runDay(afterUnread);
    expect(afterRun.code).toBe(0);
    expect(afterRun.stderr).toContain(`Not compared: PIM-for-Groups eligibilities through ${group.displayName} (`);
    const afterManifest = JSON.parse((await world.read(world.reports, `${dayPath(afterUnread)}manifest.json`))!);
    expect(afterManifest.digest).toMatchObject({
      new: 0,
      removed: 0,
      routesNotCompared: {
        count:
          held(group.id) *
          tenant.groupEligibilitySchedules.filter((g) => g.groupId === group.id && g.accessId === 'member').length,
        groups: [group.displayName],
      },
    });
    expect(afterManifest.incomplete).toEqual([]);

    // Day 3: Diego's eligibility gone again.
    const third = new Date(afterUnread.getTime() + DAY);
    tenant.groupEligibilitySchedules = tenant.groupEligibilitySchedules.filter(
      (g) => g.principalId !== diego.id || g.groupId !== group.id,
    );
    world.graph.setTenant(tenant);
    expect((await runDay(third)).code).toBe(0);
    const day3 = JSON.parse((await world.read(world.reports, `${dayPath(third)}manifest.json`))!);
    expect(day3.digest).toMatchObject({ new: 0, removed: held(group.id) });
    const text3 = (await world.read(world.reports, `${dayPath(third)}digest.txt`))!;
    expect(text3.slice(text3.indexOf('Removed assignments'))).toContain('Routed Diego | ');

    // Day 4 against day 3's snapshot as a build before the routes stored it (no `holds` in its header,
    // no routes among its rows): Emma's new route is not reported, nor are the old routes removed.
    const name = `state/schedules/${third.toISOString().slice(0, 10)}.jsonl`;
    const [first, ...lines] = (await world.read(world.reports, name))!.split('\n').filter((l) => l !== '');
    const header = JSON.parse(first) as { keys: string[]; holds?: string[] };
    expect(header.holds).toEqual(['pimForGroupsEligibilityRoutes']);
    const id = header.keys.indexOf('scheduleId');
    const older = [
      JSON.stringify({ ...header, holds: undefined }),
      ...lines.filter((l) => !(JSON.parse(l) as string[])[id].includes(' via ')),
    ].join('\n');
    await world.blobs
      .getContainerClient(world.reports)
      .getBlockBlobClient(name)
      .upload(older, Buffer.byteLength(older));
    const fourth = new Date(third.getTime() + DAY);
    tenant.groupEligibilitySchedules.push(routeTo(emma.id, 'emma'));
    world.graph.setTenant(tenant);
    const run4 = await runDay(fourth);
    expect(run4.code).toBe(0);
    expect(run4.stderr).toMatch(/Not compared: .* were not compared with the snapshot of 2026-11-28/);
    const day4 = JSON.parse((await world.read(world.reports, `${dayPath(fourth)}manifest.json`))!);
    expect(day4.digest).toMatchObject({ new: 0, removed: 0 });
  });

  it('compares with a snapshot stored as keyed JSON lines (before the value lines), and stores the next in value lines', async () => {
    const now = at('2026-11-24T06:00:00Z');
    const tenant = generateTenant({ seed: 'old-snapshot', now, users: 40, groups: 4, eligible: 60, active: 30 });
    world = await startWorld(tenant, { email: 'none' });
    expect((await runDay(now)).code).toBe(0);

    // Today's snapshot rewritten as the app wrote it before: one keyed object a line, no header.
    const { header, rows } = await rewriteAsKeyedLines(
      world,
      'state/schedules/2026-11-24.jsonl',
      'state/snapshots/2026-11-24.jsonl',
    );
    expect(header).toMatchObject({ format: 'pim-reporter-schedules', version: 2 });
    expect(rows).toBeGreaterThan(50);
    expect((await world.read(world.reports, 'state/snapshots/2026-11-24.jsonl'))!.split('\n')[0]).toContain(
      '"scheduleId":',
    );

    const next = new Date(now.getTime() + DAY);
    const removed = swapOneEligibility(tenant, 'new-schedule-0002');
    expect((await runDay(next)).code).toBe(0);
    const day2 = JSON.parse((await world.read(world.reports, `${dayPath(next)}manifest.json`))!);
    expect(day2.digest).toMatchObject({ new: 1, removed: 1, baseline: { kind: 'previous', day: '2026-11-24' } });
    const text = (await world.read(world.reports, `${dayPath(next)}digest.txt`))!;
    expect(text).toContain('Newcomer Nadia');
    expect(text).toContain(tenant.users.find((u) => u.id === removed.principalId)!.displayName);

    const stored = (await world.read(world.reports, 'state/schedules/2026-11-25.jsonl'))!.split('\n');
    expect(JSON.parse(stored[0])).toEqual(header);
    expect(stored.length).toBe(rows + 2); // one added, one removed; the header; the last line's break
    expect(JSON.parse(stored[1])).toBeInstanceOf(Array);
  });

  it('keeps the newest seven days of snapshots across both folders, and the baseline whatever its age', async () => {
    const first = at('2026-11-10T06:00:00Z');
    const dayOf = (n: number) => new Date(first.getTime() + n * DAY).toISOString().slice(0, 10);
    const tenant = generateTenant({ seed: 'snapshot-pruning', now: first, users: 20, eligible: 20, active: 10 });
    world = await startWorld(tenant, { email: 'none' });
    expect((await runDay(first)).code).toBe(0);
    // The first day's snapshot as an earlier version kept it (state/snapshots/): the baseline of
    // every later run until another day is final. Days 1 to 7 ran and stopped before their manifest:
    // their snapshots stay, in the folder of the version that ran (days 1-4 earlier, 5-7 this one;
    // day 7 ran under both).
    await rewriteAsKeyedLines(world, `state/schedules/${dayOf(0)}.jsonl`, `state/snapshots/${dayOf(0)}.jsonl`);
    const container = world.blobs.getContainerClient(world.reports);
    const kept = (await world.read(world.reports, `state/snapshots/${dayOf(0)}.jsonl`))!;
    for (const [folder, days] of [
      ['state/snapshots/', [1, 2, 3, 4, 7]],
      ['state/schedules/', [5, 6, 7]],
    ] as const) {
      for (const n of days) await container.getBlockBlobClient(`${folder}${dayOf(n)}.jsonl`).upload(kept, kept.length);
    }
    // Blobs that are not a day's file (someone's notes) are neither counted as days nor deleted.
    await container.getBlockBlobClient('state/schedules/notes.txt').upload('kept by hand', 12);
    await container.getBlockBlobClient('state/schedules/notes.jsonl').upload('kept by hand', 12);
    const stored = async () =>
      [
        ...(await world.list(world.reports, 'state/snapshots/')),
        ...(await world.list(world.reports, 'state/schedules/')),
      ]
        .map((name) => name.replace(/^state\/(\w+)\/(.*)\.jsonl$/, '$1 $2'))
        .sort();

    // Day 8: the newest seven days (2 to 8) in either folder, and day 0, the baseline.
    expect((await runDay(new Date(first.getTime() + 8 * DAY))).code).toBe(0);
    const day8 = JSON.parse(
      (await world.read(world.reports, `${dayPath(new Date(first.getTime() + 8 * DAY))}manifest.json`))!,
    );
    expect(day8.digest.baseline).toEqual({ kind: 'previous', day: dayOf(0) });
    expect(await stored()).toEqual(
      [
        ...[0, 2, 3, 4, 7].map((n) => `snapshots ${dayOf(n)}`),
        ...[5, 6, 7, 8].map((n) => `schedules ${dayOf(n)}`),
        'schedules notes',
        'state/schedules/notes.txt',
      ].sort(),
    );
    // Day 9: day 8 is the baseline now; day 0 goes, and day 2 with it.
    expect((await runDay(new Date(first.getTime() + 9 * DAY))).code).toBe(0);
    expect(await stored()).toEqual(
      [
        ...[3, 4, 7].map((n) => `snapshots ${dayOf(n)}`),
        ...[5, 6, 7, 8, 9].map((n) => `schedules ${dayOf(n)}`),
        'schedules notes',
        'state/schedules/notes.txt',
      ].sort(),
    );
  });

  it('sends one email a day: a re-run sends none, --force-email sends again', async () => {
    const now = at('2026-11-24T06:00:00Z');
    world = await startWorld(generateTenant({ seed: 'once', now, users: 20, eligible: 20, active: 10 }));
    expect((await runDay(now)).code).toBe(0);
    const files = await world.list(world.reports, dayPath(now));
    const etags = await etagsOf(world, files);
    const rerun = await runDay(new Date(now.getTime() + 3600000));
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toContain('nothing is rewritten');
    expect(world.email.sent).toHaveLength(1);
    expect(await etagsOf(world, files)).toEqual(etags);
    expect((await runDay(now, ['--force-email'])).code).toBe(0);
    expect(world.email.sent).toHaveLength(2);
    expect(world.email.sent[1].content.subject).toBe(world.email.sent[0].content.subject);
  });

  it('keeps the CSVs and fails when the email fails; the next run sends it, once', async () => {
    const now = at('2026-11-24T06:00:00Z');
    world = await startWorld(generateTenant({ seed: 'email-fails', now, users: 20, eligible: 20, active: 10 }), {
      email: 'connectionString',
    });
    world.email.inject({ on: 'send', status: 503, times: 10 });
    const failed = await runDay(now);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/digest email failed/);
    expect(await world.list(world.reports, dayPath(now))).toEqual(
      [
        'activations.csv',
        'active-assignments.csv',
        'digest.html',
        'digest.txt',
        'eligible-assignments.csv',
        'manifest.json',
        'role-settings.csv',
        'unused-eligibilities.csv',
      ].map((f) => dayPath(now) + f),
    );
    expect(world.email.sent).toHaveLength(0);

    world.email.clearFaults();
    world.email.inject({
      on: 'operation',
      status: 'Failed',
      error: { code: 'InternalError', message: 'relay down' },
      times: 1,
    });
    const failedAgain = await runDay(new Date(now.getTime() + 600000));
    expect(failedAgain.code).toBe(1);
    expect(failedAgain.stderr).toContain('relay down');

    const recovered = await runDay(new Date(now.getTime() + 1200000));
    expect(recovered.code).toBe(0);
    expect(world.email.sent).toHaveLength(1);
    const again = await runDay(new Date(now.getTime() + 1800000));
    expect(again.code).toBe(0);
    expect(world.email.sent).toHaveLength(1);

    // A digest that could not go out yesterday goes out with today's.
    const next = new Date(now.getTime() + DAY);
    world.email.inject({ on: 'send', status: 500, times: 10 });
    expect((await runDay(next)).code).toBe(1);
    world.email.clearFaults();
    const third = new Date(now.getTime() + 2 * DAY);
    expect((await runDay(third)).code).toBe(0);
    expect(world.email.sent.map((m) => m.content.subject.slice(0, 21))).toEqual([
      'PIM digest 2026-11-24',
      'PIM digest 2026-11-25',
      'PIM digest 2026-11-26',
    ]);
  });
});

async function etagsOf(world: World, names: string[]): Promise<string[]> {
  const c = world.blobs.getContainerClient(world.reports);
  return Promise.all(names.map(async (n) => (await c.getBlockBlobClient(n).getProperties()).etag ?? ''));
}

/** The subject's counts, from the tenant, per docs/digest.md: schedules, not member rows; activated ones excluded. */
function expectedCounts(tenant: SimTenant, now: Date): { new: number; expiring: number; permanent: number } {
  const horizon = now.getTime() + 14 * DAY;
  let added = 0;
  let expiring = 0;
  let permanent = 0;
  const schedules = [...tenant.eligibilitySchedules, ...tenant.assignmentSchedules].filter(
    (s) =>
      (s.memberType ?? 'Direct').toLowerCase() === 'direct' && (s.assignmentType ?? '').toLowerCase() !== 'activated',
  );
  const count = (created: string | null, end: number | undefined) => {
    if (created && Date.parse(created) >= now.getTime() - DAY) added++;
    if (end === undefined) permanent++;
    else if (end >= now.getTime() && end <= horizon) expiring++;
  };
  const groupIds = new Set(tenant.groups.map((g) => g.id.toLowerCase()));
  for (const s of schedules) {
    const end = endOf(s.scheduleInfo);
    count(s.createdDateTime, end);
    if (!groupIds.has(s.principalId.toLowerCase())) continue;
    // Each PIM-for-Groups eligible member's route into the role the group holds: its own schedule,
    // created when the eligibility was, ending with whichever of the two ends first.
    for (const g of tenant.groupEligibilitySchedules) {
      if (g.groupId.toLowerCase() !== s.principalId.toLowerCase() || g.accessId !== 'member') continue;
      const own = endOf(g.scheduleInfo);
      count(g.createdDateTime, end === undefined ? own : own === undefined ? end : Math.min(end, own));
    }
  }
  return { new: added, expiring, permanent };
}

function endOf(info: SimTenant['eligibilitySchedules'][number]['scheduleInfo']): number | undefined {
  const exp = info.expiration;
  const start = info.startDateTime ? Date.parse(info.startDateTime) : NaN;
  if (exp.type === 'afterDateTime' && exp.endDateTime) return Date.parse(exp.endDateTime);
  if (exp.type === 'afterDuration' && exp.duration) return start + durationMs(exp.duration);
  return undefined;
}

function durationMs(d: string): number {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(d);
  if (!m) throw new Error(`duration ${d} not understood by the test`);
  const [, days, h, min, s] = m.map((v) => Number(v ?? 0));
  return ((days * 24 + h) * 60 + min) * 60000 + s * 1000;
}
