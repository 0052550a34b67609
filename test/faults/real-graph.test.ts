/**
 * Graph as public captures show it (README, "What we know of Graph"), one trap per test, through the
 * product's real entry point and the real SDK clients against the simulator: page sizes, the audit
 * log's retention floor, records naming a group before the user, memberType Group schedules, groups
 * whose members cannot be read, PIM for Groups missing in a national cloud, deleted principals.
 */
import { CISA_PRIVILEGED_ROLES } from '../../src/pim/roles';
import { generateTenant } from '../../tools/tenant/generate';
import type { SimTenant } from '../../tools/tenant/model';
import { expectedActivations, expectedAssignmentRows } from '../support/expected';
import { Clock, DAY_MS, DAILY_FILES, folderOf } from '../support/faults';
import { records, startWorld, type World, type WorldOptions } from '../support/world';

const NOW = '2026-11-20T06:00:00Z';
const DAY = '2026-11-20';
const privilegedRoleIds = new Set(Object.keys(CISA_PRIVILEGED_ROLES));

describe('Graph as public captures show it', () => {
  let world: World;
  const clock = new Clock(NOW);
  afterEach(async () => world?.stop());

  function tenantOf(seed: string, size: Partial<Parameters<typeof generateTenant>[0]> = {}): SimTenant {
    return generateTenant({
      seed,
      now: new Date(NOW),
      users: 40,
      groups: 5,
      eligible: 60,
      active: 30,
      auditDays: 31,
      ...size,
    });
  }

  async function start(tenant: SimTenant, options: WorldOptions = {}) {
    clock.set(NOW);
    world = await startWorld(tenant, {
      auditRateLimit: { requests: 1000, perMs: 1000 },
      now: clock.now,
      email: 'none',
      ...options,
    });
    return world;
  }

  async function daily(now = NOW) {
    return world.cli(['daily', '--now', now]);
  }

  async function manifestOf(day = DAY): Promise<Record<string, unknown>> {
    return JSON.parse((await world.read(world.reports, `${folderOf(day)}manifest.json`)) ?? '{}') as Record<
      string,
      unknown
    >;
  }

  async function everyFileWritten(day = DAY) {
    const names = await world.list(world.reports, folderOf(day));
    for (const file of [...DAILY_FILES, 'manifest.json']) expect(names).toContain(`${folderOf(day)}${file}`);
  }

  /** The first lines of the plain-text digest (its header and the notices before the first section). */
  async function digestTop(day = DAY): Promise<string> {
    const text = (await world.read(world.reports, `${folderOf(day)}digest.txt`)) ?? '';
    return text.slice(0, text.indexOf('New assignments'));
  }

  const roleGroupId = (tenant: SimTenant) => {
    const ids = new Set(tenant.groups.map((g) => g.id));
    const held = tenant.eligibilitySchedules.find((s) => s.memberType === 'Direct' && ids.has(s.principalId));
    if (!held) throw new Error('the tenant has no group that holds a role');
    return tenant.groups.find((g) => g.id === held.principalId)!;
  };

  it('pages of 25 unless asked: asks $top=999 of every list, so each list is one page at this size', async () => {
    const tenant = tenantOf('top-999', { eligible: 300, active: 120 });
    await start(tenant);
    expect((await daily()).code).toBe(0);
    const lists = world.graph.requests.filter((r) =>
      /roleEligibilitySchedules|roleAssignmentSchedules|transitiveMembers|privilegedAccess|directoryAudits/.test(
        r.path,
      ),
    );
    expect(lists.length).toBeGreaterThan(0);
    for (const r of lists) expect(r.query.$top).toBe('999');
    // 300 eligible schedules in pages of 25 would be 12 requests.
    expect(world.graph.requests.filter((r) => r.path.endsWith('/roleEligibilitySchedules'))).toHaveLength(1);
    // Role names are read once a run, for the snapshot and the role settings alike.
    expect(world.graph.requests.filter((r) => r.path.endsWith('/roleDefinitions'))).toHaveLength(1);
    const expected = expectedAssignmentRows(world.graph.tenant, { privilegedRoleIds });
    expect(records(await world.csv(world.reports, `${folderOf(DAY)}eligible-assignments.csv`))).toEqual(
      expected.eligible,
    );
  });

  it('roleDefinitions, which live tenants refuse $top on, is asked without it and read to its last page', async () => {
    const tenant = tenantOf('role-definitions-paged');
    // Pages of 5: the 22 role definitions come in 5 pages, the PIM lists (asked $top=999) in one.
    await start(tenant, { pageSize: 5 });
    expect((await daily()).code).toBe(0);
    const definitions = world.graph.requests.filter((r) => r.path.endsWith('/roleDefinitions'));
    expect(definitions).toHaveLength(Math.ceil(tenant.roleDefinitions.length / 5));
    for (const r of definitions) expect([r.status, r.query.$top]).toEqual([200, undefined]);
    const expected = expectedAssignmentRows(world.graph.tenant, { privilegedRoleIds });
    expect(records(await world.csv(world.reports, `${folderOf(DAY)}eligible-assignments.csv`))).toEqual(
      expected.eligible,
    );
  });

  it("a 400 Request_UnsupportedQuery on a list asked with $top (roleDefinitions' words): asked again without it", async () => {
    const tenant = tenantOf('top-unsupported', { groups: 12 });
    await start(tenant);
    // The two answers live tenants give roleDefinitions for $top (README, "What we know of Graph").
    world.graph.inject({
      path: /roleAssignmentSchedules\?.*\$top/,
      status: 400,
      body: { error: { code: 'Request_UnsupportedQuery', message: 'Invalid/unsupported query request' } },
    });
    world.graph.inject({
      path: /transitiveMembers\?.*\$top/,
      status: 400,
      body: {
        error: { code: 'Request_UnsupportedQuery', message: 'This resource requires a minimum page size of 20.' },
      },
    });
    const run = await daily();
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/refused \$top on \/roleManagement\/directory\/roleAssignmentSchedules/);
    const assignments = world.graph.requests.filter((r) => r.path.endsWith('/roleAssignmentSchedules'));
    expect(assignments[0].status).toBe(400);
    expect(assignments.slice(1).every((r) => r.query.$top === undefined && r.status === 200)).toBe(true);
    const expected = expectedAssignmentRows(world.graph.tenant, { privilegedRoleIds });
    expect(records(await world.csv(world.reports, `${folderOf(DAY)}eligible-assignments.csv`))).toEqual(
      expected.eligible,
    );
    expect(records(await world.csv(world.reports, `${folderOf(DAY)}active-assignments.csv`))).toEqual(expected.active);
  });

  it('a 400 naming $top: the list is asked again without it, and never with it again in the run', async () => {
    const tenant = tenantOf('top-refused', { groups: 12 });
    await start(tenant);
    const refusal = {
      error: { code: 'BadRequest', message: "Query option '$top' is not supported on this resource." },
    };
    world.graph.inject({ path: /roleEligibilitySchedules\?.*\$top/, status: 400, body: refusal });
    world.graph.inject({ path: /transitiveMembers\?.*\$top/, status: 400, body: refusal });
    const run = await daily();
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/refused \$top on \/roleManagement\/directory\/roleEligibilitySchedules/);
    const eligibility = world.graph.requests.filter((r) => r.path.endsWith('/roleEligibilitySchedules'));
    expect(eligibility[0].status).toBe(400);
    expect(eligibility.slice(1).every((r) => r.query.$top === undefined && r.status === 200)).toBe(true);
    const members = world.graph.requests.filter((r) => r.path.endsWith('/transitiveMembers'));
    const refused = members.findIndex((r) => r.status === 400);
    expect(refused).toBeGreaterThanOrEqual(0);
    // Lists sent after the refusal was known go without $top.
    expect(members[members.length - 1].query.$top).toBeUndefined();
    const expected = expectedAssignmentRows(world.graph.tenant, { privilegedRoleIds });
    expect(records(await world.csv(world.reports, `${folderOf(DAY)}eligible-assignments.csv`))).toEqual(
      expected.eligible,
    );
    expect(records(await world.csv(world.reports, `${folderOf(DAY)}active-assignments.csv`))).toEqual(expected.active);
  });

  it("audit retention: a first run of yesterday 06:00 is refused with Graph's 400, re-reads from its floor and records the gap", async () => {
    const tenant = tenantOf('retention-floor');
    await start(tenant);
    // Graph's clock is a day later than the run's --now: the run's lower bound is older than Graph keeps.
    clock.set(new Date(Date.parse(NOW) + DAY_MS));
    const run = await daily(NOW);
    expect(run.code).toBe(0);
    const refused = world.graph.requests.filter((r) => r.path.endsWith('/directoryAudits') && r.status === 400);
    expect(refused).toHaveLength(1);
    await everyFileWritten();
    const floor = new Date(Math.floor((Date.parse(NOW) + DAY_MS - 30 * DAY_MS) / DAY_MS) * DAY_MS);
    const manifest = await manifestOf();
    const gaps = (manifest.activations as { gaps: Array<{ fromUtc: string; toUtc: string }> }).gaps;
    expect(gaps).toEqual([
      expect.objectContaining({
        fromUtc: new Date(Date.parse(NOW) - 30 * DAY_MS).toISOString(),
        toUtc: floor.toISOString(),
      }),
    ]);
    expect(await digestTop()).toMatch(/could not be harvested/);
    expect(records(await world.csv(world.reports, `${folderOf(DAY)}activations.csv`))).toEqual(
      expectedActivations(world.graph.tenant, floor, new Date(NOW)),
    );
  });

  it('audit retention: a first run backfilled past what Graph keeps records its whole window as a gap and writes every file', async () => {
    const tenant = tenantOf('retention-whole-window');
    await start(tenant);
    // Graph's clock is 40 days after the run's --now: the run's whole window lies before Graph's floor.
    clock.set(new Date(Date.parse(NOW) + 40 * DAY_MS));
    const run = await daily(NOW);
    expect(run.code).toBe(0);
    await everyFileWritten();
    const manifest = await manifestOf();
    const gaps = (manifest.activations as { gaps: Array<{ fromUtc: string; toUtc: string }> }).gaps;
    expect(gaps).toEqual([
      expect.objectContaining({
        fromUtc: new Date(Date.parse(NOW) - 30 * DAY_MS).toISOString(),
        toUtc: NOW.replace('Z', '.000Z'),
      }),
    ]);
    expect(await digestTop()).toMatch(/could not be harvested/);
    expect(records(await world.csv(world.reports, `${folderOf(DAY)}activations.csv`))).toEqual([]);
    // Refused once for each of the two queries at most, and nothing asked of the empty rest.
    const audits = world.graph.requests.filter((r) => r.path.endsWith('/directoryAudits'));
    expect(audits.every((r) => r.status === 400)).toBe(true);
    expect(audits.length).toBeLessThanOrEqual(2);
  });

  it('audit retention: a second backfilled day past what Graph keeps records only its own new time as a gap, not the overlap again', async () => {
    const tenant = tenantOf('retention-series');
    await start(tenant);
    clock.set(new Date(Date.parse(NOW) + 40 * DAY_MS));
    expect((await daily(NOW)).code).toBe(0);
    const next = new Date(Date.parse(NOW) + DAY_MS).toISOString();
    expect((await daily(next)).code).toBe(0);
    const nextDay = next.slice(0, 10);
    await everyFileWritten(nextDay);
    const gaps = ((await manifestOf(nextDay)).activations as { gaps: Array<{ fromUtc: string; toUtc: string }> }).gaps;
    // The first day's gap ended at its run (NOW); the second begins there, not at its window's start
    // (the overlap re-read before NOW, already recorded as lost by the first day).
    expect(gaps).toEqual([expect.objectContaining({ fromUtc: NOW.replace('Z', '.000Z'), toUtc: next })]);
  });

  it('who activated: the User target, not the group named first; Scope Id from the Activated schedule of the request', async () => {
    const tenant = tenantOf('group-target-first');
    const viaGroup = tenant.assignmentSchedules.find(
      (s) => s.assignmentType === 'Activated' && s.memberType === 'Group',
    );
    expect(viaGroup).toBeDefined();
    const record = tenant.directoryAudits.find(
      (a) =>
        a.activityDisplayName === 'Add member to role completed (PIM activation)' &&
        a.additionalDetails.some((d) => d.value === viaGroup!.createdUsing),
    )!;
    // The trap as Graph sets it: a Group target first, the user later, no DirectoryScopeId detail.
    expect(record.targetResources[0].type ?? record.targetResources[0].Type).toBe('Group');
    expect(record.additionalDetails.some((d) => d.key === 'DirectoryScopeId')).toBe(false);
    await start(tenant);
    expect((await daily()).code).toBe(0);
    const rows = records(await world.csv(world.reports, `${folderOf(DAY)}activations.csv`));
    const row = rows.find((r) => r['Audit Id'] === record.id)!;
    expect(row['Principal Id']).toBe(viaGroup!.principalId);
    expect(row['Principal Id']).toBe(record.initiatedBy.user!.id);
    expect(row['Scope Id']).toBe(viaGroup!.directoryScopeId);
    expect(rows).toEqual(
      expectedActivations(world.graph.tenant, new Date(Date.parse(NOW) - 30 * DAY_MS), new Date(NOW)),
    );
  });

  it('memberType Group: a member who activated through the group is listed once, Member Type Group, Via Group', async () => {
    const tenant = tenantOf('member-type-group');
    const viaGroup = tenant.assignmentSchedules.find(
      (s) => s.assignmentType === 'Activated' && s.memberType === 'Group',
    )!;
    await start(tenant);
    const run = await daily();
    expect(run.code).toBe(0);
    const active = records(await world.csv(world.reports, `${folderOf(DAY)}active-assignments.csv`));
    const rows = active.filter((r) => r['Schedule Id'] === viaGroup.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      'Principal Id': viaGroup.principalId,
      'Member Type': 'Group',
      'Assignment Type': 'Activated',
    });
    expect(rows[0]['Via Group Id']).not.toBe('');
    // Graph's copies of what the expansion already gives are dropped, and counted in the log.
    expect(run.stderr + run.stdout).toMatch(/schedule\(s\) Graph derived from a group dropped/);
    expect(active).toEqual(expectedAssignmentRows(world.graph.tenant, { privilegedRoleIds }).active);
  });

  it('403 on a hidden-membership group: exit 0, every file, the group row stays, digest and manifest say why', async () => {
    const tenant = tenantOf('hidden-membership');
    const group = roleGroupId(tenant);
    group.hiddenMembership = true;
    await start(tenant);
    const run = await daily();
    expect(run.code).toBe(0);
    await everyFileWritten();
    const eligible = records(await world.csv(world.reports, `${folderOf(DAY)}eligible-assignments.csv`));
    expect(eligible.some((r) => r['Principal Id'] === group.id && r['Member Type'] === 'Direct')).toBe(true);
    expect(
      eligible.some(
        (r) => r['Via Group Id'] === group.id && r['Member Type'] === 'Group' && r['Principal Type'] !== '',
      ),
    ).toBe(tenant.groupEligibilitySchedules.some((g) => g.groupId === group.id && g.accessId === 'member'));
    expect(await digestTop()).toMatch(
      new RegExp(
        `${group.displayName} \\(${group.id}\\) could not be expanded: .*403 Authorization_RequestDenied.*Member.Read.Hidden`,
      ),
    );
    const manifest = await manifestOf();
    expect(manifest.incomplete).toEqual([
      expect.objectContaining({
        list: 'transitiveMembers',
        groupId: group.id,
        status: 403,
        code: 'Authorization_RequestDenied',
      }),
    ]);
  });

  it('with Member.Read.Hidden the same group is expanded and nothing is incomplete', async () => {
    const tenant = tenantOf('hidden-membership');
    roleGroupId(tenant).hiddenMembership = true;
    await start(tenant, { memberReadHidden: true });
    expect((await daily()).code).toBe(0);
    expect((await manifestOf()).incomplete).toEqual([]);
    expect(records(await world.csv(world.reports, `${folderOf(DAY)}eligible-assignments.csv`))).toEqual(
      expectedAssignmentRows(world.graph.tenant, { privilegedRoleIds }).eligible,
    );
  });

  it('404 on a group deleted between the schedules and its expansion (inside $batch): reported, run completes', async () => {
    const tenant = tenantOf('deleted-group');
    const group = roleGroupId(tenant);
    await start(tenant);
    world.graph.inject({ path: `/groups/${group.id}/transitiveMembers`, status: 404, times: 5 });
    const run = await daily();
    expect(run.code).toBe(0);
    await everyFileWritten();
    expect(world.graph.requests.some((r) => r.batched && r.status === 404 && r.path.includes(group.id))).toBe(true);
    expect(await digestTop()).toMatch(
      new RegExp(`${group.id}\\) could not be expanded: the group no longer exists \\(404`),
    );
    expect((await manifestOf()).incomplete).toEqual([expect.objectContaining({ groupId: group.id, status: 404 })]);
  });

  it("national cloud without PIM for Groups (400 on 'privilegedAccess'): exit 0, every file, said once", async () => {
    const tenant = tenantOf('national-cloud');
    await start(tenant, { pimForGroups: false });
    const run = await daily();
    expect(run.code).toBe(0);
    await everyFileWritten();
    expect(await digestTop()).toMatch(/Incomplete: PIM for Groups could not be read/);
    const incomplete = (await manifestOf()).incomplete as Array<Record<string, unknown>>;
    expect(incomplete).toEqual([expect.objectContaining({ list: 'pimForGroups', groupId: '', status: 400 })]);
    // Group members still listed; only PIM-for-Groups eligible members are missing.
    const expected = expectedAssignmentRows(
      { ...world.graph.tenant, groupEligibilitySchedules: [] },
      { privilegedRoleIds },
    );
    expect(records(await world.csv(world.reports, `${folderOf(DAY)}eligible-assignments.csv`))).toEqual(
      expected.eligible,
    );
  });

  it('a schedule Graph lists with a status other than Provisioned: listed as Graph gives it, and said in the log and manifest', async () => {
    const tenant = tenantOf('other-status');
    const [revoked, pending] = tenant.eligibilitySchedules.filter((s) => s.memberType === 'Direct');
    revoked.status = 'Revoked';
    pending.status = 'PendingProvisioning';
    await start(tenant);
    const run = await daily();
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(
      '2 schedule(s) Graph lists with a status other than Provisioned (Revoked: 1, PendingProvisioning: 1): listed as held',
    );
    expect((await manifestOf()).schedules).toMatchObject({ otherStatuses: { Revoked: 1, PendingProvisioning: 1 } });
    const expected = expectedAssignmentRows(world.graph.tenant, { privilegedRoleIds });
    expect(records(await world.csv(world.reports, `${folderOf(DAY)}eligible-assignments.csv`))).toEqual(
      expected.eligible,
    );
  });

  it('deleted principals (null, left out, id only): rows stay with blank names', async () => {
    const tenant = tenantOf('deleted-principals');
    const gone = [
      'a0000000-0000-4000-8000-000000000000',
      'a0000000-0000-4000-8000-000000000001',
      'a0000000-0000-4000-8000-000000000002',
    ];
    // The simulator picks null, absent or id-only by the last hex digit of the schedule id.
    const template = tenant.eligibilitySchedules.find((s) => s.memberType === 'Direct')!;
    for (const [i, principalId] of gone.entries()) {
      tenant.eligibilitySchedules.push({ ...template, id: `b0000000-0000-4000-8000-00000000000${i}`, principalId });
    }
    await start(tenant);
    expect((await daily()).code).toBe(0);
    const eligible = records(await world.csv(world.reports, `${folderOf(DAY)}eligible-assignments.csv`));
    for (const principalId of gone) {
      expect(eligible.filter((r) => r['Principal Id'] === principalId)).toEqual([
        expect.objectContaining({ 'User Group Name': '', PrincipalName: '', 'Principal Type': '' }),
      ]);
    }
  });
});
