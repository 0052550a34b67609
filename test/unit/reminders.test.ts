import { loadSettings, SettingsError } from '../../src/settings';
import {
  dueReminders,
  ReminderCandidates,
  reminderKey,
  remindersByUser,
  type ReminderRecord,
} from '../../src/pim/reminders';
import type { AssignmentRow } from '../../src/pim/model';
import { renderReminder } from '../../src/report/reminder';

const email = {
  ACS_ENDPOINT: 'https://acs.communication.azure.com',
  EMAIL_SENDER: 'DoNotReply@1234.azurecomm.net',
  EMAIL_RECIPIENTS: 'secops@contoso.com',
};
const DAY = 86_400_000;
const NOW = new Date('2026-11-10T06:00:00.000Z');

function row(fields: Partial<AssignmentRow>): AssignmentRow {
  return {
    state: 'Eligible',
    principalDisplayName: 'Adele Vance',
    principalName: 'adele@contoso.com',
    memberType: 'Direct',
    start: null,
    end: new Date(NOW.getTime() + 5 * DAY).toISOString(),
    principalType: 'User',
    principalId: 'u1',
    viaGroup: '',
    viaGroupId: '',
    roleId: 'r1',
    roleName: 'User Administrator',
    scopeId: '/',
    assignmentType: '',
    privileged: true,
    outsidePim: false,
    created: null,
    scheduleId: 's1',
    ...fields,
  };
}

describe('EXPIRY_REMINDER_DAYS and REMINDERS_PER_RUN', () => {
  it('are off and 200 by default; a list is sorted and de-duplicated', () => {
    expect(loadSettings({}).expiryReminderDays).toEqual([]);
    expect(loadSettings({ EXPIRY_REMINDER_DAYS: '' }).expiryReminderDays).toEqual([]);
    expect(loadSettings({}).remindersPerRun).toBe(200);
    const s = loadSettings({ ...email, EXPIRY_REMINDER_DAYS: ' 7, 14,1,7 ', REMINDERS_PER_RUN: '50' });
    expect(s.expiryReminderDays).toEqual([1, 7, 14]);
    expect(s.remindersPerRun).toBe(50);
  });

  it.each([['14,,7'], ['7d'], ['0'], ['1.5'], ['-1'], ['366'], ['14;7']])(
    'reject EXPIRY_REMINDER_DAYS=%s, naming it',
    (value) => {
      expect(() => loadSettings({ ...email, EXPIRY_REMINDER_DAYS: value })).toThrow(SettingsError);
      expect(() => loadSettings({ ...email, EXPIRY_REMINDER_DAYS: value })).toThrow(/EXPIRY_REMINDER_DAYS/);
    },
  );

  it('reject reminders without email, and a malformed REMINDERS_PER_RUN', () => {
    expect(() => loadSettings({ EXPIRY_REMINDER_DAYS: '7' })).toThrow(
      /EXPIRY_REMINDER_DAYS is set but email is not configured/,
    );
    for (const v of ['0', 'many', '10001'])
      expect(() => loadSettings({ REMINDERS_PER_RUN: v })).toThrow(/REMINDERS_PER_RUN/);
  });
});

