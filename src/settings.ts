/**
 * The one place that reads the environment (docs/settings.md). `loadSettings` validates every setting
 * before any Graph call or write; a malformed one throws a SettingsError naming it. Secrets
 * (connection strings) never appear in an error message or in `describeSettings`.
 */

export const DEFAULT_GRAPH_ENDPOINT = 'https://graph.microsoft.com';
export const DEFAULT_DAILY_SCHEDULE = '0 0 6 * * *';
export const DEFAULT_MONTHLY_SCHEDULE = '0 0 3 1 * *';

/** Every setting the app reads; infra tests check that the Bicep sets each one it needs. */
export const SETTING_NAMES = [
  'GRAPH_ENDPOINT',
  'MANAGED_IDENTITY_CLIENT_ID',
  'REPORTS_STORAGE_ACCOUNT_URL',
  'REPORTS_STORAGE_CONNECTION_STRING',
  'REPORTS_CONTAINER',
  'ARCHIVE_CONTAINER',
  'ACS_ENDPOINT',
  'ACS_CONNECTION_STRING',
  'EMAIL_SENDER',
  'EMAIL_RECIPIENTS',
  'EXPIRY_WINDOW_DAYS',
  'UNUSED_AFTER_DAYS',
  'PRIVILEGED_ROLE_IDS',
  'EXCLUDED_PRINCIPAL_IDS',
  'DAILY_SCHEDULE',
  'MONTHLY_SCHEDULE',
  'EXPORT_MAX_CONCURRENT',
  'HARVEST_OVERLAP_HOURS',
  'EXPIRY_REMINDER_DAYS',
  'REMINDERS_PER_RUN',
  'AZURE_RESOURCE_SCOPES',
  'ARM_ENDPOINT',
  'AZURE_PRIVILEGED_ROLE_IDS',
] as const;
export type SettingName = (typeof SETTING_NAMES)[number];

export type StorageSettings =
  { kind: 'accountUrl'; accountUrl: string } | { kind: 'connectionString'; connectionString: string };

export type EmailSettings =
  | {
      transport: { kind: 'endpoint'; endpoint: string } | { kind: 'connectionString'; connectionString: string };
      sender: string;
      recipients: string[];
    }
  | undefined;

export interface Settings {
  graphEndpoint: string;
  managedIdentityClientId?: string;
  /** True where the platform offers a managed identity (App Service / Functions: IDENTITY_ENDPOINT). */
  managedIdentityAvailable: boolean;
  storage: StorageSettings;
  reportsContainer: string;
  archiveContainer: string;
  email: EmailSettings;
  expiryWindowDays: number;
  /** An eligibility held this many days with no activation is listed as unused (UNUSED_AFTER_DAYS). */
  unusedAfterDays: number;
  /** The role template ids PRIVILEGED_ROLE_IDS names, lower case; unset, the CISA roles of src/pim/roles.ts. */
  privilegedRoleIds?: ReadonlySet<string>;
  excludedPrincipalIds: ReadonlySet<string>;
  /** Secret values in force (keys, SAS, the identity header), redacted from every log line by value. */
  secrets: string[];
  /** HTTP exports one instance runs at once; more are answered 429 with Retry-After. */
  exportMaxConcurrent: number;
  /** How far each harvest re-reads before its watermark: audit records reach Graph late. */
  harvestOverlapHours: number;
  /** Expiry reminders to the holders: thresholds in whole days, ascending, none when off (the default). */
  expiryReminderDays: number[];
  /** Reminder emails one run sends at most; the rest wait for the next run. */
  remindersPerRun: number;
  /** PIM for Azure resources; absent unless AZURE_RESOURCE_SCOPES is set. */
  azure?: AzureSettings;
}

export class SettingsError extends Error {
  constructor(
    readonly setting: string,
    problem: string,
  ) {
    super(`Setting ${setting} ${problem}`);
    this.name = 'SettingsError';
  }
}

