/**
 * The daily digest (docs/digest.md) as an email: HTML that reads well in Outlook and on a phone
 * (tables, inline styles, no script, no external image) and a plain-text part. Every value from
 * data is HTML-escaped: display names and justifications are typed by users.
 */
import { LIST_LIMIT, type AssignmentChanges, type Counted, type ExpiringAssignment } from '../pim/changes';
import type { ActivationRow, AssignmentRow, HarvestGap, ScopeNamer, UnusedEligibilityRow } from '../pim/model';
import type { RoleSettingChange, RoleSettingsFinding, RoleSettingsReport } from '../pim/roleSettings';
import { csvTime } from '../util/table';
import type { ReminderSummary } from '../pim/reminders';
import { azureDigestSections, type AzureDigest } from './azure-digest';
import { kind, who } from './cells';

export interface DigestContent {
  day: string;
  changes: AssignmentChanges;
  activations: Counted<ActivationRow>;
  /** The PIM-for-Groups activations among them, with the roles each group grants (Group Roles). */
  groupActivations?: Counted<ActivationRow>;
  /** Activations of Global Administrator: direct ones, and PIM-for-Groups activations of a group that holds it. */
  globalAdministratorActivations?: { direct: number; throughGroups: number };
  globalAdministrators: { count: number; names: string[]; isFinding: boolean };
  expiryWindowDays: number;
  /** Eligibilities nobody used in `afterDays`: the count, the first few longest-unused first, and whether the history covers the window. */
  unused?: {
    count: number;
    items: UnusedEligibilityRow[];
    complete: boolean;
    completeFrom?: string;
    afterDays: number;
    gaps?: HarvestGap[];
  };
  gaps: HarvestGap[];
  /** Lists Graph would not give (a group's members, PIM for Groups): said near the top. */
  incomplete?: { list?: string; groupId: string; groupName: string; reason: string }[];
  /** The PIM role settings: findings and what changed (docs/digest.md). */
  roleSettings?: RoleSettingsReport;
  /** Where the day's files are, for the footer. */
  folder: string;
  /** Administrative-unit names, as in the CSVs; without it the scope id is shown. */
  scopeName?: ScopeNamer;
  /** The day's expiry reminders to the holders; absent when EXPIRY_REMINDER_DAYS is off. */
  reminders?: ReminderSummary;
  /** PIM for Azure resources, when on: its own section after the Entra lists. */
  azure?: AzureDigest;
}

export interface RenderedDigest {
  subject: string;
  html: string;
  text: string;
}

