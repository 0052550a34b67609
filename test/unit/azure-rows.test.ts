/**
 * How an Azure schedule becomes a report row: `Outside PIM` from the schedule instances (a
 * schedule of the role assignment's own name, permanent), and only scopes at or below the
 * configured ones.
 */
import { azureRow, standingScheduleOf, withinScopes, type ArmRoleSchedule } from '../../src/pim/azure';

const SUB = '/subscriptions/dfa2a084-766f-4003-8ae1-c4aeb893a99f';
const SCHEDULE = 'c9e264ff-3133-4776-a81a-ebc7c33c8ec6';
const ASSIGNMENT = 'ed9b8180-cef7-4c77-a63c-b8566ecfc412';

function instance(scheduleName: string, assignmentName: string, assignmentType = 'Assigned') {
  return {
    id: `${SUB}/providers/Microsoft.Authorization/RoleAssignmentScheduleInstances/${assignmentName}`,
    properties: {
      assignmentType,
      // Mixed forms and case, as ARM writes them (its own example uses both subscription forms).
      roleAssignmentScheduleId: `/providers/Microsoft.Subscription${SUB}/providers/Microsoft.Authorization/RoleAssignmentSchedules/${scheduleName.toUpperCase()}`,
      originRoleAssignmentId: `${SUB}/providers/Microsoft.Authorization/roleAssignments/${assignmentName}`,
    },
  };
}

function schedule(name: string, end: string | null, extra: Record<string, unknown> = {}): ArmRoleSchedule {
  return {
    id: `${SUB}/providers/Microsoft.Authorization/roleAssignmentSchedules/${name}`,
    properties: {
      scope: SUB,
      roleDefinitionId: `${SUB}/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635`,
      principalId: 'a3bb8764-cb92-4276-9d2a-ca1e895e55ea',
      principalType: 'User',
      assignmentType: 'Assigned',
      startDateTime: '2024-01-01T00:00:00Z',
      endDateTime: end,
      ...extra,
    },
  };
}

describe('Outside PIM for Azure', () => {
  it('an Assigned instance whose schedule has the role assignment own name stands for one made outside PIM', () => {
    expect(standingScheduleOf(instance(ASSIGNMENT, ASSIGNMENT))).toBe(
      `${SUB}/providers/microsoft.authorization/roleassignmentschedules/${ASSIGNMENT}`,
    );
    // ARM's example of a PIM-made one: the schedule and the role assignment have different names.
    expect(standingScheduleOf(instance(SCHEDULE, ASSIGNMENT))).toBeUndefined();
    expect(standingScheduleOf(instance(ASSIGNMENT, ASSIGNMENT, 'Activated'))).toBeUndefined();
    expect(standingScheduleOf({ id: 'x', properties: { assignmentType: 'Assigned' } })).toBeUndefined();
  });

  it('is Yes for a permanent Assigned schedule of a standing role assignment, whether or not it names a request', () => {
    const standing = new Set([standingScheduleOf(instance(ASSIGNMENT, ASSIGNMENT))!]);
    const privileged = new Set<string>();
    const request = {
      roleAssignmentScheduleRequestId: `${SUB}/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/${SCHEDULE}`,
    };
    expect(azureRow('Active', schedule(ASSIGNMENT, null), privileged, standing).outsidePim).toBe(true);
    expect(azureRow('Active', schedule(ASSIGNMENT, null, request), privileged, standing).outsidePim).toBe(true);
    // PIM-made, with or without a request named: No.
    expect(azureRow('Active', schedule(SCHEDULE, null), privileged, standing).outsidePim).toBe(false);
    // A role assignment made outside PIM has no end; a time-bound one is PIM's.
    expect(azureRow('Active', schedule(ASSIGNMENT, '2027-01-01T00:00:00Z'), privileged, standing).outsidePim).toBe(
      false,
    );
    expect(azureRow('Eligible', schedule(ASSIGNMENT, null), privileged, standing).outsidePim).toBe(false);
  });
});

describe('the configured Azure scopes', () => {
  const mg = (id: string) => `/providers/microsoft.management/managementgroups/${id}`;
  const sub = (id: string) => `/subscriptions/${id}`;
  const within = withinScopes([
    { path: mg('child'), kind: 'managementGroup' },
    { path: mg('grandchild'), kind: 'managementGroup' },
    { path: sub('s1'), kind: 'subscription' },
    { path: `${sub('s2')}/resourcegroups/rg1`, kind: 'below' },
  ]);

  it('hold the management groups read, their subscriptions and what lies below those', () => {
    expect(within(mg('child'))).toBe(true);
    expect(within(mg('grandchild'))).toBe(true);
    expect(within(sub('s1'))).toBe(true);
    expect(within(`${sub('s1')}/resourcegroups/rg9/providers/microsoft.storage/storageaccounts/st`)).toBe(true);
    expect(within(`${sub('s2')}/resourcegroups/rg1`)).toBe(true);
    expect(within(`${sub('s2')}/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/vm`)).toBe(true);
  });

  it('not what lies above them: a parent group, the root, the subscription of a configured resource group', () => {
    expect(within(mg('root'))).toBe(false);
    expect(within(mg('parent'))).toBe(false);
    expect(within(sub('s2'))).toBe(false);
    expect(within(`${sub('s2')}/resourcegroups/rg10`)).toBe(false);
    expect(within(sub('s3'))).toBe(false);
  });
});
