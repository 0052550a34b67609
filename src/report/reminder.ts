/**
 * The expiry reminder to one person: plain and short, HTML (escaped, inline styles, as the digest)
 * with a text part. Lists each assignment being reminded: role, scope, kind, end (UTC), days left,
 * and how to ask for an extension.
 */
import type { UserReminder } from '../pim/reminders';
import { csvTime } from '../util/table';
import { escapeHtml, plainText } from './digest';

/**
 * PIM's My roles page in the Azure portal, where the holder of an assignment that ends soon selects
 * Extend ("Extend or renew Microsoft Entra role assignments":
 * https://learn.microsoft.com/entra/id-governance/privileged-identity-management/pim-resource-roles-renew-extend
 * and https://learn.microsoft.com/entra/id-governance/privileged-identity-management/pim-how-to-renew-extend).
 * Learn shows the page by navigation, not by address; this deep link is the one public tools use
 * for My roles > Microsoft Entra roles (not verified against a Microsoft document).
 */
export const PIM_MY_ROLES_URL =
  'https://portal.azure.com/#view/Microsoft_Azure_PIMCommon/ActivationMenuBlade/~/aadmigratedroles';
export const PIM_EXTEND_HELP_URL =
  'https://learn.microsoft.com/entra/id-governance/privileged-identity-management/pim-how-to-renew-extend';

export interface ReminderContent {
  user: UserReminder;
  /** Administrative-unit names, as in the CSVs. */
  scopeName?: (scopeId: string) => string;
}

export interface RenderedReminder {
  subject: string;
  html: string;
  text: string;
}

const daysText = (n: number) => (n < 1 ? 'less than a day' : n === 1 ? '1 day' : `${n} days`);

export function renderReminder(c: ReminderContent): RenderedReminder {
  const { user } = c;
  const scope = (id: string) => (id === '/' || id === '' ? 'Directory' : c.scopeName?.(id) || id);
  const rows = user.items.map((item) => {
    const r = item.row;
    return {
      role: r.roleName || r.roleId,
      scope: scope(r.scopeId),
      kind:
        r.memberType === 'Group'
          ? `Eligible, through PIM for Groups (${r.viaGroup || r.viaGroupId})`
          : r.state === 'Eligible'
            ? 'Eligible'
            : 'Active',
      ends: `${csvTime(r.end!)} UTC`,
      left: daysText(item.daysLeft),
    };
  });
  const first = user.items[0];
  const subject =
    user.items.length === 1
      ? `Your ${plainText(rows[0].role)} role ends in ${daysText(first.daysLeft)}`
      : `${user.items.length} of your privileged roles end soon (the first in ${daysText(first.daysLeft)})`;
  const intro = (who: string) =>
    `Hello ${who}, the role assignment(s) below end soon. After the end time you lose the role.`;
  const how =
    'To keep a role, ask for an extension: open My roles in Privileged Identity Management, find the assignment under Eligible assignments or Active assignments, and select Extend. An administrator approves it.';

  const cell = (v: string) =>
    `<td valign="top" style="padding:6px 8px;border-bottom:1px solid #e6e6e6;font-size:13px;">${escapeHtml(v)}</td>`;
  const head = ['Role', 'Scope', 'Kind', 'Ends (UTC)', 'Days left']
    .map(
      (h) =>
        `<th align="left" style="padding:6px 8px;border-bottom:2px solid #c8c8c8;font-size:12px;color:#444;">${h}</th>`,
    )
    .join('');
  const html = [
    `<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(subject)}</title></head>`,
    `<body style="margin:0;padding:16px 8px;background:#ffffff;font-family:Segoe UI,Helvetica,Arial,sans-serif;color:#1f1f1f;">`,
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:640px;"><tr><td>`,
    `<p style="margin:0 0 12px;font-size:14px;">${escapeHtml(intro(user.who))}</p>`,
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="border-collapse:collapse;"><tr>${head}</tr>`,
    ...rows.map((r) => `<tr>${cell(r.role)}${cell(r.scope)}${cell(r.kind)}${cell(r.ends)}${cell(r.left)}</tr>`),
    `</table>`,
    `<p style="margin:12px 0 4px;font-size:14px;">${escapeHtml(how)}</p>`,
    `<p style="margin:4px 0;font-size:14px;"><a href="${escapeHtml(PIM_MY_ROLES_URL)}">My roles in Privileged Identity Management</a> &middot; <a href="${escapeHtml(PIM_EXTEND_HELP_URL)}">How to extend a role</a></p>`,
    `<p style="margin:16px 0 0;font-size:11px;color:#888;">Sent once per reminder by pim-reporter for your administrators.</p>`,
    `</td></tr></table></body></html>`,
  ].join('\n');
  const text = [
    intro(plainText(user.who)),
    '',
    ...rows.map((r) => `- ${[r.role, r.scope, r.kind].map(plainText).join(' | ')} | ends ${r.ends} | ${r.left} left`),
    '',
    how,
    `My roles: ${PIM_MY_ROLES_URL}`,
    `How to extend a role: ${PIM_EXTEND_HELP_URL}`,
    '',
    'Sent once per reminder by pim-reporter for your administrators.',
  ].join('\n');
  return { subject, html, text: `${text}\n` };
}
