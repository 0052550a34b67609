/**
 * docs/faults.md: ACS Email faults: a 5xx on send and an operation that ends Failed. The CSVs and the
 * day's manifest are written, the run fails loudly, the digest stays queued, and the next run sends
 * it: every day's digest goes out exactly once. A re-run of a day whose digest went out sends nothing.
 */
import { generateTenant } from '../../tools/tenant/generate';
import { addDays, at, Clock, emailsPerDay, finalDays, folderOf, LogBook, manifestProblems } from '../support/faults';
import { startWorld, type World } from '../support/world';

const START = '2026-11-10';
const logs = new LogBook();

describe('ACS Email faults', () => {
  let world: World;
  const clock = new Clock(at(START));

  beforeAll(async () => {
    world = await startWorld(
      generateTenant({ seed: 'email', now: new Date(at(START)), users: 15, groups: 2, eligible: 10, active: 6 }),
      {
        auditRateLimit: { requests: 1000, perMs: 1000 },
        now: clock.now,
      },
    );
    logs.knowSecretsOf(world);
  });
  afterAll(async () => {
    await world?.stop();
    expect(logs.leaks()).toEqual([]);
  });

  async function daily(day: string, ...extra: string[]) {
    clock.set(at(day));
    const run = await world.cli(['daily', '--now', at(day), ...extra]);
    logs.add(run.stderr, run.stdout);
    return run;
  }

  it.each([
    [
      'ACS answers 503 to every attempt',
      0,
      () => world.email.inject({ on: 'send', status: 503, retryAfterSeconds: 0, times: 4 }),
      /HTTP 503/,
    ],
    [
      'the send operation ends Failed',
      2,
      () =>
        world.email.inject({
          on: 'operation',
          status: 'Failed',
          error: { code: 'EmailDroppedAllRecipientsSuppressed', message: 'All recipients are suppressed.' },
          times: 1,
        }),
      /EmailDroppedAllRecipientsSuppressed\. All recipients are suppressed/,
    ],
  ])(
    '%s: files final, run failed, digest queued; the next day sends both, once each',
    async (_what, offset, inject, reason) => {
      const day = addDays(START, offset);
      const next = addDays(day, 1);
      const sentBefore = world.email.sent.length;
      inject();
      const failed = await daily(day);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(
        new RegExp(`error: The digest of ${day} was not sent; it stays queued for the next run\\. .*${reason.source}`),
      );
      expect(failed.stderr).toMatch(/error: the CSVs are written but the digest email failed .* the next run sends it/);
      expect(await manifestProblems(world, world.reports, folderOf(day))).toEqual([]);
      expect(await world.list(world.reports, 'state/outbox/')).toEqual([`state/outbox/${day}.json`]);
      expect(world.email.sent.length).toBe(sentBefore);

      const ok = await daily(next);
      expect(ok.code).toBe(0);
      expect(ok.stderr).toContain(`Emailed the digest of ${day}`);
      expect(world.email.sent.slice(sentBefore).map((m) => m.content.subject.slice(0, 21))).toEqual([
        `PIM digest ${day}`,
        `PIM digest ${next}`,
      ]);
      expect(await world.list(world.reports, 'state/outbox/')).toEqual([]);
    },
    30_000,
  );

  it('a re-run of a day whose digest went out sends nothing; --force-email sends it again, as asked', async () => {
    const day = addDays(START, 3);
    const before = world.email.sent.length;
    const again = await daily(day);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('is complete already');
    expect(world.email.sent.length).toBe(before);
    expect((await daily(day, '--force-email')).code).toBe(0);
    expect(world.email.sent.length).toBe(before + 1);
    expect((await daily(day)).code).toBe(0);
    expect(world.email.sent.length).toBe(before + 1);
  });

  it('every day so far: one email, or two where --force-email asked for it', async () => {
    expect(await finalDays(world)).toEqual([START, addDays(START, 1), addDays(START, 2), addDays(START, 3)]);
    expect(Object.fromEntries(emailsPerDay(world))).toEqual({
      [START]: 1,
      [addDays(START, 1)]: 1,
      [addDays(START, 2)]: 1,
      [addDays(START, 3)]: 2,
    });
  });
});
