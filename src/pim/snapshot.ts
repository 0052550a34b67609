/**
 * The PIM snapshot (SPEC sections 2 and 4.1): every eligible and active Entra role assignment,
 * groups expanded to their transitive members and PIM-for-Groups eligible members, sorted.
 *
 * Requests grow with pages, not rows: principals come inline with `$expand=principal`, role names
 * from one roleDefinitions list, administrative-unit names from `getByIds`, and each group that
 * holds a role is expanded once however many roles it holds.
 */
import type { GraphClient } from '../graph/client';
import type { Log } from '../log';
import { ExternalSorter } from '../report/sorter';
import type { ScopeNamer } from '../report/csv';
import {
  compareAssignmentRows,
  directRow,
  groupEligibleRow,
  memberRow,
  principalOf,
  sameEnum,
  type AssignmentRow,
  type AssignmentState,
  type DirectoryObject,
  type GroupEligibilitySchedule,
  type RoleSchedule,
} from './model';

export interface SnapshotOptions {
  privilegedRoleIds: ReadonlySet<string>;
  log: Log;
  /** Rows kept in memory per list before spilling to disk. */
  sortRunSize?: number;
}

export interface Snapshot {
  /** Rows of eligible-assignments.csv, in SPEC 4.1 order. */
  eligible: ExternalSorter<AssignmentRow>;
  /** Rows of active-assignments.csv, in SPEC 4.1 order. */
  active: ExternalSorter<AssignmentRow>;
  /** One row per schedule (its own principal, no expansion), by state then schedule id: what the digest counts. */
  schedules: ExternalSorter<AssignmentRow>;
  scopeName: ScopeNamer;
  counts: { eligibleSchedules: number; activeSchedules: number; groupsExpanded: number };
  dispose(): Promise<void>;
}

const ROLE_DEFINITIONS = '/roleManagement/directory/roleDefinitions';
const ELIGIBILITY_SCHEDULES = '/roleManagement/directory/roleEligibilitySchedules';
const ASSIGNMENT_SCHEDULES = '/roleManagement/directory/roleAssignmentSchedules';
const GROUP_ELIGIBILITY_SCHEDULES = '/identityGovernance/privilegedAccess/group/eligibilitySchedules';
const MEMBER_SELECT = 'id,displayName,userPrincipalName,appId';
const AU_PREFIX = '/administrativeUnits/';

export function compareSchedules(a: AssignmentRow, b: AssignmentRow): number {
  return a.state < b.state ? -1 : a.state > b.state ? 1 : a.scheduleId < b.scheduleId ? -1 : a.scheduleId > b.scheduleId ? 1 : 0;
}

