import { AssignmentChangeTracker, assignmentChanges, GlobalAdministratorCount } from '../../src/pim/changes';
import type { ActivationRow, AssignmentRow } from '../../src/pim/model';
import { compareSchedules } from '../../src/pim/model';
import { renderDigest } from '../../src/report/digest';
import { batchesOf } from '../../src/util/streams';

const GA = '62e90394-69f5-4237-9190-012177145e10';
const now = new Date('2026-11-24T06:00:00Z');
const days = (n: number) => new Date(now.getTime() + n * 86400000).toISOString();

function row(id: string, overrides: Partial<AssignmentRow> = {}): AssignmentRow {
  return {
    state: 'Active',
    principalDisplayName: `User ${id}`,
    principalName: `${id}@contoso.com`,
    memberType: 'Direct',
    start: days(-100),
    end: days(100),
    principalType: 'User',
    principalId: `p-${id}`,
    viaGroup: '',
    viaGroupId: '',
    roleId: GA,
    roleName: 'Global Administrator',
    scopeId: '/',
    assignmentType: 'Assigned',
    privileged: true,
    outsidePim: false,
    created: days(-100),
    scheduleId: id,
    ...overrides,
  };
}

async function* stream(rows: AssignmentRow[]) {
  yield* [...rows].sort(compareSchedules);
}

describe('assignment changes', () => {
  const options = { now, expiryWindowDays: 14, excludedPrincipalIds: new Set(['p-breakglass']) };

  it('diffs against the previous snapshot, per schedule, without activated ones', async () => {
    const previous = [row('a'), row('b'), row('gone'), row('jit-old', { assignmentType: 'Activated' })];
    const current = [
      row('a'),
      row('b', { state: 'Eligible', assignmentType: '' }),
      row('new'),
      row('jit', { assignmentType: 'Activated', end: days(0.1), created: days(-0.01) }),
    ];
    const c = await assignmentChanges(stream(current), { day: '2026-11-23', schedules: stream(previous) }, options);
    expect(c.baseline).toEqual({ kind: 'previous', day: '2026-11-23' });
    expect(c.added.items.map((r) => `${r.state}/${r.scheduleId}`).sort()).toEqual(['Active/new', 'Eligible/b']);
    expect(c.removed.items.map((r) => `${r.state}/${r.scheduleId}`).sort()).toEqual(['Active/b', 'Active/gone']);
    expect(c.expiring.count).toBe(0);
  });

  it('gives the same diff fed in batches of any size, the previous snapshot read in batches of any size', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `s${String(i).padStart(2, '0')}`);
    // Removed ones between, before and after today's; some kept, some new.
    const previous = ids.filter((_, i) => i % 3 !== 0).map((id) => row(id));
    const current = [...ids.filter((_, i) => i % 3 !== 1).map((id) => row(id)), row('zz-new')];
    const whole = await assignmentChanges(stream(current), { day: '2026-11-23', schedules: stream(previous) }, options);
    expect(whole.added.items.map((r) => r.scheduleId)).toEqual([...ids.filter((_, i) => i % 3 === 0), 'zz-new']);
    expect(whole.removed.items.map((r) => r.scheduleId)).toEqual(ids.filter((_, i) => i % 3 === 1));
    const sorted = [...current].sort(compareSchedules);
    for (const [size, previousSize] of [
      [1, 1],
      [2, 5],
      [7, 3],
      [50, 1],
    ]) {
      const tracker = new AssignmentChangeTracker(
        { day: '2026-11-23', schedules: batchesOf(stream(previous), previousSize) },
        options,
      );
      for (let i = 0; i < sorted.length; i += size) await tracker.observe(sorted.slice(i, i + size));
      expect(await tracker.result()).toEqual(whole);
    }
  });

  it('on the first run, new means created in the last 24 hours', async () => {
    const c = await assignmentChanges(stream([row('old'), row('fresh', { created: days(-0.5) })]), undefined, options);
    expect(c.baseline).toEqual({ kind: 'first-run' });
    expect(c.added.items.map((r) => r.scheduleId)).toEqual(['fresh']);
  });

  it('lists expiring soonest first and flags permanent privileged active assignments unless excluded', async () => {
    const c = await assignmentChanges(
      stream(
        [
          row('late', { end: days(13) }),
          row('soon', { end: days(2.5), state: 'Eligible', assignmentType: '' }),
          row('outside-window', { end: days(15) }),
          row('past', { end: days(-1) }),
          row('perm'),
          row('perm-eligible', { state: 'Eligible', assignmentType: '' }),
          row('perm-reader', { privileged: false }),
          row('breakglass', { principalId: 'p-breakglass' }),
        ].map((r) =>
          ['perm', 'perm-eligible', 'perm-reader', 'breakglass'].includes(r.scheduleId) ? { ...r, end: null } : r,
        ),
      ),
      undefined,
      options,
    );
    expect(c.expiring.items.map((e) => [e.row.scheduleId, e.daysLeft])).toEqual([
      ['soon', 2],
      ['late', 13],
    ]);
    expect(c.permanent.count).toBe(4);
    expect(c.permanentPrivilegedFindings.items.map((r) => r.scheduleId)).toEqual(['perm']);
  });

  it('counts distinct Global Administrator users, directly or through groups', () => {
    const ga = new GlobalAdministratorCount();
    ga.observe(row('a'));
    ga.observe(row('a2', { principalId: 'p-a', state: 'Eligible' }));
    ga.observe(row('g', { principalType: 'Group', principalId: 'g1' }));
    ga.observe(row('m', { principalId: 'p-m', memberType: 'Group', viaGroupId: 'g1' }));
    ga.observe(row('r', { principalId: 'p-r', roleId: 'other' }));
    expect(ga.count).toBe(2);
    expect(ga.isFinding).toBe(false);
  });
});

