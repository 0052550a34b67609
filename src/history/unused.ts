/**
 * Eligible assignments nobody uses: held at least UNUSED_AFTER_DAYS with no activation of that role
 * by that principal in that time. Only the app's own history can tell (Graph keeps 30 days of audit
 * events), so the list is complete only once the history covers the whole window, with no recorded gap
 * in it (a period Graph had already dropped: someone may have activated then); until then it is
 * empty and says from which day it will be complete.
 *
 * Use is: a direct activation of the role, one through a group's eligibility (a Role activation by
 * the member), and a PIM-for-Groups activation of a group that holds the role (its membership).
 * The history is streamed; what is kept in memory is one time per principal and role (or group)
 * that was ever activated, bounded by the eligibilities, not by the activations.
 */
import type { ActivationRow, AssignmentRow, HarvestGap, UnusedEligibilityRow } from '../pim/model';
import { compareUnusedRows, UNUSED_TABLE } from '../pim/model';
import type { GroupRoles } from '../pim/snapshot';
import { ExternalSorter } from '../util/sorter';
import { keptActivations } from './read';
import type { HistoryBlobs, HistoryStore, Watermark } from './store';

const DAY_MS = 24 * 3600 * 1000;

export interface UnusedEligibilities {
  /** Longest unused first; empty while the history is shorter than the window. */
  rows: ExternalSorter<UnusedEligibilityRow>;
  count: number;
  /** The history covers the whole window. */
  complete: boolean;
  /** The oldest time the history covers; undefined before the first harvest. */
  historySince?: string;
  /** While incomplete: the first moment the list will be complete (history start, or the end of the last gap in the window, plus the window). */
  completeFrom?: string;
  /** The recorded gaps of the history inside the window: while any is, the list is not complete. */
  gaps?: HarvestGap[];
  afterDays: number;
  dispose(): Promise<void>;
}

export interface UnusedInput {
  history: HistoryStore;
  store: HistoryBlobs;
  archiveContainer: string;
  /** Eligible rows of the snapshot (direct rows and member rows; a group's own row is skipped: a group does not activate). */
  eligible: AsyncIterable<AssignmentRow[]>;
  groupRoles: GroupRoles;
  now: Date;
  afterDays: number;
}

export async function unusedEligibilities(input: UnusedInput): Promise<UnusedEligibilities> {
  const tracker = await startUnusedEligibilities(input);
  try {
    if (tracker.collecting) for await (const batch of input.eligible) await tracker.observe(batch);
    return tracker.finish();
  } catch (error) {
    await tracker.dispose();
    throw error;
  }
}

/**
 * The list fed the eligible rows batch by batch: started once the harvest has completed the
 * history, then given the rows by the pass that writes eligible-assignments.csv, so the eligible
 * rows are not read a second time (src/jobs/daily.ts).
 */
export interface UnusedTracker {
  /** False when the history cannot make the list complete: nothing is collected, `observe` need not be called. */
  readonly collecting: boolean;
  observe(batch: readonly AssignmentRow[]): Promise<void>;
  /** The list, once every eligible row has been observed. */
  finish(): UnusedEligibilities;
  dispose(): Promise<void>;
}

/** The recorded gaps of the history that overlap the window (`windowStart` to `now`). */
function gapsInWindow(watermark: Watermark, windowStart: number, now: Date): HarvestGap[] {
  return watermark.gaps
    .filter((gap) => Date.parse(gap.toUtc) > windowStart && Date.parse(gap.fromUtc) < now.getTime())
    .map(({ fromUtc, toUtc, reason }) => ({ fromUtc, toUtc, reason }));
}

/**
 * Whether a history with this watermark can already list the unused eligibilities: it covers the
 * whole window, without a gap in it. Asked before a run's harvest, to know whether to gather the
 * list on the way; the watermark after the harvest decides.
 */
export function unusedMayBeComplete(watermark: Watermark | undefined, now: Date, afterDays: number): boolean {
  if (!watermark) return false;
  const windowStart = now.getTime() - afterDays * DAY_MS;
  return (
    Date.parse(watermark.coverageStartUtc) <= windowStart && gapsInWindow(watermark, windowStart, now).length === 0
  );
}

