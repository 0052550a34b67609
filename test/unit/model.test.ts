import {
  addDuration,
  compareAssignmentRows,
  directRow,
  earlierEnd,
  groupEligibilityRoute,
  groupEligibleRow,
  isGroupEligibilityRoute,
  isoTime,
  laterStart,
  memberRow,
  principalOf,
  scheduleWindow,
  type RoleSchedule,
} from '../../src/pim/model';

const GA = '62e90394-69f5-4237-9190-012177145e10';
const privileged = new Set([GA]);

function schedule(overrides: Partial<RoleSchedule> = {}): RoleSchedule {
  return {
    id: 's1',
    principalId: 'g1',
    roleDefinitionId: GA,
    directoryScopeId: '/',
    memberType: 'Direct',
    assignmentType: 'Assigned',
    createdUsing: 's1',
    createdDateTime: '2024-01-02T03:04:05.1234567Z',
    scheduleInfo: {
      startDateTime: '2024-01-02T03:04:05Z',
      expiration: { type: 'afterDateTime', endDateTime: '2025-01-01T00:00:00Z' },
    },
    principal: { '@odata.type': '#microsoft.graph.group', id: 'g1', displayName: 'Tier0' },
    ...overrides,
  };
}

describe('PIM model', () => {
  it('parses Graph times with seven fractional digits', () => {
    expect(isoTime('2022-04-11T17:11:50.8825697Z')).toBe('2022-04-11T17:11:50.882Z');
    expect(isoTime(null)).toBeNull();
    expect(isoTime('garbage')).toBeNull();
  });

  it('computes the end of every expiration type', () => {
    expect(
      scheduleWindow({ startDateTime: '2024-01-01T00:00:00Z', expiration: { type: 'noExpiration' } }).end,
    ).toBeNull();
    expect(
      scheduleWindow({ startDateTime: '2024-01-01T00:00:00Z', expiration: { type: 'notSpecified' } }).end,
    ).toBeNull();
    expect(
      scheduleWindow({ startDateTime: '2024-01-01T00:00:00Z', expiration: { type: 'afterDuration', duration: 'PT8H' } })
        .end,
    ).toBe('2024-01-01T08:00:00.000Z');
    expect(
      scheduleWindow({ startDateTime: '2024-01-31T00:00:00Z', expiration: { type: 'AfterDuration', duration: 'P90D' } })
        .end,
    ).toBe('2024-04-30T00:00:00.000Z');
    expect(scheduleWindow(null)).toEqual({ start: null, end: null });
    expect(addDuration('2024-01-01T00:00:00Z', 'P1DT2H30M')).toBe('2024-01-02T02:30:00.000Z');
    expect(addDuration('2024-01-01T00:00:00Z', 'bogus')).toBeNull();
  });

  it('reads principals by @odata.type', () => {
    expect(
      principalOf('u', {
        '@odata.type': '#microsoft.graph.user',
        id: 'u',
        displayName: 'Ann',
        userPrincipalName: 'ann@x',
      }),
    ).toEqual({
      id: 'u',
      type: 'User',
      displayName: 'Ann',
      name: 'ann@x',
    });
    expect(
      principalOf('s', {
        '@odata.type': '#microsoft.graph.servicePrincipal',
        id: 's',
        displayName: 'App',
        appId: 'app-id',
      }).name,
    ).toBe('app-id');
    expect(principalOf('g', { '@odata.type': '#microsoft.graph.group', id: 'g', displayName: 'G' }).name).toBe('');
    expect(principalOf('gone', null)).toEqual({ id: 'gone', type: '', displayName: '', name: '' });
  });

  it('flags outside-PIM active assignments and privileged roles', () => {
    const outside = directRow(
      'Active',
      schedule({ createdUsing: null, createdDateTime: null }),
      'Global Administrator',
      privileged,
    );
    expect(outside.outsidePim).toBe(true);
    expect(outside.created).toBeNull();
    expect(outside.privileged).toBe(true);
    const eligible = directRow(
      'Eligible',
      schedule({ createdUsing: null, roleDefinitionId: 'other' }),
      'Reader',
      privileged,
    );
    expect(eligible.outsidePim).toBe(false);
    expect(eligible.assignmentType).toBe('');
    expect(eligible.privileged).toBe(false);
  });

  it('gives members the group row schedule and PIM-for-Groups members the narrower window', () => {
    const group = directRow('Active', schedule(), 'Global Administrator', privileged);
    const member = memberRow(group, { id: 'u1', type: 'User', displayName: 'Bob', name: 'bob@x' });
    expect(member).toMatchObject({
      memberType: 'Group',
      viaGroup: 'Tier0',
      viaGroupId: 'g1',
      state: 'Active',
      end: group.end,
    });
    const eligible = groupEligibleRow(group, {
      id: 'g1_member_x',
      groupId: 'g1',
      principalId: 'u2',
      accessId: 'member',
      scheduleInfo: { startDateTime: '2024-06-01T00:00:00Z', expiration: { type: 'noExpiration' } },
      principal: { '@odata.type': '#microsoft.graph.user', id: 'u2', displayName: 'Cy', userPrincipalName: 'cy@x' },
    });
    expect(eligible).toMatchObject({
      state: 'Eligible',
      assignmentType: '',
      outsidePim: false,
      viaGroupId: 'g1',
      principalId: 'u2',
    });
    expect(eligible.start).toBe('2024-06-01T00:00:00.000Z');
    expect(eligible.end).toBe(group.end);
    expect(laterStart(null, 'b')).toBe('b');
    expect(earlierEnd(null, null)).toBeNull();
    expect(earlierEnd('2024-01-01', '2023-01-01')).toBe('2023-01-01');
  });

  it("a PIM-for-Groups eligibility's route: its own id and creation, the group's window narrowed; only a member row through a group is one", () => {
    const group = directRow('Active', schedule(), 'Global Administrator', privileged);
    const eligibility = {
      id: 'g1_member_x',
      groupId: 'g1',
      principalId: 'u2',
      accessId: 'member',
      createdDateTime: '2024-06-01T00:00:00Z',
      scheduleInfo: { startDateTime: '2024-06-01T00:00:00Z', expiration: { type: 'noExpiration' } },
    };
    const route = groupEligibilityRoute(group, eligibility);
    expect(route).toMatchObject({
      scheduleId: 'g1_member_x via s1',
      created: '2024-06-01T00:00:00.000Z',
      state: 'Eligible',
      memberType: 'Group',
      viaGroupId: 'g1',
      end: group.end,
    });
    expect(isGroupEligibilityRoute(route)).toBe(true);
    // The CSV's rows are not routes, nor is a direct row whose id happens to hold the join.
    expect(isGroupEligibilityRoute(groupEligibleRow(group, eligibility))).toBe(false);
    expect(isGroupEligibilityRoute({ ...group, scheduleId: 'a via b' })).toBe(false);
  });

  it('sorts by role name, principal name, principal id (ordinal)', () => {
    const base = directRow('Active', schedule(), 'B', privileged);
    const rows = [
      { ...base, roleName: 'B', principalDisplayName: 'a', principalId: '2' },
      { ...base, roleName: 'A', principalDisplayName: 'z', principalId: '1' },
      { ...base, roleName: 'B', principalDisplayName: 'a', principalId: '1' },
      { ...base, roleName: 'B', principalDisplayName: 'Z', principalId: '9' },
    ];
    expect(
      rows.sort(compareAssignmentRows).map((r) => `${r.roleName}/${r.principalDisplayName}/${r.principalId}`),
    ).toEqual(['A/z/1', 'B/Z/9', 'B/a/1', 'B/a/2']);
  });
});
