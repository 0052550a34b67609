/** The oracle itself, on a hand-built tenant whose rows were worked out by hand from docs/files.md and the team rules. */
import type { SimDirectoryAudit, SimRoleSchedule, SimTenant } from '../../tools/tenant/model';
import { CISA_ROLES } from '../../tools/tenant/model';
import { demoTenant } from '../../tools/tenant/demo';
import { forDuration, generateTenant, permanent, pimSchedule, scheduleInfo, until } from '../../tools/tenant/generate';
import {
  ACTIVATION_COLUMNS,
  ASSIGNMENT_COLUMNS,
  csvRecords,
  durationMs,
  expectedActivations,
  expectedAssignmentRows,
  formatUtc,
  neutralise,
  parseCsv,
} from '../support/expected';

const GA = '62e90394-69f5-4237-9190-012177145e10';
const privilegedRoleIds = new Set(Object.keys(CISA_ROLES));

const ges = (
  id: string,
  groupId: string,
  principalId: string,
  accessId: 'member' | 'owner',
  info: SimRoleSchedule['scheduleInfo'],
) => ({
  id,
  groupId,
  principalId,
  accessId,
  memberType: 'direct' as const,
  status: 'Provisioned',
  createdDateTime: null,
  createdUsing: null,
  modifiedDateTime: null,
  scheduleInfo: info,
});

const tenant: SimTenant = {
  tenantId: 't',
  users: [
    { id: 'u-1', displayName: 'Zed', userPrincipalName: 'z@x' },
    { id: 'u-2', displayName: '=evil', userPrincipalName: 'e@x' },
    { id: 'u-3', displayName: 'Amy', userPrincipalName: 'a@x' },
  ],
  servicePrincipals: [{ id: 'sp-1', displayName: 'App', appId: 'app-1' }],
  groups: [
    { id: 'g-a', displayName: 'Admins', members: ['u-1', 'g-b', 'sp-1', 'gone'] },
    { id: 'g-b', displayName: 'Nested', members: ['u-3', 'u-1', 'g-a'] }, // u-1 twice, and a cycle back to g-a
    { id: 'g-c', displayName: 'Contractors', members: [] },
  ],
  administrativeUnits: [{ id: 'au-1', displayName: 'Paris' }],
  roleDefinitions: [
    { id: GA, displayName: 'Global Administrator', templateId: GA, isBuiltIn: true },
    { id: 'c-1', displayName: 'Custom', templateId: 'c-1', isBuiltIn: false },
  ],
  eligibilitySchedules: [
    pimSchedule({
      id: 'e-1',
      principalId: 'u-2',
      roleDefinitionId: GA,
      directoryScopeId: '/',
      scheduleInfo: forDuration('2026-01-01T00:00:00.9Z', 'P1DT2H'),
      createdDateTime: '2026-01-01T00:00:00.999Z',
    }),
    pimSchedule({
      id: 'e-2',
      principalId: 'g-a',
      roleDefinitionId: 'c-1',
      directoryScopeId: '/administrativeUnits/au-1',
      scheduleInfo: until('2026-01-05T10:00:00Z', '2026-06-01T00:00:00Z'),
    }),
    pimSchedule({
      id: 'e-3',
      principalId: 'dead',
      roleDefinitionId: GA,
      directoryScopeId: '/administrativeUnits/nope',
      scheduleInfo: permanent(null),
      createdDateTime: null,
    }),
    pimSchedule({
      id: 'e-4',
      principalId: 'u-1',
      roleDefinitionId: GA,
      directoryScopeId: '/',
      scheduleInfo: permanent('2026-01-01T00:00:00Z'),
      memberType: 'Group',
    }),
  ],
  assignmentSchedules: [
    {
      ...pimSchedule({
        id: 'a-1',
        principalId: 'u-3',
        roleDefinitionId: GA,
        directoryScopeId: '/',
        assignmentType: 'Assigned',
        scheduleInfo: permanent('2025-05-05T05:05:05.1234567Z'),
        createdUsing: null,
        createdDateTime: null,
      }),
    },
    pimSchedule({
      id: 'a-2',
      principalId: 'g-b',
      roleDefinitionId: 'c-1',
      directoryScopeId: '/',
      assignmentType: 'Assigned',
      scheduleInfo: until('2025-12-31T23:59:59.999Z', '2026-02-01T00:00:00Z'),
    }),
    pimSchedule({
      id: 'a-3',
      principalId: 'u-1',
      roleDefinitionId: GA,
      directoryScopeId: '/',
      assignmentType: 'Activated',
      scheduleInfo: forDuration('2026-03-15T08:00:00Z', 'PT8H'),
      createdUsing: 'req-1',
      createdDateTime: '2026-03-15T07:59:59Z',
    }),
  ],
  groupEligibilitySchedules: [
    ges('g-a_member_1', 'g-a', 'u-2', 'member', until('2026-02-01T00:00:00Z', '2026-03-01T00:00:00Z')),
    ges('g-a_member_2', 'g-a', 'g-c', 'member', permanent('2025-12-01T00:00:00Z')),
    ges('g-a_owner_3', 'g-a', 'u-3', 'owner', permanent('2025-12-01T00:00:00Z')),
    ges('g-b_member_4', 'g-b', 'u-2', 'Member' as 'member', scheduleInfo(null, { type: 'noExpiration' })),
    ges('g-c_member_5', 'g-c', 'u-1', 'member', permanent('2025-12-01T00:00:00Z')),
  ],
  directoryAudits: [],
};