/** Reads the watermark and the kept history (the last use of each role and group); the rows come later. */
export async function startUnusedEligibilities(
  input: Omit<UnusedInput, 'eligible' | 'groupRoles'> & {
    groupRoles: GroupRoles | PromiseLike<GroupRoles>;
    /** The last uses read from the history since `since` (the watermark's coverage start), if the caller has them. */
    lastUses?: { since: string; uses: PromiseLike<LastUses> };
  },
): Promise<UnusedTracker> {
  const { history, now, afterDays } = input;
  const rows = new ExternalSorter<UnusedEligibilityRow>(compareUnusedRows, { codec: UNUSED_TABLE.codec });
  const incomplete = (
    fields: Omit<UnusedEligibilities, 'rows' | 'count' | 'dispose' | 'afterDays'>,
  ): UnusedTracker => ({
    collecting: false,
    observe: async () => undefined,
    finish: () => ({ rows, count: 0, afterDays, ...fields, dispose: () => rows.dispose() }),
    dispose: () => rows.dispose(),
  });
  try {
    const watermark = await history.watermark();
    const windowStart = now.getTime() - afterDays * DAY_MS;
    if (!watermark)
      return incomplete({ complete: false, completeFrom: new Date(now.getTime() + afterDays * DAY_MS).toISOString() });
    const historySince = watermark.coverageStartUtc;
    const since = Date.parse(historySince);
    const gaps = gapsInWindow(watermark, windowStart, now);
    if (since > windowStart || gaps.length > 0) {
      const coveredFrom = Math.max(since, ...gaps.map((gap) => Date.parse(gap.toUtc)));
      return incomplete({
        complete: false,
        historySince,
        completeFrom: new Date(coveredFrom + afterDays * DAY_MS).toISOString(),
        ...(gaps.length > 0 ? { gaps } : {}),
      });
    }

    // The last use of each role by each principal, and of each group's membership, over the whole
    // history: read by the caller meanwhile when it knew the history's start, read here otherwise.
    let uses: LastUses;
    if (input.lastUses && input.lastUses.since === historySince) uses = await input.lastUses.uses;
    else {
      uses = new LastUses();
      await readKeptUses(uses, input, new Date(since), now);
    }
    const { lastRole, lastGroup } = uses;
    // The groups that hold each role: activating membership of one of them is using the role.
    const groupsByRole = new Map<string, Set<string>>();
    for (const [groupId, held] of await input.groupRoles) {
      for (const { roleId } of held) {
        const role = roleId.toLowerCase();
        let groups = groupsByRole.get(role);
        if (!groups) groupsByRole.set(role, (groups = new Set()));
        groups.add(groupId.toLowerCase());
      }
    }

    const observe = async (batch: readonly AssignmentRow[]): Promise<void> => {
      const unused: UnusedEligibilityRow[] = [];
      for (const row of batch) {
        if (row.principalType === 'Group') continue;
        const start = row.start ? Date.parse(row.start) : undefined;
        if (start !== undefined && start > windowStart) continue; // not held long enough
        const pid = row.principalId.toLowerCase();
        const role = row.roleId.toLowerCase();
        let last = lastRole.get(`${pid}|${role}`);
        // The groups whose membership this principal activated, that hold the role or that it is eligible through.
        const activatedGroups = lastGroup.get(pid);
        if (activatedGroups) {
          const holders = groupsByRole.get(role);
          const via = row.viaGroupId ? row.viaGroupId.toLowerCase() : undefined;
          for (const [g, at] of activatedGroups) {
            if ((g === via || holders?.has(g)) && (last === undefined || at > last)) last = at;
          }
        }
        if (last !== undefined && Date.parse(last) >= windowStart) continue; // used
        const from = Math.max(last ? Date.parse(last) : -Infinity, start ?? -Infinity, since);
        unused.push({
          roleName: row.roleName,
          principalDisplayName: row.principalDisplayName,
          principalName: row.principalName,
          principalId: row.principalId,
          viaGroup: row.viaGroup,
          viaGroupId: row.viaGroupId,
          roleId: row.roleId,
          scopeId: row.scopeId,
          eligibleSince: row.start,
          lastActivated: last ?? null,
          historySince,
          daysUnused: Math.floor((now.getTime() - from) / DAY_MS),
        });
      }
      await rows.addAll(unused);
    };
    return {
      collecting: true,
      observe,
      finish: () => {
        // The last uses are needed no longer than the eligible rows' pass: not for the rest of the run.
        lastRole.clear();
        lastGroup.clear();
        groupsByRole.clear();
        return { rows, count: rows.size, afterDays, complete: true, historySince, dispose: () => rows.dispose() };
      },
      dispose: () => rows.dispose(),
    };
  } catch (error) {
    await rows.dispose();
    throw error;
  }
}

/**
 * The last activation of each role by each principal, and of each group's membership by each
 * principal: the later time wins, so rows may come in any order and more than once (the kept
 * history and this run's harvest overlap).
 */
export class LastUses {
  /** `principal|role`, lower case. */
  readonly lastRole = new Map<string, string>();
  /** By principal, then group: a principal activates few groups, where a role may be held by hundreds. */
  readonly lastGroup = new Map<string, Map<string, string>>();

  add(batch: readonly ActivationRow[]): void {
    for (const a of batch) {
      if (!a.activated || !a.principalId) continue;
      if (a.activationType === 'Group') {
        if (a.groupAccess !== 'Owner') {
          const pid = a.principalId.toLowerCase();
          let groups = this.lastGroup.get(pid);
          if (!groups) this.lastGroup.set(pid, (groups = new Map()));
          later(groups, a.groupId.toLowerCase(), a.activated);
        }
      } else {
        later(this.lastRole, `${a.principalId}|${a.roleId}`.toLowerCase(), a.activated);
      }
    }
  }
}

function later(map: Map<string, string>, key: string, at: string): void {
  const seen = map.get(key);
  if (seen === undefined || at > seen) map.set(key, at);
}

/**
 * Adds the activations the history keeps from `from` to `now` (the harvest under state/, the
 * archive for months it lacks). `exceptRunDay`: leave out that run day's files, which its own run
 * may be replacing meanwhile; that run adds what its harvest reports itself.
 */
export async function readKeptUses(
  uses: LastUses,
  input: { history: HistoryStore; store: HistoryBlobs; archiveContainer: string },
  from: Date,
  now: Date,
  exceptRunDay?: string,
): Promise<void> {
  for await (const batch of keptActivations(
    input.history,
    input.store,
    input.archiveContainer,
    from,
    now,
    now.toISOString().slice(0, 7),
    exceptRunDay,
  ))
    uses.add(batch);
}
