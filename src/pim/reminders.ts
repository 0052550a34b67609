/**
 * Expiry reminders to the people who hold the roles: which assignments qualify, and which
 * threshold of EXPIRY_REMINDER_DAYS each has crossed and not yet been reminded of. Pure; no I/O.
 *
 * Qualify: a user's time-bound eligible or assigned (not activated) assignment held directly, and a
 * user's PIM-for-Groups eligibility (one row per role the group holds, ending when the first of
 * the eligibility and the group's assignment ends). Activated (just-in-time) and permanent
 * assignments, groups, service principals and transitive group members never do.
 *
 * Once per threshold: when the time left has fallen to or below one or more thresholds, the user is
 * reminded once, for the smallest of them, and every larger one counts as done (an app installed
 * with 5 days left on 14,7,1 sends one reminder, not two). What was reminded is kept per schedule
 * and principal with the end it was reminded of: an assignment renewed to a new end is a new one.
 */
import type { AssignmentRow, DirectoryObject } from './model';

const DAY_MS = 86_400_000;

/** Where a row came from in the snapshot: a schedule's own principal, or a PIM-for-Groups eligibility. */
export type ReminderSource = 'direct' | 'groupEligibility';

export interface ReminderCandidate {
  row: AssignmentRow;
  /** The user's `mail`, or null: such a user cannot be told. */
  mail: string | null;
}

/** What the state keeps of one (schedule, principal) once reminded. */
export interface ReminderRecord {
  scheduleId: string;
  principalId: string;
  /** The end the reminder was about; a different end now means the assignment was renewed. */
  end: string;
  /** Every threshold counted done (the one reminded and all larger ones crossed at the time). */
  thresholds: number[];
  /** The threshold the email was for, the day it went out, and to whom. */
  threshold: number;
  remindedOn: string;
  operationId: string;
  mail: string;
  who: string;
  roleName: string;
}

export interface DueReminder {
  row: AssignmentRow;
  mail: string | null;
  /** The smallest threshold crossed: what the email is for. */
  threshold: number;
  /** Every threshold crossed: all count as done once it is sent. */
  crossed: number[];
  daysLeft: number;
}

/** One email: a user and each of their assignments being reminded, soonest end first. */
export interface UserReminder {
  principalId: string;
  mail: string | null;
  who: string;
  items: DueReminder[];
}

/** What the digest and manifest say of the day's reminders. */
export interface ReminderSummary {
  thresholds: number[];
  perRun: number;
  /** Emails that went out on the day (this run and earlier runs of the same day), one per user. */
  sent: Array<{ who: string; mail: string; items: Array<{ roleName: string; end: string; threshold: number }> }>;
  /** Users with a reminder due who have no mail address: told nothing. */
  withoutMail: number;
  /** Emails due but beyond REMINDERS_PER_RUN, or stopped by a send failure: the next run sends them. */
  waiting: number;
  /** Emails ACS did not take or deliver: kept and retried by the next run. */
  failed: number;
}

export function reminderKey(scheduleId: string, principalId: string): string {
  return `${scheduleId.toLowerCase()}|${principalId.toLowerCase()}`;
}

/**
 * Collects the rows that may need a reminder as the snapshot reads them (`observe`): only those
 * ending within the largest threshold, so what is held is the few assignments about to end, never
 * the tenant.
 */
export class ReminderCandidates {
  private readonly found = new Map<string, ReminderCandidate>();
  private readonly horizonMs: number;

  constructor(
    thresholds: readonly number[],
    private readonly now: Date,
  ) {
    this.horizonMs = Math.max(0, ...thresholds) * DAY_MS;
  }

  readonly observe = (
    row: AssignmentRow,
    principal: DirectoryObject | null | undefined,
    source: ReminderSource,
  ): void => {
    if (row.principalType !== 'User' || !row.end) return;
    if (source === 'direct' && row.memberType !== 'Direct') return;
    if (source === 'groupEligibility' && row.state !== 'Eligible') return;
    if (row.state === 'Active' && row.assignmentType.toLowerCase() !== 'assigned') return;
    const left = Date.parse(row.end) - this.now.getTime();
    if (!(left > 0 && left <= this.horizonMs)) return;
    const mail = typeof principal?.mail === 'string' && principal.mail.trim() !== '' ? principal.mail.trim() : null;
    this.found.set(`${row.state}|${reminderKey(row.scheduleId, row.principalId)}`, { row, mail });
  };

  get items(): ReminderCandidate[] {
    return [...this.found.values()];
  }
}

/**
 * The reminders due now: for each candidate, the thresholds its time left has fallen to or below;
 * none when the smallest of them is already done for this end.
 */
export function dueReminders(
  candidates: readonly ReminderCandidate[],
  done: ReadonlyMap<string, ReminderRecord>,
  thresholds: readonly number[],
  now: Date,
): DueReminder[] {
  const due: DueReminder[] = [];
  for (const { row, mail } of candidates) {
    if (!row.end) continue;
    const left = Date.parse(row.end) - now.getTime();
    if (!(left > 0)) continue;
    const crossed = thresholds.filter((t) => left <= t * DAY_MS).sort((a, b) => a - b);
    if (crossed.length === 0) continue;
    const record = done.get(reminderKey(row.scheduleId, row.principalId));
    const smallest = crossed[0];
    if (record && record.end === row.end && record.thresholds.some((t) => t <= smallest)) continue;
    due.push({ row, mail, threshold: smallest, crossed, daysLeft: Math.floor(left / DAY_MS) });
  }
  return due;
}

/** One email per user, users in a stable order (mail, then id), each user's items soonest first. */
export function remindersByUser(due: readonly DueReminder[]): UserReminder[] {
  const users = new Map<string, UserReminder>();
  for (const item of due) {
    const id = item.row.principalId.toLowerCase();
    let user = users.get(id);
    if (!user) {
      user = {
        principalId: item.row.principalId,
        mail: item.mail,
        who: item.row.principalDisplayName || item.row.principalName || item.row.principalId,
        items: [],
      };
      users.set(id, user);
    }
    user.mail ??= item.mail;
    user.items.push(item);
  }
  const ordered = [...users.values()].sort((a, b) =>
    (a.mail ?? '') + a.principalId < (b.mail ?? '') + b.principalId ? -1 : 1,
  );
  for (const user of ordered) {
    user.items.sort((a, b) =>
      a.row.end! < b.row.end! ? -1 : a.row.end! > b.row.end! ? 1 : a.row.roleName < b.row.roleName ? -1 : 1,
    );
  }
  return ordered;
}
