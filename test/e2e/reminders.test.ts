/**
 * Expiry reminders end to end: two weeks of daily runs (and re-runs) on a generated tenant with
 * assignments ending at different times; each user gets exactly one email on each day one of their
 * assignments crosses a threshold of EXPIRY_REMINDER_DAYS, none on other days or on a re-run; and a
 * run that dies after ACS accepted a reminder, before it is recorded, never doubles it.
 */
import {
  groupEligibility,
  permanent,
  pimSchedule,
  until,
  forDuration,
  generateTenant,
} from '../../tools/tenant/generate';
import { Rng } from '../../tools/tenant/random';
import type { SimScheduleInfo, SimTenant } from '../../tools/tenant/model';
import type { SentEmail } from '../../tools/acs-simulator';
import { durationMs } from '../support/expected';
import { startBlobProxy, type BlobWrite } from '../support/blob-proxy';
import { spawnCli } from '../support/child';
import { startWorld, type World } from '../support/world';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const THRESHOLDS = [14, 7, 1];
const DIGEST_TO = 'secops@contoso.com';
const iso = (ms: number) => new Date(ms).toISOString();

function endOf(info: SimScheduleInfo): number | null {
  if (info.expiration.type === 'afterDateTime' && info.expiration.endDateTime)
    return Date.parse(info.expiration.endDateTime);
  if (info.expiration.type === 'afterDuration' && info.startDateTime && info.expiration.duration) {
    return Date.parse(info.startDateTime) + durationMs(info.expiration.duration)!;
  }
  return null;
}

interface Held {
  userId: string;
  mail: string | null;
  roleName: string;
  end: number;
}

/** What qualifies, read from the tenant itself (not from the product): users' direct time-bound eligible and Assigned schedules, and their PIM-for-Groups eligibilities. */
function heldByUsers(tenant: SimTenant): Held[] {
  const users = new Map(tenant.users.map((u) => [u.id, u]));
  const roles = new Map(tenant.roleDefinitions.map((r) => [r.id, r.displayName]));
  const groups = new Set(tenant.groups.map((g) => g.id));
  const held: Held[] = [];
  const schedules = [
    ...tenant.eligibilitySchedules,
    ...tenant.assignmentSchedules.filter((s) => s.assignmentType === 'Assigned'),
  ];
  for (const s of schedules) {
    if (s.memberType !== 'Direct') continue;
    const end = endOf(s.scheduleInfo);
    const user = users.get(s.principalId);
    if (user && end !== null)
      held.push({ userId: user.id, mail: user.mail ?? null, roleName: roles.get(s.roleDefinitionId)!, end });
    if (!groups.has(s.principalId)) continue;
    for (const ge of tenant.groupEligibilitySchedules) {
      const member = users.get(ge.principalId);
      if (ge.groupId !== s.principalId || ge.accessId !== 'member' || !member) continue;
      const ends = [end, endOf(ge.scheduleInfo)].filter((e): e is number => e !== null);
      if (ends.length > 0)
        held.push({
          userId: member.id,
          mail: member.mail ?? null,
          roleName: roles.get(s.roleDefinitionId)!,
          end: Math.min(...ends),
        });
    }
  }
  return held;
}

/** The smallest threshold crossed at `at`, or undefined. */
function crossed(end: number, at: number): number | undefined {
  const left = end - at;
  if (left <= 0) return undefined;
  return THRESHOLDS.filter((t) => left <= t * DAY).sort((a, b) => a - b)[0];
}

const reminders = (world: World) =>
  world.email.sent.filter((m) => !m.recipients.to.some((r) => r.address === DIGEST_TO));