/** Column-ordered cells -> a row record. */
const row = (...cells: string[]) => Object.fromEntries(ASSIGNMENT_COLUMNS.map((c, i) => [c, cells[i]]));
const paris = ['Paris', '/administrativeUnits/au-1'];

test('assignment rows: group expansion, PIM for Groups, scopes, times, flags, sort and neutralisation', () => {
  const { eligible, active } = expectedAssignmentRows(tenant, { privilegedRoleIds });
  const e2 = (
    name: string,
    upn: string,
    type: string,
    id: string,
    via = 'Admins',
    viaId = 'g-a',
    start = '2026-01-05 10:00:00',
    end = '2026-06-01 00:00:00',
  ) =>
    row(
      'Eligible',
      name,
      'Custom',
      upn,
      via ? 'Group' : 'Direct',
      start,
      end,
      type,
      id,
      via,
      viaId,
      'c-1',
      ...paris,
      '',
      'No',
      'No',
      'No',
      '2026-01-05 10:00:00',
      'e-2',
    );
  // e-4 is Graph's memberType Group schedule that no group expansion gives: listed once as it is.
  expect(eligible.filter((r) => r['Schedule Id'] === 'e-4')).toEqual([
    expect.objectContaining({
      'Principal Id': 'u-1',
      'Member Type': 'Group',
      'Via Group': '',
      'Via Group Id': '',
      'Role Id': GA,
    }),
  ]);
  expect(eligible.filter((r) => r['Schedule Id'] !== 'e-4')).toEqual([
    e2("'=evil", 'e@x', 'User', 'u-2', 'Admins', 'g-a', '2026-02-01 00:00:00', '2026-03-01 00:00:00'),
    row(
      'Eligible',
      "'=evil",
      'Custom',
      'e@x',
      'Group',
      '2025-12-31 23:59:59',
      '2026-02-01 00:00:00',
      'User',
      'u-2',
      'Nested',
      'g-b',
      'c-1',
      'Directory',
      '/',
      '',
      'No',
      'No',
      'No',
      '2025-12-31 23:59:59',
      'a-2',
    ),
    e2('Admins', '', 'Group', 'g-a', '', ''),
    e2('Amy', 'a@x', 'User', 'u-3'),
    e2('App', 'app-1', 'ServicePrincipal', 'sp-1'),
    e2('Contractors', '', 'Group', 'g-c'),
    e2('Nested', '', 'Group', 'g-b'),
    e2('Zed', 'z@x', 'User', 'u-1'),
    row(
      'Eligible',
      '',
      'Global Administrator',
      '',
      'Direct',
      '',
      '',
      '',
      'dead',
      '',
      '',
      GA,
      '',
      '/administrativeUnits/nope',
      '',
      'Yes',
      'Yes',
      'No',
      '',
      'e-3',
    ),
    row(
      'Eligible',
      "'=evil",
      'Global Administrator',
      'e@x',
      'Direct',
      '2026-01-01 00:00:00',
      '2026-01-02 02:00:00',
      'User',
      'u-2',
      '',
      '',
      GA,
      'Directory',
      '/',
      '',
      'No',
      'Yes',
      'No',
      '2026-01-01 00:00:00',
      'e-1',
    ),
  ]);
  const a2 = (name: string, upn: string, type: string, id: string, via: string, viaId: string) =>
    row(
      'Active',
      name,
      'Custom',
      upn,
      via ? 'Group' : 'Direct',
      '2025-12-31 23:59:59',
      '2026-02-01 00:00:00',
      type,
      id,
      via,
      viaId,
      'c-1',
      'Directory',
      '/',
      'Assigned',
      'No',
      'No',
      'No',
      '2025-12-31 23:59:59',
      'a-2',
    );
  expect(active).toEqual([
    a2('Admins', '', 'Group', 'g-a', 'Nested', 'g-b'), // through the cycle g-b -> g-a
    a2('Amy', 'a@x', 'User', 'u-3', 'Nested', 'g-b'),
    a2('App', 'app-1', 'ServicePrincipal', 'sp-1', 'Nested', 'g-b'),
    a2('Nested', '', 'Group', 'g-b', '', ''),
    a2('Zed', 'z@x', 'User', 'u-1', 'Nested', 'g-b'),
    row(
      'Active',
      'Amy',
      'Global Administrator',
      'a@x',
      'Direct',
      '2025-05-05 05:05:05',
      '',
      'User',
      'u-3',
      '',
      '',
      GA,
      'Directory',
      '/',
      'Assigned',
      'Yes',
      'Yes',
      'Yes',
      '',
      'a-1',
    ),
    row(
      'Active',
      'Zed',
      'Global Administrator',
      'z@x',
      'Direct',
      '2026-03-15 08:00:00',
      '2026-03-15 16:00:00',
      'User',
      'u-1',
      '',
      '',
      GA,
      'Directory',
      '/',
      'Activated',
      'No',
      'Yes',
      'No',
      '2026-03-15 07:59:59',
      'a-3',
    ),
  ]);
});