type Env = Record<string, string | undefined>;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Deliberately plain: one @, no spaces, a dot in the domain. ACS rejects the rest itself.
const EMAIL = /^[^\s@,;<>"]+@[^\s@,;<>"]+\.[^\s@,;<>".]+$/;

function present(env: Env, name: SettingName): string | undefined {
  const value = env[name];
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

/**
 * What of a URL may be shown in an error: never its userinfo (a password) nor its query (a SAS
 * signature would be a secret).
 */
function shown(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1…@').replace(/[?#].*$/, '?…');
}

function httpsUrl(name: SettingName, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new SettingsError(name, `is not a valid URL: "${shown(value)}"`);
  }
  if (url.protocol !== 'https:') {
    throw new SettingsError(
      name,
      `must be an https:// URL (tokens are never sent over plain http), got "${shown(value)}"`,
    );
  }
  if (url.username || url.password) throw new SettingsError(name, 'must not carry credentials');
  if (url.search || url.hash)
    throw new SettingsError(
      name,
      `must not carry a query or fragment (a SAS token is never needed): "${shown(value)}"`,
    );
  allowedHost(name, url);
  return url.toString().replace(/\/+$/, '');
}

function guidList(name: SettingName, value: string): Set<string> {
  const ids = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const id of ids) {
    if (!GUID.test(id)) throw new SettingsError(name, `must be a comma-separated list of GUIDs; "${id}" is not one`);
  }
  return new Set(ids.map((id) => id.toLowerCase()));
}

function containerName(name: SettingName, value: string): string {
  // Azure container naming rules: 3-63 chars, lowercase letters, digits and single hyphens.
  if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(value)) {
    throw new SettingsError(
      name,
      `is not a valid container name: "${value}" (3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit)`,
    );
  }
  return value;
}

const NCRONTAB_FIELDS: Array<{ label: string; min: number; max: number }> = [
  { label: 'second', min: 0, max: 59 },
  { label: 'minute', min: 0, max: 59 },
  { label: 'hour', min: 0, max: 23 },
  { label: 'day', min: 1, max: 31 },
  { label: 'month', min: 1, max: 12 },
  { label: 'day-of-week', min: 0, max: 6 },
];
const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** Six-field NCRONTAB as the timer trigger reads it: https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions */
function ncrontab(name: SettingName, value: string): string {
  const fields = value.split(/\s+/);
  if (fields.length !== 6) {
    throw new SettingsError(
      name,
      `must be a six-field NCRONTAB expression "{second} {minute} {hour} {day} {month} {day-of-week}" in UTC, got "${value}"`,
    );
  }
  fields.forEach((field, i) => {
    const { label, min, max } = NCRONTAB_FIELDS[i];
    const names = i === 4 ? MONTH_NAMES : i === 5 ? DAY_NAMES : [];
    const number = (token: string): number => {
      const named = names.indexOf(token.toLowerCase());
      if (named >= 0) return i === 4 ? named + 1 : named;
      if (!/^\d+$/.test(token)) return NaN;
      return Number(token);
    };
    for (const part of field.split(',')) {
      const [range, step, extra] = part.split('/');
      const bad = () => new SettingsError(name, `has an invalid ${label} field "${field}" in "${value}"`);
      if (extra !== undefined || range === '') throw bad();
      if (step !== undefined && !(/^\d+$/.test(step) && Number(step) > 0)) throw bad();
      if (range === '*') continue;
      const bounds = range.split('-');
      if (bounds.length > 2) throw bad();
      const numbers = bounds.map(number);
      if (numbers.some((n) => Number.isNaN(n) || n < min || n > max)) throw bad();
      if (numbers.length === 2 && numbers[0] > numbers[1]) throw bad();
    }
  });
  return value;
}

