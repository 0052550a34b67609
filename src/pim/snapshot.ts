/**
 * The PIM snapshot (docs/files.md): every eligible and active Entra role assignment,
 * groups expanded to their transitive members and PIM-for-Groups eligible members, sorted.
 *
 * Requests grow with pages, not rows: principals come inline with `$expand=principal`, role names
 * from one roleDefinitions list, administrative-unit names from `getByIds`, and each group that
 * holds a role is expanded once however many roles it holds.
 */
import { readRoleNames, type RoleNames } from './roleNames';
import { type GraphClient, type ListQuery, type UnreadableList } from '../graph/client';
import type { Log } from '../log';
import { Channel } from '../util/channel';
import { CISA_PRIVILEGED_ROLE_IDS } from './roles';
import { awaitedLater, settled } from '../util/promises';
import { ExternalSorter } from '../util/sorter';
import {
  assignmentRowCodec,
  compareAssignmentRows,
  compareSchedules,
  directRow,
  groupEligibleRow,
  groupEligibilityRoute,
  memberRow,
  principalOf,
  sameEnum,
  type ActivationRow,
  type AssignmentRow,
  type AssignmentState,
  type DirectoryObject,
  type GroupEligibilitySchedule,
  type Principal,
  type RoleSchedule,
  type ScopeNamer,
} from './model';

export interface SnapshotOptions {
  /** The roles marked Privileged; by default the CISA roles (./roles.ts). */
  privilegedRoleIds?: ReadonlySet<string>;
  log: Log;
  /** Rows kept in memory per list before spilling to disk. */
  sortRunSize?: number;
  /** The role names when the caller reads them for others too (./roleNames.ts); read here otherwise. */
  roleNames?: Promise<RoleNames>;
  /**
   * Sees each schedule's own row and each PIM-for-Groups eligible row with the principal as Graph
   * expanded it (which carries a user's `mail`): the expiry reminders pick theirs here.
   */
  observe?: (
    row: AssignmentRow,
    principal: DirectoryObject | null | undefined,
    source: 'direct' | 'groupEligibility',
  ) => void;
}

/** A list the snapshot could not read: what is missing from the report, and why. Nothing is guessed in its place. */
export interface IncompleteList {
  /** `transitiveMembers` of one group, or PIM for Groups (`pimForGroups`) for one group or for the whole run. */
  list: 'transitiveMembers' | 'pimForGroups' | 'azureResources';
  /** The group, or blank when PIM for Groups is unavailable altogether. */
  groupId: string;
  groupName: string;
  status: number;
  code: string;
  reason: string;
}

export interface Snapshot {
  /** Rows of eligible-assignments.csv, in the order of docs/files.md. */
  eligible: ExternalSorter<AssignmentRow>;
  /** Rows of active-assignments.csv, in the order of docs/files.md. */
  active: ExternalSorter<AssignmentRow>;
  /**
   * One row per schedule (its own principal, no expansion of members), and one per PIM-for-Groups
   * eligibility's route into a role its group holds (groupEligibilityRoute in ./model.ts), by state
   * then schedule id: what the digest counts.
   */
  schedules: ExternalSorter<AssignmentRow>;
  scopeName: ScopeNamer;
  counts: {
    eligibleSchedules: number;
    activeSchedules: number;
    groupsExpanded: number;
    /**
     * Schedules Graph lists with a `status` other than `Provisioned`, by status (only when there are
     * any): listed as held, as Graph lists them, and said in the manifest and the log.
     */
    otherStatuses?: Record<string, number>;
  };
  /** Lists that could not be read (each group's own row stays): the digest and manifest say so. */
  incomplete: IncompleteList[];
  /** Directory scope of each Activated schedule, by the request that created it (lower case): the scope of its activation. */
  activatedScopes: ReadonlyMap<string, string>;
  /** The roles each group holds (eligible or active, its own schedules), by group id in lower case. */
  groupRoles: GroupRoles;
  /** Groups that hold a highly privileged role through a schedule of their own (id → name): whose PIM-for-Groups member policies the role settings read. */
  privilegedGroups: ReadonlyMap<string, string>;
  /** The role names the rows were named with (./roleNames.ts): for the role settings of the same run. */
  roleNames: RoleNames;
  dispose(): Promise<void>;
}