const audit = (
  over: Partial<SimDirectoryAudit> & Pick<SimDirectoryAudit, 'id' | 'activityDateTime'>,
): SimDirectoryAudit => ({
  category: 'RoleManagement',
  correlationId: 'c',
  result: 'success',
  resultReason: 'reason text',
  activityDisplayName: 'Add member to role completed (PIM activation)',
  loggedByService: 'PIM',
  operationType: 'Assign',
  initiatedBy: { user: null, app: null },
  targetResources: [
    { id: 'req-9', displayName: null, type: 'Request' },
    { id: 'u-1', displayName: 'Zed', type: 'User', userPrincipalName: 'z@x' },
    { id: 'role-target', displayName: 'Global Administrator', type: 'Role' },
  ],
  additionalDetails: [],
  ...over,
});

test('activation rows: filters, key lookups and fallbacks, [from, to), order by time then id', () => {
  const t: SimTenant = {
    ...tenant,
    directoryAudits: [
      audit({
        id: 'PIM_b',
        activityDateTime: '2026-03-10T10:00:00.0000001Z',
        additionalDetails: [
          { key: 'RoleAssignmentRequestId', value: 'req-1' },
          { key: 'Justification', value: '=1+1' },
          { key: 'StartTime', value: '2026-03-10T09:59:59.9999999Z' },
          { key: 'ExpirationTime', value: '2026-03-10T17:59:59.9999999Z' },
          { key: 'DirectoryScopeId', value: '/administrativeUnits/au-1' },
          { key: 'TicketNumber', value: 'INC-1' },
          { key: 'TicketSystem', value: 'Jira' },
          { key: 'RoleDefinitionOriginId', value: GA },
        ],
      }),
      audit({
        id: 'PIM_a',
        activityDateTime: '2026-03-10T10:00:00.000Z',
        targetResources: [
          { id: 'x', displayName: 'Contoso', Type: 'Directory' },
          { id: 'sp-1', displayName: '@x', Type: 'serviceprincipal' },
          { id: 'role-target', displayName: 'Custom', Type: 'role' },
          { id: 'req-7', displayName: null, Type: 'REQUEST' },
        ],
        additionalDetails: [{ key: 'TemplateId', value: 'c-1' }],
      }),
      // PIM for Groups: the group is the Group target, the access the Role target's name; no role of its own.
      audit({
        id: 'PIM_c',
        activityDateTime: '2026-03-10T10:00:00Z',
        category: 'GroupManagement',
        targetResources: [
          { id: 'req-3', displayName: null, type: 'Request' },
          { id: 'u-1', displayName: 'Zed', type: 'User', userPrincipalName: 'z@x' },
          { id: 'member', displayName: 'Member', type: 'Role' },
          { id: 'g-1', displayName: 'GA admins', type: 'Group' },
        ],
      }),
      // Its approval (category GroupManagement too), joined by RoleAssignmentRequestId.
      audit({
        id: 'PIM_ap',
        activityDateTime: '2026-03-10T09:59:00Z',
        category: 'GroupManagement',
        activityDisplayName: 'Add member to role request approved (PIM activation)',
        initiatedBy: { user: { id: 'u-2', displayName: 'Approver', userPrincipalName: 'boss@x' }, app: null } as any,
        additionalDetails: [{ key: 'RoleAssignmentRequestId', value: 'req-3' }],
      }),
      audit({ id: 'PIM_d', activityDateTime: '2026-03-10T10:00:00Z', loggedByService: 'Core Directory' }),
      audit({
        id: 'PIM_e',
        activityDateTime: '2026-03-10T10:00:00Z',
        activityDisplayName: 'Add member to role requested (PIM activation)',
      }),
      audit({ id: 'PIM_f', activityDateTime: '2026-03-11T00:00:00.0000000Z' }), // == to: excluded
      audit({ id: 'PIM_g', activityDateTime: '2026-03-09T23:59:59.9999999Z' }), // < from: excluded
      audit({ id: 'PIM_h', activityDateTime: '2026-03-10T00:00:00Z' }), // == from: included
    ],
  };
  const rows = expectedActivations(t, new Date('2026-03-10T00:00:00Z'), new Date('2026-03-11T00:00:00Z'));
  const r = (...cells: string[]) =>
    Object.fromEntries(ACTIVATION_COLUMNS.map((c, i) => [c, cells[i] ?? (c === 'Activation Type' ? 'Role' : '')]));
  expect(rows).toEqual([
    r(
      '2026-03-10 00:00:00',
      'Zed',
      'z@x',
      'u-1',
      'Global Administrator',
      'role-target',
      '',
      '',
      '',
      'reason text',
      '',
      '',
      'req-9',
      'PIM_h',
    ),
    r('2026-03-10 10:00:00', "'@x", '', 'sp-1', 'Custom', 'c-1', '', '', '', 'reason text', '', '', 'req-7', 'PIM_a'),
    r(
      '2026-03-10 10:00:00',
      'Zed',
      'z@x',
      'u-1',
      '',
      '',
      '',
      '',
      '',
      'reason text',
      '',
      '',
      'req-3',
      'PIM_c',
      'Group',
      'GA admins',
      'g-1',
      '',
      'boss@x',
      '2026-03-10 09:59:00',
      'Member',
    ),
    r(
      '2026-03-10 10:00:00',
      'Zed',
      'z@x',
      'u-1',
      'Global Administrator',
      GA,
      '/administrativeUnits/au-1',
      '2026-03-10 09:59:59',
      '2026-03-10 17:59:59',
      "'=1+1",
      'INC-1',
      'Jira',
      'req-1',
      'PIM_b',
    ),
  ]);
});