describe('digest rendering', () => {
  it('puts counts in the subject and escapes every value', async () => {
    const hostile = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&';
    const changes = await assignmentChanges(
      stream([row('h', { principalDisplayName: hostile, end: null, roleName: `<b>${hostile}</b>` })]),
      { day: '2026-11-23', schedules: stream([]) },
      { now, expiryWindowDays: 14, excludedPrincipalIds: new Set() },
    );
    const activation: ActivationRow = {
      activated: days(-0.1),
      principalDisplayName: hostile,
      principalName: 'x@contoso.com',
      principalId: 'p-x',
      roleName: 'Global Administrator',
      roleId: GA,
      scopeId: '/',
      start: days(-0.1),
      end: days(0.2),
      justification: `=HYPERLINK("http://evil")${hostile}`,
      ticketNumber: '<t>',
      ticketSystem: 'SN',
      requestId: 'r',
      auditId: 'a',
      activationType: 'Role',
      groupName: '',
      groupId: '',
      groupRoles: '',
      approvedBy: '',
      approved: null,
      groupAccess: '',
    };
    const digest = renderDigest({
      day: '2026-11-24',
      changes,
      activations: { count: 1, items: [activation] },
      globalAdministrators: { count: 1, names: [hostile], isFinding: true },
      expiryWindowDays: 14,
      gaps: [],
      folder: 'daily/2026/11/24/',
    });
    expect(digest.subject).toBe('PIM digest 2026-11-24: 1 new, 0 expiring, 1 permanent');
    // No markup from data: the only tags are the template's own.
    expect(digest.html).not.toMatch(/<script|<img|<b>|<t>/i);
    const tags = new Set([...digest.html.matchAll(/<\/?([a-z0-9!]+)/gi)].map((m) => m[1].toLowerCase()));
    expect([...tags].sort()).toEqual([
      '!doctype',
      'body',
      'h1',
      'h2',
      'head',
      'html',
      'meta',
      'p',
      'table',
      'td',
      'th',
      'title',
      'tr',
    ]);
    expect(digest.html).toContain('&#60;script&#62;');
    expect(digest.text).toContain(hostile);
    expect(digest.html).toContain('MS.AAD.7.4');
    expect(digest.html).toContain('MS.AAD.7.1');
  });
});

