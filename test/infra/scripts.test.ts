/**
 * infra/scripts/*.sh, run with a fake `az` on PATH that records its calls and answers like Graph and
 * ARM would. Checks what the scripts send, not Azure's behaviour (that needs a real tenant).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GRAPH_APP_ROLE_IDS, infraPath } from './bicep';

const posixIt = process.platform === 'win32' ? it.skip : it;

const PRINCIPAL = '11111111-2222-3333-4444-555555555555';
const GRAPH_SP = '99999999-8888-7777-6666-555555555555';
/** Member.Read.Hidden's app role id (Microsoft Graph permissions reference): optional, off by default. */
const MEMBER_READ_HIDDEN = '658aa5d8-239f-45c4-aa12-864f4fc7e490';

/** A fake `az` (Node script): appends each call's argv to $FAKE_AZ_LOG and prints a canned answer. */
const FAKE_AZ = `#!${process.execPath}
const fs = require('fs');
const args = process.argv.slice(2);
fs.appendFileSync(process.env.FAKE_AZ_LOG, JSON.stringify(args) + '\\n');
const arg = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const url = arg('--url') || '';
const query = arg('--query') || '';
const out = (s) => process.stdout.write(s + '\\n');
const roles = ${JSON.stringify({ ...GRAPH_APP_ROLE_IDS, 'Member.Read.Hidden': MEMBER_READ_HIDDEN })};
if (args[0] === 'rest') {
  if (arg('--method') === 'post') process.exit(0);
  if (url.includes("servicePrincipals(appId='00000003-0000-0000-c000-000000000000')")) return out('${GRAPH_SP}');
  if (url.endsWith('/appRoleAssignments')) return out(process.env.FAKE_GRANTED || '');
  if (url.includes('$select=appRoles')) {
    const name = /value=='([^']+)'/.exec(query)[1];
    return out(roles[name] || '');
  }
  if (url.endsWith('/servicePrincipals/${PRINCIPAL}')) return out('id-pim-test');
  process.exit(3);
}
if (args[0] === 'storage' && args[1] === 'container' && args[2] === 'immutability-policy') {
  const state = process.env.FAKE_POLICY_STATE || 'Unlocked';
  if (args[3] === 'show') {
    if (query === 'state') return out(state);
    if (query === 'etag') return out('"etag-1"');
    if (query === 'immutabilityPeriodSinceCreationInDays') return out(process.env.FAKE_POLICY_DAYS || '365');
  }
  process.exit(0);
}
if (args[0] === 'role' && args[1] === 'assignment' && args[2] === 'create') {
  const denied = process.env.FAKE_ROLE_DENIED;
  if (denied && (arg('--scope') || '').includes(denied)) {
    process.stderr.write("(AuthorizationFailed) The client 'me@contoso.com' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write'\\n");
    process.exit(1);
  }
  process.exit(0);
}
process.exit(4);
`;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  calls: string[][];
}

