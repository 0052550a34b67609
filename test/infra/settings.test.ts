/**
 * Every setting the app reads (src/settings.ts SETTING_NAMES) that production needs is set on the
 * function app from a resource or a parameter; the local-run alternatives are not; and main.bicep
 * outputs each app setting for the azd environment.
 */
import { readFileSync } from 'node:fs';
import {
  DEFAULT_DAILY_SCHEDULE,
  DEFAULT_GRAPH_ENDPOINT,
  DEFAULT_MONTHLY_SCHEDULE,
  SETTING_NAMES,
} from '../../src/settings';
import {
  bicep,
  infraPath,
  literal,
  modules,
  objectKeys,
  outputs,
  param,
  params,
  prop,
  resource,
  variable,
} from './bicep';

/** Connection-string alternatives for local runs (Azurite, an ACS key): never in Azure. */
const LOCAL_ONLY = ['REPORTS_STORAGE_CONNECTION_STRING', 'ACS_CONNECTION_STRING'];

async function appSettings() {
  const parsed = await bicep('app/api.bicep');
  const settings = variable(parsed, 'appSettings');
  return { parsed, settings, keys: objectKeys(settings) };
}

describe('app settings', () => {
  it('are the ones the function app uses', async () => {
    const { parsed } = await appSettings();
    const app = resource(parsed, 'functionApp');
    // siteConfig.appSettings = map(items(appSettings), …): the object below is what the app gets
    expect(prop(app.body, 'properties.siteConfig.appSettings')?.text).toMatch(/^map\(items\(appSettings\),/);
  });

  it('set every setting in SETTING_NAMES that production needs', async () => {
    const { keys } = await appSettings();
    const needed = SETTING_NAMES.filter((name) => !LOCAL_ONLY.includes(name));
    expect(needed.length).toBeGreaterThanOrEqual(13);
    for (const name of needed) expect([name, keys.includes(name)]).toEqual([name, true]);
  });

  it('do not set the local-only connection strings', async () => {
    const { keys } = await appSettings();
    for (const name of LOCAL_ONLY) {
      expect(SETTING_NAMES as readonly string[]).toContain(name);
      expect([name, keys.includes(name)]).toEqual([name, false]);
    }
    // And no other *CONNECTION_STRING but App Insights' (which carries no secret when local auth is off)
    expect(keys.filter((k) => /CONNECTION_?STRING/i.test(k))).toEqual(['APPLICATIONINSIGHTS_CONNECTION_STRING']);
  });

  it('only set settings the app or the Functions host reads', async () => {
    const { keys } = await appSettings();
    const host = [
      'AzureWebJobsStorage__credential',
      'AzureWebJobsStorage__clientId',
      'AzureWebJobsStorage__blobServiceUri',
      'APPLICATIONINSIGHTS_CONNECTION_STRING',
      'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
    ];
    expect([...keys].sort()).toEqual([...host, ...SETTING_NAMES.filter((n) => !LOCAL_ONLY.includes(n))].sort());
  });

  it('reach host storage and App Insights with the managed identity', async () => {
    const { settings } = await appSettings();
    expect(literal(prop(settings, 'AzureWebJobsStorage__credential'))).toBe('managedidentity');
    expect(prop(settings, 'AzureWebJobsStorage__clientId')?.text).toBe('identityClientId');
    expect(prop(settings, 'MANAGED_IDENTITY_CLIENT_ID')?.text).toBe('identityClientId');
    expect(prop(settings, 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING')?.text).toBe(
      "'ClientId=${identityClientId};Authorization=AAD'",
    );
  });

  it('take their values from the resources, not from literals', async () => {
    const main = await bicep('main.bicep');
    const api = modules(main).find((m) => m.path === 'app/api.bicep');
    const passed = (name: string) => prop(api?.body, ['params', name])?.text;
    expect(passed('identityClientId')).toBe('identity.outputs.clientId');
    expect(passed('hostStorageBlobEndpoint')).toBe('hostStorage.outputs.blobEndpoint');
    expect(passed('reportsStorageAccountUrl')).toBe('reportsStorage.outputs.blobEndpoint');
    expect(passed('acsEndpoint')).toBe('email.outputs.endpoint');
    expect(passed('emailSender')).toBe('email.outputs.senderAddress');
    expect(passed('applicationInsightsConnectionString')).toBe('monitoring.outputs.connectionString');
    const email = await bicep('app/email.bicep');
    expect(outputs(email).get('endpoint')?.text).toBe("'https://${communicationService.properties.hostName}'");
    expect(outputs(email).get('senderAddress')?.text).toBe(
      "'${senderUsername}@${emailService::domain.properties.mailFromSenderDomain}'",
    );
  });

  it("default the schedules and the Graph root to the app's own defaults", async () => {
    const main = await bicep('main.bicep');
    expect(literal(param(main, 'graphEndpoint').defaultValue)).toBe(DEFAULT_GRAPH_ENDPOINT);
    expect(literal(param(main, 'dailySchedule').defaultValue)).toBe(DEFAULT_DAILY_SCHEDULE);
    expect(literal(param(main, 'monthlySchedule').defaultValue)).toBe(DEFAULT_MONTHLY_SCHEDULE);
    const parameters = JSON.parse(readFileSync(infraPath('main.parameters.json'), 'utf8')).parameters;
    expect(parameters.dailySchedule.value).toBe(`\${DAILY_SCHEDULE=${DEFAULT_DAILY_SCHEDULE}}`);
    expect(parameters.monthlySchedule.value).toBe(`\${MONTHLY_SCHEDULE=${DEFAULT_MONTHLY_SCHEDULE}}`);
    expect(parameters.graphEndpoint.value).toBe(`\${GRAPH_ENDPOINT=${DEFAULT_GRAPH_ENDPOINT}}`);
  });

  it("PRIVILEGED_ROLE_IDS and EXCLUDED_PRINCIPAL_IDS are parameters that default to empty (the app's defaults)", async () => {
    const main = await bicep('main.bicep');
    expect(literal(param(main, 'privilegedRoleIds').defaultValue)).toBe('');
    expect(literal(param(main, 'excludedPrincipalIds').defaultValue)).toBe('');
    expect(param(main, 'emailRecipients').defaultValue).toBeUndefined(); // required: azd asks, or azd env set
  });
});

describe('azd environment', () => {
  it('main.bicep outputs every app setting (UPPER_SNAKE) for the azd environment', async () => {
    const { keys } = await appSettings();
    const out = outputs(await bicep('main.bicep'));
    // credential is a constant and clientId is MANAGED_IDENTITY_CLIENT_ID
    const expected = keys
      .filter((k) => k !== 'AzureWebJobsStorage__credential' && k !== 'AzureWebJobsStorage__clientId')
      .map((k) => k.toUpperCase());
    for (const name of expected) expect([name, out.has(name)]).toEqual([name, true]);
    for (const name of out.keys()) expect(name).toMatch(/^[A-Z][A-Z0-9_]*$/);
    // What the hooks and the grant script read
    for (const name of [
      'MANAGED_IDENTITY_PRINCIPAL_ID',
      'GRAPH_PERMISSIONS_GRANTED',
      'AZURE_RESOURCE_GROUP',
      'REPORTS_STORAGE_ACCOUNT_NAME',
      'ARCHIVE_IMMUTABILITY_STATE',
      'ARCHIVE_RETENTION_DAYS',
    ]) {
      expect([name, out.has(name)]).toEqual([name, true]);
    }
  });

  it('main.parameters.json maps every required parameter and names only real ones', async () => {
    const main = await bicep('main.bicep');
    const declared = params(main);
    const parameters = JSON.parse(readFileSync(infraPath('main.parameters.json'), 'utf8')).parameters as Record<
      string,
      { value: unknown }
    >;
    for (const name of Object.keys(parameters)) expect(declared.map((p) => p.name)).toContain(name);
    for (const p of declared.filter((d) => d.defaultValue === undefined))
      expect(Object.keys(parameters)).toContain(p.name);
    expect(parameters.environmentName.value).toBe('${AZURE_ENV_NAME}');
    expect(parameters.location.value).toBe('${AZURE_LOCATION}');
    expect(parameters.emailRecipients.value).toBe('${EMAIL_RECIPIENTS}');
  });

  it('azure.yaml deploys this package as the function service "api"', () => {
    const yaml = readFileSync(infraPath('..', 'azure.yaml'), 'utf8');
    expect(yaml).toMatch(/^services:\n {2}api:\n {4}project: \.\n {4}language: ts\n {4}host: function\n/m);
    expect(yaml).toMatch(/^ {4}remoteBuild: true$/m);
    expect(yaml).toMatch(/run: \.\/infra\/scripts\/postprovision\.sh/);
  });
});