export function loadSettings(env: Env = process.env): Settings {
  const graphEndpoint = httpsUrl('GRAPH_ENDPOINT', present(env, 'GRAPH_ENDPOINT') ?? DEFAULT_GRAPH_ENDPOINT);

  const clientId = present(env, 'MANAGED_IDENTITY_CLIENT_ID');
  if (clientId !== undefined && !GUID.test(clientId)) {
    throw new SettingsError(
      'MANAGED_IDENTITY_CLIENT_ID',
      `must be the identity's client id (a GUID), got "${clientId}"`,
    );
  }

  const accountUrl = present(env, 'REPORTS_STORAGE_ACCOUNT_URL');
  const storageConnection = present(env, 'REPORTS_STORAGE_CONNECTION_STRING');
  let storage: StorageSettings;
  if (accountUrl !== undefined && storageConnection !== undefined) {
    throw new SettingsError(
      'REPORTS_STORAGE_CONNECTION_STRING',
      'is set together with REPORTS_STORAGE_ACCOUNT_URL; set only one (the URL uses the managed identity)',
    );
  } else if (accountUrl !== undefined) {
    storage = { kind: 'accountUrl', accountUrl: httpsUrl('REPORTS_STORAGE_ACCOUNT_URL', accountUrl) };
  } else {
    storage = {
      kind: 'connectionString',
      connectionString: storageConnectionString(storageConnection ?? 'UseDevelopmentStorage=true'),
    };
  }

  const reportsContainer = containerName('REPORTS_CONTAINER', present(env, 'REPORTS_CONTAINER') ?? 'pim-reports');
  const archiveContainer = containerName('ARCHIVE_CONTAINER', present(env, 'ARCHIVE_CONTAINER') ?? 'pim-archive');
  if (reportsContainer === archiveContainer) {
    throw new SettingsError(
      'ARCHIVE_CONTAINER',
      `must differ from REPORTS_CONTAINER ("${reportsContainer}"): the archive is write-once`,
    );
  }

  const email = loadEmail(env);

  const windowText = present(env, 'EXPIRY_WINDOW_DAYS');
  let expiryWindowDays = 14;
  if (windowText !== undefined) {
    if (!/^\d+$/.test(windowText) || Number(windowText) < 1 || Number(windowText) > 365) {
      throw new SettingsError(
        'EXPIRY_WINDOW_DAYS',
        `must be a whole number of days from 1 to 365, got "${windowText}"`,
      );
    }
    expiryWindowDays = Number(windowText);
  }

  const unusedText = present(env, 'UNUSED_AFTER_DAYS');
  let unusedAfterDays = 90;
  if (unusedText !== undefined) {
    if (!/^\d+$/.test(unusedText) || Number(unusedText) < 1 || Number(unusedText) > 3650) {
      throw new SettingsError(
        'UNUSED_AFTER_DAYS',
        `must be a whole number of days from 1 to 3650, got "${unusedText}"`,
      );
    }
    unusedAfterDays = Number(unusedText);
  }

  const privilegedText = present(env, 'PRIVILEGED_ROLE_IDS');
  const privilegedRoleIds = privilegedText !== undefined ? guidList('PRIVILEGED_ROLE_IDS', privilegedText) : undefined;
  if (privilegedRoleIds?.size === 0) throw new SettingsError('PRIVILEGED_ROLE_IDS', 'is set but lists no role id');

  const excludedText = present(env, 'EXCLUDED_PRINCIPAL_IDS');
  const excludedPrincipalIds =
    excludedText !== undefined ? guidList('EXCLUDED_PRINCIPAL_IDS', excludedText) : new Set<string>();

  const settings: Omit<Settings, 'secrets' | 'exportMaxConcurrent' | 'expiryReminderDays' | 'remindersPerRun'> = {
    graphEndpoint,
    managedIdentityClientId: clientId?.toLowerCase(),
    managedIdentityAvailable: Boolean(env.IDENTITY_ENDPOINT || env.MSI_ENDPOINT),
    storage,
    reportsContainer,
    archiveContainer,
    email,
    expiryWindowDays,
    unusedAfterDays,
    privilegedRoleIds,
    excludedPrincipalIds,
    harvestOverlapHours: harvestOverlapHours(env),
  };
  // The timers read their schedules when they register; validated here too, so that any run of a
  // worker with a malformed one names it.
  loadSchedules(env);
  const reminders = expiryReminders(env, email);
  return {
    ...settings,
    secrets: secretsOf(settings, env),
    exportMaxConcurrent: exportMaxConcurrent(env),
    ...reminders,
    azure: loadAzureSettings(env),
  };
}