export async function takeSnapshot(graph: GraphClient, options: SnapshotOptions): Promise<Snapshot> {
  const { log } = options;
  const sorterOptions = { runSize: options.sortRunSize };
  const eligible = new ExternalSorter<AssignmentRow>(compareAssignmentRows, sorterOptions);
  const active = new ExternalSorter<AssignmentRow>(compareAssignmentRows, sorterOptions);
  const schedules = new ExternalSorter<AssignmentRow>(compareSchedules, sorterOptions);
  const dispose = async () => {
    await Promise.all([eligible.dispose(), active.dispose(), schedules.dispose()]);
  };

  try {
    log.info('Fetching role definitions');
    const roleNames = new Map<string, string>();
    for await (const role of graph.list<{ id: string; templateId?: string; displayName?: string }>(ROLE_DEFINITIONS, {
      $select: 'id,templateId,displayName',
    })) {
      roleNames.set(role.id.toLowerCase(), role.displayName ?? '');
      if (role.templateId) roleNames.set(role.templateId.toLowerCase(), role.displayName ?? '');
    }

    // Rows of each group that holds a role, to give its members the same schedule.
    const groupRows = new Map<string, AssignmentRow[]>();
    const scopeIds = new Set<string>();
    const problems = { deletedPrincipals: 0, unknownRoles: new Set<string>(), skippedMemberTypes: 0 };

    const readSchedules = async (state: AssignmentState, path: string): Promise<number> => {
      let count = 0;
      // Plain `$expand=principal`: a nested $select on principal is rejected by Graph
      // (graph-pim.md section 1, samples/error-expand-principal-nested-select.json).
      for await (const page of graph.pages<RoleSchedule>(path, { $expand: 'principal' })) {
        for (const schedule of page) {
          // We expand groups ourselves; a row Graph derived from a group would be counted twice.
          if (schedule.memberType && !sameEnum(schedule.memberType, 'Direct')) {
            problems.skippedMemberTypes++;
            continue;
          }
          count++;
          const roleKey = (schedule.roleDefinitionId ?? '').toLowerCase();
          const roleName = roleNames.get(roleKey);
          if (roleName === undefined) problems.unknownRoles.add(schedule.roleDefinitionId);
          if (!schedule.principal) problems.deletedPrincipals++;
          const row = directRow(state, schedule, roleName ?? '', options.privilegedRoleIds);
          if (row.scopeId.startsWith(AU_PREFIX)) scopeIds.add(row.scopeId);
          await (state === 'Eligible' ? eligible : active).add(row);
          await schedules.add(row);
          if (row.principalType === 'Group') {
            const rows = groupRows.get(row.principalId) ?? [];
            rows.push(row);
            groupRows.set(row.principalId, rows);
          }
        }
        log.info(`${state === 'Eligible' ? 'Eligible' : 'Active'} schedules: ${count} so far`);
      }
      return count;
    };

    log.info('Fetching eligible and active schedules');
    const [eligibleSchedules, activeSchedules] = await Promise.all([
      readSchedules('Eligible', ELIGIBILITY_SCHEDULES),
      readSchedules('Active', ASSIGNMENT_SCHEDULES),
    ]);
    if (problems.deletedPrincipals > 0) {
      log.warn(`${problems.deletedPrincipals} schedule(s) name a principal that no longer exists; kept with blank names`);
    }
    if (problems.unknownRoles.size > 0) {
      log.warn(`schedule(s) for unknown role definition(s) ${[...problems.unknownRoles].join(', ')}; kept with a blank role name`);
    }
    if (problems.skippedMemberTypes > 0) {
      log.warn(`${problems.skippedMemberTypes} schedule(s) with a memberType other than Direct skipped (groups are expanded here)`);
    }

    log.info(`Expanding ${groupRows.size} group(s) that hold roles`);
    await expandGroups(graph, groupRows, { eligible, active }, log);

    const scopeNames = await resolveAdministrativeUnits(graph, [...scopeIds], log);
    const scopeName: ScopeNamer = (scopeId) => {
      if (scopeId === '/') return 'Directory';
      if (scopeId.startsWith(AU_PREFIX)) return scopeNames.get(scopeId.slice(AU_PREFIX.length).toLowerCase()) ?? '';
      return scopeId;
    };
    log.info(`Snapshot: ${eligible.size} eligible row(s), ${active.size} active row(s)`);
    return {
      eligible,
      active,
      schedules,
      scopeName,
      counts: { eligibleSchedules, activeSchedules, groupsExpanded: groupRows.size },
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/**
 * Each group that holds a role, expanded once however many roles it holds: its transitive members
 * and its PIM-for-Groups eligible members, all groups' lists paged together through `$batch`.
 */
async function expandGroups(
  graph: GraphClient,
  groupRows: Map<string, AssignmentRow[]>,
  sinks: { eligible: ExternalSorter<AssignmentRow>; active: ExternalSorter<AssignmentRow> },
  log: Log,
): Promise<void> {
  const lists = [...groupRows.keys()].flatMap((groupId) => [
    {
      key: `members:${groupId}`,
      path: `/groups/${encodeURIComponent(groupId)}/transitiveMembers`,
      query: { $select: MEMBER_SELECT, $top: 999 },
    },
    {
      // No tenant-wide PIM-for-Groups list exists; the groupId filter is required (graph-pim.md section 5).
      key: `eligible:${groupId}`,
      path: GROUP_ELIGIBILITY_SCHEDULES,
      query: { $filter: `groupId eq '${groupId}'`, $expand: 'principal' },
    },
  ]);
  await graph.batchPages<DirectoryObject & GroupEligibilitySchedule>(
    lists,
    async (key, items) => {
      const [kind, groupId] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
      const rows = groupRows.get(groupId)!;
      if (kind === 'members') {
        for (const object of items) {
          const member = principalOf(object.id, object);
          for (const row of rows) await (row.state === 'Eligible' ? sinks.eligible : sinks.active).add(memberRow(row, member));
        }
      } else {
        for (const eligibility of items) {
          // Owners can manage the group, but only eligible *members* can activate into its roles.
          if (!sameEnum(eligibility.accessId, 'member')) continue;
          for (const row of rows) await sinks.eligible.add(groupEligibleRow(row, eligibility));
        }
      }
    },
    (key) => log.warn(`${key.replace(':', ' of group ')}: the group holds a role but no longer exists; its members are not listed`),
  );
}

async function resolveAdministrativeUnits(graph: GraphClient, scopeIds: string[], log: Log): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const ids = scopeIds.map((s) => s.slice(AU_PREFIX.length));
  for (let i = 0; i < ids.length; i += 1000) {
    const chunk = ids.slice(i, i + 1000);
    const result = await graph.post<{ value?: DirectoryObject[] }>('/directoryObjects/getByIds', {
      ids: chunk,
      types: ['administrativeUnit'],
    });
    for (const unit of result.value ?? []) names.set(unit.id.toLowerCase(), unit.displayName ?? '');
  }
  const missing = ids.filter((id) => !names.has(id.toLowerCase()));
  if (missing.length > 0) log.warn(`administrative unit(s) ${missing.join(', ')} not found; their scope name is blank`);
  return names;
}
