/**
 * What the digest reports about assignments (docs/digest.md), counted per schedule, never per
 * member row: new and removed since the previous snapshot, expiring, permanent, and the CISA
 * findings. Activated (just-in-time) schedules are activations, not assignments: excluded here.
 */
import { GLOBAL_ADMINISTRATOR_ROLE_ID } from './roles';
import { compareSchedules, isGroupEligibilityRoute, sameEnum, type AssignmentRow } from './model';
import { batchesOf } from '../util/streams';

/** Rows kept (and shown) per list in the email; counts stay exact, the CSVs have every row. */
export const LIST_LIMIT = 50;

export interface ExpiringAssignment {
  row: AssignmentRow;
  daysLeft: number;
}

export interface AssignmentChanges {
  /** `previous` when compared with a stored snapshot; `first-run` when none existed (new = created in the last 24 h). */
  baseline: { kind: 'previous'; day: string } | { kind: 'first-run' };
  added: Counted<AssignmentRow>;
  removed: Counted<AssignmentRow>;
  expiring: Counted<ExpiringAssignment>;
  permanent: Counted<AssignmentRow>;
  /** Permanent active assignments of highly privileged roles (CISA MS.AAD.7.4), exclusions honoured. */
  permanentPrivilegedFindings: Counted<AssignmentRow>;
  /**
   * PIM-for-Groups routes not compared with the baseline (it predates routes, or their group's list
   * was not read that day or today): their being new or removed is not in the digest, which says so.
   * Today's routes counted; the groups they go through (and those of the baseline's), by name.
   */
  routesNotCompared?: { count: number; groups: string[] };
}

export interface Counted<T> {
  count: number;
  items: T[];
}

function counted<T>(): Counted<T> {
  return { count: 0, items: [] };
}
function push<T>(list: Counted<T>, item: T): void {
  list.count++;
  if (list.items.length < LIST_LIMIT) list.items.push(item);
}

const isActivated = (row: AssignmentRow) => sameEnum(row.assignmentType, 'Activated');
const DAY_MS = 24 * 3600 * 1000;

export interface ChangeOptions {
  now: Date;
  expiryWindowDays: number;
  excludedPrincipalIds: ReadonlySet<string>;
  /**
   * Groups (lower-case ids; `''` for all) whose PIM-for-Groups list could not be read today
   * (`routesUnreadFor` in ./snapshot.ts): their routes are not all there, so none of theirs is
   * compared, neither new nor removed.
   */
  routesUnreadFor?: ReadonlySet<string>;
}

/**
 * One pass over today's schedules (sorted by state and id) merged with the previous snapshot's
 * (same order), so neither is held whole in memory.
 */
export async function assignmentChanges(
  current: AsyncIterable<AssignmentRow>,
  previous: { day: string; schedules: AsyncIterable<AssignmentRow> } | undefined,
  options: ChangeOptions,
): Promise<AssignmentChanges> {
  const tracker = new AssignmentChangeTracker(
    previous && { day: previous.day, schedules: batchesOf(previous.schedules, 1_000) },
    options,
  );
  for await (const batch of batchesOf(current, 1_000)) await tracker.observe(batch);
  return tracker.result();
}

/** What a stored snapshot that compares PIM-for-Groups eligibilities' routes names in its `holds`. */
export const GROUP_ELIGIBILITY_ROUTES = 'pimForGroupsEligibilityRoutes';
/** The note of a stored snapshot naming the groups whose routes it could not hold that day. */
export const ROUTES_UNREAD_FOR = 'routesUnreadFor';

/** The previous day's stored snapshot: its day, and its schedules in the same order as today's, in batches. */
export interface PreviousSchedules {
  day: string;
  schedules: AsyncIterable<readonly AssignmentRow[]>;
  /**
   * What the snapshot's file holds beyond its rows' keys, known once its first batch is read (none
   * before). A snapshot whose file does not hold GROUP_ELIGIBILITY_ROUTES was written before they
   * were kept: today's routes are not new against it (they count as expiring and permanent still).
   */
  holds?: () => readonly string[];
  /** The groups (lower-case ids; `''` for all) whose routes that day's snapshot could not hold: not compared. */
  routesUnreadFor?: () => ReadonlySet<string>;
}

/**
 * The same diff fed batch by batch, so the pass that stores today's snapshot (src/jobs/state.ts)
 * computes it on the way instead of reading the schedules a second time. The previous snapshot is
 * read a batch at a time too: one await per batch, not per row.
 */
export class AssignmentChangeTracker {
  private readonly now: number;
  private readonly horizon: number;
  private readonly changes: AssignmentChanges;
  private readonly before?: AsyncIterator<readonly AssignmentRow[]>;
  /** The previous snapshot's batch being walked, and the place in it. */
  private oldBatch: readonly AssignmentRow[] = [];
  private oldAt = 0;
  private oldDone: boolean;
  /** Known once the previous snapshot's first batch is read: whether it has routes to compare with, and whose it lacks. */
  private routesCompared?: { any: boolean; unreadBefore: ReadonlySet<string> };
  /** Today's routes not compared, and the groups of every route not compared (today's or the baseline's). */
  private uncomparedRoutes = 0;
  private readonly uncomparedGroups = new Set<string>();

  constructor(
    private readonly previous: PreviousSchedules | undefined,
    private readonly options: ChangeOptions,
  ) {
    this.now = options.now.getTime();
    this.horizon = this.now + options.expiryWindowDays * DAY_MS;
    this.changes = {
      baseline: previous ? { kind: 'previous', day: previous.day } : { kind: 'first-run' },
      added: counted(),
      removed: counted(),
      expiring: counted(),
      permanent: counted(),
      permanentPrivilegedFindings: counted(),
    };
    this.before = previous?.schedules[Symbol.asyncIterator]();
    this.oldDone = !this.before;
  }