/**
 * HARVEST_OVERLAP_HOURS: how late an audit record may reach Graph and still be harvested (default
 * 24). At most 720 hours: Graph keeps 30 days of audit events, so a longer overlap reads nothing more.
 */
function harvestOverlapHours(env: Env): number {
  const text = present(env, 'HARVEST_OVERLAP_HOURS');
  if (text === undefined) return 24;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 720) {
    throw new SettingsError('HARVEST_OVERLAP_HOURS', `must be a whole number of hours from 1 to 720, got "${text}"`);
  }
  return Number(text);
}

/** The timers' schedules (DAILY_SCHEDULE, MONTHLY_SCHEDULE, or their defaults), validated. */
export interface Schedules {
  daily: string;
  monthly: string;
}

/**
 * Only the schedules, for the timer files, which register when the worker loads them: a malformed
 * one throws a SettingsError naming it, so the worker fails to start saying which setting is wrong.
 */
export function loadSchedules(env: Env = process.env): Schedules {
  return {
    daily: ncrontab('DAILY_SCHEDULE', present(env, 'DAILY_SCHEDULE') ?? DEFAULT_DAILY_SCHEDULE),
    monthly: ncrontab('MONTHLY_SCHEDULE', present(env, 'MONTHLY_SCHEDULE') ?? DEFAULT_MONTHLY_SCHEDULE),
  };
}

const MAX_EMAIL_RECIPIENTS = 50;

