/**
 * The whole activation trail, end to end: a tenant where Global Administrator is reached only
 * through a PIM-for-Groups group, approvals (one of them harvested a run before the activation it
 * approves, and outside the next run's overlap), checked against the oracle (test/support/expected.ts).
 */
import { generateTenant, groupEligibility, permanent, pimSchedule } from '../../tools/tenant/generate';
import { activationEvents, groupActivationEvents, type AuditContext } from '../../tools/tenant/audit';
import { GLOBAL_ADMINISTRATOR, type SimTenant } from '../../tools/tenant/model';
import { Rng } from '../../tools/tenant/random';
import { CISA_PRIVILEGED_ROLES } from '../../src/pim/roles';
import { expectedActivations, expectedUnused, parseCsv } from '../support/expected';
import { records, startWorld, type World } from '../support/world';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const dayPath = (d: Date) => `daily/${d.toISOString().slice(0, 10).replace(/-/g, '/')}/`;

/** Global Administrator held by no one but one role-assignable group, whose members activate their membership. */
function groupOnlyGlobalAdmins(
  end: Date,
  runs: Date[],
): { tenant: SimTenant; group: { id: string; displayName: string } } {
  const tenant = generateTenant({
    seed: 'ga-through-group',
    now: end,
    users: 30,
    groups: 4,
    eligible: 30,
    active: 10,
    auditDays: 35,
    activationsPerDay: 2,
  });
  const isGa = (id: string) => id.toLowerCase() === GLOBAL_ADMINISTRATOR;
  tenant.eligibilitySchedules = tenant.eligibilitySchedules.filter((s) => !isGa(s.roleDefinitionId));
  tenant.assignmentSchedules = tenant.assignmentSchedules.filter((s) => !isGa(s.roleDefinitionId));
  tenant.directoryAudits = tenant.directoryAudits.filter(
    (rec) => !(rec.targetResources ?? []).some((t) => (t.type ?? t.Type) === 'Role' && isGa(t.id ?? '')),
  );
  const rng = new Rng('ga-through-group-extra');
  const group = { id: rng.guid(), displayName: 'PIM Global Admins' };
  tenant.groups.push({ ...group, members: [], isAssignableToRole: true });
  tenant.assignmentSchedules.push(
    pimSchedule({
      id: rng.guid(),
      principalId: group.id,
      roleDefinitionId: GLOBAL_ADMINISTRATOR,
      directoryScopeId: '/',
      scheduleInfo: permanent('2026-01-05T00:00:00.000Z'),
      assignmentType: 'Assigned',
    }),
  );
  const [ann, bob, cat, boss] = tenant.users;
  for (const u of [ann, bob, cat]) {
    tenant.groupEligibilitySchedules.push(
      groupEligibility(rng, {
        groupId: group.id,
        principalId: u.id,
        accessId: 'member',
        scheduleInfo: permanent('2026-01-05T00:00:00.000Z'),
      }),
    );
  }
  const ctx: AuditContext = { rng, tenantId: tenant.tenantId, tenantName: tenant.displayName ?? 'Contoso', now: end };
  const approver = { id: boss.id, displayName: boss.displayName, userPrincipalName: boss.userPrincipalName };
  const activation = (
    who: typeof ann,
    start: number,
    extra: Partial<Parameters<typeof groupActivationEvents>[1]> = {},
  ) =>
    groupActivationEvents(ctx, {
      principal: { id: who.id, displayName: who.displayName, userPrincipalName: who.userPrincipalName, kind: 'User' },
      group,
      accessId: 'member',
      start: new Date(start),
      end: new Date(start + 4 * HOUR),
      justification: 'Tenant-wide change',
      requestId: rng.guid(),
      ...extra,
    });
  const [r0, r1] = runs;
  tenant.directoryAudits.push(
    ...activation(ann, r0.getTime() - 5 * HOUR),
    // Logged two seconds after the completion it approves (PIM approves and activates asynchronously).
    ...activation(bob, r1.getTime() - 3 * HOUR, { approver, approvedAt: new Date(r1.getTime() - 3 * HOUR + 2000) }),
    // Approved 26 hours before the first run, starting after the second: the third run joins them through the state.
    ...activation(cat, r1.getTime() + HOUR, { approver, approvedAt: new Date(r0.getTime() - 26 * HOUR) }),
  );
  tenant.directoryAudits.sort((a, b) =>
    a.activityDateTime < b.activityDateTime ? -1 : a.activityDateTime > b.activityDateTime ? 1 : 0,
  );
  return { tenant, group };
}

