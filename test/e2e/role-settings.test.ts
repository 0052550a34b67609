/**
 * Role settings end to end: role-settings.csv checked cell by cell against the policies the Graph
 * simulator serves (an oracle in test/support/roleSettings.ts), every finding named in the digest,
 * two changed settings named with before and after the next day, and PIM for Groups policies
 * reported as incomplete when the permission is missing.
 */
import { generateTenant } from '../../tools/tenant/generate';
import type { SimTenant } from '../../tools/tenant/model';
import { GLOBAL_ADMINISTRATOR } from '../../tools/tenant/model';
import { outsidePimAssignment } from '../../tools/tenant/generate';
import { ownPolicy, ruleOf, touched } from '../../tools/tenant/policies';
import { Rng } from '../../tools/tenant/random';
import {
  expectedFindingLines,
  expectedRoleSettings,
  privilegedGroups,
  ROLE_SETTINGS_COLUMNS,
} from '../support/roleSettings';
import { parseCsv } from '../support/expected';
import { records, startWorld, type World } from '../support/world';

const PRIVILEGED_ROLE_ADMINISTRATOR = 'e8611ab8-c189-46e8-94e1-60213ab1f814';
const USER_ADMINISTRATOR = 'fe930be7-5e62-47db-91af-98c3a49a38b1';
const SHAREPOINT_ADMINISTRATOR = 'f28a1f50-f6e7-4571-818b-6a12f2af6b6c';
const HELPDESK_ADMINISTRATOR = '729827e3-9c14-49f7-bb1b-9608f156bbb8';
const ADMIN = { id: '0f6a1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b', displayName: 'Dana Policy-Admin' };
const dayPath = (d: Date) => `daily/${d.toISOString().slice(0, 10).replace(/-/g, '/')}/`;

/** Settings other than the defaults, so every column has more than one value somewhere. */
function configure(tenant: SimTenant, at: Date): void {
  // An active assignment of a highly privileged role made outside PIM (MS.AAD.7.5), and one of an excluded principal.
  const [outsider, excluded] = tenant.users.slice(-2);
  for (const [i, user] of [outsider, excluded].entries()) {
    tenant.assignmentSchedules.push(
      outsidePimAssignment(new Rng(`outside-${i}`), {
        principalId: user.id,
        roleDefinitionId: USER_ADMINISTRATOR,
        start: '2026-01-05T08:00:00.0000000Z',
      }),
    );
  }
  const pra = ownPolicy(tenant, '/', PRIVILEGED_ROLE_ADMINISTRATOR);
  ruleOf(pra, 'Notification_Admin_Admin_Eligibility').notificationRecipients = ['secops@contoso.com'];
  ruleOf(pra, 'Notification_Admin_Admin_Assignment').notificationRecipients = [
    'secops@contoso.com',
    'pim-alerts@contoso.com',
  ];
  ruleOf(pra, 'Notification_Admin_EndUser_Assignment').notificationRecipients = ['pim-activations@contoso.com'];
  // Other roles: an alert on one kind of event only, so each finding has a role without it.
  ruleOf(ownPolicy(tenant, '/', USER_ADMINISTRATOR), 'Notification_Admin_Admin_Eligibility').notificationRecipients = [
    'iam@contoso.com',
  ];
  ruleOf(ownPolicy(tenant, '/', GLOBAL_ADMINISTRATOR), 'Notification_Admin_EndUser_Assignment').notificationRecipients =
    ['ga-watch@contoso.com'];
  ruleOf(pra, 'Notification_Admin_EndUser_Assignment').isDefaultRecipientsEnabled = false;
  const approval = ruleOf(pra, 'Approval_EndUser_Assignment').setting as {
    isApprovalRequired: boolean;
    approvalStages: Array<{ primaryApprovers: unknown[] }>;
  };
  approval.isApprovalRequired = true;
  approval.approvalStages[0].primaryApprovers = [
    {
      '@odata.type': '#microsoft.graph.singleUser',
      isBackup: false,
      userId: '5d3e1f2a-6b7c-4d8e-9f0a-1b2c3d4e5f60',
      description: 'Alice Approver',
    },
    {
      '@odata.type': '#microsoft.graph.groupMembers',
      isBackup: false,
      groupId: '6e4f2a3b-7c8d-4e9f-a01b-2c3d4e5f6a71',
      description: 'Tier 0 approvers',
    },
  ];
  ruleOf(pra, 'Enablement_EndUser_Assignment').enabledRules = [
    'MultiFactorAuthentication',
    'Justification',
    'Ticketing',
  ];
  Object.assign(ruleOf(pra, 'Expiration_Admin_Eligibility'), { isExpirationRequired: true, maximumDuration: 'P90D' });
  Object.assign(ruleOf(pra, 'Expiration_Admin_Assignment'), { isExpirationRequired: true, maximumDuration: 'P15D' });
  touched(pra, at, ADMIN);

  const userAdmin = ownPolicy(tenant, '/', USER_ADMINISTRATOR);
  ruleOf(userAdmin, 'Enablement_EndUser_Assignment').enabledRules = ['Justification'];
  const sharePoint = ownPolicy(tenant, '/', SHAREPOINT_ADMINISTRATOR);
  ruleOf(sharePoint, 'Enablement_EndUser_Assignment').enabledRules = [];
  Object.assign(ruleOf(sharePoint, 'AuthenticationContext_EndUser_Assignment'), { isEnabled: true, claimValue: 'c1' });
  const helpdesk = ownPolicy(tenant, '/', HELPDESK_ADMINISTRATOR);
  ruleOf(helpdesk, 'Expiration_EndUser_Assignment').maximumDuration = 'PT30M';
}