function loadEmail(env: Env): EmailSettings {
  const endpoint = present(env, 'ACS_ENDPOINT');
  const connection = present(env, 'ACS_CONNECTION_STRING');
  const sender = present(env, 'EMAIL_SENDER');
  const recipientsText = present(env, 'EMAIL_RECIPIENTS');

  if (endpoint !== undefined && connection !== undefined) {
    throw new SettingsError(
      'ACS_CONNECTION_STRING',
      'is set together with ACS_ENDPOINT; set only one (the endpoint uses the managed identity)',
    );
  }
  if (endpoint === undefined && connection === undefined) {
    if (sender !== undefined || recipientsText !== undefined) {
      const name = sender !== undefined ? 'EMAIL_SENDER' : 'EMAIL_RECIPIENTS';
      throw new SettingsError(
        name,
        'is set but email is not configured: set ACS_ENDPOINT (or ACS_CONNECTION_STRING) too',
      );
    }
    return undefined;
  }
  const transport =
    endpoint !== undefined
      ? { kind: 'endpoint' as const, endpoint: httpsUrl('ACS_ENDPOINT', endpoint) }
      : { kind: 'connectionString' as const, connectionString: acsConnectionString(connection!) };
  if (sender === undefined)
    throw new SettingsError(
      'EMAIL_SENDER',
      'is required when email is configured (ACS_ENDPOINT or ACS_CONNECTION_STRING)',
    );
  if (!EMAIL.test(sender)) throw new SettingsError('EMAIL_SENDER', `is not a valid email address: "${sender}"`);
  if (recipientsText === undefined) {
    throw new SettingsError(
      'EMAIL_RECIPIENTS',
      'is required when email is configured: a comma-separated list of addresses',
    );
  }
  const recipients = recipientsText
    .split(/[,;]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (recipients.length === 0) throw new SettingsError('EMAIL_RECIPIENTS', 'lists no address');
  // ACS refuses an email to more than 50 recipients (to, cc and bcc together), as tools/acs-simulator.ts
  // does: https://learn.microsoft.com/azure/communication-services/concepts/service-limits#email
  if (recipients.length > MAX_EMAIL_RECIPIENTS) {
    throw new SettingsError(
      'EMAIL_RECIPIENTS',
      `lists ${recipients.length} addresses; ACS sends one email to at most ${MAX_EMAIL_RECIPIENTS} recipients (use a distribution list)`,
    );
  }
  for (const r of recipients) {
    if (!EMAIL.test(r)) throw new SettingsError('EMAIL_RECIPIENTS', `contains an invalid address: "${r}"`);
  }
  return { transport, sender, recipients };
}

/** A one-line account of the settings in force, safe to log: no secret, only where things go. */
export function describeSettings(s: Settings): string {
  const storage =
    s.storage.kind === 'accountUrl'
      ? s.storage.accountUrl
      : /^UseDevelopmentStorage=true/i.test(s.storage.connectionString)
        ? 'development storage (Azurite)'
        : `connection string for ${/AccountName=([^;]+)/i.exec(s.storage.connectionString)?.[1] ?? 'an account'}`;
  const email = s.email
    ? `${s.email.recipients.length} recipient(s) via ${s.email.transport.kind === 'endpoint' ? s.email.transport.endpoint : 'an ACS connection string'}`
    : 'not configured';
  return `Graph ${s.graphEndpoint}; storage ${storage} (${s.reportsContainer}, ${s.archiveContainer}); email ${email}; expiry window ${s.expiryWindowDays} days; reminders ${
    s.expiryReminderDays.length > 0
      ? `at ${s.expiryReminderDays.join(', ')} day(s) left, at most ${s.remindersPerRun} a run`
      : 'off'
  }`;
}

// --- Hosts the app sends its token (or a key-signed request) to ---------------------------------

/**
 * The service's own hosts in each cloud the app supports, and loopback (Azurite and the local
 * simulators): a token or a signed request goes nowhere else. Storage endpoints per cloud:
 * https://learn.microsoft.com/azure/storage/common/storage-account-overview#standard-endpoints and
 * https://learn.microsoft.com/azure/china/resources-developer-guide#check-endpoints-in-azure;
 * Graph root endpoints per national cloud: https://learn.microsoft.com/graph/deployments.
 * (Storage accounts on Azure DNS zone endpoints, `*.zNN.blob.storage.azure.net`, are not accepted.)
 */
const ALLOWED_HOSTS: Partial<Record<SettingName, { hosts: RegExp; says: string }>> = {
  REPORTS_STORAGE_ACCOUNT_URL: {
    hosts: /^[a-z0-9-]+\.blob\.core\.(?:windows\.net|usgovcloudapi\.net|chinacloudapi\.cn)$/,
    says: '*.blob.core.windows.net, *.blob.core.usgovcloudapi.net or *.blob.core.chinacloudapi.cn',
  },
  REPORTS_STORAGE_CONNECTION_STRING: {
    hosts: /^[a-z0-9-]+\.blob\.core\.(?:windows\.net|usgovcloudapi\.net|chinacloudapi\.cn)$/,
    says: '*.blob.core.windows.net, *.blob.core.usgovcloudapi.net or *.blob.core.chinacloudapi.cn',
  },
  // ACS endpoints may carry the data location: https://contoso.unitedstates.communication.azure.com.
  ACS_ENDPOINT: {
    hosts: /^(?:[a-z0-9-]+\.)+communication\.azure\.(?:com|us)$/,
    says: '*.communication.azure.com or *.communication.azure.us',
  },
  ACS_CONNECTION_STRING: {
    hosts: /^(?:[a-z0-9-]+\.)+communication\.azure\.(?:com|us)$/,
    says: '*.communication.azure.com or *.communication.azure.us',
  },
  // ARM per cloud, as the Azure SDK's getArmEndpoint lists them:
  // https://github.com/Azure/azure-sdk-for-js/blob/e07b81cc858c6eb6aa967a065e59ebf159ea8e37/sdk/commerce/arm-commerce/src/static-helpers/cloudSettingHelpers.ts
  ARM_ENDPOINT: {
    hosts: /^(?:management\.azure\.com|management\.usgovcloudapi\.net|management\.chinacloudapi\.cn)$/,
    says: 'management.azure.com, management.usgovcloudapi.net or management.chinacloudapi.cn',
  },
  GRAPH_ENDPOINT: {
    hosts:
      /^(?:graph\.microsoft\.com|graph\.microsoft\.us|dod-graph\.microsoft\.us|microsoftgraph\.chinacloudapi\.cn)$/,
    says: 'graph.microsoft.com, graph.microsoft.us, dod-graph.microsoft.us or microsoftgraph.chinacloudapi.cn',
  },
};

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

function allowedHost(name: SettingName, url: URL): void {
  const rule = ALLOWED_HOSTS[name];
  if (!rule || isLoopback(url.hostname) || rule.hosts.test(url.hostname)) return;
  throw new SettingsError(
    name,
    `must point at ${rule.says} (or a loopback emulator), not "${url.hostname}": the app sends its credentials there`,
  );
}

// --- Connection strings: parsed, checked and their endpoint allowed when the settings are read ---

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** `key=value;…` pairs, keys lower-cased; a value keeps any `=` after the first (base64 padding). */
function connectionPairs(name: SettingName, value: string): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const part of value.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SettingsError(name, 'is not a connection string of key=value pairs separated by ";"');
    pairs.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return pairs;
}