/** The roles each group holds, by group id in lower case: few (groups that hold roles), kept in memory. */
export type GroupRoles = ReadonlyMap<string, ReadonlyArray<{ roleId: string; roleName: string }>>;

/** `; `-joined names of the roles a group holds, ordinal order, each once. */
export function groupRoleNames(groupRoles: GroupRoles, groupId: string): string {
  const names = new Set((groupRoles.get(groupId.toLowerCase()) ?? []).map((r) => r.roleName).filter(Boolean));
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).join('; ');
}

/** Group activations with Group Roles filled from the run's snapshot (a member's access only: an owner gets none of the group's roles). */
export async function* withGroupRoles(
  batches: AsyncIterable<ActivationRow[]>,
  groupRoles: GroupRoles,
): AsyncGenerator<ActivationRow[]> {
  for await (const batch of batches) {
    yield batch.map((row) =>
      row.activationType !== 'Group' || row.groupRoles || row.groupAccess === 'Owner'
        ? row
        : { ...row, groupRoles: groupRoleNames(groupRoles, row.groupId) },
    );
  }
}

const ELIGIBILITY_SCHEDULES = '/roleManagement/directory/roleEligibilitySchedules';
const ASSIGNMENT_SCHEDULES = '/roleManagement/directory/roleAssignmentSchedules';
const GROUP_ELIGIBILITY_SCHEDULES = '/identityGovernance/privilegedAccess/group/eligibilitySchedules';
const MEMBER_SELECT = 'id,displayName,userPrincipalName,appId';
/**
 * Asked of every list: without it a list may come in small pages (one round trip each). Public tools
 * send it to the PIM lists; GraphClient asks again without it if an endpoint refuses it.
 */
const PAGE_SIZE = 999;
const AU_PREFIX = '/administrativeUnits/';
/** `$batch` requests in flight while expanding groups (each carries up to 20 lists): well inside Graph's per-tenant directory budget. */
const GROUP_BATCHES_IN_FLIGHT = 6;
/**
 * Rows each of the three sorters keeps in memory (two runs' worth while one is written): 5,000 rows
 * are about 2 MB. Fewer rows held means less for the garbage collector to carry (V8 lets the heap
 * grow in proportion to what it keeps); more runs cost little.
 */
