/**
 * The PIM snapshot (SPEC sections 2 and 4.1): every eligible and active Entra role assignment,
 * groups expanded to their transitive members and PIM-for-Groups eligible members, sorted.
 *
 * Requests grow with pages, not rows: principals come inline with `$expand=principal`, role names
 * from one roleDefinitions list, administrative-unit names from `getByIds`, and each group that
 * holds a role is expanded once however many roles it holds.
 */
import { BATCH_LIMIT, type GraphClient, type ListQuery } from '../graph/client';
import type { Log } from '../log';
import { ExternalSorter } from '../util/sorter';
import {
  assignmentRowCodec,
  compareAssignmentRows,
  compareSchedules,
  directRow,
  groupEligibleRow,
  memberRow,
  principalOf,
  sameEnum,
  type AssignmentRow,
  type AssignmentState,
  type DirectoryObject,
  type GroupEligibilitySchedule,
  type Principal,
  type RoleSchedule,
  type ScopeNamer,
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
/** `$batch` requests in flight while expanding groups (each carries up to 20 lists): well inside Graph's per-tenant directory budget. */
const GROUP_BATCHES_IN_FLIGHT = 6;
/**
 * Rows each of the three sorters keeps in memory (two runs' worth while one is written): 10,000 rows
 * are about 4 MB. Fewer rows held means less for the garbage collector to carry; more runs cost little.
 */
const RUN_SIZE = 10_000;
/** A progress line per this many schedules, not per page (each line is a trace in Application Insights). */
const PROGRESS_EVERY = 10_000;

export async function takeSnapshot(graph: GraphClient, options: SnapshotOptions): Promise<Snapshot> {
  const { log } = options;
  const sorterOptions = { runSize: options.sortRunSize ?? RUN_SIZE, codec: assignmentRowCodec };
  const eligible = new ExternalSorter<AssignmentRow>(compareAssignmentRows, sorterOptions);
  const active = new ExternalSorter<AssignmentRow>(compareAssignmentRows, sorterOptions);
  const schedules = new ExternalSorter<AssignmentRow>(compareSchedules, sorterOptions);
  const dispose = async () => {
    await Promise.all([eligible.dispose(), active.dispose(), schedules.dispose()]);
  };

  try {
    log.info('Fetching role definitions, eligible and active schedules');
    // Role names are one short list: fetched alongside the first schedule pages, awaited before any row is made.
    const roleNamesReady = (async () => {
      const names = new Map<string, string>();
      for await (const role of graph.list<{ id: string; templateId?: string; displayName?: string }>(ROLE_DEFINITIONS, {
        $select: 'id,templateId,displayName',
      })) {
        names.set(role.id.toLowerCase(), role.displayName ?? '');
        if (role.templateId) names.set(role.templateId.toLowerCase(), role.displayName ?? '');
      }
      return names;
    })();
    roleNamesReady.catch(() => undefined); // awaited below; a failure fails the snapshot there

    // Groups that hold roles are expanded while the schedules are still being paged.
    const groups = new GroupExpander(graph, { eligible, active }, log);
    const scopeIds = new Set<string>();
    const problems = { deletedPrincipals: 0, unknownRoles: new Set<string>(), skippedMemberTypes: 0 };
    let stopped = false;

    const readSchedules = async (state: AssignmentState, path: string): Promise<number> => {
      let count = 0;
      let logged = 0;
      const sink = state === 'Eligible' ? eligible : active;
      // Plain `$expand=principal`: a nested $select on principal is rejected by Graph
      // (graph-pim.md section 1, samples/error-expand-principal-nested-select.json).
      const pages = graph.pages<RoleSchedule>(path, { $expand: 'principal' })[Symbol.asyncIterator]();
      const first = pages.next(); // the first request goes out now, alongside the role definitions
      first.catch(() => undefined);
      const roleNames = await roleNamesReady;
      for (let page = await first; !page.done; page = await pages.next()) {
        // The other list or a group expansion failed: the snapshot fails, stop here.
        if (stopped || groups.failed) break;
        const rows: AssignmentRow[] = [];
        const members = { eligible: [] as AssignmentRow[], active: [] as AssignmentRow[] };
        for (const schedule of page.value) {
          // We expand groups ourselves; a row Graph derived from a group would be counted twice.
          if (schedule.memberType && !sameEnum(schedule.memberType, 'Direct')) {
            problems.skippedMemberTypes++;
            continue;
          }
          const roleKey = (schedule.roleDefinitionId ?? '').toLowerCase();
          const roleName = roleNames.get(roleKey);
          if (roleName === undefined) problems.unknownRoles.add(schedule.roleDefinitionId);
          if (!schedule.principal) problems.deletedPrincipals++;
          const row = directRow(state, schedule, roleName ?? '', options.privilegedRoleIds);
          if (row.scopeId.startsWith(AU_PREFIX)) scopeIds.add(row.scopeId);
          rows.push(row);
          if (row.principalType === 'Group') groups.add(row, members);
        }
        count += rows.length;
        // One await per page, not per row.
        await Promise.all([sink.addAll(rows), schedules.addAll(rows), eligible.addAll(members.eligible), active.addAll(members.active)]);
        if (count - logged >= PROGRESS_EVERY) {
          logged = count;
          log.info(`${state} schedules: ${count} so far`);
        }
      }
      return count;
    };

    let eligibleSchedules: number;
    let activeSchedules: number;
    try {
      [eligibleSchedules, activeSchedules] = await Promise.all(
        [readSchedules('Eligible', ELIGIBILITY_SCHEDULES), readSchedules('Active', ASSIGNMENT_SCHEDULES)].map((reading) =>
          reading.catch((error: unknown) => {
            stopped = true;
            throw error;
          }),
        ),
      );
    } catch (error) {
      // Nothing may still be writing rows when the caller disposes of the sorters.
      await groups.stop();
      throw error;
    }
    log.info(`Schedules: ${eligibleSchedules} eligible, ${activeSchedules} active`);
    if (problems.deletedPrincipals > 0) {
      log.warn(`${problems.deletedPrincipals} schedule(s) name a principal that no longer exists; kept with blank names`);
    }
    if (problems.unknownRoles.size > 0) {
      log.warn(`schedule(s) for unknown role definition(s) ${[...problems.unknownRoles].join(', ')}; kept with a blank role name`);
    }
    if (problems.skippedMemberTypes > 0) {
      log.warn(`${problems.skippedMemberTypes} schedule(s) with a memberType other than Direct skipped (groups are expanded here)`);
    }

    log.info(`Expanding ${groups.size} group(s) that hold roles`);
    const [scopeNames] = await Promise.all([resolveAdministrativeUnits(graph, [...scopeIds], log), groups.finish()]);
    const groupsExpanded = groups.size;
    // The members kept for late rows are no longer needed (and this function's closures outlive it).
    groups.release();
    log.info(`Snapshot: ${eligible.size} eligible row(s), ${active.size} active row(s)`);
    return {
      eligible,
      active,
      schedules,
      scopeName: scopeNamer(scopeNames),
      counts: { eligibleSchedules, activeSchedules, groupsExpanded },
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** `Directory`, an administrative unit's name, or the scope id as it is. */
function scopeNamer(scopeNames: ReadonlyMap<string, string>): ScopeNamer {
  return (scopeId) => {
    if (scopeId === '/') return 'Directory';
    if (scopeId.startsWith(AU_PREFIX)) return scopeNames.get(scopeId.slice(AU_PREFIX.length).toLowerCase()) ?? '';
    return scopeId;
  };
}

type Sinks = { eligible: ExternalSorter<AssignmentRow>; active: ExternalSorter<AssignmentRow> };

/**
 * Each group that holds a role, expanded once however many roles it holds: its transitive members
 * and its PIM-for-Groups eligible members, 20 lists to a `$batch`, several batches in flight. A
 * group's lists are asked for as soon as its first row is seen, while the schedules are still being
 * paged, so little is left to fetch when the last schedule page arrives. Its members are kept (id,
 * type and names) to give rows of the group that arrive later their member rows; each pair of
 * group row and member gives one row, whichever of the two arrives first.
 */
class GroupExpander {
  /** Rows of each group that holds a role, to give its members the same schedule. */
  private readonly rows = new Map<string, AssignmentRow[]>();
  private readonly members = new Map<string, Principal[]>();
  private readonly eligibleMembers = new Map<string, GroupEligibilitySchedule[]>();
  private readonly pending: ListQuery[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private finishing = false;
  private failure?: { error: unknown };

  constructor(
    private readonly graph: GraphClient,
    private readonly sinks: Sinks,
    private readonly log: Log,
  ) {}

  get size(): number {
    return this.rows.size;
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** A row of a group: its member rows (for members listed so far) go to `out`, the rest follow when listed. */
  add(row: AssignmentRow, out: { eligible: AssignmentRow[]; active: AssignmentRow[] }): void {
    const groupId = row.principalId;
    let held = this.rows.get(groupId);
    if (!held) {
      held = [];
      this.rows.set(groupId, held);
      this.members.set(groupId, []);
      this.eligibleMembers.set(groupId, []);
      this.pending.push(
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
      );
      this.launch();
    }
    held.push(row);
    for (const member of this.members.get(groupId)!) (row.state === 'Eligible' ? out.eligible : out.active).push(memberRow(row, member));
    for (const eligibility of this.eligibleMembers.get(groupId)!) out.eligible.push(groupEligibleRow(row, eligibility));
  }

  /** Every group seen so far expanded; rejects with the first failure. */
  async finish(): Promise<void> {
    this.finishing = true;
    this.launch();
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure.error;
  }

  /** Forgets the groups' rows and members once every group is expanded. */
  release(): void {
    this.rows.clear();
    this.members.clear();
    this.eligibleMembers.clear();
  }

  /** Sends nothing more and waits for the batches in flight (the snapshot failed). */
  async stop(): Promise<void> {
    this.pending.length = 0;
    this.failure ??= { error: new Error('stopped') };
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
  }

  /** Sends full batches (and, once finishing, the rest) while fewer than the limit are in flight. */
  private launch(): void {
    while (!this.failure && this.inFlight.size < GROUP_BATCHES_IN_FLIGHT && (this.pending.length >= BATCH_LIMIT || (this.finishing && this.pending.length > 0))) {
      const lists = this.pending.splice(0, BATCH_LIMIT);
      const batch: Promise<void> = this.graph
        .batchPages<DirectoryObject & GroupEligibilitySchedule>(
          lists,
          (key, items) => this.onPage(key, items),
          (key) => this.log.warn(`${key.replace(':', ' of group ')}: the group holds a role but no longer exists; its members are not listed`),
        )
        .then(
          () => {
            this.inFlight.delete(batch);
            this.launch();
          },
          (error: unknown) => {
            this.inFlight.delete(batch);
            this.failure ??= { error };
          },
        );
      this.inFlight.add(batch);
    }
  }

  private async onPage(key: string, items: Array<DirectoryObject & GroupEligibilitySchedule>): Promise<void> {
    const [kind, groupId] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
    const rows = this.rows.get(groupId)!;
    const eligibleRows: AssignmentRow[] = [];
    const activeRows: AssignmentRow[] = [];
    if (kind === 'members') {
      const known = this.members.get(groupId)!;
      for (const object of items) {
        const member = principalOf(object.id, object);
        known.push(member);
        for (const row of rows) (row.state === 'Eligible' ? eligibleRows : activeRows).push(memberRow(row, member));
      }
    } else {
      const known = this.eligibleMembers.get(groupId)!;
      for (const eligibility of items) {
        // Owners can manage the group, but only eligible *members* can activate into its roles.
        if (!sameEnum(eligibility.accessId, 'member')) continue;
        known.push(eligibility);
        for (const row of rows) eligibleRows.push(groupEligibleRow(row, eligibility));
      }
    }
    await Promise.all([this.sinks.eligible.addAll(eligibleRows), this.sinks.active.addAll(activeRows)]);
  }
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