/** An endpoint inside a connection string: https (http only to loopback), no userinfo, an allowed host. */
function connectionEndpoint(name: SettingName, key: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new SettingsError(name, `has a ${key} that is not a valid URL: "${shown(value)}"`);
  }
  if (url.username || url.password) throw new SettingsError(name, `has a ${key} that carries credentials`);
  const loopback = isLoopback(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new SettingsError(
      name,
      `must have an https:// ${key} (plain http only to a loopback emulator), got "${shown(value)}"`,
    );
  }
  allowedHost(name, url);
  return url;
}

/**
 * A storage connection string: development storage, or an account key or SAS with a blob endpoint
 * (BlobEndpoint, or DefaultEndpointsProtocol + AccountName + EndpointSuffix as the portal gives it).
 * Format: https://learn.microsoft.com/azure/storage/common/storage-configure-connection-string
 */
function storageConnectionString(value: string): string {
  const name = 'REPORTS_STORAGE_CONNECTION_STRING';
  if (/^UseDevelopmentStorage=true;?$/i.test(value)) return value;
  const pairs = connectionPairs(name, value);
  const accountName = pairs.get('accountname');
  const accountKey = pairs.get('accountkey');
  const sas = pairs.get('sharedaccesssignature');
  if (accountKey === undefined && sas === undefined)
    throw new SettingsError(name, 'is missing AccountKey (or SharedAccessSignature)');
  if (accountKey !== undefined) {
    if (accountName === undefined) throw new SettingsError(name, 'is missing AccountName');
    if (accountKey === '' || !BASE64.test(accountKey))
      throw new SettingsError(name, 'has an AccountKey that is not base64');
  }
  const blobEndpoint = pairs.get('blobendpoint');
  if (blobEndpoint !== undefined) {
    connectionEndpoint(name, 'BlobEndpoint', blobEndpoint);
  } else {
    const protocol = pairs.get('defaultendpointsprotocol');
    const suffix = pairs.get('endpointsuffix');
    if (accountName === undefined || protocol === undefined || suffix === undefined) {
      throw new SettingsError(
        name,
        'has no blob endpoint: give BlobEndpoint, or DefaultEndpointsProtocol, AccountName and EndpointSuffix',
      );
    }
    connectionEndpoint(name, 'blob endpoint', `${protocol.toLowerCase()}://${accountName}.blob.${suffix}`);
  }
  return value;
}