describe('expiry reminders', () => {
  let world: World;
  afterEach(async () => world?.stop());

  async function runAt(when: number) {
    world.graph.setNow(() => new Date(when));
    const run = await world.cli(['daily', '--now', iso(when)], {
      EXPIRY_REMINDER_DAYS: THRESHOLDS.join(','),
      EMAIL_RECIPIENTS: DIGEST_TO,
    });
    if (run.code !== 0) throw new Error(`run of ${iso(when)} failed:\n${run.stderr}`);
    return run;
  }

  it('reach each user once on each day one of their assignments crosses a threshold, and never on a re-run', async () => {
    const start = Date.parse('2026-11-02T06:00:00Z');
    const tenant = generateTenant({
      seed: 'reminders',
      now: new Date(start),
      users: 40,
      groups: 5,
      eligible: 60,
      active: 30,
      auditDays: 2,
      activationsPerDay: 1,
      pimGroupShare: 1,
    });
    // Ends spread over the fortnight and past it, at odd hours, for users with and without mail.
    const rng = new Rng('reminders-extra');
    const role = tenant.roleDefinitions.find((r) => r.displayName === 'Security Reader')!;
    const other = tenant.roleDefinitions.find((r) => r.displayName === 'Reports Reader')!;
    const withMail = tenant.users.filter((u) => u.mail);
    const noMail = tenant.users.find((u) => !u.mail)!;
    const ago = iso(start - 30 * DAY);
    for (let k = 0; k < 24; k++) {
      const user = withMail[k % 10];
      const end = start + k * DAY + ((k * 7) % 24) * HOUR + 13 * 60_000;
      tenant.eligibilitySchedules.push(
        pimSchedule({
          id: rng.guid(),
          principalId: user.id,
          roleDefinitionId: k % 2 ? role.id : other.id,
          directoryScopeId: '/',
          scheduleInfo: until(ago, iso(end)),
        }),
      );
    }
    // An assigned (active) one, one by duration, one held by a user without mail.
    tenant.assignmentSchedules.push(
      pimSchedule({
        id: rng.guid(),
        principalId: withMail[11].id,
        roleDefinitionId: role.id,
        directoryScopeId: '/',
        assignmentType: 'Assigned',
        scheduleInfo: until(ago, iso(start + 9 * DAY + 2 * HOUR)),
      }),
    );
    tenant.eligibilitySchedules.push(
      pimSchedule({
        id: rng.guid(),
        principalId: withMail[12].id,
        roleDefinitionId: other.id,
        directoryScopeId: '/',
        scheduleInfo: forDuration(ago, 'P38D'),
      }),
      pimSchedule({
        id: rng.guid(),
        principalId: noMail.id,
        roleDefinitionId: role.id,
        directoryScopeId: '/',
        scheduleInfo: until(ago, iso(start + 5 * DAY)),
      }),
    );
    // A PIM-for-Groups eligibility ending in ten days, of a group that holds a role.
    const holder = tenant.groups[0];
    tenant.eligibilitySchedules.push(
      pimSchedule({
        id: rng.guid(),
        principalId: holder.id,
        roleDefinitionId: other.id,
        directoryScopeId: '/',
        scheduleInfo: permanent(ago),
      }),
    );
    // The group's activation of the role, ending in two days: an activation, not an assignment, for its PIM-for-Groups members too.
    tenant.assignmentSchedules.push(
      pimSchedule({
        id: rng.guid(),
        principalId: holder.id,
        roleDefinitionId: role.id,
        directoryScopeId: '/',
        assignmentType: 'Activated',
        scheduleInfo: until(ago, iso(start + 2 * DAY)),
      }),
    );
    const pfgUser = withMail.find(
      (u) =>
        !holder.members.includes(u.id) &&
        !tenant.groupEligibilitySchedules.some((g) => g.principalId === u.id && g.groupId === holder.id),
    )!;
    tenant.groupEligibilitySchedules.push(
      groupEligibility(rng, {
        groupId: holder.id,
        principalId: pfgUser.id,
        accessId: 'member',
        scheduleInfo: until(ago, iso(start + 10 * DAY + 5 * HOUR)),
      }),
    );

    world = await startWorld(tenant, { auditRateLimit: { requests: 1000, perMs: 10000 } });
    const held = heldByUsers(tenant);
    const runs = Array.from({ length: 14 }, (_, d) => start + d * DAY);
    // Expected: at run d, a user is emailed when any of their assignments' smallest crossed threshold is new.
    const expected: Array<Map<string, string[]>> = runs.map((at, d) => {
      const due = new Map<string, string[]>();
      for (const h of held) {
        const now = crossed(h.end, at);
        const before = d === 0 ? undefined : crossed(h.end, runs[d - 1]);
        if (now !== undefined && (before === undefined || now < before) && h.mail)
          due.set(h.mail, [...(due.get(h.mail) ?? []), h.roleName]);
      }
      return due;
    });
    expect(expected.filter((m) => m.size > 0).length).toBeGreaterThanOrEqual(8);
    expect(held.some((h) => !h.mail && crossed(h.end, runs[0]) !== undefined)).toBe(true);

    let seen = 0;
    for (const [d, at] of runs.entries()) {
      await runAt(at);
      const today = reminders(world).slice(seen);
      seen += today.length;
      const byAddress = new Map<string, SentEmail[]>();
      for (const m of today)
        for (const r of m.recipients.to) byAddress.set(r.address, [...(byAddress.get(r.address) ?? []), m]);
      expect([d, [...byAddress.keys()].sort()]).toEqual([d, [...expected[d].keys()].sort()]);
      for (const [address, mails] of byAddress) {
        expect([d, address, mails.length]).toEqual([d, address, 1]);
        const [mail] = mails;
        expect(mail.recipients.to).toEqual([{ address }]);
        expect(mail.senderAddress).toBe(world.env.EMAIL_SENDER);
        expect(mail.content.html).toContain('<table');
        for (const roleName of expected[d].get(address)!) {
          expect(mail.content.plainText).toContain(roleName);
          expect(mail.content.html).toContain(roleName);
        }
        // Each reminded assignment's end date is named.
        for (const h of held.filter((x) => x.mail === address && crossed(x.end, at) !== undefined)) {
          const shown = iso(h.end).slice(0, 19).replace('T', ' ');
          if (
            (expected[d].get(address) ?? []).includes(h.roleName) &&
            (d === 0 || crossed(h.end, runs[d - 1]) !== crossed(h.end, at))
          ) {
            expect(mail.content.plainText).toContain(shown);
          }
        }
        expect(mail.content.plainText).toContain(
          'https://portal.azure.com/#view/Microsoft_Azure_PIMCommon/ActivationMenuBlade/~/aadmigratedroles',
        );
      }

      // The digest counts them; a re-run of the same day (later that day) sends nothing new.
      const folder = `daily/${iso(at).slice(0, 10).replace(/-/g, '/')}/`;
      const manifest = JSON.parse((await world.read(world.reports, `${folder}manifest.json`))!);
      expect(manifest.reminders.sent).toBe(expected[d].size);
      const digest = (await world.read(world.reports, `${folder}digest.txt`))!;
      expect(digest).toContain(`Reminders sent (${expected[d].size})`);
      if (d % 3 === 0) {
        await runAt(at + 2 * HOUR);
        expect(reminders(world).length).toBe(seen);
      }
    }
    // The user without mail is counted, never emailed.
    const first = JSON.parse(
      (await world.read(world.reports, `daily/${iso(start).slice(0, 10).replace(/-/g, '/')}/manifest.json`))!,
    );
    expect(first.reminders.withoutMail).toBeGreaterThanOrEqual(1);
    expect(reminders(world).some((m) => m.recipients.to.some((r) => r.address === noMail.userPrincipalName))).toBe(
      false,
    );
    expect(seen).toBeGreaterThan(15);
  });

  const CRASHES: Array<[string, { write: (w: Omit<BlobWrite, 'action'>) => boolean } | { acsAccepted: true }]> = [
    [
      'after ACS accepted the reminders, before they are recorded',
      { write: (w) => w.blob === 'state/reminders/done.json' },
    ],
    ['while polling ACS for a reminder it accepted', { acsAccepted: true }],
    [
      'after they are recorded, before the outbox is emptied',
      { write: (w) => w.method === 'DELETE' && w.blob.startsWith('state/reminders/outbox/') },
    ],
  ];

  it.each(CRASHES)(
    'a run killed %s: the re-run sends each reminder once, the next day none',
    async (_name, moment) => {
      const start = Date.parse('2026-11-16T06:00:00Z');
      const tenant = generateTenant({
        seed: 'reminder-crash',
        now: new Date(start),
        users: 20,
        groups: 2,
        eligible: 10,
        active: 5,
        auditDays: 1,
        activationsPerDay: 1,
      });
      const rng = new Rng('reminder-crash-extra');
      const role = tenant.roleDefinitions.find((r) => r.displayName === 'Security Reader')!;
      // Keep the tenant's own schedules out of the horizon: only these three are due.
      for (const s of [...tenant.eligibilitySchedules, ...tenant.assignmentSchedules])
        s.scheduleInfo = permanent(s.scheduleInfo.startDateTime);
      for (const g of tenant.groupEligibilitySchedules) g.scheduleInfo = permanent(g.scheduleInfo.startDateTime);
      const users = tenant.users.filter((u) => u.mail).slice(0, 3);
      for (const [i, u] of users.entries()) {
        tenant.eligibilitySchedules.push(
          pimSchedule({
            id: rng.guid(),
            principalId: u.id,
            roleDefinitionId: role.id,
            directoryScopeId: '/',
            scheduleInfo: until(iso(start - 9 * DAY), iso(start + (3 + i) * DAY)),
          }),
        );
      }
      world = await startWorld(tenant, { auditRateLimit: { requests: 1000, perMs: 10000 } });
      const proxy = await startBlobProxy();
      try {
        const env = {
          ...world.env,
          REPORTS_STORAGE_CONNECTION_STRING: proxy.connectionString,
          EXPIRY_REMINDER_DAYS: '7,1',
          EMAIL_RECIPIENTS: DIGEST_TO,
        };
        world.graph.setNow(() => new Date(start));
        const child = spawnCli(['daily', '--now', iso(start)], env);
        let watcher: NodeJS.Timeout | undefined;
        if ('write' in moment) {
          proxy.onWrite = (w) => {
            if (!moment.write(w)) return 'pass';
            child.kill();
            return 'hold';
          };
        } else {
          world.email.inject({ on: 'poll', delayMs: 5_000, times: 1 });
          watcher = setInterval(() => {
            if (reminders(world).length > 0) child.kill();
          }, 2);
        }
        const killed = await child.done;
        clearInterval(watcher);
        proxy.clear();
        world.email.clearFaults();
        expect(killed.killed).toBe(true);
        expect(reminders(world).length).toBeGreaterThanOrEqual(1);

        // The same day again, then the next day: each of the three told exactly once.
        await runAt(start + HOUR);
        await runAt(start + DAY);
        const to = reminders(world)
          .map((m) => m.recipients.to[0].address)
          .sort();
        expect(to).toEqual(users.map((u) => u.mail!).sort());
        expect(await world.list(world.reports, 'state/reminders/outbox/')).toEqual([]);
      } finally {
        await proxy.stop();
      }
    },
    60_000,
  );

  it('a user whose email an earlier run left in the outbox gets only that one in the run that sends it', async () => {
    const start = Date.parse('2026-11-30T06:00:00Z');
    const tenant = generateTenant({
      seed: 'reminder-one-a-run',
      now: new Date(start),
      users: 10,
      groups: 2,
      eligible: 5,
      active: 3,
      auditDays: 1,
      activationsPerDay: 1,
    });
    const rng = new Rng('reminder-one-a-run-extra');
    const role = tenant.roleDefinitions.find((r) => r.displayName === 'Security Reader')!;
    const other = tenant.roleDefinitions.find((r) => r.displayName === 'Reports Reader')!;
    for (const s of [...tenant.eligibilitySchedules, ...tenant.assignmentSchedules])
      s.scheduleInfo = permanent(s.scheduleInfo.startDateTime);
    for (const g of tenant.groupEligibilitySchedules) g.scheduleInfo = permanent(g.scheduleInfo.startDateTime);
    const user = tenant.users.find((u) => u.mail)!;
    // One crosses 7 days on day 1, the other on day 2.
    for (const [roleId, endsIn] of [
      [role.id, 5 * DAY],
      [other.id, 7 * DAY + 12 * HOUR],
    ] as const) {
      tenant.eligibilitySchedules.push(
        pimSchedule({
          id: rng.guid(),
          principalId: user.id,
          roleDefinitionId: roleId,
          directoryScopeId: '/',
          scheduleInfo: until(iso(start - 9 * DAY), iso(start + endsIn)),
        }),
      );
    }
    world = await startWorld(tenant, { auditRateLimit: { requests: 1000, perMs: 10000 } });
    const run = async (when: number) => {
      world.graph.setNow(() => new Date(when));
      const r = await world.cli(['daily', '--now', iso(when)], {
        EXPIRY_REMINDER_DAYS: '7',
        EMAIL_RECIPIENTS: DIGEST_TO,
      });
      expect(r.code).toBe(0);
    };
    // Day 1: ACS refuses the reminder (503, through the SDK's retries): it stays in the outbox.
    world.email.inject({ on: 'send', status: 503, retryAfterSeconds: 0, times: 4 });
    await run(start);
    expect(reminders(world)).toHaveLength(0);
    // Day 2: the outbox email goes; the second role, due today, waits for the next run.
    await run(start + DAY);
    const day2 = reminders(world);
    expect(day2).toHaveLength(1);
    expect(day2[0].content.plainText).toContain(role.displayName);
    expect(day2[0].content.plainText).not.toContain(other.displayName);
    // Day 3: the second one.
    await run(start + 2 * DAY);
    const day3 = reminders(world).slice(1);
    expect(day3).toHaveLength(1);
    expect(day3[0].recipients.to).toEqual([{ address: user.mail }]);
    expect(day3[0].content.plainText).toContain(other.displayName);
  }, 60_000);

  it('at most REMINDERS_PER_RUN a run, the rest wait; a failed send is retried the next run, never doubled', async () => {
    const start = Date.parse('2026-11-23T06:00:00Z');
    const tenant = generateTenant({
      seed: 'reminder-limit',
      now: new Date(start),
      users: 20,
      groups: 2,
      eligible: 10,
      active: 5,
      auditDays: 1,
      activationsPerDay: 1,
    });
    const rng = new Rng('reminder-limit-extra');
    const role = tenant.roleDefinitions.find((r) => r.displayName === 'Security Reader')!;
    for (const s of [...tenant.eligibilitySchedules, ...tenant.assignmentSchedules])
      s.scheduleInfo = permanent(s.scheduleInfo.startDateTime);
    for (const g of tenant.groupEligibilitySchedules) g.scheduleInfo = permanent(g.scheduleInfo.startDateTime);
    const users = tenant.users.filter((u) => u.mail).slice(0, 5);
    for (const u of users) {
      tenant.eligibilitySchedules.push(
        pimSchedule({
          id: rng.guid(),
          principalId: u.id,
          roleDefinitionId: role.id,
          directoryScopeId: '/',
          scheduleInfo: until(iso(start - 9 * DAY), iso(start + 20 * DAY)),
        }),
      );
    }
    world = await startWorld(tenant, { auditRateLimit: { requests: 1000, perMs: 10000 } });
    const run = async (when: number) => {
      world.graph.setNow(() => new Date(when));
      const r = await world.cli(['daily', '--now', iso(when)], {
        EXPIRY_REMINDER_DAYS: '14',
        REMINDERS_PER_RUN: '2',
        EMAIL_RECIPIENTS: DIGEST_TO,
      });
      expect(r.code).toBe(0);
      return r;
    };
    const folder = (when: number) => `daily/${iso(when).slice(0, 10).replace(/-/g, '/')}/`;

    // Day 1: ACS refuses the first reminder (503, through the SDK's retries); the rest wait.
    const day1 = start + 6 * DAY;
    world.email.inject({ on: 'send', status: 503, retryAfterSeconds: 0, times: 4 });
    const first = await run(day1);
    expect(first.stderr).toMatch(/expiry reminder .* was not sent; the next run retries it/);
    expect(reminders(world)).toHaveLength(0);
    expect(JSON.parse((await world.read(world.reports, `${folder(day1)}manifest.json`))!).reminders).toMatchObject({
      sent: 0,
      failed: 1,
      waiting: 4,
    });
    const digest1 = (await world.read(world.reports, `${folder(day1)}digest.txt`))!;
    expect(digest1).toContain('1 reminder email(s) could not be sent; the next run retries them.');
    expect(digest1).toContain('4 reminder email(s) wait for the next run (at most 2 a run, REMINDERS_PER_RUN).');

    // Day 2: the failed one and one more (two a run); day 3: two; day 4: none left.
    const day2 = day1 + DAY;
    await run(day2);
    expect(reminders(world)).toHaveLength(2);
    expect(JSON.parse((await world.read(world.reports, `${folder(day2)}manifest.json`))!).reminders).toMatchObject({
      sent: 2,
      failed: 0,
      waiting: 3,
    });
    await run(day2 + DAY);
    await run(day2 + 2 * DAY);
    await run(day2 + 3 * DAY);
    const to = reminders(world)
      .map((m) => m.recipients.to[0].address)
      .sort();
    expect(to).toEqual(users.map((u) => u.mail!).sort());
    expect(
      JSON.parse((await world.read(world.reports, `${folder(day2 + 3 * DAY)}manifest.json`))!).reminders,
    ).toMatchObject({ sent: 0, waiting: 0 });
  }, 60_000);
});
