/**
 * Role settings from Graph's policy rules (src/pim/roleSettings.ts): the docs' sample read by rule
 * id in any order, ISO 8601 durations as numbers, findings and changes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AssignmentRow } from '../../src/pim/model';
import { ROLE_SETTINGS_TABLE } from '../../src/pim/model';
import {
  durationIn,
  roleSettingChanges,
  roleSettingsFindings,
  roleSettingsRow,
  RoleSettingsInputs,
  type RolePolicyAssignment,
} from '../../src/pim/roleSettings';

const GA = '62e90394-69f5-4237-9190-012177145e10';
const sample = (): RolePolicyAssignment =>
  (
    JSON.parse(
      readFileSync(join(__dirname, '../fixtures/roleManagementPolicyAssignments-list-expand.json'), 'utf8'),
    ) as { value: RolePolicyAssignment[] }
  ).value[0];
const names = { roleName: 'Global Administrator', roleId: GA, privileged: true };

describe('role settings', () => {
  it('reads the docs sample of a policy: every cell of its row', () => {
    const { row, missingRules } = roleSettingsRow(sample(), names);
    expect(missingRules).toEqual([]);
    expect(ROLE_SETTINGS_TABLE.values(row, undefined)).toEqual([
      'Global Administrator',
      GA,
      'Yes',
      '8',
      'Yes',
      '',
      'Yes',
      'No',
      'No',
      '',
      'Yes',
      '',
      'Yes',
      '',
      '',
      '',
      '',
      'Yes',
      'DirectoryRole_cab01047-8ad9-4792-8e42-569340767f1b_70c808b5-0d35-4863-a0ba-07888e99d448',
      '',
      '',
    ]);
  });

  it('finds rules by id, whatever their order', () => {
    const reversed = sample();
    reversed.policy!.rules = [...reversed.policy!.rules!].reverse();
    expect(roleSettingsRow(reversed, names).row).toEqual(roleSettingsRow(sample(), names).row);
  });

  it('leaves the cells of a missing rule blank and names the rule', () => {
    const lacking = sample();
    lacking.policy!.rules = lacking.policy!.rules!.filter((r) => r.id !== 'Approval_EndUser_Assignment');
    const { row, missingRules } = roleSettingsRow(lacking, names);
    expect(missingRules).toEqual(['Approval_EndUser_Assignment']);
    expect(row.approvalRequired).toBeNull();
    expect(ROLE_SETTINGS_TABLE.values(row, undefined)[8]).toBe('');
  });

  it('ISO 8601 durations as hours or days', () => {
    expect(durationIn('PT8H', 'hours')).toBe(8);
    expect(durationIn('PT30M', 'hours')).toBe(0.5);
    expect(durationIn('P365D', 'days')).toBe(365);
    expect(durationIn('P1DT12H', 'days')).toBe(1.5);
    expect(durationIn('P2W', 'days')).toBe(14);
    expect(durationIn('P1M', 'days')).toBeNull(); // a month has no fixed length: not guessed
    expect(durationIn('', 'hours')).toBeNull();
    expect(durationIn('PT', 'hours')).toBeNull();
  });

  it('findings: an alert counts only with an additional recipient; excluded principals are no 7.5 finding', () => {
    const { row } = roleSettingsRow(sample(), names);
    const inputs = new RoleSettingsInputs(new Set(['excluded-id']));
    const active = (principalId: string): AssignmentRow =>
      ({
        state: 'Active',
        privileged: true,
        outsidePim: true,
        memberType: 'Direct',
        principalType: 'User',
        principalId,
        principalDisplayName: principalId,
        roleName: 'Global Administrator',
      }) as AssignmentRow;
    inputs.observe(active('excluded-id'));
    inputs.observe(active('someone'));
    const findings = roleSettingsFindings([row], inputs).map((f) => `${f.policy} ${f.role}: ${f.text}`);
    expect(findings).toEqual([
      'MS.AAD.7.5 Global Administrator: active assignment of someone (someone) made outside PIM',
      'MS.AAD.7.6 Global Administrator: activation does not require approval',
      'MS.AAD.7.7 Global Administrator: an eligible assignment sends no alert (no additional recipient)',
      'MS.AAD.7.7 Global Administrator: an active assignment sends no alert (no additional recipient)',
      'MS.AAD.7.8 Global Administrator: activation sends no alert (no additional recipient)',
    ]);
  });

  it("changes: each differing column by role id, with the policy's last change", () => {
    const before = roleSettingsRow(sample(), names).row;
    const after = {
      ...before,
      approvalRequired: true,
      maxActivationHours: 4,
      lastModified: '2026-11-24T15:16:17.000Z',
      lastModifiedBy: 'Dana',
    };
    expect(roleSettingChanges([before], [after])).toEqual([
      {
        role: 'Global Administrator',
        roleId: GA,
        column: 'Max Activation (hours)',
        before: '8',
        after: '4',
        lastModified: '2026-11-24T15:16:17.000Z',
        lastModifiedBy: 'Dana',
      },
      {
        role: 'Global Administrator',
        roleId: GA,
        column: 'Approval Required',
        before: 'No',
        after: 'Yes',
        lastModified: '2026-11-24T15:16:17.000Z',
        lastModifiedBy: 'Dana',
      },
    ]);
    expect(roleSettingChanges([before], [before])).toEqual([]);
  });
});
