/** The tenant generator and the demo tenant have the features the product's tests rely on. */
import {
  ACTIVITY,
  CISA_ROLES,
  GLOBAL_ADMINISTRATOR,
  type SimDirectoryAudit,
  type SimTenant,
} from '../../tools/tenant/model';
import { demoTenant, DEMO_HOSTILE_NAME } from '../../tools/tenant/demo';
import { generateTenant, HOSTILE_STRINGS, transitiveMemberIds } from '../../tools/tenant/generate';

const NOW = new Date('2026-03-15T10:00:00Z');
const DAY = 86_400_000;

const endOf = (s: SimTenant['eligibilitySchedules'][number]) => s.scheduleInfo.expiration;
const typeKey = (t: object) => ('type' in t ? 'type' : 'Type' in t ? 'Type' : '');

describe('generateTenant', () => {
  const t = generateTenant({ seed: 42, now: NOW, users: 150, groups: 15, eligible: 200, active: 100, auditDays: 35 });
  const ids = (xs: { id: string }[]) => new Set(xs.map((x) => x.id));
  const users = ids(t.users);
  const groups = ids(t.groups);
  const sps = ids(t.servicePrincipals);

  test('is deterministic for a seed and differs across seeds', () => {
    expect(
      JSON.stringify(
        generateTenant({ seed: 42, now: NOW, users: 150, groups: 15, eligible: 200, active: 100, auditDays: 35 }),
      ),
    ).toBe(JSON.stringify(t));
    expect(generateTenant({ seed: 43, now: NOW }).users[0].id).not.toBe(
      generateTenant({ seed: 44, now: NOW }).users[0].id,
    );
  });

  test('roles: the 8 CISA roles, other built-ins (id == templateId) and a custom role', () => {
    for (const id of Object.keys(CISA_ROLES))
      expect(t.roleDefinitions.find((r) => r.id === id)?.displayName).toBe(CISA_ROLES[id]);
    expect(t.roleDefinitions.filter((r) => r.isBuiltIn).every((r) => r.id === r.templateId)).toBe(true);
    expect(t.roleDefinitions.some((r) => !r.isBuiltIn)).toBe(true);
  });

  test('schedules cover every shape the report must handle', () => {
    const all = [...t.eligibilitySchedules, ...t.assignmentSchedules];
    expect(t.eligibilitySchedules.length).toBeGreaterThanOrEqual(200);
    expect(t.assignmentSchedules.length).toBeGreaterThanOrEqual(100);
    expect(new Set(all.map((s) => endOf(s).type))).toEqual(
      new Set(['noExpiration', 'afterDateTime', 'afterDuration', 'notSpecified']),
    );
    expect(all.some((s) => endOf(s).duration === 'PT8H' || /^PT\dH$/.test(endOf(s).duration ?? ''))).toBe(true);
    expect(all.some((s) => /^P\d+D$/.test(endOf(s).duration ?? ''))).toBe(true);
    expect(t.assignmentSchedules.some((s) => s.assignmentType === 'Activated')).toBe(true);
    expect(t.assignmentSchedules.some((s) => s.createdUsing === null && s.createdDateTime === null)).toBe(true);
    expect(all.some((s) => s.directoryScopeId.startsWith('/administrativeUnits/'))).toBe(true);
    expect(all.some((s) => groups.has(s.principalId))).toBe(true);
    expect(all.some((s) => sps.has(s.principalId))).toBe(true);
    expect(all.some((s) => !users.has(s.principalId) && !groups.has(s.principalId) && !sps.has(s.principalId))).toBe(
      true,
    );
    expect(all.some((s) => s.memberType !== 'Direct')).toBe(true);
    expect(t.eligibilitySchedules.some((s) => groups.has(s.principalId))).toBe(true);
    expect(t.assignmentSchedules.some((s) => groups.has(s.principalId))).toBe(true);
    // Current: nothing ended before now.
    for (const s of all)
      if (endOf(s).type === 'afterDateTime')
        expect(Date.parse(endOf(s).endDateTime as string)).toBeGreaterThan(NOW.getTime());
  });

  test('groups nest and hold service principals; PIM-for-Groups has member and owner eligibilities', () => {
    expect(t.groups.some((g) => g.members.some((m) => groups.has(m)))).toBe(true);
    expect(t.groups.some((g) => g.members.some((m) => sps.has(m)))).toBe(true);
    expect(t.groupEligibilitySchedules.some((s) => s.accessId === 'member')).toBe(true);
    expect(t.groupEligibilitySchedules.some((s) => s.accessId === 'owner')).toBe(true);
    for (const s of t.groupEligibilitySchedules) expect(s.id.startsWith(`${s.groupId}_${s.accessId}_`)).toBe(true);
    // An eligible member is never already a member (no duplicate report rows).
    const byId = new Map(t.groups.map((g) => [g.id, g]));
    for (const s of t.groupEligibilitySchedules.filter((x) => x.accessId === 'member'))
      expect(transitiveMemberIds(byId, s.groupId).has(s.principalId)).toBe(false);
  });

  test('hostile display names are present', () => {
    const names = [...t.users, ...t.groups, ...t.servicePrincipals, ...t.roleDefinitions].map((x) => x.displayName);
    for (const h of ["=cmd|' /C calc'!A0", '+SUM(1)', '@x', '-1', '<script>alert(1)</script>'])
      expect(names).toContain(h);
    expect(names.some((n) => /[\r\n]/.test(n))).toBe(true);
    expect(names.some((n) => n.startsWith('\t'))).toBe(true);
    expect(names.some((n) => /[^\x00-\x7f]/.test(n))).toBe(true);
    expect(names.some((n) => n.includes(',') && n.includes('"'))).toBe(true);
  });

  describe('audit records', () => {
    const completed = t.directoryAudits.filter((a) => a.activityDisplayName === ACTIVITY.activationCompleted);
    const roleCompleted = completed.filter((a) => a.category === 'RoleManagement');

    test('the realistic set of activities, from PIM and Core Directory', () => {
      const kinds = new Set(
        t.directoryAudits.map((a) => `${a.loggedByService}|${a.category}|${a.activityDisplayName}`),
      );
      for (const k of [
        `PIM|RoleManagement|${ACTIVITY.activationRequested}`,
        `PIM|RoleManagement|${ACTIVITY.activationCompleted}`,
        `PIM|RoleManagement|${ACTIVITY.activationExpired}`,
        `PIM|RoleManagement|${ACTIVITY.deactivateCompleted}`,
        `PIM|RoleManagement|${ACTIVITY.requestApproved}`,
        `PIM|GroupManagement|${ACTIVITY.activationCompleted}`,
        `Core Directory|RoleManagement|${ACTIVITY.coreAddMember}`,
        `Core Directory|RoleManagement|${ACTIVITY.coreRemoveMember}`,
      ]) {
        expect(kinds).toContain(k);
      }
      const core = t.directoryAudits.find((a) => a.loggedByService === 'Core Directory') as SimDirectoryAudit;
      expect(core.initiatedBy.app?.displayName).toBe('MS-PIM');
      expect(core.id).toMatch(/^Directory_/);
    });

    test('ids, timestamps, shuffled targets and details, and key-name quirks', () => {
      for (const a of roleCompleted) {
        expect(a.id).toMatch(/^PIM_[0-9a-f-]{36}_[0-9a-f-]{36}_\d{18}$/);
        expect(a.resultReason.length).toBeGreaterThan(0);
        const types = a.targetResources.map((r) => (r.type ?? r.Type) as string).sort();
        // A member activating through a group's eligibility: the group is named too (first).
        expect(types.filter((t) => t !== 'Group')).toEqual(['Directory', 'Other', 'Request', 'Role', 'User']);
        if (types.includes('Group')) expect(a.targetResources[0].type ?? a.targetResources[0].Type).toBe('Group');
      }
      expect(
        new Set(roleCompleted.map((a) => a.targetResources.map((r) => r.type ?? r.Type).join())).size,
      ).toBeGreaterThan(5);
      expect(new Set(roleCompleted.map((a) => a.additionalDetails.map((d) => d.key).join())).size).toBeGreaterThan(5);
      expect(roleCompleted.some((a) => typeKey(a.targetResources[0]) === 'Type')).toBe(true);
      expect(roleCompleted.some((a) => /\.\d{7}Z$/.test(a.activityDateTime))).toBe(true);
      expect(roleCompleted.some((a) => /\.\d{3}Z$/.test(a.activityDateTime))).toBe(true);
      const keys = (a: SimDirectoryAudit) => new Set(a.additionalDetails.map((d) => d.key));
      // No public capture shows a DirectoryScopeId detail: never sent unless a test asks for it.
      expect(roleCompleted.some((a) => keys(a).has('DirectoryScopeId'))).toBe(false);
      for (const k of [
        'RoleDefinitionOriginId',
        'TemplateId',
        'StartTime',
        'ExpirationTime',
        'Justification',
        'TicketNumber',
        'TicketSystem',
        'AuditType',
        'RoleAssignmentRequestId',
      ]) {
        expect(roleCompleted.some((a) => keys(a).has(k))).toBe(true);
      }
      expect(roleCompleted.some((a) => HOSTILE_STRINGS.includes(a.resultReason))).toBe(true);
    });

    test('span auditDays up to now; activated schedules have their activation in the log', () => {
      const times = t.directoryAudits.map((a) => Date.parse(a.activityDateTime));
      expect(Math.max(...times)).toBeLessThan(NOW.getTime());
      expect(Math.min(...times)).toBeLessThan(NOW.getTime() - 31 * DAY);
      for (const s of t.assignmentSchedules.filter((x) => x.assignmentType === 'Activated')) {
        const match = roleCompleted.find((a) =>
          a.targetResources.some((r) => (r.type ?? r.Type) === 'Request' && r.id === s.createdUsing),
        );
        expect(match?.targetResources.find((r) => (r.type ?? r.Type) === 'User')?.id).toBe(s.principalId);
      }
    });
  });

  // How long this takes is the benchmark's to say (`npm run bench` reports the generation time):
  // here, that the bench's size comes out whole and consistent.
  test('generates the bench size (50 000 eligible, 20 000 active, 3 000 groups) whole and consistent', () => {
    const big = generateTenant({
      seed: 'bench',
      now: NOW,
      users: 20_000,
      groups: 3_000,
      eligible: 50_000,
      active: 20_000,
      auditDays: 7,
    });
    expect(big.users).toHaveLength(20_000);
    expect(big.groups).toHaveLength(3_000);
    expect(big.eligibilitySchedules.length).toBeGreaterThanOrEqual(50_000);
    expect(big.assignmentSchedules.length).toBeGreaterThanOrEqual(20_000);
    for (const list of [big.users, big.groups, big.eligibilitySchedules, big.assignmentSchedules, big.directoryAudits])
      expect(new Set(list.map((x) => x.id)).size).toBe(list.length);
    // Every schedule names a role the tenant defines; principals are the tenant's, but for the few
    // deleted ones the generator plants on purpose (as at the small size above).
    const roles = ids(big.roleDefinitions);
    const principals = new Set([...ids(big.users), ...ids(big.groups), ...ids(big.servicePrincipals)]);
    const all = [...big.eligibilitySchedules, ...big.assignmentSchedules];
    expect(all.filter((s) => !roles.has(s.roleDefinitionId))).toEqual([]);
    const unknown = all.filter((s) => !principals.has(s.principalId)).length;
    expect(unknown).toBeGreaterThan(0);
    expect(unknown).toBeLessThan(all.length / 100);
    // Every group member is a directory object of the tenant.
    expect(big.groups.flatMap((g) => g.members).filter((m) => !principals.has(m))).toEqual([]);
    // The audit log spans the days asked for, up to now.
    const times = big.directoryAudits.map((a) => Date.parse(a.activityDateTime));
    expect(Math.max(...times)).toBeLessThan(NOW.getTime());
    expect(Math.min(...times)).toBeGreaterThanOrEqual(NOW.getTime() - 8 * DAY);
    expect(Math.min(...times)).toBeLessThan(NOW.getTime() - 6 * DAY);
  });
});