/** `endpoint=https://….communication.azure.com/;accesskey=<base64>`, as the portal gives it. */
function acsConnectionString(value: string): string {
  const name = 'ACS_CONNECTION_STRING';
  const pairs = connectionPairs(name, value);
  const endpoint = pairs.get('endpoint');
  const accessKey = pairs.get('accesskey');
  const missing = [endpoint === undefined ? 'endpoint' : '', accessKey === undefined ? 'accesskey' : ''].filter(
    Boolean,
  );
  if (missing.length > 0) throw new SettingsError(name, `is missing ${missing.join(', ')}`);
  const url = connectionEndpoint(name, 'endpoint', endpoint!);
  if (url.protocol !== 'https:') throw new SettingsError(name, 'must have an https:// endpoint');
  if (accessKey === '' || !BASE64.test(accessKey!))
    throw new SettingsError(name, 'has an accesskey that is not base64');
  return value;
}

/** The secret values in force (keys, SAS, the identity endpoint's header), for log redaction by value. */
function secretsOf(
  s: Omit<Settings, 'secrets' | 'exportMaxConcurrent' | 'expiryReminderDays' | 'remindersPerRun'>,
  env: Env,
): string[] {
  const values: string[] = [];
  const from = (name: SettingName, text: string, keys: string[]) => {
    if (/^UseDevelopmentStorage=true;?$/i.test(text)) return;
    const pairs = connectionPairs(name, text);
    for (const k of keys) {
      const v = pairs.get(k);
      if (v) values.push(v);
    }
  };
  if (s.storage.kind === 'connectionString')
    from('REPORTS_STORAGE_CONNECTION_STRING', s.storage.connectionString, ['accountkey', 'sharedaccesssignature']);
  if (s.email?.transport.kind === 'connectionString')
    from('ACS_CONNECTION_STRING', s.email.transport.connectionString, ['accesskey']);
  // App Service's identity endpoint header: https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
  for (const name of ['IDENTITY_HEADER', 'MSI_SECRET']) if (env[name]) values.push(env[name]!);
  return values;
}

const DEFAULT_EXPORT_MAX_CONCURRENT = 2;

/** EXPORT_MAX_CONCURRENT: a whole number from 1 to 20; 2 by default (an export streams a whole dataset). */
function exportMaxConcurrent(env: Env): number {
  const text = present(env, 'EXPORT_MAX_CONCURRENT');
  if (text === undefined) return DEFAULT_EXPORT_MAX_CONCURRENT;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 20) {
    throw new SettingsError('EXPORT_MAX_CONCURRENT', `must be a whole number of exports from 1 to 20, got "${text}"`);
  }
  return Number(text);
}

export const DEFAULT_REMINDERS_PER_RUN = 200;

/**
 * EXPIRY_REMINDER_DAYS: comma-separated whole days from 1 to 365 (e.g. `14,7,1`); unset or empty
 * means no reminders, so a deployment never starts emailing people by surprise. REMINDERS_PER_RUN:
 * 1 to 10,000, 200 by default: ACS sends a limited number of mails an hour until a support request
 * raises it (30 a minute and 100 an hour to start with:
 * https://learn.microsoft.com/azure/communication-services/concepts/email/sdk-features#api-throttling-and-timeouts).
 */
function expiryReminders(env: Env, email: EmailSettings): { expiryReminderDays: number[]; remindersPerRun: number } {
  const daysText = present(env, 'EXPIRY_REMINDER_DAYS');
  const days = new Set<number>();
  if (daysText !== undefined) {
    for (const part of daysText.split(',').map((p) => p.trim())) {
      if (!/^\d+$/.test(part) || Number(part) < 1 || Number(part) > 365) {
        throw new SettingsError(
          'EXPIRY_REMINDER_DAYS',
          `must be a comma-separated list of whole days from 1 to 365 (e.g. "14,7,1"), got "${daysText}"`,
        );
      }
      days.add(Number(part));
    }
    if (!email)
      throw new SettingsError(
        'EXPIRY_REMINDER_DAYS',
        'is set but email is not configured: set ACS_ENDPOINT (or ACS_CONNECTION_STRING) too',
      );
  }
  const perRunText = present(env, 'REMINDERS_PER_RUN');
  let remindersPerRun = DEFAULT_REMINDERS_PER_RUN;
  if (perRunText !== undefined) {
    if (!/^\d+$/.test(perRunText) || Number(perRunText) < 1 || Number(perRunText) > 10_000) {
      throw new SettingsError(
        'REMINDERS_PER_RUN',
        `must be a whole number of emails from 1 to 10000, got "${perRunText}"`,
      );
    }
    remindersPerRun = Number(perRunText);
  }
  return { expiryReminderDays: [...days].sort((a, b) => a - b), remindersPerRun };
}

