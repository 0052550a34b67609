/**
 * The one place that reads the environment (SPEC section 3). `loadSettings` validates every setting
 * before any Graph call or write; a malformed one throws a SettingsError naming it. Secrets
 * (connection strings) never appear in an error message or in `describeSettings`.
 */

export const DEFAULT_GRAPH_ENDPOINT = 'https://graph.microsoft.com';
export const DEFAULT_DAILY_SCHEDULE = '0 0 6 * * *';
export const DEFAULT_MONTHLY_SCHEDULE = '0 0 3 1 * *';

/** CISA SCuBA highly privileged roles (MS.AAD.7.x), by role template id. */
export const CISA_PRIVILEGED_ROLES: Readonly<Record<string, string>> = {
  '62e90394-69f5-4237-9190-012177145e10': 'Global Administrator',
  'e8611ab8-c189-46e8-94e1-60213ab1f814': 'Privileged Role Administrator',
  'fe930be7-5e62-47db-91af-98c3a49a38b1': 'User Administrator',
  'f28a1f50-f6e7-4571-818b-6a12f2af6b6c': 'SharePoint Administrator',
  '29232cdf-9323-42fd-ade2-1d097af3e4de': 'Exchange Administrator',
  '8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2': 'Hybrid Identity Administrator',
  '9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3': 'Application Administrator',
  '158c047a-c907-4556-b7ef-446551a6b5f7': 'Cloud Application Administrator',
};
export const GLOBAL_ADMINISTRATOR_ROLE_ID = '62e90394-69f5-4237-9190-012177145e10';

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
  'PRIVILEGED_ROLE_IDS',
  'EXCLUDED_PRINCIPAL_IDS',
  'DAILY_SCHEDULE',
  'MONTHLY_SCHEDULE',
] as const;
export type SettingName = (typeof SETTING_NAMES)[number];

export type StorageSettings =
  | { kind: 'accountUrl'; accountUrl: string }
  | { kind: 'connectionString'; connectionString: string };

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
  privilegedRoleIds: ReadonlySet<string>;
  excludedPrincipalIds: ReadonlySet<string>;
  dailySchedule: string;
  monthlySchedule: string;
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

