/**
 * What the digest reports about assignments (docs/digest.md), counted per schedule, never per
 * member row: new and removed since the previous snapshot, expiring, permanent, and the CISA
 * findings. Activated (just-in-time) schedules are activations, not assignments: excluded here.
 */
import { GLOBAL_ADMINISTRATOR_ROLE_ID } from './roles';
import { compareSchedules, sameEnum, type AssignmentRow } from './model';

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
  const now = options.now.getTime();
  const horizon = now + options.expiryWindowDays * DAY_MS;
  const result: AssignmentChanges = {
    baseline: previous ? { kind: 'previous', day: previous.day } : { kind: 'first-run' },
    added: counted(),
    removed: counted(),
    expiring: counted(),
    permanent: counted(),
    permanentPrivilegedFindings: counted(),
  };

  const before = previous ? previous.schedules[Symbol.asyncIterator]() : undefined;
  let old = before ? await before.next() : undefined;
  const advanceOld = async () => {
    old = await before!.next();
  };

  for await (const row of current) {
    if (isActivated(row)) continue;
    // Removed: earlier snapshot rows that sort before this one and are gone.
    while (old && !old.done && compareSchedules(old.value, row) < 0) {
      if (!isActivated(old.value)) push(result.removed, old.value);
      await advanceOld();
    }
    if (previous) {
      if (old && !old.done && compareSchedules(old.value, row) === 0) await advanceOld();
      else push(result.added, row);
    } else if (row.created && Date.parse(row.created) >= now - DAY_MS) {
      push(result.added, row);
    }

    if (row.end === null) {
      push(result.permanent, row);
      if (
        row.state === 'Active' &&
        row.privileged &&
        !options.excludedPrincipalIds.has((row.principalId ?? '').toLowerCase())
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
  while (old && !old.done) {
    if (!isActivated(old.value)) push(result.removed, old.value);
    await advanceOld();
  }
  sortExpiring(result.expiring.items).splice(LIST_LIMIT);
  return result;
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
