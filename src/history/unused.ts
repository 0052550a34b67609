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
import type { AssignmentRow, HarvestGap, UnusedEligibilityRow } from '../pim/model';
import { compareUnusedRows, UNUSED_TABLE } from '../pim/model';
import type { GroupRoles } from '../pim/snapshot';
import { ExternalSorter } from '../util/sorter';
import { keptActivations } from './read';
import type { HistoryBlobs, HistoryStore } from './store';

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
  const { history, now, afterDays } = input;
  const rows = new ExternalSorter<UnusedEligibilityRow>(compareUnusedRows, { codec: UNUSED_TABLE.codec });
  const result = (
    fields: Omit<UnusedEligibilities, 'rows' | 'count' | 'dispose' | 'afterDays'>,
  ): UnusedEligibilities => ({
    rows,
    count: rows.size,
    afterDays,
    ...fields,
    dispose: () => rows.dispose(),
  });
  try {
    const watermark = await history.watermark();
    const windowStart = now.getTime() - afterDays * DAY_MS;
    if (!watermark)
      return result({ complete: false, completeFrom: new Date(now.getTime() + afterDays * DAY_MS).toISOString() });
    const historySince = watermark.coverageStartUtc;
    const since = Date.parse(historySince);
    const gaps = watermark.gaps
      .filter((gap) => Date.parse(gap.toUtc) > windowStart && Date.parse(gap.fromUtc) < now.getTime())
      .map(({ fromUtc, toUtc, reason }) => ({ fromUtc, toUtc, reason }));
    if (since > windowStart || gaps.length > 0) {
      const coveredFrom = Math.max(since, ...gaps.map((gap) => Date.parse(gap.toUtc)));
      return result({
        complete: false,
        historySince,
        completeFrom: new Date(coveredFrom + afterDays * DAY_MS).toISOString(),
        ...(gaps.length > 0 ? { gaps } : {}),
      });
    }

    // The last use of each role by each principal, and of each group's membership, over the whole history.
    const lastRole = new Map<string, string>();
    /** By principal, then group: a principal activates few groups, where a role may be held by hundreds. */
    const lastGroup = new Map<string, Map<string, string>>();
    const later = (map: Map<string, string>, key: string, at: string) => {
      const seen = map.get(key);
      if (seen === undefined || at > seen) map.set(key, at);
    };
    const lastMonth = now.toISOString().slice(0, 7);
    for await (const batch of keptActivations(
      history,
      input.store,
      input.archiveContainer,
      new Date(since),
      now,
      lastMonth,
    )) {
      for (const a of batch) {
        if (!a.activated || !a.principalId) continue;
        if (a.activationType === 'Group') {
          if (a.groupAccess !== 'Owner') {
            const pid = a.principalId.toLowerCase();
            let groups = lastGroup.get(pid);
            if (!groups) lastGroup.set(pid, (groups = new Map()));
            later(groups, a.groupId.toLowerCase(), a.activated);
          }
        } else {
          later(lastRole, `${a.principalId}|${a.roleId}`.toLowerCase(), a.activated);
        }
      }
    }
    // The groups that hold each role: activating membership of one of them is using the role.
    const groupsByRole = new Map<string, Set<string>>();
    for (const [groupId, held] of input.groupRoles) {
      for (const { roleId } of held) {
        const role = roleId.toLowerCase();
        let groups = groupsByRole.get(role);
        if (!groups) groupsByRole.set(role, (groups = new Set()));
        groups.add(groupId.toLowerCase());
      }
    }

    for await (const batch of input.eligible) {
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
    }
    return result({ complete: true, historySince });
  } catch (error) {
    await rows.dispose();
    throw error;
  }
}