const RUN_SIZE = 5_000;
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
    // Awaited below; a failure fails the snapshot there.
    const roleNamesReady = awaitedLater(options.roleNames ?? readRoleNames(graph));

    // Groups that hold roles are expanded while the schedules are still being paged.
    const groups = new GroupExpander(graph, { eligible, active, schedules }, log, options.observe);
    const scopeIds = new Set<string>();
    const problems = {
      deletedPrincipals: 0,
      unknownRoles: new Set<string>(),
      otherStatuses: new Map<string, number>(),
    };
    /** Schedules Graph derived from a group (memberType not Direct): kept unless the expansion gives the same row. */
    const derived: AssignmentRow[] = [];
    const activatedScopes = new Map<string, string>();
    const groupRoles = new Map<string, Array<{ roleId: string; roleName: string }>>();
    const privilegedGroups = new Map<string, string>();
    let stopped = false;

    const readSchedules = async (state: AssignmentState, path: string): Promise<number> => {
      let count = 0;
      let logged = 0;
      const sink = state === 'Eligible' ? eligible : active;
      // Plain `$expand=principal`: a nested $select on principal is rejected by Graph
      // (README, "What we know of Graph"; test/tools/graph-simulator.test.ts).
      const pages = graph.pages<RoleSchedule>(path, { $expand: 'principal', $top: PAGE_SIZE })[Symbol.asyncIterator]();
      const first = awaitedLater(pages.next()); // the first request goes out now, alongside the role definitions
      const roleNames = await roleNamesReady;
      for (let page = await first; !page.done; page = await pages.next()) {
        // The other list or a group expansion failed: the snapshot fails, stop here.
        if (stopped || groups.failed) break;
        const rows: AssignmentRow[] = [];
        const members: MemberRows = { eligible: [], active: [], routes: [] };
        for (const schedule of page.value) {
          const roleKey = (schedule.roleDefinitionId ?? '').toLowerCase();
          const roleName = roleNames.get(roleKey);
          if (roleName === undefined) problems.unknownRoles.add(schedule.roleDefinitionId);
          // Schedules carry a status (https://learn.microsoft.com/graph/api/resources/unifiedroleeligibilityschedule;
          // PIM for Groups' schedules list Revoked, PendingProvisioning, PendingApproval and more beside
          // Provisioned: https://learn.microsoft.com/graph/api/resources/privilegedaccessschedule), but no
          // capture shows one other than Provisioned in these lists: listed, and said, not dropped on a guess.
          if (schedule.status && !sameEnum(schedule.status, 'Provisioned'))
            problems.otherStatuses.set(schedule.status, (problems.otherStatuses.get(schedule.status) ?? 0) + 1);
          // Null, absent, or an object with only an id: the principal is gone; the row stays, names blank.
          if (!schedule.principal || (!schedule.principal['@odata.type'] && !schedule.principal.displayName))
            problems.deletedPrincipals++;
          const row = directRow(state, schedule, roleName ?? '', options.privilegedRoleIds ?? CISA_PRIVILEGED_ROLE_IDS);
          if (row.scopeId.startsWith(AU_PREFIX)) scopeIds.add(row.scopeId);
          if (state === 'Active' && sameEnum(schedule.assignmentType, 'Activated') && schedule.createdUsing) {
            activatedScopes.set(schedule.createdUsing.toLowerCase(), row.scopeId);
          }
          // Graph derived it from a group (a member's own activation through a group's eligibility
          // has memberType Group): decided once the groups are expanded.
          if (schedule.memberType && !sameEnum(schedule.memberType, 'Direct')) {
            derived.push({ ...row, memberType: 'Group' });
            continue;
          }
          rows.push(row);
          options.observe?.(row, schedule.principal, 'direct');
          if (row.principalType === 'Group') {
            groups.add(row, members);
            const held = groupRoles.get(row.principalId.toLowerCase()) ?? [];
            held.push({ roleId: row.roleId, roleName: row.roleName });
            groupRoles.set(row.principalId.toLowerCase(), held);
            if (row.privileged) privilegedGroups.set(row.principalId, row.principalDisplayName);
          }
        }
        count += rows.length;
        // One await per page, not per row.
        await Promise.all([
          sink.addAll(rows),
          schedules.addAll(rows),
          eligible.addAll(members.eligible),
          active.addAll(members.active),
          schedules.addAll(members.routes),
        ]);
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
        [readSchedules('Eligible', ELIGIBILITY_SCHEDULES), readSchedules('Active', ASSIGNMENT_SCHEDULES)].map(
          (reading) =>
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
    if (problems.otherStatuses.size > 0) {
      const which = [...problems.otherStatuses].map(([status, n]) => `${status}: ${n}`).join(', ');
      log.warn(
        `${[...problems.otherStatuses.values()].reduce((a, b) => a + b, 0)} schedule(s) Graph lists with a status other than Provisioned (${which}): listed as held, as Graph lists them; check them in the admin center`,
      );
    }
    if (problems.deletedPrincipals > 0) {
      log.warn(
        `${problems.deletedPrincipals} schedule(s) name a principal that no longer exists; kept with blank names`,
      );
    }
    if (problems.unknownRoles.size > 0) {
      log.warn(
        `schedule(s) for unknown role definition(s) ${[...problems.unknownRoles].join(', ')}; kept with a blank role name`,
      );
    }

    log.info(`Expanding ${groups.size} group(s) that hold roles`);
    const [scopeNames] = await Promise.all([resolveAdministrativeUnits(graph, [...scopeIds], log), groups.finish()]);
    const groupsExpanded = groups.size;
    // A schedule Graph derived from a group is dropped only where our expansion already gives the same
    // principal, role and scope in the same state; otherwise (a member's Activated schedule through a
    // group's eligibility) it is listed once, Member Type Group, with the group when exactly one fits.
    let dropped = 0;
    const kept = { eligible: [] as AssignmentRow[], active: [] as AssignmentRow[] };
    for (const row of derived) {
      if (groups.covers(row)) {
        dropped++;
        continue;
      }
      const via = groups.viaGroup(row);
      const listed = via ? { ...row, viaGroup: via.name, viaGroupId: via.id } : row;
      (row.state === 'Eligible' ? kept.eligible : kept.active).push(listed);
    }
    await Promise.all([
      eligible.addAll(kept.eligible),
      active.addAll(kept.active),
      schedules.addAll([...kept.eligible, ...kept.active]),
    ]);
    if (dropped > 0)
      log.info(
        `${dropped} schedule(s) Graph derived from a group dropped: the group expansion lists the same principal, role and scope`,
      );
    if (kept.eligible.length + kept.active.length > 0) {
      log.info(
        `${kept.eligible.length + kept.active.length} schedule(s) with memberType Group listed as they are (Member Type Group)`,
      );
    }
    const incomplete = groups.incomplete();
    for (const item of incomplete)
      log.warn(`Not expanded: ${item.groupName || item.groupId || 'PIM for Groups'} (${item.list}): ${item.reason}`);
    // The members kept for late rows are no longer needed (and this function's closures outlive it).
    groups.release();
    log.info(`Snapshot: ${eligible.size} eligible row(s), ${active.size} active row(s)`);
    return {
      eligible,
      active,
      schedules,
      scopeName: scopeNamer(scopeNames),
      counts: {
        eligibleSchedules,
        activeSchedules,
        groupsExpanded,
        ...(problems.otherStatuses.size > 0 ? { otherStatuses: Object.fromEntries(problems.otherStatuses) } : {}),
      },
      incomplete,
      activatedScopes,
      groupRoles,
      privilegedGroups,
      roleNames: await roleNamesReady,
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/**
 * The directory scope of each Activated schedule, by the request that created it (`createdUsing`):
 * for jobs that need an activation's scope without a whole snapshot. No public capture shows a
 * DirectoryScopeId detail on activation records (README, "What we know of Graph").
 */
export async function readActivatedScopes(graph: GraphClient): Promise<Map<string, string>> {
  const scopes = new Map<string, string>();
  for await (const s of graph.list<RoleSchedule>(ASSIGNMENT_SCHEDULES, {
    $select: 'id,assignmentType,createdUsing,directoryScopeId',
    $top: PAGE_SIZE,
  })) {
    if (sameEnum(s.assignmentType, 'Activated') && s.createdUsing)
      scopes.set(s.createdUsing.toLowerCase(), s.directoryScopeId ?? '');
  }
  return scopes;
}

/** Activations with a blank Scope Id given the scope of the Activated schedule their request created. */
export async function* withActivatedScopes(
  batches: AsyncIterable<ActivationRow[]>,
  scopes: ReadonlyMap<string, string>,
): AsyncGenerator<ActivationRow[]> {
  for await (const batch of batches) {
    yield scopes.size === 0
      ? batch
      : batch.map((row) =>
          row.scopeId || !row.requestId ? row : { ...row, scopeId: scopes.get(row.requestId.toLowerCase()) ?? '' },
        );
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

type Sinks = {
  eligible: ExternalSorter<AssignmentRow>;
  active: ExternalSorter<AssignmentRow>;
  /** The digest's schedules: a PIM-for-Groups eligibility's route into each role its group holds. */
  schedules: ExternalSorter<AssignmentRow>;
};
export type MemberRows = { eligible: AssignmentRow[]; active: AssignmentRow[]; routes: AssignmentRow[] };

/**
 * The groups (lower-case ids; `''` for all, when PIM for Groups itself could not be read) whose
 * PIM-for-Groups list was not read today: their routes into roles are not there, and
 * src/pim/changes.ts must not read that as routes removed, nor their return as new.
 */
export function routesUnreadFor(incomplete: readonly IncompleteList[]): Set<string> {
  return new Set(incomplete.filter((item) => item.list === 'pimForGroups').map((item) => item.groupId.toLowerCase()));
}

/**
 * Each group that holds a role, expanded once however many roles it holds: its transitive members
 * and its PIM-for-Groups eligible members, 20 lists to a `$batch`, several batches in flight. A
 * group's lists are asked for as soon as its first row is seen, while the schedules are still being
 * paged, so little is left to fetch when the last schedule page arrives. Its members are kept (id,
 * type and names) to give rows of the group that arrive later their member rows; each pair of
 * group row and member gives one row, whichever of the two arrives first.
 */
export class GroupExpander {
  /** Rows of each group that holds a role, to give its members the same schedule. */
  private readonly rows = new Map<string, AssignmentRow[]>();
  private readonly members = new Map<string, Principal[]>();
  private readonly eligibleMembers = new Map<string, GroupEligibilitySchedule[]>();
  /** Each group's lists, asked for as the groups are seen; closed once the schedules are read. */
  private readonly lists = new Channel<ListQuery>();
  private readonly stopping = new AbortController();
  /** The expansion, running from the first group seen until the lists are closed and answered. */
  private readonly expansion: Promise<void>;
  private failure?: { error: unknown };
  private readonly unreadable: IncompleteList[] = [];
  /** PIM for Groups answered that it does not exist here (a national cloud): not asked again. */
  private pimForGroupsMissing?: IncompleteList;

  constructor(
    private readonly graph: GraphClient,
    private readonly sinks: Sinks,
    private readonly log: Log,
    private readonly observe?: SnapshotOptions['observe'],
  ) {
    // Awaited by finish or stop; a failure meanwhile is seen through `failed`.
    this.expansion = awaitedLater(this.expand());
  }

  /**
   * A PIM-for-Groups eligible row, shown to the observer with the member Graph expanded, and its
   * route for the digest (none through a group's activation, which is an activation, not an assignment).
   */
  private eligibleRow(row: AssignmentRow, eligibility: GroupEligibilitySchedule, out: MemberRows): void {
    const eligible = groupEligibleRow(row, eligibility);
    out.eligible.push(eligible);
    // Through the group's activation, the row ends with it: no reminder, no route (docs/reminders.md).
    if (sameEnum(row.assignmentType, 'Activated')) return;
    this.observe?.(eligible, eligibility.principal, 'groupEligibility');
    out.routes.push(groupEligibilityRoute(row, eligibility));
  }

  get size(): number {
    return this.rows.size;
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** A row of a group: its member rows (for members listed so far) go to `out`, the rest follow when listed. */
  add(row: AssignmentRow, out: MemberRows): void {
    const groupId = row.principalId;
    let held = this.rows.get(groupId);
    if (!held) {
      held = [];
      this.rows.set(groupId, held);
      this.members.set(groupId, []);
      this.eligibleMembers.set(groupId, []);
      this.lists.push({
        key: `members:${groupId}`,
        path: `/groups/${encodeURIComponent(groupId)}/transitiveMembers`,
        query: { $select: MEMBER_SELECT, $top: PAGE_SIZE },
      });
      if (!this.pimForGroupsMissing) {
        this.lists.push({
          // No tenant-wide PIM-for-Groups list exists; the groupId filter is required:
          // https://learn.microsoft.com/graph/api/privilegedaccessgroup-list-eligibilityschedules
          key: `eligible:${groupId}`,
          path: GROUP_ELIGIBILITY_SCHEDULES,
          query: { $filter: `groupId eq '${groupId}'`, $expand: 'principal', $top: PAGE_SIZE },
        });
      }
    }
    held.push(row);
    for (const member of this.members.get(groupId)!)
      (row.state === 'Eligible' ? out.eligible : out.active).push(memberRow(row, member));
    for (const eligibility of this.eligibleMembers.get(groupId)!) this.eligibleRow(row, eligibility, out);
  }

  /** Every group seen so far expanded; rejects with the first failure. */
  async finish(): Promise<void> {
    this.lists.close();
    await this.expansion;
  }

  /** True when a group's expansion already gives this derived row (same state, principal, role and scope). */
  covers(row: AssignmentRow): boolean {
    const id = row.principalId.toLowerCase();
    for (const [groupId, rows] of this.rows) {
      if (!rows.some((r) => r.state === row.state && r.roleId === row.roleId && r.scopeId === row.scopeId)) continue;
      if (this.members.get(groupId)!.some((m) => m.id.toLowerCase() === id)) return true;
      if (
        row.state === 'Eligible' &&
        this.eligibleMembers.get(groupId)!.some((e) => e.principalId.toLowerCase() === id)
      )
        return true;
    }
    return false;
  }

  /** The one group that holds the row's role and scope and has the principal among its members; none if zero or several. */
  viaGroup(row: AssignmentRow): { id: string; name: string } | undefined {
    const id = row.principalId.toLowerCase();
    const found: AssignmentRow[] = [];
    for (const [groupId, rows] of this.rows) {
      const held = rows.find((r) => r.roleId === row.roleId && r.scopeId === row.scopeId);
      if (!held) continue;
      const member =
        this.members.get(groupId)!.some((m) => m.id.toLowerCase() === id) ||
        this.eligibleMembers.get(groupId)!.some((e) => e.principalId.toLowerCase() === id);
      if (member) found.push(held);
    }
    return found.length === 1 ? { id: found[0].principalId, name: found[0].principalDisplayName } : undefined;
  }

  /** The lists that could not be read, in the order found. */
  incomplete(): IncompleteList[] {
    return this.pimForGroupsMissing ? [this.pimForGroupsMissing, ...this.unreadable] : [...this.unreadable];
  }

  /** Forgets the groups' rows and members once every group is expanded. */
  release(): void {
    this.rows.clear();
    this.members.clear();
    this.eligibleMembers.clear();
  }

  /** Sends nothing more and waits for the batches in flight (the snapshot failed). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.lists.close();
    await settled(this.expansion);
  }

  /** Every group's lists, 20 to a `$batch`, several batches in flight, each page handled as it comes. */
  private async expand(): Promise<void> {
    try {
      for await (const page of this.graph.batchPages<DirectoryObject & GroupEligibilitySchedule>(this.lists, {
        concurrency: GROUP_BATCHES_IN_FLIGHT,
        abortSignal: this.stopping.signal,
      })) {
        if (page.unreadable) this.onUnreadable(page.unreadable);
        else await this.onPage(page.key, page.items);
      }
    } catch (error) {
      this.failure ??= { error };
      throw error;
    }
  }

  /** One group's list could not be read: its own row stays, nothing is guessed, the reason is reported. */
  private onUnreadable(list: UnreadableList): void {
    const [kind, groupId] = [list.key.slice(0, list.key.indexOf(':')), list.key.slice(list.key.indexOf(':') + 1)];
    const groupName = this.rows.get(groupId)?.[0]?.principalDisplayName ?? '';
    const base = { groupId, groupName, status: list.status, code: list.code };
    if (kind === 'eligible' && list.status === 400) {
      // "Resource not found for the segment 'privilegedAccess'": PIM for Groups is not in this cloud.
      this.pimForGroupsMissing ??= {
        ...base,
        list: 'pimForGroups',
        groupId: '',
        groupName: '',
        reason: `PIM for Groups could not be read: Graph answered ${list.status} ${list.code} (${list.message}); it is not available in some national clouds, so no PIM-for-Groups eligible member is listed`,
      };
      return;
    }
    const what = kind === 'members' ? 'members' : 'PIM-for-Groups eligible members';
    const reason =
      list.status === 404
        ? `the group no longer exists (404 ${list.code}); its ${what} are not listed`
        : list.status === 403
          ? `Graph denied reading its ${what} (403 ${list.code})${kind === 'members' ? ': a group with hidden membership needs Member.Read.Hidden, and every group needs GroupMember.Read.All (see the README)' : ''}`
          : `Graph answered ${list.status} ${list.code} (${list.message}); its ${what} are not listed`;
    this.unreadable.push({ ...base, list: kind === 'members' ? 'transitiveMembers' : 'pimForGroups', reason });
  }

  private async onPage(key: string, items: Array<DirectoryObject & GroupEligibilitySchedule>): Promise<void> {
    const [kind, groupId] = [key.slice(0, key.indexOf(':')), key.slice(key.indexOf(':') + 1)];
    const rows = this.rows.get(groupId)!;
    const out: MemberRows = { eligible: [], active: [], routes: [] };
    if (kind === 'members') {
      const known = this.members.get(groupId)!;
      for (const object of items) {
        const member = principalOf(object.id, object);
        known.push(member);
        for (const row of rows) (row.state === 'Eligible' ? out.eligible : out.active).push(memberRow(row, member));
      }
    } else {
      const known = this.eligibleMembers.get(groupId)!;
      for (const eligibility of items) {
        // Owners can manage the group, but only eligible *members* can activate into its roles.
        if (!sameEnum(eligibility.accessId, 'member')) continue;
        known.push(eligibility);
        for (const row of rows) this.eligibleRow(row, eligibility, out);
      }
    }
    await Promise.all([
      this.sinks.eligible.addAll(out.eligible),
      this.sinks.active.addAll(out.active),
      this.sinks.schedules.addAll(out.routes),
    ]);
  }
}

async function resolveAdministrativeUnits(
  graph: GraphClient,
  scopeIds: string[],
  log: Log,
): Promise<Map<string, string>> {
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
