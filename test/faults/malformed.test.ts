/**
 * docs/faults.md: Malformed Graph data: missing fields, a null principal, unknown or lowercase enum
 * values, audit records with their targets in another order or missing. Each such row is kept,
 * with blanks where a value is missing, a warning says so, and the run completes.
 */
import { generateTenant } from '../../tools/tenant/generate';
import type { SimDirectoryAudit, SimRoleSchedule } from '../../tools/tenant/model';
import { at, ActivationFeed, Clock, folderOf, LogBook } from '../support/faults';
import { neutralise } from '../support/expected';
import { records, startWorld, type World } from '../support/world';

const DAY = '2026-11-20';
const logs = new LogBook();

describe('malformed Graph data', () => {
  let world: World;
  const clock = new Clock(at(DAY));
  afterAll(async () => {
    await world?.stop();
    expect(logs.leaks()).toEqual([]);
  });

  it('keeps every odd row with blanks and a warning, and the run completes', async () => {
    const tenant = generateTenant({
      seed: 'malformed',
      now: new Date(at(DAY)),
      users: 20,
      groups: 3,
      eligible: 20,
      active: 12,
      auditDays: 3,
    });
    world = await startWorld(tenant, { auditRateLimit: { requests: 1000, perMs: 1000 }, now: clock.now });
    logs.knowSecretsOf(world);
    new ActivationFeed(world, 'malformed').add(at('2026-11-19'), at(DAY, 5), 6);

    // Schedules: a missing role, an unknown role, lowercase and unknown enums, no schedule info, a bad date.
    const user = tenant.users[0].id;
    const base = tenant.eligibilitySchedules.find(
      (s) => s.memberType === 'Direct' && tenant.users.some((u) => u.id === s.principalId),
    )!;
    const odd = (id: string, fields: Partial<Record<keyof SimRoleSchedule, unknown>>) =>
      ({ ...base, id, principalId: user, ...fields }) as unknown as SimRoleSchedule;
    tenant.eligibilitySchedules.push(
      odd('odd-no-role', { roleDefinitionId: null }),
      odd('odd-unknown-role', { roleDefinitionId: '00000000-0000-0000-0000-00000000beef' }),
      odd('odd-lowercase-member', { memberType: 'direct' }),
      odd('odd-no-schedule-info', { scheduleInfo: null, createdDateTime: null }),
      odd('odd-unknown-expiration', {
        scheduleInfo: {
          startDateTime: 'not a date',
          recurrence: null,
          expiration: { type: 'someFutureType', endDateTime: null, duration: null },
        },
      }),
      odd('odd-no-scope', { directoryScopeId: null }),
    );
    tenant.assignmentSchedules.push(
      odd('odd-activated-lowercase', { assignmentType: 'activated', createdUsing: 'x' }),
      odd('odd-assignment-type', { assignmentType: 'SomethingNew', createdUsing: 'x' }),
      odd('odd-deleted-principal', { principalId: '00000000-0000-0000-0000-0000000dead0', assignmentType: 'Assigned' }),
    );

    // Audit records: no targets, a null principal, null entries, targets reordered, a lowercase category, no details.
    const completed = tenant.directoryAudits.filter(
      (a) =>
        a.activityDisplayName === 'Add member to role completed (PIM activation)' && a.category === 'RoleManagement',
    );
    expect(completed.length).toBeGreaterThanOrEqual(4);
    const [a, b, c, d] = completed.slice(-4) as Array<SimDirectoryAudit & Record<string, unknown>>;
    (a as { targetResources: unknown }).targetResources = null;
    (a as { additionalDetails: unknown }).additionalDetails = null;
    b.targetResources = b.targetResources.map((t) =>
      (t.type ?? t.Type) === 'User' ? { ...t, id: null, displayName: null, userPrincipalName: null } : t,
    );
    (b as { initiatedBy: unknown }).initiatedBy = { user: null, app: null };
    (c as { targetResources: unknown[] }).targetResources = [null, ...c.targetResources.reverse(), null];
    c.category = 'rolemanagement';
    (d as { additionalDetails: unknown }).additionalDetails = null;
    world.graph.setTenant(tenant);

    const run = await world.cli(['daily', '--now', at(DAY)]);
    logs.add(run.stderr, run.stdout);
    expect(run.stderr).not.toMatch(/ error: /);
    expect(run.code).toBe(0);

    // Loud: each oddity is named in a warning.
    expect(run.stderr).toContain(`warning: audit record ${a.id} lacks roleId; kept with blanks`);
    expect(run.stderr).toContain(`warning: audit record ${b.id} lacks principalId; kept with blanks`);
    expect(run.stderr).toMatch(/warning: .*unknown role definition\(s\).*00000000-0000-0000-0000-00000000beef/);
    expect(run.stderr).toMatch(
      /warning: 1 schedule\(s\) name a principal that no longer exists|warning: \d+ schedule\(s\) name a principal that no longer exists/,
    );

    const folder = folderOf(DAY);
    const eligible = new Map(
      records(await world.csv(world.reports, `${folder}eligible-assignments.csv`)).map((r) => [r['Schedule Id'], r]),
    );
    const active = new Map(
      records(await world.csv(world.reports, `${folder}active-assignments.csv`)).map((r) => [r['Schedule Id'], r]),
    );
    expect(eligible.get('odd-no-role')).toMatchObject({ 'Role Id': '', 'Role Name': '', Privileged: 'No' });
    expect(eligible.get('odd-unknown-role')).toMatchObject({
      'Role Id': '00000000-0000-0000-0000-00000000beef',
      'Role Name': '',
    });
    expect(eligible.get('odd-lowercase-member')).toMatchObject({ 'Member Type': 'Direct' });
    expect(eligible.get('odd-no-schedule-info')).toMatchObject({
      'Assignment Start Time (UTC)': '',
      'Assignment End Time (UTC)': '',
      'Created (UTC)': '',
    });
    expect(eligible.get('odd-unknown-expiration')).toMatchObject({
      'Assignment Start Time (UTC)': '',
      'Assignment End Time (UTC)': '',
    });
    expect(eligible.get('odd-no-scope')).toMatchObject({ 'Scope Id': '', Scope: '' });
    expect(active.get('odd-activated-lowercase')).toMatchObject({ 'Assignment Type': 'activated' });
    expect(active.get('odd-assignment-type')).toMatchObject({ 'Assignment Type': 'SomethingNew' });
    expect(active.get('odd-deleted-principal')).toMatchObject({
      'User Group Name': '',
      PrincipalName: '',
      'Principal Type': '',
    });

    const activations = new Map(
      records(await world.csv(world.reports, `${folder}activations.csv`)).map((r) => [r['Audit Id'], r]),
    );
    // No targets and no details: the initiator is the principal; the role is blank.
    expect(activations.get(a.id)).toMatchObject({
      'Principal Id': a.initiatedBy.user!.id,
      'Role Name': '',
      'Role Id': '',
      Justification: neutralise(a.resultReason),
    });
    expect(activations.get(b.id)).toMatchObject({ 'Principal Id': '', 'User Group Name': '', PrincipalName: '' });
    expect(activations.get(c.id)?.['Role Name']).not.toBe(''); // found by type, whatever the order
    expect(activations.get(c.id)?.['Principal Id']).not.toBe('');
    expect(activations.get(d.id)).toMatchObject({
      Justification: expect.any(String),
      'Request Id': expect.any(String),
      'Scope Id': '',
    });
    expect(activations.get(d.id)?.['Role Id']).not.toBe(''); // from the role target when the details are missing
  });
});