function digestSubject(c: DigestContent): string {
  return `PIM digest ${c.day}: ${c.changes.added.count} new, ${c.changes.expiring.count} expiring, ${c.changes.permanent.count} permanent`;
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/**
 * A value from data as one line of the plain-text part: control characters (a line break would
 * start a line that looks like the digest's own), line and paragraph separators and bidirectional
 * overrides (which reorder what a reader sees) become spaces. The HTML part escapes instead.
 */
export function plainText(value: string): string {
  return value.replace(/[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu, ' ');
}

const ends = (r: AssignmentRow) => (r.end ? csvTime(r.end) : 'never');

/** What was activated: the role, or the group and the roles it grants. */
const activated = (a: ActivationRow) =>
  a.activationType === 'Group'
    ? `${a.groupName || a.groupId} (group${a.groupRoles && a.groupAccess !== 'Owner' ? `: ${a.groupRoles}` : ''})`
    : a.roleName || a.roleId;

function hours(a: ActivationRow): string {
  if (!a.start || !a.end) return '';
  const h = (Date.parse(a.end) - Date.parse(a.start)) / 3600000;
  return Number.isFinite(h) ? `${Math.round(h * 10) / 10} h` : '';
}

interface Table<T> {
  title: string;
  intro?: string;
  columns: string[];
  cells: (item: T) => string[];
  list: Counted<T>;
  empty: string;
  /** Rows to highlight as findings. */
  highlight?: (item: T) => boolean;
}

function htmlTable<T>(t: Table<T>): string {
  const shown = t.list.items.slice(0, LIST_LIMIT);
  const head = t.columns
    .map(
      (c) =>
        `<th align="left" style="padding:6px 8px;border-bottom:2px solid #c8c8c8;font-size:12px;color:#444;">${escapeHtml(c)}</th>`,
    )
    .join('');
  const rows = shown
    .map((item) => {
      const bg = t.highlight?.(item) ? 'background:#fde7e9;' : '';
      const tds = t
        .cells(item)
        .map(
          (v) =>
            `<td valign="top" style="padding:6px 8px;border-bottom:1px solid #e6e6e6;font-size:13px;${bg}">${escapeHtml(v)}</td>`,
        )
        .join('');
      return `<tr>${tds}</tr>`;
    })
    .join('');
  const more =
    t.list.count > shown.length
      ? `<p style="margin:6px 0 0;font-size:12px;color:#666;">and ${t.list.count - shown.length} more in the CSV files.</p>`
      : '';
  const body =
    t.list.count === 0
      ? `<p style="margin:4px 0;font-size:13px;color:#666;">${escapeHtml(t.empty)}</p>`
      : `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="border-collapse:collapse;"><tr>${head}</tr>${rows}</table>${more}`;
  const intro = t.intro ? `<p style="margin:4px 0 8px;font-size:13px;color:#444;">${escapeHtml(t.intro)}</p>` : '';
  return `<tr><td style="padding:16px 0 0;"><h2 style="margin:0 0 4px;font-size:16px;color:#1f1f1f;">${escapeHtml(
    `${t.title} (${t.list.count})`,
  )}</h2>${intro}${body}</td></tr>`;
}

function textTable<T>(t: Table<T>): string {
  const lines = [`${t.title} (${t.list.count})`, '-'.repeat(t.title.length + 4)];
  if (t.intro) lines.push(t.intro);
  if (t.list.count === 0) lines.push(t.empty);
  // The columns' names once, and every cell in its place (a blank one as `-`): without them a scope
  // and a group, a ticket and an approver, read alike.
  else lines.push(`  ${t.columns.join(' | ')}`);
  for (const item of t.list.items.slice(0, LIST_LIMIT)) {
    const mark = t.highlight?.(item) ? '! ' : '- ';
    lines.push(
      mark +
        t
          .cells(item)
          .map((v) => (v === '' ? '-' : plainText(v)))
          .join(' | '),
    );
  }
  if (t.list.count > LIST_LIMIT) lines.push(`and ${t.list.count - LIST_LIMIT} more in the CSV files.`);
  return lines.join('\n');
}

function section<T>(t: Table<T>): { html: string; text: string } {
  return { html: htmlTable(t), text: textTable(t) };
}

/** "Reminders sent (N)": one row per person emailed today, and who could not be told or waits. */
function reminderSection(r: ReminderSummary): { html: string; text: string } {
  const notes = [
    `Emailed once to the people who hold the roles, at ${r.thresholds.join(', ')} day(s) left (EXPIRY_REMINDER_DAYS).`,
    r.withoutMail > 0 ? `${r.withoutMail} user(s) with a reminder due could not be told: no mail address.` : '',
    r.waiting > 0
      ? `${r.waiting} reminder email(s) wait for the next run (at most ${r.perRun} a run, REMINDERS_PER_RUN).`
      : '',
    r.failed > 0 ? `${r.failed} reminder email(s) could not be sent; the next run retries them.` : '',
  ];
  return section({
    title: 'Reminders sent',
    intro: notes.filter(Boolean).join(' '),
    columns: ['Who', 'To', 'Roles (ends UTC)'],
    cells: (u: ReminderSummary['sent'][number]) => [
      u.who,
      u.mail,
      u.items.map((i) => `${i.roleName} (${csvTime(i.end)})`).join('; '),
    ],
    list: { count: r.sent.length, items: r.sent },
    empty: 'None today.',
  });
}

const arrow = (before: string, after: string) => `${before || '(blank)'} → ${after || '(blank)'}`;

/** "Role settings": one line per finding, then one line per setting changed since the previous stored settings. */
function roleSettingsSections(report: RoleSettingsReport | undefined): { html: string; text: string }[] {
  if (!report) return [];
  const all = (items: RoleSettingsFinding[]) => ({ count: items.length, items: items.slice(0, LIST_LIMIT) });
  // The settings findings name their policy's role; MS.AAD.7.5 lines are assignments made outside PIM, not settings.
  const withFindings = new Set(report.findings.filter((f) => f.policy !== 'MS.AAD.7.5').map((f) => f.role)).size;
  const sections = [
    section({
      title: 'Role settings',
      intro: `${report.roles} PIM ${report.roles === 1 ? 'policy' : 'policies'} of roles and groups read; findings in the settings of ${withFindings} of them (CISA MS.AAD.7.6 to 7.9, and activation without MFA; an alert counts only with an additional recipient). MS.AAD.7.5 lines are active assignments made outside PIM. Every setting is in role-settings.csv.`,
      columns: ['Policy', 'Role', 'Finding'],
      cells: (f: RoleSettingsFinding) => [f.policy, f.role, f.text],
      list: all(report.findings),
      empty: 'No finding.',
      highlight: () => true,
    }),
  ];
  const changes = report.changes;
  sections.push(
    section({
      title: 'What changed in role settings',
      intro: changes
        ? `Compared with the settings stored on ${changes.sinceDay}.`
        : 'First run: no earlier settings to compare with.',
      columns: ['Role', 'Setting', 'Before → after', 'Modified (UTC)', 'By'],
      cells: (ch: RoleSettingChange) => [
        ch.role,
        ch.column,
        arrow(ch.before, ch.after),
        csvTime(ch.lastModified),
        ch.lastModifiedBy,
      ],
      list: changes
        ? { count: changes.items.length, items: changes.items.slice(0, LIST_LIMIT) }
        : { count: 0, items: [] },
      empty: changes ? 'No setting changed.' : 'Nothing to compare yet.',
    }) as { html: string; text: string },
  );
  return sections;
}

/**
 * What the digest (and the log) says of routes not compared (AssignmentChanges.routesNotCompared):
 * their additions and removals are not in this digest's lists, and where to look instead.
 */
export function routesNotComparedText(r: { count: number; groups: string[] }, baseline: string): string {
  const groups =
    r.groups.length > 5 ? `${r.groups.slice(0, 5).join(', ')} and ${r.groups.length - 5} more` : r.groups.join(', ');
  return `Not compared: PIM-for-Groups eligibilities through ${groups} (${r.count} route(s) into roles today) were not compared with the snapshot of ${baseline}, which predates such routes or could not read that group's PIM-for-Groups list, or today's could not: none of them is listed as new or removed; the CSVs have today's.`;
}

export function renderDigest(c: DigestContent): RenderedDigest {
  const subject = digestSubject(c);
  const ch = c.changes;
  const assignmentColumns = ['Who', 'Role', 'Kind', 'Scope', 'Ends (UTC)'];
  const scope = (r: AssignmentRow) =>
    r.scopeId === '/' || r.scopeId === '' ? 'Directory' : c.scopeName?.(r.scopeId) || r.scopeId;
  const assignmentCells = (r: AssignmentRow) => [who(r), r.roleName || r.roleId, kind(r), scope(r), ends(r)];
  const findingIds = new Set(ch.permanentPrivilegedFindings.items.map((r) => `${r.state}/${r.scheduleId}`));
  const newIntro =
    ch.baseline.kind === 'previous'
      ? `Compared with the snapshot of ${ch.baseline.day}.`
      : 'First run: no earlier snapshot, so these are the assignments created in the last 24 hours.';

  const gaa = c.globalAdministratorActivations;
  const gaActivations = gaa
    ? ` Global Administrator activations: ${gaa.direct + gaa.throughGroups} (${gaa.direct} direct, ${gaa.throughGroups} through groups).`
    : '';
  const sections = [
    section({
      title: 'New assignments',
      intro: newIntro,
      columns: assignmentColumns,
      cells: assignmentCells,
      list: ch.added,
      empty: 'None.',
    }),
    section({
      title: 'Removed assignments',
      columns: assignmentColumns,
      cells: assignmentCells,
      list: ch.removed,
      empty: 'None.',
    }),
    section({
      title: `Expiring within ${c.expiryWindowDays} days`,
      columns: ['Who', 'Role', 'Kind', 'Ends (UTC)', 'Days left'],
      cells: (e: ExpiringAssignment) => [
        who(e.row),
        e.row.roleName || e.row.roleId,
        kind(e.row),
        ends(e.row),
        String(e.daysLeft),
      ],
      list: ch.expiring,
      empty: 'None.',
    }),
    ...(c.reminders ? [reminderSection(c.reminders)] : []),
    section({
      title: 'Permanent assignments',
      intro:
        ch.permanentPrivilegedFindings.count > 0
          ? `${ch.permanentPrivilegedFindings.count} permanent active assignment(s) of highly privileged roles (highlighted) are findings under CISA MS.AAD.7.4: make them eligible, or list break-glass accounts in EXCLUDED_PRINCIPAL_IDS.`
          : 'No permanent active assignment of a highly privileged role (CISA MS.AAD.7.4).',
      columns: assignmentColumns,
      cells: assignmentCells,
      // Findings first, then the other permanent assignments.
      list: {
        count: ch.permanent.count,
        items: [
          ...ch.permanentPrivilegedFindings.items,
          ...ch.permanent.items.filter((r) => !findingIds.has(`${r.state}/${r.scheduleId}`)),
        ],
      },
      empty: 'None.',
      highlight: (r: AssignmentRow) => findingIds.has(`${r.state}/${r.scheduleId}`),
    }),
    section({
      title: 'Activations',
      intro: `Just-in-time activations harvested from the audit log by this run, of Entra roles and of PIM-for-Groups membership.${gaActivations}`,
      columns: ['When (UTC)', 'Who', 'Role', 'For', 'Justification', 'Ticket', 'Approved by'],
      cells: (a: ActivationRow) => [
        csvTime(a.activated),
        who(a),
        activated(a),
        hours(a),
        a.justification,
        [a.ticketSystem, a.ticketNumber].filter(Boolean).join(' '),
        a.approvedBy,
      ],
      list: c.activations,
      empty: 'No activation.',
    }),
    ...(c.groupActivations
      ? [
          section({
            title: 'Group activations',
            intro:
              'PIM-for-Groups activations: membership (or ownership) of a group, and through it the roles the group holds.',
            columns: ['When (UTC)', 'Who', 'Group', 'Access', 'Roles it grants', 'Approved by'],
            cells: (a: ActivationRow) => [
              csvTime(a.activated),
              who(a),
              a.groupName || a.groupId,
              a.groupAccess,
              a.groupAccess === 'Owner' ? '(ownership: none)' : a.groupRoles || '(none)',
              a.approvedBy,
            ],
            list: c.groupActivations,
            empty: 'No group activation.',
          }),
        ]
      : []),
    ...(c.unused
      ? [
          section({
            title: 'Eligible but unused',
            intro: c.unused.complete
              ? `Eligible assignments held at least ${c.unused.afterDays} days with no activation of the role by the principal in that time (directly, through a group's eligibility, or by activating membership of a group that holds the role); longest unused first.`
              : c.unused.gaps?.length
                ? `Not known yet: the app's own history has a gap in the last ${c.unused.afterDays} days (UNUSED_AFTER_DAYS), ${c.unused.gaps.map((g) => `${csvTime(g.fromUtc)} to ${csvTime(g.toUtc)} (${g.reason})`).join('; ')}: an activation then cannot be seen. The list will be complete from ${(c.unused.completeFrom ?? '').slice(0, 10)}.`
                : `Not known yet: the app's own history is shorter than ${c.unused.afterDays} days (UNUSED_AFTER_DAYS). The list will be complete from ${(c.unused.completeFrom ?? '').slice(0, 10)}.`,
            columns: ['Who', 'Role', 'Via group', 'Scope', 'Last activated (UTC)', 'Days unused'],
            cells: (u: UnusedEligibilityRow) => [
              who(u),
              u.roleName || u.roleId,
              u.viaGroup,
              u.scopeId === '/' || u.scopeId === '' ? 'Directory' : c.scopeName?.(u.scopeId) || u.scopeId,
              u.lastActivated ? csvTime(u.lastActivated) : 'never since the history began',
              String(u.daysUnused),
            ],
            list: { count: c.unused.count, items: c.unused.items },
            empty: c.unused.complete ? 'None.' : 'Not known yet.',
          }),
        ]
      : []),
    ...roleSettingsSections(c.roleSettings),
    ...(c.azure ? azureDigestSections(c.azure, section, c.expiryWindowDays) : []),
  ];

  const ga = c.globalAdministrators;
  const gaText = `${ga.count} user(s) hold Global Administrator, eligibly or actively, directly or through groups${
    ga.isFinding ? ': outside 2 to 8, a finding under CISA MS.AAD.7.1.' : ' (CISA MS.AAD.7.1 wants 2 to 8).'
  }`;
  const gapText = [
    ...(c.incomplete ?? []).map((i) =>
      i.list === 'roleSettings'
        ? `Incomplete: ${i.groupId ? `role settings of group ${i.groupName ? `${i.groupName} (${i.groupId})` : i.groupId}: ` : ''}${i.reason}.`
        : i.groupId
          ? `Incomplete: group ${i.groupName ? `${i.groupName} (${i.groupId})` : i.groupId} could not be expanded: ${i.reason}.`
          : `Incomplete: ${i.reason}.`,
    ),
    ...c.gaps.map(
      (g) =>
        `Activations between ${csvTime(g.fromUtc)} and ${csvTime(g.toUtc)} UTC could not be harvested: ${g.reason}.`,
    ),
    ...(ch.routesNotCompared && ch.baseline.kind === 'previous'
      ? [routesNotComparedText(ch.routesNotCompared, ch.baseline.day)]
      : []),
    ...(c.azure?.changes.routesNotCompared && c.azure.changes.baseline.kind === 'previous'
      ? [`Azure resources: ${routesNotComparedText(c.azure.changes.routesNotCompared, c.azure.changes.baseline.day)}`]
      : []),
  ];

  const htmlParts = [
    `<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(
      subject,
    )}</title></head>`,
    `<body style="margin:0;padding:0;background:#f3f3f3;font-family:Segoe UI,Helvetica,Arial,sans-serif;color:#1f1f1f;">`,
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f3f3f3;"><tr><td align="center" style="padding:16px 8px;">`,
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:720px;background:#ffffff;border:1px solid #e0e0e0;"><tr><td style="padding:16px 20px;">`,
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0">`,
    `<tr><td><h1 style="margin:0;font-size:20px;">${escapeHtml(`PIM digest ${c.day}`)}</h1><p style="margin:6px 0 0;font-size:14px;color:#444;">${escapeHtml(
      `${ch.added.count} new, ${ch.removed.count} removed, ${ch.expiring.count} expiring, ${ch.permanent.count} permanent, ${c.activations.count} activation(s).`,
    )}</p></td></tr>`,
    ...gapText.map(
      (g) =>
        `<tr><td style="padding:12px 0 0;"><p style="margin:0;padding:8px;background:#fff4ce;font-size:13px;">${escapeHtml(g)}</p></td></tr>`,
    ),
    ...sections.map((t) => t.html),
    `<tr><td style="padding:16px 0 0;"><h2 style="margin:0 0 4px;font-size:16px;">Global Administrators (${ga.count})</h2><p style="margin:4px 0;font-size:13px;${
      ga.isFinding ? 'background:#fde7e9;padding:6px;' : ''
    }">${escapeHtml(gaText)}</p><p style="margin:4px 0;font-size:12px;color:#666;">${escapeHtml(ga.names.join(', '))}</p></td></tr>`,
    `<tr><td style="padding:20px 0 0;font-size:11px;color:#888;">${escapeHtml(
      `Counts are of assignments (schedules), not of the group members they reach. Full lists: ${c.folder} in the reports container. Sent by pim-reporter.`,
    )}</td></tr>`,
    `</table></td></tr></table></td></tr></table></body></html>`,
  ];

  const text = [
    `PIM digest ${c.day}`,
    `${ch.added.count} new, ${ch.removed.count} removed, ${ch.expiring.count} expiring, ${ch.permanent.count} permanent, ${c.activations.count} activation(s).`,
    ...gapText,
    ...sections.map((t) => t.text),
    `Global Administrators (${ga.count})\n${gaText}\n${ga.names.map(plainText).join(', ')}`,
    `Counts are of assignments (schedules), not of the group members they reach. Full lists: ${c.folder} in the reports container.`,
  ].join('\n\n');

  return { subject, html: htmlParts.join('\n'), text: `${text}\n` };
}