// --- PIM for Azure resources ---------------------------------------------------------------------

export const DEFAULT_ARM_ENDPOINT = 'https://management.azure.com';

/** Owner, Contributor, User Access Administrator, Role Based Access Control Administrator (built-in role ids). */
export const DEFAULT_AZURE_PRIVILEGED_ROLES: Readonly<Record<string, string>> = {
  '8e3af657-a8ff-443c-a75c-2fe8c4bcb635': 'Owner',
  'b24988ac-6180-42a0-ab88-20f7382dd24c': 'Contributor',
  '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9': 'User Access Administrator',
  'f58310d9-a9f6-439a-9e8d-f62e7b41a168': 'Role Based Access Control Administrator',
};

/** An ARM scope to report: the tenant root management group (`root`), or an ARM path. */
export type AzureScopeSetting = { kind: 'root' } | { kind: 'path'; path: string };

export interface AzureSettings {
  scopes: AzureScopeSetting[];
  armEndpoint: string;
  privilegedRoleIds: ReadonlySet<string>;
}

const MG_SCOPE = /^\/providers\/microsoft\.management\/managementgroups\/[A-Za-z0-9._()-]{1,90}$/i;
const SUBSCRIPTION_SCOPE =
  /^\/(?:providers\/microsoft\.subscription\/)?subscriptions\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:\/resourcegroups\/[-\w._()]{1,90})?$/i;

/** AZURE_RESOURCE_SCOPES (off unless set), ARM_ENDPOINT, AZURE_PRIVILEGED_ROLE_IDS. */
function loadAzureSettings(env: Env): AzureSettings | undefined {
  const armText = present(env, 'ARM_ENDPOINT');
  const armEndpoint = httpsUrl('ARM_ENDPOINT', armText ?? DEFAULT_ARM_ENDPOINT);
  const privilegedText = present(env, 'AZURE_PRIVILEGED_ROLE_IDS');
  const privilegedRoleIds =
    privilegedText !== undefined
      ? guidList('AZURE_PRIVILEGED_ROLE_IDS', privilegedText)
      : new Set(Object.keys(DEFAULT_AZURE_PRIVILEGED_ROLES));
  if (privilegedRoleIds.size === 0) throw new SettingsError('AZURE_PRIVILEGED_ROLE_IDS', 'is set but lists no role id');
  const scopesText = present(env, 'AZURE_RESOURCE_SCOPES');
  if (scopesText === undefined) return undefined;
  const scopes: AzureScopeSetting[] = [];
  for (const raw of scopesText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const value = raw.replace(/\/+$/, '');
    if (value.toLowerCase() === 'root') scopes.push({ kind: 'root' });
    else if (MG_SCOPE.test(value) || SUBSCRIPTION_SCOPE.test(value)) scopes.push({ kind: 'path', path: value });
    else {
      throw new SettingsError(
        'AZURE_RESOURCE_SCOPES',
        `must list ARM scopes: root, /providers/Microsoft.Management/managementGroups/{id}, /subscriptions/{id} or /subscriptions/{id}/resourceGroups/{name}; "${raw}" is not one`,
      );
    }
  }
  if (scopes.length === 0) throw new SettingsError('AZURE_RESOURCE_SCOPES', 'is set but lists no scope');
  return { scopes, armEndpoint, privilegedRoleIds };
}