describe('which assignments are reminded', () => {
  const thresholds = [1, 7, 14];
  const collect = (rows: Array<[AssignmentRow, 'direct' | 'groupEligibility', string | null]>) => {
    const c = new ReminderCandidates(thresholds, NOW);
    for (const [r, source, mail] of rows) c.observe(r, { id: r.principalId, mail }, source);
    return c.items;
  };

  it('users only, time-bound, not activated, directly held or PIM-for-Groups eligible, within the largest threshold', () => {
    const items = collect([
      [row({ scheduleId: 'keep-eligible' }), 'direct', 'a@contoso.com'],
      [row({ scheduleId: 'keep-assigned', state: 'Active', assignmentType: 'Assigned' }), 'direct', 'a@contoso.com'],
      [row({ scheduleId: 'keep-pfg', memberType: 'Group', viaGroupId: 'g1' }), 'groupEligibility', 'a@contoso.com'],
      [row({ scheduleId: 'activated', state: 'Active', assignmentType: 'Activated' }), 'direct', 'a@contoso.com'],
      [row({ scheduleId: 'permanent', end: null }), 'direct', 'a@contoso.com'],
      [row({ scheduleId: 'group', principalType: 'Group' }), 'direct', null],
      [row({ scheduleId: 'sp', principalType: 'ServicePrincipal' }), 'direct', null],
      [row({ scheduleId: 'far', end: new Date(NOW.getTime() + 15 * DAY).toISOString() }), 'direct', 'a@contoso.com'],
      [row({ scheduleId: 'ended', end: new Date(NOW.getTime() - 1).toISOString() }), 'direct', 'a@contoso.com'],
    ]);
    expect(items.map((i) => i.row.scheduleId).sort()).toEqual(['keep-assigned', 'keep-eligible', 'keep-pfg']);
  });

  it('once, for the smallest threshold crossed, larger ones counted done; a renewed end is reminded again', () => {
    const [candidate] = collect([[row({}), 'direct', 'a@contoso.com']]);
    const [due] = dueReminders([candidate], new Map(), thresholds, NOW);
    expect(due).toMatchObject({ threshold: 7, crossed: [7, 14], daysLeft: 5 });
    const record: ReminderRecord = {
      scheduleId: 's1',
      principalId: 'u1',
      end: candidate.row.end!,
      thresholds: due.crossed,
      threshold: 7,
      remindedOn: '2026-11-10',
      operationId: 'x',
      mail: 'a@contoso.com',
      who: 'Adele Vance',
      roleName: 'User Administrator',
    };
    const done = new Map([[reminderKey('S1', 'U1'), record]]);
    expect(dueReminders([candidate], done, thresholds, NOW)).toEqual([]);
    // Four days later: 1 day left, the 1-day reminder.
    expect(dueReminders([candidate], done, thresholds, new Date(NOW.getTime() + 4 * DAY + 1))).toMatchObject([
      { threshold: 1 },
    ]);
    // Renewed: another end, reminded anew.
    const renewed = { ...candidate, row: { ...candidate.row, end: new Date(NOW.getTime() + 6 * DAY).toISOString() } };
    expect(dueReminders([renewed], done, thresholds, NOW)).toMatchObject([{ threshold: 7 }]);
  });

  it('one email per user, naming each role, scope, kind, end and the way to ask for an extension, escaped', () => {
    const due = dueReminders(
      collect([
        [
          row({ scheduleId: 'a', roleName: '<b>Exchange</b> Administrator', scopeId: '/administrativeUnits/au1' }),
          'direct',
          'a@contoso.com',
        ],
        [
          row({
            scheduleId: 'b',
            memberType: 'Group',
            viaGroup: 'Helpdesk',
            viaGroupId: 'g1',
            end: '2026-11-11T01:00:00.000Z',
          }),
          'groupEligibility',
          'a@contoso.com',
        ],
      ]),
      new Map(),
      thresholds,
      NOW,
    );
    const users = remindersByUser(due);
    expect(users).toHaveLength(1);
    const email = renderReminder({ user: users[0], scopeName: () => 'Paris Office' });
    expect(email.subject).toBe('2 of your privileged roles end soon (the first in less than a day)');
    expect(email.text).toContain(
      'User Administrator | Directory | Eligible, through PIM for Groups (Helpdesk) | ends 2026-11-11 01:00:00 UTC | less than a day left',
    );
    expect(email.text).toContain(
      '<b>Exchange</b> Administrator | Paris Office | Eligible | ends 2026-11-15 06:00:00 UTC | 5 days left',
    );
    expect(email.html).toContain('&#60;b&#62;Exchange&#60;/b&#62; Administrator');
    expect(email.html).not.toContain('<b>Exchange');
    expect(email.html).toContain(
      'https://portal.azure.com/#view/Microsoft_Azure_PIMCommon/ActivationMenuBlade/~/aadmigratedroles',
    );
  });
});