function run(script: string, args: string[], env: Record<string, string>): Run {
  const dir = mkdtempSync(path.join(tmpdir(), 'fake-az-'));
  try {
    const az = path.join(dir, 'az');
    writeFileSync(az, FAKE_AZ);
    chmodSync(az, 0o755);
    const log = path.join(dir, 'calls.log');
    writeFileSync(log, '');
    const result = spawnSync('sh', [infraPath('scripts', script), ...args], {
      encoding: 'utf8',
      // Only the fake az and the basic tools: no real az, no azd
      env: { PATH: `${dir}:/usr/bin:/bin`, FAKE_AZ_LOG: log, ...env },
    });
    const calls = readFileSync(log, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as string[]);
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const posts = (calls: string[][]) => calls.filter((c) => c[0] === 'rest' && c.includes('post'));

describe('grant-graph-permissions.sh', () => {
  posixIt('grants each missing permission with az rest, skipping those already granted', () => {
    const r = run('grant-graph-permissions.sh', [PRINCIPAL], { FAKE_GRANTED: GRAPH_APP_ROLE_IDS['AuditLog.Read.All'] });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const bodies = posts(r.calls).map((c) => JSON.parse(c[c.indexOf('--body') + 1]));
    expect(bodies).toHaveLength(Object.keys(GRAPH_APP_ROLE_IDS).length - 1);
    for (const body of bodies) expect(body).toMatchObject({ principalId: PRINCIPAL, resourceId: GRAPH_SP });
    expect(bodies.map((b) => b.appRoleId).sort()).toEqual(
      Object.entries(GRAPH_APP_ROLE_IDS)
        .filter(([name]) => name !== 'AuditLog.Read.All')
        .map(([, id]) => id)
        .sort(),
    );
    for (const c of posts(r.calls))
      expect(c[c.indexOf('--url') + 1]).toBe(
        `https://graph.microsoft.com/v1.0/servicePrincipals/${GRAPH_SP}/appRoleAssignedTo`,
      );
    expect(r.stdout).toContain('AuditLog.Read.All: already granted');
  });

  posixIt('takes the principal id from MANAGED_IDENTITY_PRINCIPAL_ID, and --dry-run changes nothing', () => {
    const r = run('grant-graph-permissions.sh', ['--dry-run'], { MANAGED_IDENTITY_PRINCIPAL_ID: PRINCIPAL });
    expect(r.status).toBe(0);
    expect(posts(r.calls)).toEqual([]);
    expect(r.stdout.match(/would grant/g)).toHaveLength(Object.keys(GRAPH_APP_ROLE_IDS).length);
  });

  posixIt('grants Member.Read.Hidden only when asked (--member-read-hidden or GRANT_MEMBER_READ_HIDDEN=true)', () => {
    const ids = (r: ReturnType<typeof run>) =>
      posts(r.calls).map((c) => JSON.parse(c[c.indexOf('--body') + 1]).appRoleId as string);
    expect(ids(run('grant-graph-permissions.sh', [PRINCIPAL], {}))).not.toContain(MEMBER_READ_HIDDEN);
    const flagged = run('grant-graph-permissions.sh', ['--member-read-hidden', PRINCIPAL], {});
    expect(flagged.status).toBe(0);
    expect(ids(flagged)).toContain(MEMBER_READ_HIDDEN);
    expect(ids(run('grant-graph-permissions.sh', [PRINCIPAL], { GRANT_MEMBER_READ_HIDDEN: 'true' }))).toContain(
      MEMBER_READ_HIDDEN,
    );
  });

  posixIt('refuses to run without a principal id', () => {
    const r = run('grant-graph-permissions.sh', [], {});
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('principal (object) id');
    expect(r.calls).toEqual([]);
  });
});

describe('postprovision.sh', () => {
  posixIt('prints the grant command when the deployment skipped the Graph permissions', () => {
    const r = run('postprovision.sh', [], {
      GRAPH_PERMISSIONS_GRANTED: 'false',
      MANAGED_IDENTITY_PRINCIPAL_ID: PRINCIPAL,
      ARCHIVE_IMMUTABILITY_STATE: 'Unlocked',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`./infra/scripts/grant-graph-permissions.sh ${PRINCIPAL}`);
    expect(r.calls).toEqual([]); // Unlocked: nothing to lock
  });

  posixIt('locks the archive policy when ARCHIVE_IMMUTABILITY_STATE is Locked', () => {
    const r = run('postprovision.sh', [], {
      GRAPH_PERMISSIONS_GRANTED: 'True',
      ARCHIVE_IMMUTABILITY_STATE: 'Locked',
      AZURE_RESOURCE_GROUP: 'rg-pim',
      REPORTS_STORAGE_ACCOUNT_NAME: 'strptabc',
      ARCHIVE_CONTAINER: 'pim-archive',
      ARCHIVE_RETENTION_DAYS: '2557',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('grant-graph-permissions.sh');
    const create = r.calls.find((c) => c[3] === 'create');
    expect(create).toEqual(
      expect.arrayContaining(['--period', '2557', '--container-name', 'pim-archive', '--account-name', 'strptabc']),
    );
    const lock = r.calls.find((c) => c[3] === 'lock');
    expect(lock).toEqual(expect.arrayContaining(['--if-match', '"etag-1"', '--resource-group', 'rg-pim']));
  });

  posixIt('leaves an already locked policy alone', () => {
    const r = run('lock-archive-immutability.sh', [], {
      FAKE_POLICY_STATE: 'Locked',
      AZURE_RESOURCE_GROUP: 'rg-pim',
      REPORTS_STORAGE_ACCOUNT_NAME: 'strptabc',
      ARCHIVE_RETENTION_DAYS: '365',
    });
    expect(r.status).toBe(0);
    expect(r.calls.filter((c) => c[3] === 'lock' || c[3] === 'create')).toEqual([]);
    expect(r.stdout).toContain('already locked at 365 days');
  });
});

describe('grant-azure-reader.sh', () => {
  const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
  const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
  const SUB = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

  posixIt('grants Reader to the identity at each scope, root as the tenant root group', () => {
    const r = run('grant-azure-reader.sh', [PRINCIPAL, `root, /subscriptions/${SUB}`, TENANT], {});
    expect(r.status).toBe(0);
    expect(r.calls).toEqual([
      [
        'role',
        'assignment',
        'create',
        '--assignee-object-id',
        PRINCIPAL,
        '--assignee-principal-type',
        'ServicePrincipal',
        '--role',
        READER,
        '--scope',
        `/providers/Microsoft.Management/managementGroups/${TENANT}`,
        '--only-show-errors',
      ],
      [
        'role',
        'assignment',
        'create',
        '--assignee-object-id',
        PRINCIPAL,
        '--assignee-principal-type',
        'ServicePrincipal',
        '--role',
        READER,
        '--scope',
        `/subscriptions/${SUB}`,
        '--only-show-errors',
      ],
    ]);
    expect(r.stdout).toContain(`Reader granted to the app identity at /subscriptions/${SUB}.`);
  });

  posixIt(
    'says clearly when the deployer lacks the right, with the command to run and elevated access at the root',
    () => {
      const r = run('grant-azure-reader.sh', [PRINCIPAL, `root,/subscriptions/${SUB}`, TENANT], {
        FAKE_ROLE_DENIED: TENANT,
      });
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(
        `NOT granted at /providers/Microsoft.Management/managementGroups/${TENANT}: you lack Microsoft.Authorization/roleAssignments/write there.`,
      );
      expect(r.stdout).toContain('elevate-access-global-admin');
      expect(r.stdout).toContain(`az role assignment create --assignee-object-id ${PRINCIPAL}`);
      expect(r.stdout).toContain(`Reader granted to the app identity at /subscriptions/${SUB}.`);
      expect(r.stdout).toContain('listed as incomplete');
    },
  );

  posixIt('does nothing when PIM for Azure resources is off', () => {
    const r = run('grant-azure-reader.sh', [PRINCIPAL, ''], {});
    expect(r.status).toBe(0);
    expect(r.calls).toEqual([]);
    expect(r.stdout).toMatch(/off/);
  });
});