test('helpers: time formatting, durations, neutralisation', () => {
  expect(formatUtc('2026-03-10T23:59:59.9999999+02:00')).toBe('2026-03-10 21:59:59');
  expect(formatUtc(null)).toBe('');
  expect(durationMs('PT8H')).toBe(8 * 3600_000);
  expect(durationMs('P90D')).toBe(90 * 86_400_000);
  expect(durationMs('P1DT2H30M15S')).toBe(((24 + 2) * 3600 + 30 * 60 + 15) * 1000);
  expect(durationMs('P1Y')).toBeNull();
  for (const [input, out] of [
    ['=a', "'=a"],
    ['+a', "'+a"],
    ['-a', "'-a"],
    ['@a', "'@a"],
    ['\ta', "'\ta"],
    ['\ra', "'\ra"],
    ['a=', 'a='],
    ['', ''],
  ]) {
    expect(neutralise(input)).toBe(out);
  }
});

test('parseCsv: BOM, CRLF, quotes, embedded separators and line breaks', () => {
  const text = '\uFEFFa,b,c\r\n"x, ""y""","line1\r\nline2",\r\n\'=1,,"z"\r\n';
  expect(parseCsv(text)).toEqual([
    ['a', 'b', 'c'],
    ['x, "y"', 'line1\r\nline2', ''],
    ["'=1", '', 'z'],
  ]);
  expect(csvRecords(text).rows[0]).toEqual({ a: 'x, "y"', b: 'line1\r\nline2', c: '' });
  expect(() => csvRecords('a,b\r\n1\r\n')).toThrow(/row 2/);
  expect(() => parseCsv('"open')).toThrow();
});

test('on generated and demo tenants the sort keys are unique, so the expected order is total', () => {
  const now = new Date('2026-03-15T10:00:00Z');
  for (const t of [
    demoTenant(now),
    generateTenant({ seed: 1, now }),
    generateTenant({ seed: 2, now, users: 300, groups: 40, eligible: 600, active: 300 }),
  ]) {
    const { eligible, active } = expectedAssignmentRows(t, { privilegedRoleIds });
    for (const rows of [eligible, active]) {
      const keys = rows.map((r) =>
        [r['Role Name'], r['User Group Name'], r['Principal Id'], r['Via Group Id'], r['Schedule Id']].join('\u0000'),
      );
      expect(new Set(keys).size).toBe(keys.length);
    }
    expect(eligible.some((r) => r['Member Type'] === 'Group')).toBe(true);
  }
});
