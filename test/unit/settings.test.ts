import { CISA_PRIVILEGED_ROLES, describeSettings, loadSettings, SettingsError } from '../../src/settings';

function fails(env: Record<string, string>, setting: string, text?: RegExp): SettingsError {
  let caught: unknown;
  try {
    loadSettings(env);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(SettingsError);
  const error = caught as SettingsError;
  expect(error.setting).toBe(setting);
  expect(error.message).toContain(setting);
  if (text) expect(error.message).toMatch(text);
  return error;
}

const email = {
  ACS_ENDPOINT: 'https://acs.communication.azure.com',
  EMAIL_SENDER: 'DoNotReply@1234.azurecomm.net',
  EMAIL_RECIPIENTS: 'secops@contoso.com, auditor@contoso.com',
};

describe('loadSettings', () => {
  it('applies the documented defaults', () => {
    const s = loadSettings({});
    expect(s.graphEndpoint).toBe('https://graph.microsoft.com');
    expect(s.storage).toEqual({ kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' });
    expect(s.reportsContainer).toBe('pim-reports');
    expect(s.archiveContainer).toBe('pim-archive');
    expect(s.email).toBeUndefined();
    expect(s.expiryWindowDays).toBe(14);
    expect([...s.privilegedRoleIds].sort()).toEqual(Object.keys(CISA_PRIVILEGED_ROLES).sort());
    expect(s.excludedPrincipalIds.size).toBe(0);
    expect(s.dailySchedule).toBe('0 0 6 * * *');
    expect(s.monthlySchedule).toBe('0 0 3 1 * *');
    expect(s.managedIdentityAvailable).toBe(false);
  });

  it('reads every setting', () => {
    const s = loadSettings({
      GRAPH_ENDPOINT: 'https://graph.microsoft.us/',
      MANAGED_IDENTITY_CLIENT_ID: 'AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE',
      IDENTITY_ENDPOINT: 'http://localhost:42356/msi/token',
      REPORTS_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net',
      REPORTS_CONTAINER: 'reports-1',
      ARCHIVE_CONTAINER: 'archive-1',
      ...email,
      EXPIRY_WINDOW_DAYS: '30',
      PRIVILEGED_ROLE_IDS: '62e90394-69f5-4237-9190-012177145e10',
      EXCLUDED_PRINCIPAL_IDS: '11111111-2222-3333-4444-555555555555,66666666-7777-8888-9999-000000000000',
      DAILY_SCHEDULE: '0 30 5 * * 1-5',
      MONTHLY_SCHEDULE: '0 0 4 2 * *',
    });
    expect(s.graphEndpoint).toBe('https://graph.microsoft.us');
    expect(s.managedIdentityClientId).toBe('aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee');
    expect(s.managedIdentityAvailable).toBe(true);
    expect(s.storage).toEqual({ kind: 'accountUrl', accountUrl: 'https://acct.blob.core.windows.net' });
    expect(s.email).toEqual({
      transport: { kind: 'endpoint', endpoint: 'https://acs.communication.azure.com' },
      sender: 'DoNotReply@1234.azurecomm.net',
      recipients: ['secops@contoso.com', 'auditor@contoso.com'],
    });
    expect(s.expiryWindowDays).toBe(30);
    expect([...s.privilegedRoleIds]).toEqual(['62e90394-69f5-4237-9190-012177145e10']);
    expect(s.excludedPrincipalIds.size).toBe(2);
    expect(s.dailySchedule).toBe('0 30 5 * * 1-5');
  });

  it.each([
    [{ GRAPH_ENDPOINT: 'graph.microsoft.com' }, 'GRAPH_ENDPOINT', /not a valid URL/],
    [{ GRAPH_ENDPOINT: 'http://graph.microsoft.com' }, 'GRAPH_ENDPOINT', /https/],
    [{ MANAGED_IDENTITY_CLIENT_ID: 'my-identity' }, 'MANAGED_IDENTITY_CLIENT_ID', /GUID/],
    [{ REPORTS_STORAGE_ACCOUNT_URL: 'acct.blob.core.windows.net' }, 'REPORTS_STORAGE_ACCOUNT_URL', /URL/],
    [{ REPORTS_STORAGE_CONNECTION_STRING: 'nonsense' }, 'REPORTS_STORAGE_CONNECTION_STRING', /key=value/],
    [{ REPORTS_CONTAINER: 'PIM_Reports' }, 'REPORTS_CONTAINER', /container name/],
    [{ ARCHIVE_CONTAINER: 'pim-reports' }, 'ARCHIVE_CONTAINER', /differ/],
    [{ EXPIRY_WINDOW_DAYS: 'fourteen' }, 'EXPIRY_WINDOW_DAYS', /whole number/],
    [{ EXPIRY_WINDOW_DAYS: '0' }, 'EXPIRY_WINDOW_DAYS', /1 to 365/],
    [{ PRIVILEGED_ROLE_IDS: 'Global Administrator' }, 'PRIVILEGED_ROLE_IDS', /not one/],
    [{ EXCLUDED_PRINCIPAL_IDS: '62e90394-69f5-4237-9190-012177145e1' }, 'EXCLUDED_PRINCIPAL_IDS', /GUID/],
    [{ DAILY_SCHEDULE: '0 6 * * *' }, 'DAILY_SCHEDULE', /six-field/],
    [{ DAILY_SCHEDULE: '0 0 25 * * *' }, 'DAILY_SCHEDULE', /hour/],
    [{ MONTHLY_SCHEDULE: '0 0 3 1 13 *' }, 'MONTHLY_SCHEDULE', /month/],
    [{ ...email, EMAIL_RECIPIENTS: 'secops@contoso.com, not-an-address' }, 'EMAIL_RECIPIENTS', /not-an-address/],
    [{ ...email, EMAIL_SENDER: 'DoNotReply' }, 'EMAIL_SENDER', /valid email/],
    [{ ACS_ENDPOINT: email.ACS_ENDPOINT, EMAIL_SENDER: email.EMAIL_SENDER }, 'EMAIL_RECIPIENTS', /required/],
    [{ ACS_ENDPOINT: email.ACS_ENDPOINT, EMAIL_RECIPIENTS: 'a@b.com' }, 'EMAIL_SENDER', /required/],
    [{ EMAIL_RECIPIENTS: 'a@b.com' }, 'EMAIL_RECIPIENTS', /ACS_ENDPOINT/],
    [{ ...email, ACS_ENDPOINT: 'http://acs.communication.azure.com' }, 'ACS_ENDPOINT', /https/],
  ])('rejects %j naming %s', (env, setting, text) => {
    fails(env as Record<string, string>, setting, text);
  });

  it('never echoes a connection string in an error or in the description', () => {
    const secret = 'AccountKey=c2VjcmV0LWtleS12YWx1ZQ==';
    const error = fails(
      { REPORTS_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=https;${secret}`, EXPIRY_WINDOW_DAYS: '7' },
      'REPORTS_STORAGE_CONNECTION_STRING',
      /AccountName/,
    );
    expect(error.message).not.toContain('c2VjcmV0');
    const acs = fails(
      { ACS_CONNECTION_STRING: 'endpoint=http://x/;accesskey=c2VjcmV0', EMAIL_SENDER: 'a@b.com', EMAIL_RECIPIENTS: 'a@b.com' },
      'ACS_CONNECTION_STRING',
    );
    expect(acs.message).not.toContain('c2VjcmV0');
    const s = loadSettings({
      REPORTS_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=https;AccountName=acct;${secret}`,
      ACS_CONNECTION_STRING: 'endpoint=https://acs.communication.azure.com/;accesskey=c2VjcmV0',
      EMAIL_SENDER: 'a@b.com',
      EMAIL_RECIPIENTS: 'c@d.com',
    });
    expect(describeSettings(s)).not.toMatch(/c2VjcmV0|AccountKey/);
    const sas = fails({ REPORTS_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net/?sv=2024&sig=c2VjcmV0' }, 'REPORTS_STORAGE_ACCOUNT_URL', /query/);
    expect(sas.message).not.toContain('c2VjcmV0');
    const userinfo = fails({ GRAPH_ENDPOINT: 'https://user:c2VjcmV0@graph.microsoft.com' }, 'GRAPH_ENDPOINT', /credentials/);
    expect(userinfo.message).not.toContain('c2VjcmV0');
  });
});