  private peekOld(): AssignmentRow | undefined {
    return this.oldAt < this.oldBatch.length ? this.oldBatch[this.oldAt] : undefined;
  }

  /** The previous snapshot's current row, reading its next batch when this one is used up; undefined at its end. */
  private async old(): Promise<AssignmentRow | undefined> {
    while (this.oldAt >= this.oldBatch.length) {
      if (this.oldDone) return undefined;
      const next = await this.before!.next();
      if (next.done) {
        this.oldDone = true;
        return undefined;
      }
      this.oldBatch = next.value;
      this.oldAt = 0;
    }
    return this.oldBatch[this.oldAt];
  }

  /** Today's next schedules, in order (after every batch observed before). */
  async observe(rows: readonly AssignmentRow[]): Promise<void> {
    const result = this.changes;
    const { now, horizon } = this;
    for (const row of rows) {
      if (isActivated(row)) continue;
      // Removed: earlier snapshot rows that sort before this one and are gone.
      // The previous row at hand without an await; one only when its batch is used up.
      let old = this.peekOld() ?? (this.oldDone ? undefined : await this.old());
      while (old && compareSchedules(old, row) < 0) {
        if (this.wasAssignment(old)) push(result.removed, old);
        this.oldAt++;
        old = this.peekOld() ?? (this.oldDone ? undefined : await this.old());
      }
      if (this.previous && isGroupEligibilityRoute(row) && !this.comparesRoutesOf(row)) {
        this.uncomparedRoutes++;
        this.uncomparedGroups.add(row.viaGroup || row.viaGroupId);
      } else if (this.previous) {
        if (old && compareSchedules(old, row) === 0) this.oldAt++;
        else push(result.added, row);
      } else if (row.created && Date.parse(row.created) >= now - DAY_MS) {
        push(result.added, row);
      }

      if (row.end === null) {
        push(result.permanent, row);
        if (
          row.state === 'Active' &&
          row.privileged &&
          !this.options.excludedPrincipalIds.has((row.principalId ?? '').toLowerCase())
        ) {
          push(result.permanentPrivilegedFindings, row);
        }
      } else {
        const end = Date.parse(row.end);
        if (end >= now && end <= horizon) {
          // Keep the soonest LIST_LIMIT, whatever order they arrive in.
          result.expiring.count++;
          result.expiring.items.push({ row, daysLeft: Math.floor((end - now) / DAY_MS) });
          if (result.expiring.items.length >= 2 * LIST_LIMIT) sortExpiring(result.expiring.items).splice(LIST_LIMIT);
        }
      }
    }
  }

  /** A previous row that counts as removed once gone: not an activation, nor a route it cannot compare. */
  private wasAssignment(old: AssignmentRow): boolean {
    if (isActivated(old)) return false;
    if (!isGroupEligibilityRoute(old) || this.comparesRoutesOf(old)) return true;
    this.uncomparedGroups.add(old.viaGroup || old.viaGroupId);
    return false;
  }

  /**
   * A route is compared when the previous snapshot holds routes and both days read its group's
   * PIM-for-Groups list: otherwise its being there or not says nothing of the day's change.
   */
  private comparesRoutesOf(route: AssignmentRow): boolean {
    this.routesCompared ??= {
      any: (this.previous?.holds?.() ?? [GROUP_ELIGIBILITY_ROUTES]).includes(GROUP_ELIGIBILITY_ROUTES),
      unreadBefore: this.previous?.routesUnreadFor?.() ?? new Set(),
    };
    const group = route.viaGroupId.toLowerCase();
    const unread = (set: ReadonlySet<string> | undefined) => !!set && (set.has('') || set.has(group));
    return (
      this.routesCompared.any && !unread(this.options.routesUnreadFor) && !unread(this.routesCompared.unreadBefore)
    );
  }

  /** Stops reading the previous snapshot (closing its download) when the diff ends early; harmless once read to the end. */
  async close(): Promise<void> {
    this.oldDone = true;
    await this.before?.return?.();
  }

  /** The diff, once every schedule of today has been observed: what is left of the previous snapshot was removed. */
  async result(): Promise<AssignmentChanges> {
    const result = this.changes;
    for (let old = await this.old(); old; this.oldAt++, old = await this.old()) {
      if (this.wasAssignment(old)) push(result.removed, old);
    }
    sortExpiring(result.expiring.items).splice(LIST_LIMIT);
    if (this.uncomparedGroups.size > 0)
      result.routesNotCompared = { count: this.uncomparedRoutes, groups: [...this.uncomparedGroups].sort() };
    return result;
  }
}

function sortExpiring(items: ExpiringAssignment[]): ExpiringAssignment[] {
  return items.sort((a, b) => (a.row.end! < b.row.end! ? -1 : a.row.end! > b.row.end! ? 1 : 0));
}

/**
 * Distinct users who hold Global Administrator, eligibly or actively, directly or through groups
 * (CISA MS.AAD.7.1 wants 2 to 8). Fed the expanded rows as they stream to the CSVs.
 */
export class GlobalAdministratorCount {
  private readonly users = new Map<string, string>();

  observe(row: AssignmentRow): void {
    if (row.principalType === 'User' && (row.roleId ?? '').toLowerCase() === GLOBAL_ADMINISTRATOR_ROLE_ID) {
      this.users.set(row.principalId, row.principalDisplayName);
    }
  }

  get count(): number {
    return this.users.size;
  }

  get names(): string[] {
    return [...this.users.values()].sort();
  }

  get isFinding(): boolean {
    return this.count < 2 || this.count > 8;
  }
}
