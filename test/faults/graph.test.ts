/**
 * docs/faults.md: Graph faults: throttling with and without Retry-After, 503/504, a connection reset in the
 * middle of a page, an audit-log skip token Graph no longer honours, empty pages, the real audit
 * rate limit, and a failure that is not transient. Each run is checked against the oracle: nothing
 * lost, nothing doubled; a run that fails says so and the next one completes.
 */
import { CISA_PRIVILEGED_ROLES } from '../../src/pim/roles';
import { generateTenant } from '../../tools/tenant/generate';
import { expectedActivations, expectedAssignmentRows } from '../support/expected';
import { ActivationFeed, Clock, DAY_MS, dailyFilesProblems, finalDays, LogBook, folderOf } from '../support/faults';
import { records, startWorld, type World, type WorldOptions } from '../support/world';

const NOW = '2026-11-20T06:00:00Z';
const DAY = '2026-11-20';
const privilegedRoleIds = new Set(Object.keys(CISA_PRIVILEGED_ROLES));
const logs = new LogBook();

describe('Graph faults', () => {
  let world: World;
  const clock = new Clock(NOW);
  afterEach(async () => world?.stop());
  afterAll(() => {
    expect(logs.size).toBeGreaterThan(0);
    expect(logs.leaks()).toEqual([]);
  });

  async function start(
    seed: string,
    options: WorldOptions = {},
    size: Partial<Parameters<typeof generateTenant>[0]> = {},
  ) {
    clock.set(NOW);
    const tenant = generateTenant({
      seed,
      now: new Date(NOW),
      users: 40,
      groups: 5,
      eligible: 50,
      active: 25,
      auditDays: 31,
      ...size,
    });
    world = await startWorld(tenant, {
      pageSize: 9,
      maxPageSize: 9,
      auditRateLimit: { requests: 1000, perMs: 1000 },
      now: clock.now,
      ...options,
    });
    logs.knowSecretsOf(world);
    return world;
  }

  async function daily(now = NOW) {
    const run = await world.cli(['daily', '--now', now]);
    logs.add(run.stderr, run.stdout);
    return run;
  }

  /** The day's CSVs are exactly the oracle's, and every activation Graph holds is there once. */
  async function expectTheDayAsTheOracleSaysIt(day = DAY, now = NOW) {
    const expected = expectedAssignmentRows(world.graph.tenant, { privilegedRoleIds });
    expect(records(await world.csv(world.reports, `${folderOf(day)}eligible-assignments.csv`))).toEqual(
      expected.eligible,
    );
    expect(records(await world.csv(world.reports, `${folderOf(day)}active-assignments.csv`))).toEqual(expected.active);
    const activations = expectedActivations(world.graph.tenant, new Date(Date.parse(now) - 30 * DAY_MS), new Date(now));
    expect(activations.length).toBeGreaterThan(10);
    expect(records(await world.csv(world.reports, `${folderOf(day)}activations.csv`))).toEqual(activations);
  }

  /** The retry waits the client asked for before asking `endpoint` again, in order. */
  const waitsOn = (endpoint: RegExp) => world.waits.filter((w) => endpoint.test(w.endpoint)).map((w) => w.ms);

  it('429 with Retry-After: waits as long as Graph says, then writes exactly the expected day', async () => {
    await start('throttle-retry-after');
    world.graph.inject({ path: /roleEligibilitySchedules/, status: 429, retryAfterSeconds: 2, times: 1 });
    world.graph.inject({ path: /directoryAudits/, status: 429, retryAfterSeconds: 1, times: 1 });
    const run = await daily();
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(
      /Graph 429 on \/roleManagement\/directory\/roleEligibilitySchedules; retrying in 2\.0 s/,
    );
    // Exactly as long as Graph asked, never earlier: throttled calls count against the app
    // (https://learn.microsoft.com/graph/throttling).
    expect(waitsOn(/roleEligibilitySchedules/)).toEqual([2000]);
    expect(waitsOn(/directoryAudits/)).toEqual([1000]);
    expect(world.waits.length).toBe(2);
    await expectTheDayAsTheOracleSaysIt();
  });

  it('429 without Retry-After, 503 and 504 (also inside $batch): backs off exponentially and retries', async () => {
    await start('throttle-backoff');
    world.graph.inject({ path: /roleAssignmentSchedules/, status: 429, times: 2 });
    world.graph.inject({ path: /roleDefinitions/, status: 503, times: 1 });
    world.graph.inject({ path: /directoryAudits/, status: 504, times: 1 });
    world.graph.inject({ path: /transitiveMembers/, status: 503, times: 1 }); // an item of a $batch
    world.graph.inject({ path: /\$batch/, status: 504, times: 1 }); // the $batch itself
    const run = await daily();
    expect(run.code).toBe(0);
    expect(waitsOn(/roleAssignmentSchedules/)).toEqual([1000, 2000]); // doubled
    expect(waitsOn(/roleDefinitions/)).toEqual([1000]);
    expect(waitsOn(/directoryAudits/)).toEqual([1000]);
    expect(waitsOn(/transitiveMembers/)).toEqual([1000]); // the item of the $batch
    expect(waitsOn(/\$batch/)).toEqual([1000]); // the $batch itself
    expect(world.waits.length).toBe(6);
    expect(world.graph.requests.filter((r) => r.batched && r.status === 503).length).toBe(1);
    await expectTheDayAsTheOracleSaysIt();
  });

  it('a 429 storm longer than the retry budget fails the run loudly; nothing is final; the next run completes', async () => {
    await start('throttle-storm');
    world.graph.inject({ path: /roleEligibilitySchedules/, status: 429, retryAfterSeconds: 0, times: 7 });
    const failed = await daily();
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /error: Graph 429 TooManyRequests on \/roleManagement\/directory\/roleEligibilitySchedules/,
    );
    expect(await finalDays(world)).toEqual([]);
    expect(world.email.sent).toEqual([]);

    const again = await daily();
    expect(again.code).toBe(0);
    await expectTheDayAsTheOracleSaysIt();
    expect(world.email.sent.length).toBe(1);
  });

  it("a failure that is not transient (500) is not retried, is named with Graph's code, and the next run completes", async () => {
    await start('graph-500');
    world.graph.inject({ path: /roleAssignmentSchedules/, status: 500, times: 1 });
    const failed = await daily();
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(
      'error: Graph 500 InternalServerError on /roleManagement/directory/roleAssignmentSchedules',
    );
    expect(failed.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(await finalDays(world)).toEqual([]);
    expect((await daily()).code).toBe(0);
    await expectTheDayAsTheOracleSaysIt();
  });

  it("502 (a gateway's failure), also inside $batch, and a page that is not JSON: asked again, nothing lost", async () => {
    await start('gateway-faults');
    world.graph.inject({ path: /roleEligibilitySchedules/, status: 502, times: 1 });
    world.graph.inject({ path: /transitiveMembers/, status: 502, times: 1 }); // an item of a $batch
    // A gateway's HTML page, with 200 and with 502: read as a page, it would end the list short.
    world.graph.inject({ path: /roleAssignmentSchedules.*skiptoken/i, kind: 'html', times: 1 });
    world.graph.inject({ path: /directoryAudits/, kind: 'html', status: 502, times: 1 });
    const run = await daily();
    expect(run.code).toBe(0);
    expect(waitsOn(/roleEligibilitySchedules/)).toEqual([1000]);
    expect(waitsOn(/transitiveMembers/)).toEqual([1000]);
    expect(run.stderr).toMatch(
      /Graph answered 200 with text\/html; charset=utf-8, not JSON on \/roleManagement\/directory\/roleAssignmentSchedules; retrying/,
    );
    expect(waitsOn(/directoryAudits/)).toEqual([1000]);
    await expectTheDayAsTheOracleSaysIt();
  });

  it('a list page without its value list (also inside $batch) fails the run by name; nothing is final; the next run completes', async () => {
    await start('no-value');
    world.graph.inject({ path: /roleEligibilitySchedules.*skiptoken/i, kind: 'noValue', times: 1 });
    const failed = await daily();
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(
      'error: Graph answered /roleManagement/directory/roleEligibilitySchedules with a page that holds no "value" list',
    );
    expect(await finalDays(world)).toEqual([]);
    // Inside a $batch the item is asked again, like a network fault.
    world.graph.inject({ path: /transitiveMembers/, kind: 'noValue', times: 1 });
    expect((await daily()).code).toBe(0);
    expect(waitsOn(/transitiveMembers/)).toEqual([1000]);
    await expectTheDayAsTheOracleSaysIt();
  });

  it('HTML pages past the retry budget fail the run, naming what Graph answered', async () => {
    await start('html-storm');
    world.graph.inject({ path: /roleAssignmentSchedules/, kind: 'html', times: 7 });
    const failed = await daily();
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /error: Graph answered GET \/roleManagement\/directory\/roleAssignmentSchedules 200 with text\/html; charset=utf-8, not JSON \(7 attempts\)/,
    );
    expect(await finalDays(world)).toEqual([]);
  });

  it("an audit log that fails stops the run before the day's assignment files are written (the snapshot still being read)", async () => {
    await start('audit-fails-early', { requestTimeoutMs: REQUEST_TIMEOUT_MS });
    // The snapshot is held up (two abandoned attempts) while the audit log fails at once.
    world.graph.inject({ path: /roleEligibilitySchedules/, kind: 'hang', times: 2 });
    world.graph.inject({ path: /directoryAudits/, status: 500, times: 1 });
    const failed = await daily();
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('error: Graph 500 InternalServerError on /auditLogs/directoryAudits');
    expect(await world.list(world.reports, folderOf(DAY))).toEqual([]);
    expect(await finalDays(world)).toEqual([]);
    expect((await daily()).code).toBe(0);
    await expectTheDayAsTheOracleSaysIt();
  });

  it('role settings that cannot be read fail the run before the snapshot state is kept or anything is sent', async () => {
    await start('role-settings-500');
    world.graph.inject({ path: /roleManagementPolicyAssignments/, status: 500, times: 1 });
    const failed = await daily();
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(
      'error: Graph 500 InternalServerError on /policies/roleManagementPolicyAssignments',
    );
    expect(await world.read(world.reports, `state/schedules/${DAY}.jsonl`)).toBeUndefined();
    expect(await finalDays(world)).toEqual([]);
    expect(world.email.sent).toEqual([]);
    expect((await daily()).code).toBe(0);
    await expectTheDayAsTheOracleSaysIt();
  });

  it('a connection reset in the middle of a page is retried (schedules, audit log)', async () => {
    await start('reset');
    world.graph.inject({ path: /roleEligibilitySchedules.*skiptoken/i, kind: 'reset', times: 1 });
    world.graph.inject({ path: /directoryAudits/, kind: 'reset', times: 1 });
    const run = await daily();
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/warning: Graph .* on \/roleManagement\/directory\/roleEligibilitySchedules; retrying/);
    await expectTheDayAsTheOracleSaysIt();
  });

  // Short in tests so that a hang costs a fraction of a second; the clients' own are 100 s and 90 s.
  const REQUEST_TIMEOUT_MS = 300;

  it('a list Graph never answers: each attempt is abandoned after the timeout and retried, then the run fails naming the request; the next run completes', async () => {
    await start('hang', { requestTimeoutMs: REQUEST_TIMEOUT_MS });
    world.graph.inject({ path: /roleEligibilitySchedules/, kind: 'hang', times: 7 });
    const failed = await daily();
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /error: Graph did not answer GET \/roleManagement\/directory\/roleEligibilitySchedules within 0\.3 s \(7 attempts\)/,
    );
    expect(failed.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(failed.stderr).not.toMatch(/lease/i); // failed by the timeout, not by the lease lapsing
    // Retried as a 503 would be: the same budget, the same backoff.
    expect(waitsOn(/roleEligibilitySchedules/)).toEqual([1000, 2000, 4000, 8000, 16000, 32000]);
    const asked = world.graph.requests.filter((r) => r.path.endsWith('/roleEligibilitySchedules'));
    expect(asked.map((r) => r.status)).toEqual([0, 0, 0, 0, 0, 0, 0]); // never answered, asked 7 times
    expect(await finalDays(world)).toEqual([]);
    expect(world.email.sent).toEqual([]);

    const again = await daily();
    expect(again.code).toBe(0);
    await expectTheDayAsTheOracleSaysIt();
  });

  it('a page inside paging that never comes, or whose body stalls, is abandoned after the timeout and asked again', async () => {
    await start('hang-paging', { requestTimeoutMs: REQUEST_TIMEOUT_MS });
    world.graph.inject({ path: /roleEligibilitySchedules.*skiptoken/i, kind: 'hang', times: 1 });
    world.graph.inject({ path: /roleAssignmentSchedules.*skiptoken/i, kind: 'hang', afterHeaders: true, times: 2 });
    const run = await daily();
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(
      /warning: Graph gave no answer within 0\.3 s on \/roleManagement\/directory\/roleEligibilitySchedules; retrying in 1\.0 s/,
    );
    expect(waitsOn(/roleEligibilitySchedules/)).toEqual([1000]);
    expect(waitsOn(/roleAssignmentSchedules/)).toEqual([1000, 2000]);
    await expectTheDayAsTheOracleSaysIt();
  });

  it('a page inside paging that never comes, longer than the retry budget, fails the run naming the request', async () => {
    await start('hang-paging-storm', { requestTimeoutMs: REQUEST_TIMEOUT_MS });
    world.graph.inject({ path: /roleAssignmentSchedules.*skiptoken/i, kind: 'hang', afterHeaders: true, times: 7 });
    const failed = await daily();
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      /error: Graph did not answer GET \/roleManagement\/directory\/roleAssignmentSchedules within 0\.3 s \(7 attempts\)/,
    );
    const pages = world.graph.requests.filter((r) => r.path.endsWith('/roleAssignmentSchedules'));
    expect(pages[0].query.$skiptoken).toBeUndefined(); // the first page came
    expect(pages.filter((r) => r.query.$skiptoken !== undefined).length).toBe(7);
    expect(await finalDays(world)).toEqual([]);
  });

  it('"Invalid Skip Token" on the audit log: resumes from the last activation seen, not from the link', async () => {
    // Over 999 activations in Graph's 30 days: the audit log comes in more than one page.
    await start('skiptoken', {}, { users: 30, eligible: 40, active: 10, activationsPerDay: 45 });
    world.graph.inject({ path: /directoryAudits/, kind: 'invalidSkipToken', times: 1 });
    const run = await daily();
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/Graph no longer accepts the audit log's skip token; resuming from 2026-1/);
    const audits = world.graph.requests.filter((r) => r.path.endsWith('/directoryAudits'));
    const refused = audits.findIndex((r) => r.status === 400);
    expect(refused).toBeGreaterThan(0);
    const resumed = audits[refused + 1];
    // A fresh query from the last time seen (no skip token), later than the window's start.
    expect(resumed.query.$skiptoken).toBeUndefined();
    const since = /activityDateTime ge (\S+)/.exec(resumed.query.$filter)?.[1];
    expect(Date.parse(since!)).toBeGreaterThan(Date.parse(NOW) - 29 * DAY_MS);
    await expectTheDayAsTheOracleSaysIt();
  });

  it('empty pages with a nextLink are followed to the end', async () => {
    await start('empty-pages');
    world.graph.inject({ path: /roleEligibilitySchedules/, kind: 'emptyPage', times: 2 });
    world.graph.inject({ path: /directoryAudits/, kind: 'emptyPage', times: 1 });
    expect((await daily()).code).toBe(0);
    await expectTheDayAsTheOracleSaysIt();
  });

  it('meets the real audit-log limit (5 requests per 10 s): waits out the 429 and loses nothing', async () => {
    // The real limit, not a raised one: eight audit requests in a row (six empty pages, then the last
    // page of the approvals and of the completions) must wait once.
    await start('rate-limit', { auditRateLimit: undefined });
    world.graph.inject({ path: /directoryAudits/, kind: 'emptyPage', times: 6 });
    const run = await daily();
    expect(run.code).toBe(0);
    const audits = world.graph.requests.filter((r) => r.path.endsWith('/directoryAudits'));
    expect(audits.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(1);
    // Each 429 waited out (on the simulator's clock, which moves on by each wait), none retried early.
    expect(waitsOn(/directoryAudits/).length).toBe(audits.filter((r) => r.status === 429).length);
    const admitted = audits.filter((r) => r.status === 200).map((r) => r.at);
    expect(admitted.length).toBe(8);
    // Sequential and within the limit: no 6 admitted requests inside any 10 s.
    for (let i = 5; i < admitted.length; i++) expect(admitted[i] - admitted[i - 5]).toBeGreaterThanOrEqual(9_000);
    await expectTheDayAsTheOracleSaysIt();
  });

  it('across days with faults and late audit events, each activation is in exactly one daily file', async () => {
    await start('days', {}, { auditDays: 31 });
    const feed = new ActivationFeed(world, 'days');
    const days = ['2026-11-20', '2026-11-21', '2026-11-22'];
    const faults = [
      () => world.graph.inject({ path: /directoryAudits/, kind: 'reset', times: 1 }),
      () => world.graph.inject({ path: /directoryAudits/, status: 503, retryAfterSeconds: 0, times: 2 }),
      () => world.graph.inject({ path: /directoryAudits/, kind: 'emptyPage', times: 1 }),
    ];
    for (const [i, day] of days.entries()) {
      clock.set(`${day}T06:00:00Z`);
      // Some land before the previous run's watermark (audit events arrive late): the overlap finds them.
      if (i > 0) feed.add(new Date(Date.parse(`${day}T06:00:00Z`) - 28 * 3_600_000), `${day}T06:00:00Z`, 12);
      faults[i]();
      expect((await daily(`${day}T06:00:00Z`)).code).toBe(0);
    }
    expect(await finalDays(world)).toEqual(days);
    expect(
      await dailyFilesProblems(world, new Date(Date.parse(NOW) - 30 * DAY_MS), new Date('2026-11-22T06:00:00Z')),
    ).toEqual({
      missing: [],
      doubled: [],
      extra: [],
      different: [],
    });
  });
});
