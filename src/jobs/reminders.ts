/**
 * Sends the day's expiry reminders, each exactly once (the selection is src/pim/reminders.ts, the
 * email src/report/reminder.ts):
 *
 * 1. Reminders an earlier run left in the outbox (a failed send, or a run that stopped after ACS
 *    accepted one) are finished first, through the digest's send path (outbox.ts): the operation
 *    id stored before the send is asked after, never sent twice.
 * 2. The reminders due now, one email per user, at most REMINDERS_PER_RUN emails with step 1; a
 *    user with an email in the outbox gets nothing new this run (sent now or not, it is their one
 *    email of the run).
 * 3. What went out is recorded in state/reminders/done.json, then the outbox entries are dropped:
 *    a run that stops in between finds the entries recorded and drops them.
 */
import { EmailError } from '../io/email';
import {
  dueReminders,
  reminderKey,
  remindersByUser,
  type ReminderCandidate,
  type ReminderRecord,
  type ReminderSummary,
} from '../pim/reminders';
import { renderReminder } from '../report/reminder';
import type { JobContext } from './context';
import { sendOnce } from './outbox';
import type { ReminderOutboxEntry, StateStore } from './state';

/**
 * `candidates` absent: a re-run of a day already final; only what earlier runs left is finished.
 * Returns what the digest says, or undefined when reminders are off.
 */
export async function sendExpiryReminders(
  ctx: JobContext,
  state: StateStore,
  day: string,
  candidates?: readonly ReminderCandidate[],
  scopeName?: (scopeId: string) => string,
): Promise<ReminderSummary | undefined> {
  const { settings, log, now } = ctx;
  const thresholds = settings.expiryReminderDays;
  if (thresholds.length === 0 || !ctx.mailer) return undefined;
  const mailer = ctx.mailer;
  const records = await state.reminderRecords();
  let budget = settings.remindersPerRun;
  let failed = 0;
  let waiting = 0;
  let stopped = false;
  const delivered: ReminderOutboxEntry[] = [];
  const held = new Set<string>();

  const deliver = async (entry: ReminderOutboxEntry, isNew: boolean): Promise<void> => {
    if (stopped || budget <= 0) {
      waiting++;
      held.add(entry.principalId.toLowerCase());
      return;
    }
    budget--;
    const what = `the expiry reminder ${entry.id}`;
    try {
      const operationId = await sendOnce(mailer, log, what, entry, (queued) => state.addReminderToOutbox(queued));
      for (const item of entry.items)
        records.set(reminderKey(item.scheduleId, item.principalId), { ...item, remindedOn: day, operationId });
      delivered.push(entry);
      log.info(`Emailed ${what} (${entry.items.length} assignment(s))`);
    } catch (error) {
      if (!(error instanceof EmailError)) throw error;
      failed++;
      // Only a send that got as far as storing its operation id stays in the outbox for the next run.
      held.add(entry.principalId.toLowerCase());
      log.error(`${what} was not sent${isNew ? '' : ' again'}; the next run retries it. ${error.message}`);
      // ACS unreachable or refusing: the others would only wait for the same timeout.
      if (!error.sendAgain) stopped = true;
    }
  };

  // 1. Left by earlier runs.
  for (const entry of await state.reminderOutbox()) {
    const recorded = entry.items.every((item) => {
      const r = records.get(reminderKey(item.scheduleId, item.principalId));
      return r !== undefined && r.end === item.end && r.thresholds.includes(item.threshold);
    });
    if (recorded) {
      await state.dropReminderFromOutbox(entry.id);
      continue;
    }
    // One email per user a run: whatever becomes of this one, their new reminders go next run.
    held.add(entry.principalId.toLowerCase());
    await deliver(entry, false);
  }

  // 2. Due now.
  let withoutMail = 0;
  if (candidates) {
    const users = remindersByUser(dueReminders(candidates, records, thresholds, now)).filter(
      (u) => !held.has(u.principalId.toLowerCase()),
    );
    for (const user of users) {
      if (!user.mail) {
        withoutMail++;
        continue;
      }
      const email = renderReminder({ user, scopeName });
      const items: ReminderOutboxEntry['items'] = user.items.map((item) => ({
        scheduleId: item.row.scheduleId,
        principalId: item.row.principalId,
        end: item.row.end!,
        thresholds: item.crossed,
        threshold: item.threshold,
        mail: user.mail!,
        who: user.who,
        roleName: item.row.roleName || item.row.roleId,
      }));
      const entry: ReminderOutboxEntry = {
        id: `${day}-${user.principalId.toLowerCase()}`,
        day,
        principalId: user.principalId,
        to: [user.mail],
        subject: email.subject,
        html: email.html,
        text: email.text,
        createdUtc: new Date().toISOString(),
        items,
      };
      await deliver(entry, true);
    }
    if (withoutMail > 0) log.warn(`${withoutMail} user(s) with a reminder due have no mail address: they are not told`);
    if (waiting > 0)
      log.warn(
        `${waiting} reminder email(s) wait for the next run (REMINDERS_PER_RUN ${settings.remindersPerRun}, or a send failed)`,
      );
  }

  // 3. Recorded before the outbox entries go: a run that stops in between never sends them again.
  if (delivered.length > 0 || records.size > 0) await state.saveReminderRecords(records, now);
  for (const entry of delivered) await state.dropReminderFromOutbox(entry.id);

  return { thresholds, perRun: settings.remindersPerRun, sent: sentOn(day, records), withoutMail, waiting, failed };
}

/** The emails recorded as sent on `day`, by user: earlier runs of the same day included. */
function sentOn(day: string, records: ReadonlyMap<string, ReminderRecord>): ReminderSummary['sent'] {
  const byUser = new Map<string, ReminderSummary['sent'][number]>();
  for (const r of records.values()) {
    if (r.remindedOn !== day) continue;
    const key = r.principalId.toLowerCase();
    const user = byUser.get(key) ?? { who: r.who, mail: r.mail, items: [] };
    user.items.push({ roleName: r.roleName, end: r.end, threshold: r.threshold });
    byUser.set(key, user);
  }
  return [...byUser.values()].sort((a, b) => (a.mail < b.mail ? -1 : a.mail > b.mail ? 1 : 0));
}