describe('the activation trail', () => {
  let world: World;
  afterEach(async () => world?.stop());

  it('shows every activation of Global Administrator through a PIM-for-Groups group, with the group, its role and the approver', async () => {
    const end = new Date('2026-11-24T06:00:00Z');
    const runs = [new Date(end.getTime() - 2 * DAY), new Date(end.getTime() - DAY), end];
    const { tenant, group } = groupOnlyGlobalAdmins(end, runs);
    world = await startWorld(tenant, { email: 'none', auditRateLimit: { requests: 1000, perMs: 10000 } });
    for (const when of runs) {
      world.graph.setNow(() => when);
      const run = await world.cli(['daily', '--now', when.toISOString()]);
      if (run.code !== 0) throw new Error(`run of ${when.toISOString()} failed:\n${run.stderr}`);
    }

    const rows = (await Promise.all(runs.map((w) => world.csv(world.reports, `${dayPath(w)}activations.csv`)))).flatMap(
      records,
    );
    const expected = expectedActivations(
      tenant,
      new Date(runs[0].getTime() - 30 * DAY),
      new Date(end.getTime() + 1),
      undefined,
      runs,
    );
    expect(rows.map((r) => r['Audit Id']).sort()).toEqual(expected.map((r) => r['Audit Id']).sort());
    const byId = new Map(rows.map((r) => [r['Audit Id'], r]));
    for (const row of expected) expect(byId.get(row['Audit Id'])).toEqual(row);

    const throughGroup = rows.filter((r) => r['Group Id'] === group.id);
    expect(throughGroup.map((r) => r.PrincipalName).sort()).toEqual(
      [tenant.users[0], tenant.users[1], tenant.users[2]].map((u) => u.userPrincipalName).sort(),
    );
    for (const r of throughGroup) {
      expect(r).toMatchObject({
        'Activation Type': 'Group',
        Group: 'PIM Global Admins',
        'Group Roles': 'Global Administrator',
        'Group Access': 'Member',
        'Role Name': '',
        'Role Id': '',
      });
    }
    const approvedBy = Object.fromEntries(throughGroup.map((r) => [r.PrincipalName, r['Approved By']]));
    expect(approvedBy).toEqual({
      [tenant.users[0].userPrincipalName]: '',
      [tenant.users[1].userPrincipalName]: tenant.users[3].userPrincipalName,
      // Approved two runs before: joined through the watermark.
      [tenant.users[2].userPrincipalName]: tenant.users[3].userPrincipalName,
    });
    expect(rows.filter((r) => r['Role Id'].toLowerCase() === GLOBAL_ADMINISTRATOR)).toEqual([]);

    // The audit log is asked for the approvals and the completions only, each by name (every other
    // PIM record, requests and admin assignments alike, would be pages of a rate-limited log).
    const names = world.graph.requests
      .filter((r) => r.path.endsWith('/auditLogs/directoryAudits'))
      .map((r) => /activityDisplayName eq '([^']*)'/.exec(r.query.$filter ?? '')?.[1]);
    expect(new Set(names)).toEqual(
      new Set([
        'Add member to role request approved (PIM activation)',
        'Add member to role completed (PIM activation)',
      ]),
    );

    // Each day's digest lists its group activation with the role it grants and counts it as a GA activation.
    for (const [i, when] of runs.entries()) {
      const text = (await world.read(world.reports, `${dayPath(when)}digest.txt`))!;
      expect(text).toContain('Global Administrator activations: 1 (0 direct, 1 through groups).');
      expect(text).toMatch(/Group activations \(\d+\)/);
      expect(text).toContain(
        `PIM Global Admins | Member | Global Administrator${i === 0 ? '' : ` | ${tenant.users[3].userPrincipalName}`}`,
      );
      const manifest = JSON.parse((await world.read(world.reports, `${dayPath(when)}manifest.json`))!);
      expect(manifest.activations.globalAdministratorActivations).toEqual({ direct: 0, throughGroups: 1 });
    }
  }, 120_000);

  it('lists the eligibilities nobody used, as a reader works them out; header only while the history is shorter than the window or has a gap in it', async () => {
    const end = new Date('2026-11-24T06:00:00Z');
    const r0 = new Date(end.getTime() - DAY);
    const tenant = generateTenant({
      seed: 'unused',
      now: end,
      users: 50,
      groups: 5,
      eligible: 90,
      active: 15,
      auditDays: 60,
      activationsPerDay: 6,
    });
    // A PIM-for-Groups group that holds a role: one eligible member activated the membership 5 days ago
    // (used), the other 25 days ago (unused in a 20-day window, with that activation as the last one).
    const rng = new Rng('unused-extra');
    const group = { id: rng.guid(), displayName: 'PIM Exchange Admins' };
    const EXCHANGE_ADMIN = '29232cdf-9323-42fd-ade2-1d097af3e4de';
    tenant.groups.push({ ...group, members: [], isAssignableToRole: true });
    tenant.assignmentSchedules.push(
      pimSchedule({
        id: rng.guid(),
        principalId: group.id,
        roleDefinitionId: EXCHANGE_ADMIN,
        directoryScopeId: '/',
        scheduleInfo: permanent('2026-01-05T00:00:00.000Z'),
        assignmentType: 'Assigned',
      }),
    );
    const [used, idle] = tenant.users.slice(-2);
    const ctx: AuditContext = { rng, tenantId: tenant.tenantId, tenantName: tenant.displayName ?? 'Contoso', now: end };
    for (const [u, ago] of [
      [used, 5],
      [idle, 25],
    ] as const) {
      tenant.groupEligibilitySchedules.push(
        groupEligibility(rng, {
          groupId: group.id,
          principalId: u.id,
          accessId: 'member',
          scheduleInfo: permanent('2026-01-05T00:00:00.000Z'),
        }),
      );
      tenant.directoryAudits.push(
        ...groupActivationEvents(ctx, {
          principal: { id: u.id, displayName: u.displayName, userPrincipalName: u.userPrincipalName, kind: 'User' },
          group,
          accessId: 'member',
          start: new Date(end.getTime() - ago * DAY),
          end: new Date(end.getTime() - ago * DAY + 2 * HOUR),
          justification: 'Mailbox migration',
          requestId: rng.guid(),
        }),
      );
    }
    // One eligibility whose only use is 12 hours before the second run: after the first run's
    // harvest, so only the second run's own harvest (not the kept history) knows of it.
    const historySince = new Date(r0.getTime() - 30 * DAY);
    const privilegedRoleIds = new Set(Object.keys(CISA_PRIVILEGED_ROLES));
    const idleDirect = expectedUnused(tenant, { now: end, afterDays: 20, historySince, privilegedRoleIds }).find(
      (r) => r['Via Group Id'] === '' && tenant.users.some((u) => u.id === r['Principal Id']),
    )!;
    expect(idleDirect).toBeDefined();
    const lateUser = tenant.users.find((u) => u.id === idleDirect['Principal Id'])!;
    const lateRole = tenant.roleDefinitions.find((r) => r.id === idleDirect['Role Id'])!;
    const lateAt = new Date(end.getTime() - 12 * HOUR);
    tenant.directoryAudits.push(
      ...activationEvents(ctx, {
        principal: {
          id: lateUser.id,
          displayName: lateUser.displayName,
          userPrincipalName: lateUser.userPrincipalName,
          kind: 'User',
        },
        role: { id: lateRole.id, displayName: lateRole.displayName, isBuiltIn: true },
        directoryScopeId: idleDirect['Scope Id'],
        requestedAt: new Date(lateAt.getTime() - 60_000),
        start: lateAt,
        end: new Date(lateAt.getTime() + 2 * HOUR),
        justification: 'Late change',
        requestId: rng.guid(),
      }),
    );
    tenant.directoryAudits.sort((a, b) =>
      a.activityDateTime < b.activityDateTime ? -1 : a.activityDateTime > b.activityDateTime ? 1 : 0,
    );
    world = await startWorld(tenant, { email: 'none', auditRateLimit: { requests: 1000, perMs: 10000 } });

    // First run: the history starts 30 days back (what Graph holds), shorter than 90 days.
    world.graph.setNow(() => r0);
    expect((await world.cli(['daily', '--now', r0.toISOString()], { UNUSED_AFTER_DAYS: '90' })).code).toBe(0);
    expect(await world.csv(world.reports, `${dayPath(r0)}unused-eligibilities.csv`)).toEqual([
      [
        'Role Name',
        'User Group Name',
        'PrincipalName',
        'Principal Id',
        'Via Group',
        'Via Group Id',
        'Role Id',
        'Scope',
        'Scope Id',
        'Eligible Since (UTC)',
        'Last Activated (UTC)',
        'History Since (UTC)',
        'Days Unused',
      ],
    ]);
    const first = (await world.read(world.reports, `${dayPath(r0)}digest.txt`))!;
    expect(first).toContain('Eligible but unused (0)');
    expect(first).toContain(
      `The list will be complete from ${new Date(historySince.getTime() + 90 * DAY).toISOString().slice(0, 10)}.`,
    );

    // Next day, a window of 20 days: the history covers it.
    world.graph.setNow(() => end);
    expect((await world.cli(['daily', '--now', end.toISOString()], { UNUSED_AFTER_DAYS: '20' })).code).toBe(0);
    const rows = records(await world.csv(world.reports, `${dayPath(end)}unused-eligibilities.csv`));
    const expected = expectedUnused(tenant, {
      now: end,
      afterDays: 20,
      historySince,
      privilegedRoleIds: new Set(Object.keys(CISA_PRIVILEGED_ROLES)),
    });
    const key = (r: Record<string, string>) =>
      [r['Role Id'], r['Principal Id'], r['Via Group Id'], r['Scope Id'], r['Eligible Since (UTC)']].join('|');
    const sorted = (list: Record<string, string>[]) =>
      [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    expect(sorted(rows)).toEqual(sorted(expected));
    // Used 12 hours ago, as only this run's harvest saw.
    expect(
      rows.some((r) => r['Principal Id'] === idleDirect['Principal Id'] && r['Role Id'] === idleDirect['Role Id']),
    ).toBe(false);
    // Not trivially all or nothing: some eligibilities were used (directly, or through a group), some never since the history began.
    const heldLongEnough = expectedUnused(tenant, {
      now: end,
      afterDays: 20,
      historySince: end,
      privilegedRoleIds: new Set(Object.keys(CISA_PRIVILEGED_ROLES)),
    });
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.length).toBeLessThan(heldLongEnough.length + 1);
    expect(rows.some((r) => r['Last Activated (UTC)'] === '')).toBe(true);
    // Activating membership of the group that holds the role is use; 25 days ago is not within 20.
    const viaGroup = rows.filter((r) => r['Via Group Id'] === group.id);
    expect(viaGroup.map((r) => r['Principal Id'])).toEqual([idle.id]);
    expect(viaGroup[0]['Last Activated (UTC)']).not.toBe('');
    // Longest unused first.
    const days = rows.map((r) => Number(r['Days Unused']));
    expect(days).toEqual([...days].sort((a, b) => b - a));
    const digest = (await world.read(world.reports, `${dayPath(end)}digest.txt`))!;
    expect(digest).toContain(`Eligible but unused (${rows.length})`);
    const manifest = JSON.parse((await world.read(world.reports, `${dayPath(end)}manifest.json`))!);
    expect(manifest.files.map((f: { name: string }) => f.name)).toContain('unused-eligibilities.csv');

    // The export serves the same list.
    const exported = await world.cli(['export', '--dataset', 'unused', '--now', end.toISOString()], {
      UNUSED_AFTER_DAYS: '20',
    });
    expect(exported.code).toBe(0);
    expect(records(parseCsv(exported.stdout))).toEqual(rows);

    // Forty days without a run: the history has a gap (end to 30 days before the run) that Graph
    // dropped. The history began long before a 35-day window, but the gap is inside it: someone may
    // have activated then, so the list is header only until the gap has left the window.
    const later = new Date(end.getTime() + 40 * DAY);
    world.graph.setNow(() => later);
    expect((await world.cli(['daily', '--now', later.toISOString()], { UNUSED_AFTER_DAYS: '35' })).code).toBe(0);
    const gapEnd = new Date(later.getTime() - 30 * DAY);
    const afterGap = await world.csv(world.reports, `${dayPath(later)}unused-eligibilities.csv`);
    expect(afterGap).toHaveLength(1);
    expect(afterGap[0][0]).toBe('Role Name');
    const gapDigest = (await world.read(world.reports, `${dayPath(later)}digest.txt`))!;
    expect(gapDigest).toContain('Eligible but unused (0)');
    expect(gapDigest).toContain("Not known yet: the app's own history has a gap in the last 35 days");
    expect(gapDigest).toContain(
      `The list will be complete from ${new Date(gapEnd.getTime() + 35 * DAY).toISOString().slice(0, 10)}.`,
    );
    const gapManifest = JSON.parse((await world.read(world.reports, `${dayPath(later)}manifest.json`))!);
    expect(gapManifest.digest.unusedComplete).toBe(false);
    expect(gapManifest.digest.unusedGaps).toEqual([
      expect.objectContaining({ fromUtc: end.toISOString(), toUtc: gapEnd.toISOString() }),
    ]);
  }, 120_000);
});
