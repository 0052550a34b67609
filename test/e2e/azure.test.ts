/**
 * PIM for Azure resources, end to end: the daily run reads the ARM simulator (management groups
 * expanded, nextLink paging, 429s, both subscription path forms, inherited rows repeated at child
 * scopes) and writes every Azure schedule once at its own scope, groups expanded through Graph.
 */
import { canonicalScope, startArmSimulator, type ArmEstate, type ArmSimulator } from '../../tools/arm-simulator';
import { generateAzureEstate } from '../../tools/tenant/azure';
import { generateTenant, transitiveMemberIds } from '../../tools/tenant/generate';
import type { SimTenant } from '../../tools/tenant/model';
import { testTls } from '../../tools/tls';
import { parseCsv } from '../support/expected';
import { rewriteAsKeyedLines } from '../support/snapshots';
import { records, startWorld, type World } from '../support/world';

const NOW = new Date('2026-11-24T06:00:00Z');
const folder = 'daily/2026/11/24/';

function scopeType(scope: string): string {
  if (/^\/providers\/microsoft\.management\/managementgroups\/[^/]+$/.test(scope)) return 'Management group';
  if (/^\/subscriptions\/[^/]+$/.test(scope)) return 'Subscription';
  if (/^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+$/.test(scope)) return 'Resource group';
  return 'Resource';
}

/**
 * The oracle: each schedule once at its own scope; a group's transitive members each get its
 * schedule; its PIM-for-Groups eligible members get an eligible row whatever the group's state.
 */
function expectedKeys(
  tenant: SimTenant,
  estate: ArmEstate,
  state: 'Eligible' | 'Active',
  inScope: (scope: string) => boolean = () => true,
): string[] {
  const groupsById = new Map(tenant.groups.map((g) => [g.id, g]));
  const out: string[] = [];
  for (const s of [
    ...estate.eligibility.map((e) => ['Eligible', e] as const),
    ...estate.assignments.map((a) => ['Active', a] as const),
  ]) {
    const [own, schedule] = s;
    const scope = canonicalScope(schedule.scope);
    if (!inScope(scope)) continue;
    const key = (member: string, memberType: string, via: string) =>
      [scope, schedule.roleId, member, memberType, via].join('|');
    if (own === state) out.push(key(schedule.principal.id, 'Direct', ''));
    if (schedule.principal.type !== 'Group') continue;
    if (own === state)
      for (const member of transitiveMemberIds(groupsById, schedule.principal.id))
        out.push(key(member, 'Group', schedule.principal.id));
    if (state === 'Eligible') {
      for (const e of tenant.groupEligibilitySchedules)
        if (e.groupId === schedule.principal.id && e.accessId === 'member')
          out.push(key(e.principalId, 'Group', schedule.principal.id));
    }
  }
  return out.sort();
}

/** The oracle's scope test: at or below a management group of the estate (its descendants included). */
function atOrBelow(estate: ArmEstate, mgId: string): (scope: string) => boolean {
  const mgs = new Set([mgId.toLowerCase()]);
  for (let grew = true; grew;) {
    grew = false;
    for (const m of estate.managementGroups)
      if (m.parentId && mgs.has(m.parentId.toLowerCase()) && !mgs.has(m.id.toLowerCase())) {
        mgs.add(m.id.toLowerCase());
        grew = true;
      }
  }
  const subs = new Set(
    estate.subscriptions.filter((s) => mgs.has(s.managementGroupId.toLowerCase())).map((s) => s.id.toLowerCase()),
  );
  return (scope) => {
    const mg = /^\/providers\/microsoft\.management\/managementgroups\/([^/]+)$/.exec(scope);
    if (mg) return mgs.has(mg[1]);
    const sub = /^\/subscriptions\/([^/]+)/.exec(scope);
    return Boolean(sub && subs.has(sub[1]));
  };
}