describe('role settings', () => {
  let world: World;
  afterEach(async () => world?.stop());

  it('writes role-settings.csv whose every cell follows the rules, and the digest names every finding', async () => {
    const now = new Date('2026-11-24T06:00:00Z');
    const tenant = generateTenant({
      seed: 'role-settings',
      now,
      users: 30,
      groups: 6,
      eligible: 40,
      active: 20,
      auditDays: 2,
      activationsPerDay: 1,
    });
    configure(tenant, new Date('2026-11-20T10:11:12Z'));
    world = await startWorld(tenant, { email: 'none' });
    world.graph.setNow(() => now);
    const excluded = tenant.users[tenant.users.length - 1];
    const run = await world.cli(['daily', '--now', now.toISOString()], { EXCLUDED_PRINCIPAL_IDS: excluded.id });
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(0);

    const rows = await world.csv(world.reports, `${dayPath(now)}role-settings.csv`);
    expect(rows[0]).toEqual([...ROLE_SETTINGS_COLUMNS]);
    const expected = expectedRoleSettings(tenant);
    expect(privilegedGroups(tenant).size).toBeGreaterThan(0);
    expect(records(rows)).toEqual(expected);
    // The durations as numbers, the approvers by name.
    const byId = new Map(records(rows).map((r) => [r['Role Id'], r]));
    expect(byId.get(HELPDESK_ADMINISTRATOR)!['Max Activation (hours)']).toBe('0.5');
    expect(byId.get(PRIVILEGED_ROLE_ADMINISTRATOR)!.Approvers).toBe('Alice Approver; Tier 0 approvers');
    expect(byId.get(PRIVILEGED_ROLE_ADMINISTRATOR)!['Max Eligible (days)']).toBe('90');
    expect(byId.get(GLOBAL_ADMINISTRATOR)!['Max Eligible (days)']).toBe('');
    expect(byId.get(PRIVILEGED_ROLE_ADMINISTRATOR)!['Alert On Activation']).toBe('pim-activations@contoso.com');
    expect(byId.get(PRIVILEGED_ROLE_ADMINISTRATOR)!['Default Recipients On Activation Alert']).toBe('No');

    const digest = (await world.read(world.reports, `${dayPath(now)}digest.txt`))!;
    const lines = expectedFindingLines(tenant, expected, new Set([excluded.id]));
    expect(digest).not.toContain(`active assignment of ${excluded.displayName} (${excluded.id})`);
    expect(lines.some((l) => l.includes('MS.AAD.7.5'))).toBe(true);
    expect(lines.some((l) => l.includes('MS.AAD.7.6'))).toBe(true);
    expect(lines.some((l) => l.includes('! MFA | SharePoint'))).toBe(false); // an authentication context instead
    expect(lines.some((l) => l.includes('! MFA | User Administrator'))).toBe(true);
    for (const line of lines) expect(digest).toContain(line);
    const shown = digest.split('\n').filter((l) => /^! (MS\.AAD\.7\.[5-9]|MFA) \|/.test(l));
    expect(shown.sort()).toEqual([...lines].sort());
    expect(digest).toContain('What changed in role settings (0)');

    const manifest = JSON.parse((await world.read(world.reports, `${dayPath(now)}manifest.json`))!);
    expect(manifest.files.map((f: { name: string }) => f.name)).toContain('role-settings.csv');
    expect(manifest.digest.roleSettingsFindings).toBe(lines.length);
    // One listing for every role, filtered as Graph requires; no request per role.
    const listings = world.graph.requests.filter((r) => r.path === '/v1.0/policies/roleManagementPolicyAssignments');
    const roleListings = listings.filter((r) => r.query.$filter === "scopeId eq '/' and scopeType eq 'DirectoryRole'");
    expect(roleListings.length).toBe(Math.ceil(tenant.roleDefinitions.length / 25));
    expect(listings.every((r) => r.batched || roleListings.includes(r))).toBe(true);

    const exported = await world.cli(['export', '--dataset', 'role-settings', '--now', now.toISOString()]);
    expect(exported.code).toBe(0);
    expect(records(parseCsv(exported.stdout))).toEqual(expected);
  });

  it("names the changed approval of Global Administrator and another role's maximum activation, with before and after", async () => {
    const day1 = new Date('2026-11-24T06:00:00Z');
    const day2 = new Date('2026-11-25T06:00:00Z');
    const tenant = generateTenant({
      seed: 'role-settings-change',
      now: day1,
      users: 20,
      groups: 3,
      eligible: 20,
      active: 8,
      auditDays: 2,
      activationsPerDay: 1,
    });
    configure(tenant, new Date('2026-11-20T10:11:12Z'));
    world = await startWorld(tenant, { email: 'none' });
    world.graph.setNow(() => day1);
    expect((await world.cli(['daily', '--now', day1.toISOString()])).code).toBe(0);

    const changedAt = new Date('2026-11-24T15:16:17Z');
    const ga = ownPolicy(tenant, '/', GLOBAL_ADMINISTRATOR);
    const setting = ruleOf(ga, 'Approval_EndUser_Assignment').setting as {
      isApprovalRequired: boolean;
      approvalStages: Array<{ primaryApprovers: unknown[] }>;
    };
    setting.isApprovalRequired = true;
    setting.approvalStages[0].primaryApprovers = [
      {
        '@odata.type': '#microsoft.graph.singleUser',
        isBackup: false,
        userId: '5d3e1f2a-6b7c-4d8e-9f0a-1b2c3d4e5f60',
        description: 'Alice Approver',
      },
    ];
    touched(ga, changedAt, ADMIN);
    const helpdesk = ownPolicy(tenant, '/', HELPDESK_ADMINISTRATOR);
    ruleOf(helpdesk, 'Expiration_EndUser_Assignment').maximumDuration = 'PT4H';
    touched(helpdesk, changedAt, ADMIN);
    world.graph.setTenant(tenant);
    world.graph.setNow(() => day2);
    expect((await world.cli(['daily', '--now', day2.toISOString()])).code).toBe(0);

    const digest = (await world.read(world.reports, `${dayPath(day2)}digest.txt`))!;
    expect(digest).toContain('Compared with the settings stored on 2026-11-24.');
    expect(digest).toContain(
      '- Global Administrator | Approval Required | No → Yes | 2026-11-24 15:16:17 | Dana Policy-Admin',
    );
    expect(digest).toContain(
      '- Global Administrator | Approvers | (blank) → Alice Approver | 2026-11-24 15:16:17 | Dana Policy-Admin',
    );
    expect(digest).toContain(
      '- Helpdesk Administrator | Max Activation (hours) | 0.5 → 4 | 2026-11-24 15:16:17 | Dana Policy-Admin',
    );
    expect(digest).toContain('What changed in role settings (3)');
    expect(digest).not.toContain('! MS.AAD.7.6');
    const html = (await world.read(world.reports, `${dayPath(day2)}digest.html`))!;
    expect(html).toContain('Approval Required');
    expect(records(await world.csv(world.reports, `${dayPath(day2)}role-settings.csv`))).toEqual(
      expectedRoleSettings(tenant),
    );
  });

  it('says so in the digest and manifest when the PIM for Groups policies may not be read', async () => {
    const now = new Date('2026-11-24T06:00:00Z');
    const tenant = generateTenant({
      seed: 'role-settings',
      now,
      users: 30,
      groups: 6,
      eligible: 40,
      active: 20,
      auditDays: 2,
      activationsPerDay: 1,
    });
    world = await startWorld(tenant, { email: 'none', groupPolicyRead: false });
    world.graph.setNow(() => now);
    expect((await world.cli(['daily', '--now', now.toISOString()])).code).toBe(0);
    expect(records(await world.csv(world.reports, `${dayPath(now)}role-settings.csv`))).toEqual(
      expectedRoleSettings(tenant, { groupPolicies: false }),
    );
    const digest = (await world.read(world.reports, `${dayPath(now)}digest.txt`))!;
    expect(digest).toMatch(
      /Incomplete: the PIM for Groups membership policies of \d+ group\(s\) .*403 AccessDenied.*RoleManagementPolicy\.Read\.AzureADGroup/,
    );
    const manifest = JSON.parse((await world.read(world.reports, `${dayPath(now)}manifest.json`))!);
    expect(manifest.incomplete).toContainEqual(
      expect.objectContaining({ list: 'roleSettings', status: 403, code: 'AccessDenied' }),
    );
  });
});