/** What of a URL may be shown in an error: never its query (a SAS signature would be a secret). */
function shown(value: string): string {
  return value.replace(/[?#].*$/, '?…');
}

function httpsUrl(name: SettingName, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new SettingsError(name, `is not a valid URL: "${shown(value)}"`);
  }
  if (url.protocol !== 'https:') {
    throw new SettingsError(name, `must be an https:// URL (tokens are never sent over plain http), got "${shown(value)}"`);
  }
  if (url.username || url.password) throw new SettingsError(name, 'must not carry credentials');
  if (url.search || url.hash) throw new SettingsError(name, `must not carry a query or fragment (a SAS token is never needed): "${shown(value)}"`);
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

/** Six-field NCRONTAB as the timer trigger reads it (azure-functions.md section 1.3). */
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

function connectionString(name: SettingName, value: string, required: string[]): string {
  if (name === 'REPORTS_STORAGE_CONNECTION_STRING' && /^UseDevelopmentStorage=true;?$/i.test(value)) return value;
  const keys = new Set(
    value
      .split(';')
      .filter((p) => p.trim() !== '')
      .map((p) => {
        const eq = p.indexOf('=');
        if (eq <= 0) throw new SettingsError(name, 'is not a connection string of key=value pairs separated by ";"');
        return p.slice(0, eq).trim().toLowerCase();
      }),
  );
  const missing = required.filter((k) => !keys.has(k.toLowerCase()));
  if (missing.length > 0) throw new SettingsError(name, `is missing ${missing.join(', ')}`);
  return value;
}

export function loadSettings(env: Env = process.env): Settings {
  const graphEndpoint = httpsUrl('GRAPH_ENDPOINT', present(env, 'GRAPH_ENDPOINT') ?? DEFAULT_GRAPH_ENDPOINT);

  const clientId = present(env, 'MANAGED_IDENTITY_CLIENT_ID');
  if (clientId !== undefined && !GUID.test(clientId)) {
    throw new SettingsError('MANAGED_IDENTITY_CLIENT_ID', `must be the identity's client id (a GUID), got "${clientId}"`);
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
      connectionString: connectionString('REPORTS_STORAGE_CONNECTION_STRING', storageConnection ?? 'UseDevelopmentStorage=true', [
        'AccountName',
      ]),
    };
  }

  const reportsContainer = containerName('REPORTS_CONTAINER', present(env, 'REPORTS_CONTAINER') ?? 'pim-reports');
  const archiveContainer = containerName('ARCHIVE_CONTAINER', present(env, 'ARCHIVE_CONTAINER') ?? 'pim-archive');
  if (reportsContainer === archiveContainer) {
    throw new SettingsError('ARCHIVE_CONTAINER', `must differ from REPORTS_CONTAINER ("${reportsContainer}"): the archive is write-once`);
  }

  const email = loadEmail(env);

  const windowText = present(env, 'EXPIRY_WINDOW_DAYS');
  let expiryWindowDays = 14;
  if (windowText !== undefined) {
    if (!/^\d+$/.test(windowText) || Number(windowText) < 1 || Number(windowText) > 365) {
      throw new SettingsError('EXPIRY_WINDOW_DAYS', `must be a whole number of days from 1 to 365, got "${windowText}"`);
    }
    expiryWindowDays = Number(windowText);
  }

  const privilegedText = present(env, 'PRIVILEGED_ROLE_IDS');
  const privilegedRoleIds =
    privilegedText !== undefined
      ? guidList('PRIVILEGED_ROLE_IDS', privilegedText)
      : new Set(Object.keys(CISA_PRIVILEGED_ROLES));
  if (privilegedRoleIds.size === 0) throw new SettingsError('PRIVILEGED_ROLE_IDS', 'is set but lists no role id');

  const excludedText = present(env, 'EXCLUDED_PRINCIPAL_IDS');
  const excludedPrincipalIds = excludedText !== undefined ? guidList('EXCLUDED_PRINCIPAL_IDS', excludedText) : new Set<string>();

  return {
    graphEndpoint,
    managedIdentityClientId: clientId?.toLowerCase(),
    managedIdentityAvailable: Boolean(env.IDENTITY_ENDPOINT || env.MSI_ENDPOINT),
    storage,
    reportsContainer,
    archiveContainer,
    email,
    expiryWindowDays,
    privilegedRoleIds,
    excludedPrincipalIds,
    dailySchedule: ncrontab('DAILY_SCHEDULE', present(env, 'DAILY_SCHEDULE') ?? DEFAULT_DAILY_SCHEDULE),
    monthlySchedule: ncrontab('MONTHLY_SCHEDULE', present(env, 'MONTHLY_SCHEDULE') ?? DEFAULT_MONTHLY_SCHEDULE),
  };
}

function loadEmail(env: Env): EmailSettings {
  const endpoint = present(env, 'ACS_ENDPOINT');
  const connection = present(env, 'ACS_CONNECTION_STRING');
  const sender = present(env, 'EMAIL_SENDER');
  const recipientsText = present(env, 'EMAIL_RECIPIENTS');

  if (endpoint !== undefined && connection !== undefined) {
    throw new SettingsError('ACS_CONNECTION_STRING', 'is set together with ACS_ENDPOINT; set only one (the endpoint uses the managed identity)');
  }
  if (endpoint === undefined && connection === undefined) {
    if (sender !== undefined || recipientsText !== undefined) {
      const name = sender !== undefined ? 'EMAIL_SENDER' : 'EMAIL_RECIPIENTS';
      throw new SettingsError(name, 'is set but email is not configured: set ACS_ENDPOINT (or ACS_CONNECTION_STRING) too');
    }
    return undefined;
  }
  const transport =
    endpoint !== undefined
      ? { kind: 'endpoint' as const, endpoint: httpsUrl('ACS_ENDPOINT', endpoint) }
      : {
          kind: 'connectionString' as const,
          connectionString: connectionString('ACS_CONNECTION_STRING', connection!, ['endpoint', 'accesskey']),
        };
  if (transport.kind === 'connectionString') {
    const ep = /(?:^|;)\s*endpoint=([^;]+)/i.exec(transport.connectionString)?.[1];
    try {
      if (new URL(ep ?? '').protocol !== 'https:') throw new Error();
    } catch {
      throw new SettingsError('ACS_CONNECTION_STRING', 'must have an https:// endpoint');
    }
  }
  if (sender === undefined) throw new SettingsError('EMAIL_SENDER', 'is required when email is configured (ACS_ENDPOINT or ACS_CONNECTION_STRING)');
  if (!EMAIL.test(sender)) throw new SettingsError('EMAIL_SENDER', `is not a valid email address: "${sender}"`);
  if (recipientsText === undefined) {
    throw new SettingsError('EMAIL_RECIPIENTS', 'is required when email is configured: a comma-separated list of addresses');
  }
  const recipients = recipientsText
    .split(/[,;]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (recipients.length === 0) throw new SettingsError('EMAIL_RECIPIENTS', 'lists no address');
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
  return `Graph ${s.graphEndpoint}; storage ${storage} (${s.reportsContainer}, ${s.archiveContainer}); email ${email}; expiry window ${s.expiryWindowDays} days`;
}