const keyOf = (r: Record<string, string>) =>
  [r['Scope Id'], r['Role Id'], r['Principal Id'], r['Member Type'], r['Via Group Id']].join('|');

describe('PIM for Azure resources in the daily run', () => {
  let world: World;
  let arm: ArmSimulator;
  /** The ARM simulator's clock (requests older than 30 days before it are gone). */
  let armNow = NOW;
  afterEach(async () => {
    await world?.stop();
    await arm?.stop();
  });

  async function setUp(seed: string) {
    armNow = NOW;
    const tenant = generateTenant({
      seed,
      now: NOW,
      users: 30,
      groups: 5,
      eligible: 20,
      active: 10,
      auditDays: 5,
      activationsPerDay: 1,
      pimGroupShare: 0,
    });
    world = await startWorld(tenant, { email: 'none', memberReadHidden: true });
    world.graph.setNow(() => NOW);
    const estate = generateAzureEstate(tenant, {
      seed,
      now: NOW,
      tenantId: world.identity.tenantId,
      managementGroups: 3,
      subscriptions: 4,
    });
    arm = await startArmSimulator({ estate, tls: testTls(), pageSize: 3, now: () => armNow });
    const env = { AZURE_RESOURCE_SCOPES: 'root', ARM_ENDPOINT: arm.url };
    return { tenant, estate, env };
  }

  /**
   * The next day, one eligibility replaced by a Contributor one (`name`) for another principal: the
   * Azure digest then counts 1 new and 1 removed against the first day's snapshot.
   */
  async function nextDayWithOneSwapped(estate: ArmEstate, env: Record<string, string>, name: string) {
    const next = new Date(NOW.getTime() + 86_400_000);
    world.graph.setNow(() => next);
    const removed = estate.eligibility.splice(0, 1)[0];
    estate.eligibility.push({
      ...removed,
      name,
      principal: estate.eligibility[1].principal,
      roleName: 'Contributor',
      roleId: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
    });
    expect((await world.cli(['daily', '--now', next.toISOString()], env)).code).toBe(0);
    const manifest = JSON.parse((await world.read(world.reports, 'daily/2026/11/25/manifest.json'))!) as {
      digest: { azure: Record<string, unknown> };
    };
    expect(manifest.digest.azure).toMatchObject({
      new: 1,
      removed: 1,
      baseline: { kind: 'previous', day: '2026-11-24' },
    });
  }

  it('lists every Azure schedule once at its own scope, groups expanded, in both files', async () => {
    const { tenant, estate, env } = await setUp('azure-e2e');
    arm.throttle(3, 0, /roleAssignmentSchedules$/i);
    const run = await world.cli(['daily', '--now', NOW.toISOString()], env);
    expect(run.code).toBe(0);

    for (const [name, state] of [
      ['azure-eligible-assignments.csv', 'Eligible'],
      ['azure-active-assignments.csv', 'Active'],
    ] as const) {
      const rows = records(await world.csv(world.reports, `${folder}${name}`));
      expect(rows.length).toBeGreaterThan(5);
      expect(rows.map(keyOf).sort()).toEqual(expectedKeys(tenant, estate, state));
      for (const r of rows) {
        expect(r['Scope Type']).toBe(scopeType(r['Scope Id']));
        expect(r['Scope Id']).toBe(r['Scope Id'].toLowerCase());
        expect(r['Scope Id']).not.toMatch(/microsoft\.subscription/);
        expect(r.Scope).not.toBe('');
        expect(r['Assignment State']).toBe(state);
      }
      const header = (await world.csv(world.reports, `${folder}${name}`))[0];
      expect(header).toHaveLength(21);
      expect(header[20]).toBe('Scope Type');
    }

    const active = records(await world.csv(world.reports, `${folder}azure-active-assignments.csv`));
    // Made outside PIM: a permanent Assigned schedule of the role assignment's own name, whether or not it names a request.
    const outside = estate.assignments.filter((a) => a.roleAssignmentName === a.name).map((a) => a.principal.id);
    expect(estate.assignments.some((a) => a.roleAssignmentName === a.name && a.requestName)).toBe(true);
    expect(estate.assignments.some((a) => a.roleAssignmentName === a.name && !a.requestName)).toBe(true);
    expect(estate.assignments.some((a) => a.roleAssignmentName !== a.name && a.end === null)).toBe(true);
    const flagged = active
      .filter((r) => r['Outside PIM'] === 'Yes' && r['Member Type'] === 'Direct')
      .map((r) => r['Principal Id']);
    expect(flagged.sort()).toEqual(outside.sort());
    const owner = active.find(
      (r) => r['Role Name'] === 'Owner' && r['Outside PIM'] === 'Yes' && r['Scope Type'] === 'Management group',
    );
    expect(owner).toMatchObject({ Privileged: 'Yes', Permanent: 'Yes', Scope: 'Contoso Platform' });

    // Paged, retried after 429, management groups with atScope(), subscriptions unfiltered, the delegated one never read.
    expect(arm.requests.some((r) => r.query.$skiptoken)).toBe(true);
    expect(arm.requests.filter((r) => r.status === 429)).toHaveLength(3);
    const lists = arm.requests.filter(
      (r) => /roleEligibilitySchedules$/i.test(r.path) && !r.query.$skiptoken && r.status === 200,
    );
    for (const r of lists)
      expect([r.path, r.query.$filter]).toEqual([r.path, /managementGroups/i.test(r.path) ? 'atScope()' : undefined]);
    expect(lists).toHaveLength(estate.managementGroups.length + estate.subscriptions.length);
    expect(arm.requests.some((r) => r.path.toLowerCase().includes(estate.foreignSubscriptions[0].id))).toBe(false);

    const manifest = JSON.parse((await world.read(world.reports, `${folder}manifest.json`))!) as {
      files: Array<{ name: string }>;
      incomplete: unknown[];
      azure: Record<string, unknown>;
      digest: { azure: Record<string, unknown> };
    };
    expect(manifest.files.map((f) => f.name)).toEqual(
      expect.arrayContaining(['azure-eligible-assignments.csv', 'azure-active-assignments.csv']),
    );
    expect(manifest.incomplete).toEqual([]);
    const privileged = new Set([
      '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
      'b24988ac-6180-42a0-ab88-20f7382dd24c',
      '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
      'f58310d9-a9f6-439a-9e8d-f62e7b41a168',
    ]);
    const findings = estate.assignments.filter(
      (a) =>
        a.end === null &&
        a.assignmentType === 'Assigned' &&
        privileged.has(a.roleId) &&
        /^(\/providers\/microsoft\.management\/managementgroups\/[^/]+|\/subscriptions\/[^/]+)$/.test(
          canonicalScope(a.scope),
        ),
    );
    expect(findings.length).toBeGreaterThan(0);
    const digest = (await world.read(world.reports, `${folder}digest.txt`))!;
    expect(digest).toContain(`Azure resources: permanent privileged assignments (${findings.length})`);
    expect(digest).toContain('Azure resources: new assignments (');
    expect(manifest.digest.azure).toMatchObject({
      permanentPrivilegedFindings: findings.length,
      baseline: { kind: 'first-run' },
    });
    expect(manifest.azure).toMatchObject({
      scopes: estate.managementGroups.length + estate.subscriptions.length,
      eligibleSchedules: estate.eligibility.length,
      incomplete: false,
    });
  });

  it('reports only what is granted at or below a configured child management group, not what its parents grant', async () => {
    const { tenant, estate, env } = await setUp('azure-child-mg');
    const child = estate.managementGroups.find((m) => m.id === 'Contoso-MG0')!;
    expect(child.parentId).toBe(estate.tenantId);
    const inScope = atOrBelow(estate, child.id);
    const parentRows = estate.eligibility.filter((e) => !inScope(canonicalScope(e.scope)));
    expect(parentRows.some((e) => canonicalScope(e.scope).endsWith(estate.tenantId))).toBe(true);
    const run = await world.cli(['daily', '--now', NOW.toISOString()], {
      ...env,
      AZURE_RESOURCE_SCOPES: `/providers/Microsoft.Management/managementGroups/${child.id}`,
    });
    expect(run.code).toBe(0);
    // ARM was asked at the child, which lists the root's grants too (atScope() is at or above).
    expect(
      arm.requests.some((r) =>
        r.path
          .toLowerCase()
          .endsWith(`${child.id.toLowerCase()}/providers/microsoft.authorization/roleeligibilityschedules`),
      ),
    ).toBe(true);
    for (const [name, state] of [
      ['azure-eligible-assignments.csv', 'Eligible'],
      ['azure-active-assignments.csv', 'Active'],
    ] as const) {
      const rows = records(await world.csv(world.reports, `${folder}${name}`));
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.map(keyOf).sort()).toEqual(expectedKeys(tenant, estate, state, inScope));
      expect(rows.some((r) => r['Scope Id'].endsWith(estate.tenantId))).toBe(false);
    }
    const activations = records(await world.csv(world.reports, `${folder}azure-activations.csv`));
    expect(activations.length).toBeGreaterThan(0);
    for (const a of activations) expect(inScope(a['Scope Id'])).toBe(true);
  });

  it('reports new and removed Azure assignments against the Azure snapshot of the day before', async () => {
    const { estate, env } = await setUp('azure-days');
    expect((await world.cli(['daily', '--now', NOW.toISOString()], env)).code).toBe(0);
    await nextDayWithOneSwapped(estate, env, '0f0e0d0c-0b0a-4909-8807-060504030201');
    const digest = (await world.read(world.reports, 'daily/2026/11/25/digest.txt'))!;
    expect(digest).toContain('Azure resources: new assignments (1)');
    expect(digest).toContain('Azure resources: removed assignments (1)');
  });

  it('compares with an Azure snapshot stored as keyed JSON lines (before the value lines)', async () => {
    const { estate, env } = await setUp('azure-old-snapshot');
    expect((await world.cli(['daily', '--now', NOW.toISOString()], env)).code).toBe(0);
    const { header, rows } = await rewriteAsKeyedLines(
      world,
      'state/azure-schedules/2026-11-24.jsonl',
      'state/azure-snapshots/2026-11-24.jsonl',
    );
    expect(header).toMatchObject({ format: 'pim-reporter-schedules', version: 2 });
    expect(rows).toBeGreaterThan(5);
    await nextDayWithOneSwapped(estate, env, '0f0e0d0c-0b0a-4909-8807-060504030202');
    const stored = (await world.read(world.reports, 'state/azure-schedules/2026-11-25.jsonl'))!.split('\n');
    expect(JSON.parse(stored[0])).toEqual(header);
    expect(stored).toHaveLength(rows + 2);
  });

  it('keeps Azure activations ARM has forgotten, each request once, and the monthly pack holds every one of the month', async () => {
    const { estate, env } = await setUp('azure-activations');
    const provisioned = (from: number, to: number) =>
      estate.requests
        .filter(
          (r) =>
            r.requestType === 'SelfActivate' &&
            r.status === 'Provisioned' &&
            Date.parse(r.createdOn) >= from &&
            Date.parse(r.createdOn) < to,
        )
        .map((r) => r.name)
        .sort();
    const DAY = 86_400_000;
    const requestIds = (rows: Array<Record<string, string>>) =>
      rows.map((r) => r['Request Id'].slice(r['Request Id'].lastIndexOf('/') + 1)).sort();

    expect((await world.cli(['daily', '--now', NOW.toISOString()], env)).code).toBe(0);
    const day1 = records(await world.csv(world.reports, `${folder}azure-activations.csv`));
    expect(requestIds(day1)).toEqual(provisioned(NOW.getTime() - 30 * DAY, NOW.getTime()));
    expect(day1.length).toBeGreaterThan(3);
    expect(day1[0]).toMatchObject({ 'Scope Type': expect.stringMatching(/^(Subscription|Resource group|Resource)$/) });
    expect(Object.keys(day1[0])).toEqual([
      'Activated (UTC)',
      'User Group Name',
      'PrincipalName',
      'Principal Id',
      'Role Name',
      'Role Id',
      'Scope',
      'Scope Type',
      'Scope Id',
      'Start Time (UTC)',
      'End Time (UTC)',
      'Justification',
      'Ticket Number',
      'Ticket System',
      'Request Id',
    ]);

    // A later activation in November, then a run weeks later: ARM has forgotten most of November by then.
    const late = {
      ...estate.requests.find((r) => r.status === 'Provisioned' && r.requestType === 'SelfActivate')!,
      name: '1a2b3c4d-0000-4000-8000-00000000beef',
      createdOn: '2026-11-28T10:00:00.000Z',
      start: '2026-11-28T10:00:01.000Z',
    };
    estate.requests.push(late);
    const later = new Date('2026-12-20T06:00:00Z');
    world.graph.setNow(() => later);
    armNow = later;
    const run = await world.cli(['monthly', '--now', later.toISOString()], { ...env, AZURE_RESOURCE_SCOPES: 'root' });
    expect(run.code).toBe(0);
    const november = Date.parse('2026-11-01T00:00:00Z');
    const december = Date.parse('2026-12-01T00:00:00Z');
    // Most of November is beyond ARM's 30 days by now, so only the app's own store still has it.
    expect(provisioned(november, later.getTime() - 30 * DAY).length).toBeGreaterThan(0);
    const pack = records(await world.csv(world.archive, 'monthly/2026-11/azure-activations.csv'));
    expect(requestIds(pack)).toEqual(provisioned(november, december));
    expect(requestIds(pack)).toContain(late.name);
    const manifest = JSON.parse((await world.read(world.archive, 'monthly/2026-11/manifest.json'))!) as {
      files: Array<{ name: string }>;
      azure: Record<string, unknown>;
    };
    expect(manifest.files.map((f) => f.name)).toEqual(
      expect.arrayContaining([
        'azure-eligible-assignments.csv',
        'azure-active-assignments.csv',
        'azure-activations.csv',
      ]),
    );
    expect(manifest.azure).toMatchObject({ activations: pack.length });
  });

  it('does not seal a month before the Azure harvest has covered its end', async () => {
    const { env } = await setUp('azure-seal');
    arm.fail(/roleAssignmentScheduleRequests$/i, 403, 'AuthorizationFailed');
    const later = new Date('2026-12-02T06:00:00Z');
    world.graph.setNow(() => later);
    expect((await world.cli(['monthly', '--now', later.toISOString(), '--month', '2026-11'], env)).code).toBe(0);
    expect(await world.read(world.archive, 'monthly/2026-11/manifest.json')).toBeUndefined();
    arm.fail(undefined);
    expect((await world.cli(['monthly', '--now', later.toISOString(), '--month', '2026-11'], env)).code).toBe(0);
    expect(await world.read(world.archive, 'monthly/2026-11/manifest.json')).toBeDefined();
  });

  it('exports the Azure datasets on demand, and refuses them when Azure is off', async () => {
    const { tenant, estate, env } = await setUp('azure-export');
    const eligible = await world.cli(['export', '--dataset', 'azure-eligible', '--now', NOW.toISOString()], env);
    expect(eligible.code).toBe(0);
    const rows = records(parseCsv(eligible.stdout));
    expect(rows.map(keyOf).sort()).toEqual(expectedKeys(tenant, estate, 'Eligible'));
    const json = await world.cli(
      ['export', '--dataset', 'azure-activations', '--format', 'json', '--now', NOW.toISOString()],
      env,
    );
    expect(json.code).toBe(0);
    const activations = JSON.parse(json.stdout) as Array<Record<string, string>>;
    expect(activations.length).toBeGreaterThan(0);
    expect(activations[0]).toHaveProperty('Scope Type');
    const off = await world.cli(['export', '--dataset', 'azure-active', '--now', NOW.toISOString()]);
    expect(off.code).not.toBe(0);
    expect(off.stderr).toMatch(/AZURE_RESOURCE_SCOPES/);
  });

  it('degrades visibly when ARM refuses a scope: the Entra report is whole, the Azure gap is in the digest and manifest', async () => {
    const { estate, env } = await setUp('azure-degraded');
    const sub = estate.subscriptions[1].id;
    arm.fail(
      new RegExp(`/subscriptions/${sub}/providers/Microsoft.Authorization/roleAssignmentSchedules$`, 'i'),
      403,
      'AuthorizationFailed',
    );
    const run = await world.cli(['daily', '--now', NOW.toISOString()], env);
    expect(run.code).toBe(0);
    expect(await world.read(world.reports, `${folder}active-assignments.csv`)).toBeDefined();
    const manifest = JSON.parse((await world.read(world.reports, `${folder}manifest.json`))!) as {
      incomplete: Array<{ list: string; status: number; code: string; reason: string }>;
      azure: Record<string, unknown>;
    };
    expect(manifest.incomplete).toEqual([
      expect.objectContaining({ list: 'azureResources', status: 403, code: 'AuthorizationFailed' }),
    ]);
    expect(manifest.incomplete[0].reason).toContain(sub);
    expect(manifest.azure.incomplete).toBe(true);
    const digest = (await world.read(world.reports, `${folder}digest.txt`))!;
    expect(digest).toContain(`Incomplete: Azure resources: roleAssignmentSchedules at`);
  });

  it('says in the manifest when the instances cannot be read, Outside PIM being No there', async () => {
    const { env } = await setUp('azure-no-instances');
    arm.fail(/roleAssignmentScheduleInstances$/i, 403, 'AuthorizationFailed');
    const run = await world.cli(['daily', '--now', NOW.toISOString()], env);
    expect(run.code).toBe(0);
    const active = records(await world.csv(world.reports, `${folder}azure-active-assignments.csv`));
    expect(active.length).toBeGreaterThan(0);
    expect(active.filter((r) => r['Outside PIM'] === 'Yes')).toEqual([]);
    const manifest = JSON.parse((await world.read(world.reports, `${folder}manifest.json`))!) as {
      incomplete: Array<{ list: string; status: number; reason: string }>;
    };
    expect(manifest.incomplete.length).toBeGreaterThan(0);
    for (const item of manifest.incomplete) {
      expect(item).toMatchObject({ list: 'azureResources', status: 403 });
      expect(item.reason).toMatch(/roleAssignmentScheduleInstances at .*'Outside PIM' is 'No'/);
    }
  });

  it('reports nothing of Azure and says so when ARM cannot be read at all', async () => {
    const { env } = await setUp('azure-down');
    arm.fail(/^\/subscriptions$/, 403, 'AuthorizationFailed');
    const run = await world.cli(['daily', '--now', NOW.toISOString()], env);
    expect(run.code).toBe(0);
    const rows = await world.csv(world.reports, `${folder}azure-eligible-assignments.csv`);
    expect(rows).toHaveLength(1);
    const manifest = JSON.parse((await world.read(world.reports, `${folder}manifest.json`))!) as {
      incomplete: Array<{ list: string; reason: string }>;
    };
    expect(manifest.incomplete).toEqual([expect.objectContaining({ list: 'azureResources' })]);
    expect(manifest.incomplete[0].reason).toMatch(/scopes could not be listed/);
  });
});
