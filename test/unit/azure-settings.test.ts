import { DEFAULT_AZURE_PRIVILEGED_ROLES, loadSettings, SettingsError } from '../../src/settings';

function fails(env: Record<string, string>, setting: string, text?: RegExp): void {
  let caught: unknown;
  try {
    loadSettings(env);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(SettingsError);
  expect((caught as SettingsError).setting).toBe(setting);
  if (text) expect((caught as SettingsError).message).toMatch(text);
}

describe('Azure resource settings', () => {
  it('are off unless AZURE_RESOURCE_SCOPES is set', () => {
    expect(loadSettings({}).azure).toBeUndefined();
  });

  it('read root, management groups, both subscription forms and resource groups', () => {
    const s = loadSettings({
      AZURE_RESOURCE_SCOPES:
        'root, /providers/Microsoft.Management/managementGroups/Contoso-Prod, /subscriptions/11111111-2222-3333-4444-555555555555/, /providers/Microsoft.Subscription/subscriptions/11111111-2222-3333-4444-555555555556,/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-app',
    });
    expect(s.azure?.scopes).toEqual([
      { kind: 'root' },
      { kind: 'path', path: '/providers/Microsoft.Management/managementGroups/Contoso-Prod' },
      { kind: 'path', path: '/subscriptions/11111111-2222-3333-4444-555555555555' },
      { kind: 'path', path: '/providers/Microsoft.Subscription/subscriptions/11111111-2222-3333-4444-555555555556' },
      { kind: 'path', path: '/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-app' },
    ]);
    expect(s.azure?.armEndpoint).toBe('https://management.azure.com');
    expect([...s.azure!.privilegedRoleIds].sort()).toEqual(Object.keys(DEFAULT_AZURE_PRIVILEGED_ROLES).sort());
    expect(Object.keys(DEFAULT_AZURE_PRIVILEGED_ROLES)).toHaveLength(4);
  });

  it('refuse a scope that is not one', () => {
    fails({ AZURE_RESOURCE_SCOPES: 'root,/subscriptions/not-a-guid' }, 'AZURE_RESOURCE_SCOPES', /not-a-guid/);
    fails({ AZURE_RESOURCE_SCOPES: ' , ' }, 'AZURE_RESOURCE_SCOPES', /no scope/);
  });

  it('accept only ARM hosts of the clouds and loopback', () => {
    for (const host of [
      'https://management.usgovcloudapi.net',
      'https://management.chinacloudapi.cn/',
      'https://127.0.0.1:4443',
    ]) {
      expect(loadSettings({ AZURE_RESOURCE_SCOPES: 'root', ARM_ENDPOINT: host }).azure?.armEndpoint).toBe(
        host.replace(/\/$/, ''),
      );
    }
    fails(
      { AZURE_RESOURCE_SCOPES: 'root', ARM_ENDPOINT: 'https://management.evil.example' },
      'ARM_ENDPOINT',
      /management\.azure\.com/,
    );
    fails({ ARM_ENDPOINT: 'http://management.azure.com' }, 'ARM_ENDPOINT', /https/);
  });

  it('read AZURE_PRIVILEGED_ROLE_IDS as GUIDs', () => {
    const s = loadSettings({
      AZURE_RESOURCE_SCOPES: 'root',
      AZURE_PRIVILEGED_ROLE_IDS: '8E3AF657-A8FF-443C-A75C-2FE8C4BCB635',
    });
    expect([...s.azure!.privilegedRoleIds]).toEqual(['8e3af657-a8ff-443c-a75c-2fe8c4bcb635']);
    fails({ AZURE_RESOURCE_SCOPES: 'root', AZURE_PRIVILEGED_ROLE_IDS: 'Owner' }, 'AZURE_PRIVILEGED_ROLE_IDS');
  });
});
