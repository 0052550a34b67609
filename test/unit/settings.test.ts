import { redact, streamLog } from '../../src/log';
import { createServices } from '../../src/services';
import { describeSettings, loadSchedules, loadSettings, SettingsError } from '../../src/settings';

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
    expect(s.unusedAfterDays).toBe(90);
    expect(s.privilegedRoleIds).toBeUndefined(); // unset: the CISA roles of src/pim/roles.ts
    expect(s.excludedPrincipalIds.size).toBe(0);
    expect(loadSchedules({})).toEqual({ daily: '0 0 6 * * *', monthly: '0 0 3 1 * *' });
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
      UNUSED_AFTER_DAYS: '120',
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
    expect(s.unusedAfterDays).toBe(120);
    expect([...s.privilegedRoleIds!]).toEqual(['62e90394-69f5-4237-9190-012177145e10']);
    expect(s.excludedPrincipalIds.size).toBe(2);
    expect(loadSchedules({ DAILY_SCHEDULE: '0 30 5 * * 1-5', MONTHLY_SCHEDULE: '0 0 4 2 * *' })).toEqual({
      daily: '0 30 5 * * 1-5',
      monthly: '0 0 4 2 * *',
    });
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
    [{ UNUSED_AFTER_DAYS: 'ninety' }, 'UNUSED_AFTER_DAYS', /whole number/],
    [{ UNUSED_AFTER_DAYS: '0' }, 'UNUSED_AFTER_DAYS', /1 to 3650/],
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

  it('EMAIL_RECIPIENTS: more addresses than ACS takes in one email (50) stop the run before any call, not its email every day', () => {
    const addresses = (n: number) => Array.from({ length: n }, (_, i) => `admin${i}@contoso.com`).join(',');
    expect(loadSettings({ ...email, EMAIL_RECIPIENTS: addresses(50) }).email?.recipients).toHaveLength(50);
    fails({ ...email, EMAIL_RECIPIENTS: addresses(51) }, 'EMAIL_RECIPIENTS', /51 addresses.*at most 50/);
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
      {
        ACS_CONNECTION_STRING: 'endpoint=http://x/;accesskey=c2VjcmV0',
        EMAIL_SENDER: 'a@b.com',
        EMAIL_RECIPIENTS: 'a@b.com',
      },
      'ACS_CONNECTION_STRING',
    );
    expect(acs.message).not.toContain('c2VjcmV0');
    const s = loadSettings({
      REPORTS_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=https;AccountName=acct;${secret};EndpointSuffix=core.windows.net`,
      ACS_CONNECTION_STRING: 'endpoint=https://acs.communication.azure.com/;accesskey=c2VjcmV0',
      EMAIL_SENDER: 'a@b.com',
      EMAIL_RECIPIENTS: 'c@d.com',
    });
    expect(describeSettings(s)).not.toMatch(/c2VjcmV0|AccountKey/);
    const sas = fails(
      { REPORTS_STORAGE_ACCOUNT_URL: 'https://acct.blob.core.windows.net/?sv=2024&sig=c2VjcmV0' },
      'REPORTS_STORAGE_ACCOUNT_URL',
      /query/,
    );
    expect(sas.message).not.toContain('c2VjcmV0');
    const userinfo = fails(
      { GRAPH_ENDPOINT: 'https://user:c2VjcmV0@graph.microsoft.com' },
      'GRAPH_ENDPOINT',
      /credentials/,
    );
    expect(userinfo.message).not.toContain('c2VjcmV0');
  });

  describe('hosts the credentials go to', () => {
    it.each([
      ['REPORTS_STORAGE_ACCOUNT_URL', 'https://acct.blob.core.windows.net'],
      ['REPORTS_STORAGE_ACCOUNT_URL', 'https://acct.blob.core.usgovcloudapi.net'],
      ['REPORTS_STORAGE_ACCOUNT_URL', 'https://acct.blob.core.chinacloudapi.cn'],
      ['REPORTS_STORAGE_ACCOUNT_URL', 'https://127.0.0.1:10000/devstoreaccount1'],
      ['ACS_ENDPOINT', 'https://contoso.unitedstates.communication.azure.com'],
      ['ACS_ENDPOINT', 'https://contoso.communication.azure.us'],
      ['ACS_ENDPOINT', 'https://localhost:8443'],
      ['GRAPH_ENDPOINT', 'https://graph.microsoft.com'],
      ['GRAPH_ENDPOINT', 'https://graph.microsoft.us'],
      ['GRAPH_ENDPOINT', 'https://dod-graph.microsoft.us'],
      ['GRAPH_ENDPOINT', 'https://microsoftgraph.chinacloudapi.cn'],
      ['GRAPH_ENDPOINT', 'https://127.0.0.1:8443'],
    ])('accepts %s = %s', (name, value) => {
      expect(() =>
        loadSettings({
          [name]: value,
          ...(name === 'ACS_ENDPOINT' ? { EMAIL_SENDER: email.EMAIL_SENDER, EMAIL_RECIPIENTS: 'a@b.com' } : {}),
        }),
      ).not.toThrow();
    });

    it.each([
      ['REPORTS_STORAGE_ACCOUNT_URL', 'https://attacker.example.com'],
      ['REPORTS_STORAGE_ACCOUNT_URL', 'https://acct.blob.core.windows.net.attacker.example'],
      ['REPORTS_STORAGE_ACCOUNT_URL', 'https://acct.file.core.windows.net'],
      ['ACS_ENDPOINT', 'https://acs.attacker.example'],
      ['ACS_ENDPOINT', 'https://communication.azure.com.attacker.example'],
      ['GRAPH_ENDPOINT', 'https://graph.attacker.example'],
      ['GRAPH_ENDPOINT', 'https://graph.microsoft.com.attacker.example'],
      ['GRAPH_ENDPOINT', 'https://10.0.0.5'],
    ])('rejects %s = %s, naming it, before any call', (name, value) => {
      fails({ [name]: value, EMAIL_SENDER: email.EMAIL_SENDER, EMAIL_RECIPIENTS: 'a@b.com' }, name, /must point at/);
    });

    it('checks the endpoints inside connection strings too', () => {
      const key = 'c2VjcmV0LWtleS12YWx1ZQ==';
      fails(
        {
          REPORTS_STORAGE_CONNECTION_STRING: `AccountName=a;AccountKey=${key};BlobEndpoint=https://evil.example.com/a`,
        },
        'REPORTS_STORAGE_CONNECTION_STRING',
        /must point at/,
      );
      fails(
        {
          REPORTS_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=https;AccountName=a;AccountKey=${key};EndpointSuffix=evil.example`,
        },
        'REPORTS_STORAGE_CONNECTION_STRING',
        /must point at/,
      );
      fails(
        {
          ACS_CONNECTION_STRING: `endpoint=https://evil.example/;accesskey=${key}`,
          EMAIL_SENDER: 'a@b.com',
          EMAIL_RECIPIENTS: 'a@b.com',
        },
        'ACS_CONNECTION_STRING',
        /must point at/,
      );
    });
  });

  const acs = (cs: string) => ({ ACS_CONNECTION_STRING: cs, EMAIL_SENDER: 'a@b.com', EMAIL_RECIPIENTS: 'a@b.com' });

  describe('connection strings, checked when read', () => {
    const key = 'c2VjcmV0LWtleS12YWx1ZQ==';
    it.each([
      [
        { REPORTS_STORAGE_CONNECTION_STRING: `AccountName=acct;AccountKey=${key}` },
        'REPORTS_STORAGE_CONNECTION_STRING',
        /no blob endpoint/,
      ],
      [
        { REPORTS_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${key}` },
        'REPORTS_STORAGE_CONNECTION_STRING',
        /no blob endpoint/,
      ],
      [
        {
          REPORTS_STORAGE_CONNECTION_STRING: `AccountName=acct;AccountKey=not base64!;BlobEndpoint=https://acct.blob.core.windows.net`,
        },
        'REPORTS_STORAGE_CONNECTION_STRING',
        /not base64/,
      ],
      [
        {
          REPORTS_STORAGE_CONNECTION_STRING: `AccountName=acct;AccountKey=${key};BlobEndpoint=http://acct.blob.core.windows.net`,
        },
        'REPORTS_STORAGE_CONNECTION_STRING',
        /plain http only to a loopback/,
      ],
      [
        {
          REPORTS_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=${key};EndpointSuffix=core.windows.net`,
        },
        'REPORTS_STORAGE_CONNECTION_STRING',
        /plain http only to a loopback/,
      ],
      [
        { REPORTS_STORAGE_CONNECTION_STRING: `BlobEndpoint=https://acct.blob.core.windows.net` },
        'REPORTS_STORAGE_CONNECTION_STRING',
        /AccountKey/,
      ],
      [
        acs('endpoint=https://acs.communication.azure.com/;accesskey=not-base64!'),
        'ACS_CONNECTION_STRING',
        /accesskey that is not base64/,
      ],
      [acs('endpoint=https://acs.communication.azure.com/;accesskey='), 'ACS_CONNECTION_STRING', /not base64/],
      [acs(`accesskey=${key}`), 'ACS_CONNECTION_STRING', /missing endpoint/],
      [acs(`endpoint=http://127.0.0.1:9999/;accesskey=${key}`), 'ACS_CONNECTION_STRING', /https/],
    ])('rejects %j naming %s', (env, setting, text) => {
      const error = fails(env as Record<string, string>, setting, text);
      expect(error.message).not.toContain(key);
    });

    it('accepts what the portal and Azurite give, and what the SDK clients then take', () => {
      for (const cs of [
        `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${key};EndpointSuffix=core.windows.net`,
        `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${key};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;`,
        'BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sv=2024-11-04&sig=abc',
        'UseDevelopmentStorage=true',
      ]) {
        const s = loadSettings({ REPORTS_STORAGE_CONNECTION_STRING: cs });
        expect(() => createServices(s, { info() {}, warn() {}, error() {} })).not.toThrow();
      }
      const s = loadSettings(acs(`endpoint=https://acs.communication.azure.com/;accesskey=${key}`));
      expect(() => createServices(s, { info() {}, warn() {}, error() {} })).not.toThrow();
    });
  });

  describe('secrets', () => {
    it('a password in a URL setting is never in the error', () => {
      for (const value of [
        'http://admin:hunter2secret@graph.microsoft.com',
        'ftp://admin:hunter2secret@x',
        'https://admin:hunter2secret@graph.microsoft.com/?a=b',
      ]) {
        const error = fails({ GRAPH_ENDPOINT: value }, 'GRAPH_ENDPOINT');
        expect(error.message).not.toContain('hunter2secret');
      }
      const error = fails(
        {
          REPORTS_STORAGE_CONNECTION_STRING:
            'AccountName=a;AccountKey=c2VjcmV0;BlobEndpoint=http://admin:hunter2secret@evil.example/a',
        },
        'REPORTS_STORAGE_CONNECTION_STRING',
      );
      expect(error.message).not.toContain('hunter2secret');
    });

    it('the actual secret values in force are redacted from log lines, in whatever text they come', () => {
      const identityHeader = 'f3c1a9e07b2d4c58a6e1';
      const accessKey = 'QUNTYWNjZXNza2V5dmFsdWUxMjM0NTY3ODkw';
      const accountKey = 'YWNjb3VudGtleXZhbHVlMDk4NzY1NDMyMQ==';
      const s = loadSettings({
        IDENTITY_ENDPOINT: 'http://127.0.0.1:4000/msi/token',
        IDENTITY_HEADER: identityHeader,
        REPORTS_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${accountKey};EndpointSuffix=core.windows.net`,
        ...acs(`endpoint=https://acs.communication.azure.com/;accesskey=${accessKey}`),
      });
      const lines: string[] = [];
      const log = streamLog({ write: (l: string) => lines.push(l) } as unknown as NodeJS.WritableStream);
      createServices(s, log);
      log.error(
        `identity endpoint said: header was ${identityHeader}; key ${accessKey} / ${accountKey}; at https://user:pa55word@host/x`,
      );
      expect(lines.join('')).not.toMatch(
        new RegExp(`${identityHeader}|${accessKey}|${accountKey.slice(0, 20)}|pa55word`),
      );
      expect(redact(`{"header":"${identityHeader}"}`)).toBe('{"header":"[redacted]"}');
    });
  });
});

describe('HARVEST_OVERLAP_HOURS', () => {
  it('is 24 hours unless set', () => {
    expect(loadSettings({}).harvestOverlapHours).toBe(24);
    expect(loadSettings({ HARVEST_OVERLAP_HOURS: '36' }).harvestOverlapHours).toBe(36);
  });

  it.each(['0', '-1', '1.5', '24h', '721'])('refuses %j, naming the setting', (value) => {
    expect(() => loadSettings({ HARVEST_OVERLAP_HOURS: value })).toThrow(
      `Setting HARVEST_OVERLAP_HOURS must be a whole number of hours from 1 to 720, got "${value}"`,
    );
  });
});