describe('digest plain text', () => {
  it('keeps a value with line breaks or control characters on its own line', async () => {
    const changes = await assignmentChanges(
      stream([]),
      { day: '2026-11-23', schedules: stream([]) },
      { now, expiryWindowDays: 14, excludedPrincipalIds: new Set() },
    );
    const fake = '- Mallory | Global Administrator | Active (Assigned) | Directory | never';
    const activation: ActivationRow = {
      activated: days(-0.1),
      principalDisplayName: 'Ann\u2028Lee',
      principalName: 'ann@contoso.com',
      principalId: 'p-ann',
      roleName: 'Global Administrator',
      roleId: GA,
      scopeId: '/',
      start: days(-0.1),
      end: days(0.2),
      justification: `Incident 42\r\n\r\n${fake}\u202eexe.txt\u0007`,
      ticketNumber: '',
      ticketSystem: '',
      requestId: 'r',
      auditId: 'a',
      activationType: 'Role',
      groupName: '',
      groupId: '',
      groupRoles: '',
      approvedBy: '',
      approved: null,
      groupAccess: '',
    };
    const digest = renderDigest({
      day: '2026-11-24',
      changes,
      activations: { count: 1, items: [activation] },
      globalAdministrators: { count: 1, names: ['Eve\nAdmin'], isFinding: true },
      expiryWindowDays: 14,
      gaps: [],
      folder: 'daily/2026/11/24/',
    });
    const lines = digest.text.split('\n');
    // One line for the activation, and nothing of the justification starts a line of its own.
    expect(lines.filter((l) => l.includes('Incident 42'))).toHaveLength(1);
    expect(lines.some((l) => l.startsWith('- Mallory'))).toBe(false);
    expect(lines.some((l) => l === 'Admin' || l.startsWith('Admin'))).toBe(false);
    expect(digest.text).not.toMatch(/[\r\u0007\u2028\u202e]/);
    expect(digest.text).toContain(`Incident 42    ${fake} exe.txt `);
    expect(digest.text).toContain('Ann Lee');
    expect(digest.text).toContain('Eve Admin');
  });

  it('names the columns once per list and keeps every cell in its place, a blank one as -', async () => {
    const changes = await assignmentChanges(
      // A role Graph no longer names (no name, no id): its cell is blank.
      stream([
        row('s1', {
          principalDisplayName: 'Patti Fernandez',
          end: null,
          scopeId: '/administrativeUnits/au-1',
          roleName: '',
          roleId: '',
        }),
      ]),
      { day: '2026-11-23', schedules: stream([]) },
      { now, expiryWindowDays: 14, excludedPrincipalIds: new Set() },
    );
    const digest = renderDigest({
      day: '2026-11-24',
      changes,
      activations: { count: 0, items: [] },
      globalAdministrators: { count: 2, names: ['A', 'B'], isFinding: false },
      expiryWindowDays: 14,
      gaps: [],
      folder: 'daily/2026/11/24/',
      scopeName: () => 'Paris Office',
    });
    const added = digest.text
      .split('\n\n')
      .find((s) => s.startsWith('New assignments ('))!
      .split('\n');
    expect(added).toContain('  Who | Role | Kind | Scope | Ends (UTC)');
    const line = added.find((l) => l.startsWith('- Patti Fernandez'))!;
    expect(line.split(' | ')).toHaveLength(5);
    expect(line).toBe('- Patti Fernandez | - | Active (Assigned) | Paris Office | never');
    // An empty list says so, without a line of column names.
    const removed = digest.text.split('\n\n').find((s) => s.startsWith('Removed assignments ('))!;
    expect(removed).not.toContain('Who |');
  });
});

describe('digest role settings', () => {
  it('says how many policies were read and in how many of them the settings have findings', async () => {
    const changes = await assignmentChanges(
      stream([]),
      { day: '2026-11-23', schedules: stream([]) },
      { now, expiryWindowDays: 14, excludedPrincipalIds: new Set() },
    );
    const alert = 'activation sends no alert (no additional recipient)';
    const digest = renderDigest({
      day: '2026-11-24',
      changes,
      activations: { count: 0, items: [] },
      globalAdministrators: { count: 2, names: ['Ann', 'Bob'], isFinding: false },
      expiryWindowDays: 14,
      gaps: [],
      folder: 'daily/2026/11/24/',
      roleSettings: {
        roles: 23,
        changes: null,
        // Six lines about three policies; the MS.AAD.7.5 lines are assignments, not settings of a policy.
        findings: [
          {
            policy: 'MS.AAD.7.5',
            role: 'Security Administrator',
            text: 'active assignment of Eve (p-e) made outside PIM',
          },
          {
            policy: 'MS.AAD.7.5',
            role: '',
            text: 'and 4 more assignment(s) made outside PIM in active-assignments.csv',
          },
          { policy: 'MS.AAD.7.6', role: 'Global Administrator', text: 'activation does not require approval' },
          { policy: 'MS.AAD.7.8', role: 'Global Administrator', text: alert },
          { policy: 'MS.AAD.7.9', role: 'Exchange Administrator', text: alert },
          { policy: 'MS.AAD.7.9', role: 'Ops (PIM for Groups membership)', text: alert },
        ],
      },
    });
    const section = digest.text.split('\n\n').find((s) => s.startsWith('Role settings ('))!;
    expect(section.split('\n').slice(0, 3)).toEqual([
      'Role settings (6)',
      '-----------------',
      '23 PIM policies of roles and groups read; findings in the settings of 3 of them (CISA MS.AAD.7.6 to 7.9, and activation without MFA; an alert counts only with an additional recipient). MS.AAD.7.5 lines are active assignments made outside PIM. Every setting is in role-settings.csv.',
    ]);
    expect(digest.html).toContain('23 PIM policies of roles and groups read; findings in the settings of 3 of them');
  });
});