describe('demoTenant', () => {
  const d = demoTenant(NOW);
  const user = (name: string) => d.users.find((u) => u.displayName === name);

  test('is stable for a given now', () => {
    expect(JSON.stringify(demoTenant(NOW))).toBe(JSON.stringify(d));
  });

  test('has the story the demo tells', () => {
    const breakGlass = user('Break Glass 01');
    const bg = d.assignmentSchedules.find((s) => s.principalId === breakGlass?.id);
    expect(bg).toEqual(
      expect.objectContaining({
        roleDefinitionId: GLOBAL_ADMINISTRATOR,
        createdUsing: null,
        assignmentType: 'Assigned',
      }),
    );
    expect(bg?.scheduleInfo.expiration.type).toBe('noExpiration');
    const tier0 = d.groups.find((g) => g.displayName === 'Tier0 Admins');
    expect(tier0?.members.some((m) => d.groups.some((g) => g.id === m))).toBe(true);
    expect(tier0?.members.some((m) => d.servicePrincipals.some((s) => s.id === m))).toBe(true);
    expect(d.administrativeUnits.map((a) => a.displayName)).toEqual(['Paris Office', 'Berlin Office']);
    const soon = [...d.eligibilitySchedules, ...d.assignmentSchedules].filter((s) => {
      const end = s.scheduleInfo.expiration.endDateTime;
      return s.assignmentType !== 'Activated' && end !== null && Date.parse(end) - NOW.getTime() < 14 * DAY;
    });
    expect(soon.length).toBeGreaterThanOrEqual(2);
    expect(d.assignmentSchedules.filter((s) => s.assignmentType === 'Activated')).toHaveLength(1);
    expect(d.groupEligibilitySchedules.some((s) => s.accessId === 'member')).toBe(true);
    expect(d.users.filter((u) => u.displayName === DEMO_HOSTILE_NAME)).toHaveLength(1);
    expect(d.users.length).toBeGreaterThanOrEqual(24);
    const completions = d.directoryAudits.filter(
      (a) => a.activityDisplayName === ACTIVITY.activationCompleted && a.category === 'RoleManagement',
    );
    expect(completions.length).toBeGreaterThanOrEqual(4);
    expect(completions.every((a) => Date.parse(a.activityDateTime) > NOW.getTime() - 7 * DAY)).toBe(true);
  });
});
