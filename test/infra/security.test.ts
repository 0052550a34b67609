/**
 * Security properties of infra/ (docs/guarantees.md, "Least privilege"; infra/README.md), asserted on the parsed Bicep:
 * each property is looked up inside the resource it belongs to, so deleting or weakening one fails here.
 */
import { readFileSync } from 'node:fs';
import {
  allBicep,
  bicep,
  GRAPH_APP_ROLE_IDS,
  infraPath,
  literal,
  modules,
  objectKeys,
  param,
  prop,
  resource,
  resources,
  squash,
  stringValue,
  tokens,
  variable,
} from './bicep';

/**
 * The Graph application permissions, exactly: RoleManagement.Read.Directory covers the role
 * schedules too, so RoleEligibilitySchedule.Read.Directory and RoleAssignmentSchedule.Read.Directory
 * are not granted, nor RoleManagementPolicy.Read.Directory for the roles' settings
 * (infra/app/graph-permissions.bicep says why).
 */
const GRAPH_PERMISSIONS = [
  'RoleManagement.Read.Directory',
  'AuditLog.Read.All',
  'Directory.Read.All',
  'PrivilegedEligibilitySchedule.Read.AzureADGroup',
  'RoleManagementPolicy.Read.AzureADGroup',
];

describe('storage accounts', () => {
  it('every storage account has shared keys off, HTTPS only, TLS 1.2 and no public blob access', async () => {
    const accounts = (await allBicep()).flatMap((parsed) =>
      resources(parsed, 'Microsoft.Storage/storageAccounts')
        .filter((r) => !r.existing)
        .map((r) => ({ file: parsed.file, r })),
    );
    expect(accounts.length).toBe(2); // host storage and reports storage
    for (const { file, r } of accounts) {
      const where = `${file} ${r.symbol}`;
      expect([where, literal(prop(r.body, 'properties.allowSharedKeyAccess'))]).toEqual([where, false]);
      expect([where, literal(prop(r.body, 'properties.supportsHttpsTrafficOnly'))]).toEqual([where, true]);
      expect([where, literal(prop(r.body, 'properties.minimumTlsVersion'))]).toEqual([where, 'TLS1_2']);
      expect([where, literal(prop(r.body, 'properties.allowBlobPublicAccess'))]).toEqual([where, false]);
    }
  });

  it('every blob container is private', async () => {
    const containers = (await allBicep()).flatMap((parsed) =>
      resources(parsed, 'Microsoft.Storage/storageAccounts/blobServices/containers').filter((r) => !r.existing),
    );
    expect(containers.length).toBe(3); // deployment package, reports, archive
    for (const c of containers)
      expect([c.symbol, literal(prop(c.body, 'properties.publicAccess'))]).toEqual([c.symbol, 'None']);
  });

  it('the archive container has version-level immutability, with versioning on in its account', async () => {
    const parsed = await bicep('app/reports-storage.bicep');
    const archive = resource(parsed, 'archive');
    expect(archive.type).toBe('Microsoft.Storage/storageAccounts/blobServices/containers');
    expect(prop(archive.body, 'name')?.text).toBe('archiveContainerName');
    expect(literal(prop(archive.body, 'properties.immutableStorageWithVersioning.enabled'))).toBe(true);
    expect(archive.parent?.symbol).toBe('blobService');
    expect(literal(prop(archive.parent?.body, 'properties.isVersioningEnabled'))).toBe(true);
    // The reports container is not immutable: the app rewrites its state there
    expect(prop(resource(parsed, 'reports').body, 'properties.immutableStorageWithVersioning')).toBeUndefined();
  });

  it("the archive's retention is parameterised and Unlocked by default", async () => {
    const parsed = await bicep('app/reports-storage.bicep');
    const retention = resource(parsed, 'retention');
    expect(retention.type).toBe('Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies');
    expect(retention.parent?.symbol).toBe('archive');
    expect(stringValue(prop(retention.body, 'name'))).toBe('default');
    expect(prop(retention.body, 'properties.immutabilityPeriodSinceCreationInDays')?.text).toBe('archiveRetentionDays');
    expect(literal(prop(retention.body, 'properties.allowProtectedAppendWrites'))).toBe(false);
    // ARM can only write an unlocked policy; the lock is the postprovision hook's job
    expect(squash(retention.condition)).toBe("(archiveImmutabilityState=='Unlocked')");

    for (const file of ['main.bicep', 'app/reports-storage.bicep']) {
      const state = param(await bicep(file), 'archiveImmutabilityState');
      expect([file, literal(state.defaultValue)]).toEqual([file, 'Unlocked']);
      expect([file, literal(state.decorators.allowed?.[0])]).toEqual([file, ['Unlocked', 'Locked']]);
    }
    expect(param(await bicep('main.bicep'), 'archiveRetentionDays').type).toBe('int');
    const parameters = JSON.parse(readFileSync(infraPath('main.parameters.json'), 'utf8')).parameters;
    expect(parameters.archiveImmutabilityState.value).toBe('${ARCHIVE_IMMUTABILITY_STATE=Unlocked}');
    expect(parameters.archiveRetentionDays.value).toMatch(/^\$\{ARCHIVE_RETENTION_DAYS(=\d+)?\}$/);
  });
});

describe('function app', () => {
  it('is a Flex Consumption app on Node 22, HTTPS only, TLS 1.2, running as the user-assigned identity', async () => {
    const parsed = await bicep('app/api.bicep');
    const plan = resource(parsed, 'plan');
    expect(literal(prop(plan.body, 'sku.tier'))).toBe('FlexConsumption');
    expect(literal(prop(plan.body, 'sku.name'))).toBe('FC1');
    const app = resource(parsed, 'functionApp');
    expect(app.type).toBe('Microsoft.Web/sites');
    expect(literal(prop(app.body, 'kind'))).toBe('functionapp,linux');
    expect(literal(prop(app.body, 'properties.httpsOnly'))).toBe(true);
    expect(literal(prop(app.body, 'properties.siteConfig.minTlsVersion'))).toBe('1.2');
    expect(literal(prop(app.body, 'properties.functionAppConfig.runtime.name'))).toBe('node');
    expect(literal(prop(app.body, 'properties.functionAppConfig.runtime.version'))).toBe('22');
    expect(literal(prop(app.body, 'identity.type'))).toBe('UserAssigned');
    expect(literal(prop(app.body, 'properties.functionAppConfig.deployment.storage.authentication.type'))).toBe(
      'UserAssignedIdentity',
    );
    // azd finds the app to deploy to by this tag: union(tags, { 'azd-service-name': 'api' })
    const serviceTag = prop(app.body, 'tags')?.descendantsOfType('object')[0];
    expect(literal(prop(serviceTag, 'azd-service-name'))).toBe('api');
  });

  it('sets no setting Flex Consumption rejects or ignores (no WEBSITE_TIME_ZONE, TZ, FUNCTIONS_WORKER_RUNTIME …)', async () => {
    const forbidden = [
      'WEBSITE_TIME_ZONE',
      'TZ',
      'FUNCTIONS_WORKER_RUNTIME',
      'FUNCTIONS_EXTENSION_VERSION',
      'WEBSITE_RUN_FROM_PACKAGE',
      'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
      'WEBSITE_CONTENTSHARE',
      'SCM_DO_BUILD_DURING_DEPLOYMENT',
      'AzureWebJobsStorage', // the connection-string form; only the identity form AzureWebJobsStorage__* is allowed
    ];
    const keys = objectKeys(variable(await bicep('app/api.bicep'), 'appSettings'));
    for (const name of forbidden) expect([name, keys.includes(name)]).toEqual([name, false]);
    // Nor anywhere else in the templates as a key or a string (comments do not count)
    for (const parsed of await allBicep()) {
      const words = tokens(parsed, ['identifier', 'property_identifier', 'string_content']).map((n) => n.text);
      for (const name of forbidden)
        expect([parsed.file, name, words.includes(name)]).toEqual([parsed.file, name, false]);
    }
  });
});

describe('function app: publishing and the HTTP export', () => {
  it('basic (username and password) publishing credentials are off for FTP and SCM', async () => {
    const parsed = await bicep('app/api.bicep');
    const policies = resources(parsed, 'Microsoft.Web/sites/basicPublishingCredentialsPolicies');
    expect(policies.map((p) => stringValue(prop(p.body, 'name'))).sort()).toEqual(['ftp', 'scm']);
    for (const p of policies) {
      expect([p.symbol, prop(p.body, 'parent')?.text]).toEqual([p.symbol, 'functionApp']);
      expect([p.symbol, literal(prop(p.body, 'properties.allow'))]).toEqual([p.symbol, false]);
      expect(p.condition).toBeUndefined();
    }
  });

  it('Entra ID authentication (App Service authentication) in front of the function key: a parameter, off by default', async () => {
    const parsed = await bicep('app/api.bicep');
    const auth = resource(parsed, 'entraAuth');
    expect(auth.type).toBe('Microsoft.Web/sites/config');
    expect(stringValue(prop(auth.body, 'name'))).toBe('authsettingsV2');
    expect(prop(auth.body, 'parent')?.text).toBe('functionApp');
    expect(squash(auth.condition)).toBe('(entraAuthEnabled)');
    expect(literal(prop(auth.body, 'properties.platform.enabled'))).toBe(true);
    expect(literal(prop(auth.body, 'properties.globalValidation.requireAuthentication'))).toBe(true);
    expect(literal(prop(auth.body, 'properties.globalValidation.unauthenticatedClientAction'))).toBe('Return401');
    expect(prop(auth.body, 'properties.identityProviders.azureActiveDirectory.registration.clientId')?.text).toBe(
      'entraAuthClientId',
    );
    expect(
      squash(prop(auth.body, 'properties.identityProviders.azureActiveDirectory.validation.allowedAudiences')?.text),
    ).toBe("['api://${entraAuthClientId}']");
    const main = await bicep('main.bicep');
    expect(param(main, 'entraAuthEnabled').type).toBe('bool');
    expect(param(main, 'entraAuthEnabled').defaultValue?.text).toBe('false');
    const api = modules(main).find((m) => m.path === 'app/api.bicep');
    expect(prop(api?.body, 'params.entraAuthEnabled')?.text).toBe('entraAuthEnabled');
    expect(prop(api?.body, 'params.entraAuthClientId')?.text).toBe('entraAuthClientId');
    const parameters = JSON.parse(readFileSync(infraPath('main.parameters.json'), 'utf8')).parameters;
    expect(parameters.entraAuthEnabled.value).toBe('${ENTRA_AUTH_ENABLED=false}');
  });

  it('saved exports are deleted by a lifecycle rule on exports/ after a parameterised number of days', async () => {
    const parsed = await bicep('app/reports-storage.bicep');
    const lifecycle = resource(parsed, 'lifecycle');
    const rules = prop(lifecycle.body, 'properties.policy.rules')?.namedChildren ?? [];
    const rule = rules.find((r) => literal(prop(r, 'name')) === 'delete-saved-exports');
    expect(rule).toBeDefined();
    expect(literal(prop(rule, 'enabled'))).toBe(true);
    expect(squash(prop(rule, 'definition.filters.prefixMatch')?.text)).toBe("['${reportsContainerName}/exports/']");
    expect(prop(rule, 'definition.actions.baseBlob.delete.daysAfterCreationGreaterThan')?.text).toBe(
      'exportRetentionDays',
    );
    expect(param(parsed, 'exportRetentionDays').type).toBe('int');
    const main = await bicep('main.bicep');
    const module = modules(main).find((m) => m.path === 'app/reports-storage.bicep');
    expect(prop(module?.body, 'params.exportRetentionDays')?.text).toBe('exportRetentionDays');
  });
});

describe('storage network access', () => {
  it('both storage accounts take their public network access from one main.bicep parameter, Enabled by default', async () => {
    for (const file of ['app/host-storage.bicep', 'app/reports-storage.bicep']) {
      const parsed = await bicep(file);
      const account = resources(parsed, 'Microsoft.Storage/storageAccounts').find((r) => !r.existing)!;
      expect([file, prop(account.body, 'properties.publicNetworkAccess')?.text]).toEqual([file, 'publicNetworkAccess']);
      expect([file, squash(prop(account.body, 'properties.networkAcls.defaultAction')?.text)]).toEqual([
        file,
        "publicNetworkAccess=='Enabled'?'Allow':'Deny'",
      ]);
      const p = param(parsed, 'publicNetworkAccess');
      expect([file, squash(p.decorators.allowed?.map((n) => n.text).join(''))]).toEqual([
        file,
        "['Enabled''Disabled']",
      ]);
    }
    const main = await bicep('main.bicep');
    expect(param(main, 'storagePublicNetworkAccess').defaultValue?.text).toBe("'Enabled'");
    for (const path of ['app/host-storage.bicep', 'app/reports-storage.bicep']) {
      const module = modules(main).find((m) => m.path === path);
      expect([path, prop(module?.body, 'params.publicNetworkAccess')?.text]).toEqual([
        path,
        'storagePublicNetworkAccess',
      ]);
    }
  });
});

describe('no keys, no connection strings with secrets', () => {
  it('no template lists keys or connection strings, or writes a key', async () => {
    for (const parsed of await allBicep()) {
      const calls = tokens(parsed, ['call_expression']).map((c) => c.childForFieldName('function')?.text ?? '');
      for (const call of calls)
        expect([parsed.file, call]).not.toEqual([parsed.file, expect.stringMatching(/(^|\.)list[A-Z]/)]);
      const strings = tokens(parsed, ['string_content']).map((n) => n.text);
      for (const s of strings)
        expect([parsed.file, s]).not.toEqual([
          parsed.file,
          expect.stringMatching(/AccountKey=|SharedAccessSignature=|accesskey=/i),
        ]);
    }
  });

  it('Application Insights and its workspace have local authentication off', async () => {
    const parsed = await bicep('app/monitoring.bicep');
    const appInsights = resources(parsed, 'Microsoft.Insights/components');
    expect(appInsights).toHaveLength(1);
    expect(literal(prop(appInsights[0].body, 'properties.DisableLocalAuth'))).toBe(true);
    const workspace = resources(parsed, 'Microsoft.OperationalInsights/workspaces');
    expect(literal(prop(workspace[0].body, 'properties.features.disableLocalAuth'))).toBe(true);
  });

  it('Communication Services has local authentication off and the Azure-managed domain linked', async () => {
    const parsed = await bicep('app/email.bicep');
    const acs = resources(parsed, 'Microsoft.Communication/communicationServices');
    expect(acs).toHaveLength(1);
    expect(literal(prop(acs[0].body, 'properties.disableLocalAuth'))).toBe(true);
    expect(squash(prop(acs[0].body, 'properties.linkedDomains')?.text)).toBe('[emailService::domain.id]');
    const domain = resource(parsed, 'domain');
    expect(domain.type).toBe('Microsoft.Communication/emailServices/domains');
    expect(literal(prop(domain.body, 'properties.domainManagement'))).toBe('AzureManaged');
    expect(prop(acs[0].body, 'properties.dataLocation')?.text).toBe(
      prop(resource(parsed, 'emailService').body, 'properties.dataLocation')?.text,
    );
  });
});

describe('RBAC', () => {
  it('every role assignment is named guid(scope.id, principalId, roleId) and targets a service principal', async () => {
    let count = 0;
    for (const parsed of await allBicep()) {
      for (const a of resources(parsed, 'Microsoft.Authorization/roleAssignments')) {
        count++;
        const scope = prop(a.body, 'scope')?.text;
        const name = squash(prop(a.body, 'name')?.text);
        expect([a.symbol, name]).toEqual([
          a.symbol,
          expect.stringMatching(
            new RegExp(`^guid\\(${(scope ?? '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.id,principalId,`),
          ),
        ]);
        expect([a.symbol, literal(prop(a.body, 'properties.principalType'))]).toEqual([a.symbol, 'ServicePrincipal']);
        expect(prop(a.body, 'properties.principalId')?.text).toBe('principalId');
        // The role in the name is the role assigned
        const roleInName = name.replace(/^guid\([^,]+,principalId,(.*)\)$/, '$1');
        expect(squash(prop(a.body, 'properties.roleDefinitionId')?.text)).toContain(roleInName);
      }
    }
    expect(count).toBe(5);
  });

  it('grants exactly the roles the app needs, on the narrowest scope', async () => {
    const parsed = await bicep('app/rbac.bicep');
    const roles = variable(parsed, 'roles');
    const roleIds = Object.fromEntries(objectKeys(roles).map((k) => [k, literal(prop(roles, k))]));
    expect(roleIds).toEqual({
      storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
      storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
      monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
    });
    const grants = resources(parsed, 'Microsoft.Authorization/roleAssignments').map((a) => [
      prop(a.body, 'scope')?.text,
      squash(prop(a.body, 'properties.roleDefinitionId')?.text).replace(/^.*,(.*)\)$/, '$1'),
    ]);
    expect(grants).toEqual(
      expect.arrayContaining([
        ['hostStorage', 'roles.storageBlobDataOwner'], // AzureWebJobsStorage + deployment package
        ['reportsStorage::blobService::reports', 'roles.storageBlobDataContributor'],
        ['reportsStorage::blobService::archive', 'archiveWriterRole.name'],
        ['applicationInsights', 'roles.monitoringMetricsPublisher'],
        ['communicationService', 'emailSenderRole.name'],
      ]),
    );
    // Nothing broad on the reports account itself: the archive must stay out of any delete-capable role
    expect(grants.map(([scope]) => scope)).not.toContain('reportsStorage');
  });

  it('the archive writer can read, list and create blobs, and cannot delete or lift immutability', async () => {
    const role = resource(await bicep('app/rbac.bicep'), 'archiveWriterRole');
    const permissions = prop(role.body, 'properties.permissions')?.namedChildren[0] ?? undefined;
    const dataActions = literal(prop(permissions, 'dataActions')) as string[];
    const actions = literal(prop(permissions, 'actions')) as string[];
    // Exactly these: the app never appends, so blobs/add/action (append blocks) is not granted either.
    expect(dataActions).toEqual([
      'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read',
      'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write',
    ]);
    for (const a of [...dataActions, ...actions]) {
      expect(a).not.toMatch(/delete|\*|immutableStorage|immutabilityPolicies|runAsSuperUser|legalHold/i);
    }
    // The app calls createIfNotExists on the container before writing (src/io/blob.ts)
    expect(actions).toContain('Microsoft.Storage/storageAccounts/blobServices/containers/write');
    expect(squash(prop(role.body, 'properties.assignableScopes')?.text)).toBe('[resourceGroup().id]');
  });

  it('the email sender role can send and nothing else: no control-plane write, nothing that yields a key', async () => {
    const role = resource(await bicep('app/rbac.bicep'), 'emailSenderRole');
    const permissions = prop(role.body, 'properties.permissions')?.namedChildren[0] ?? undefined;
    const actions = literal(prop(permissions, 'actions')) as string[];
    expect(actions).toEqual(['Microsoft.Communication/CommunicationServices/Read']);
    for (const a of actions) expect(a).not.toMatch(/write|delete|listKeys|regenerateKey|\*/i);
    expect(literal(prop(permissions, 'dataActions'))).toEqual([
      'Microsoft.Communication/CommunicationServices/Email/Send/action',
    ]);
    expect(literal(prop(role.body, 'properties.type'))).toBe('CustomRole');
  });
});

describe('Microsoft Graph application permissions', () => {
  it('the Bicep grants exactly the permissions of docs/guarantees.md, by their Graph app role ids', async () => {
    const parsed = await bicep('app/graph-permissions.bicep');
    const appRoles = variable(parsed, 'graphAppRoles');
    const granted = Object.fromEntries(objectKeys(appRoles).map((k) => [k, literal(prop(appRoles, [k]))]));
    expect(Object.keys(granted).sort()).toEqual([...GRAPH_PERMISSIONS].sort());
    expect(granted).toEqual(GRAPH_APP_ROLE_IDS);

    const grants = resources(parsed, 'Microsoft.Graph/appRoleAssignedTo');
    // The required permissions, and Member.Read.Hidden only when asked for (off by default).
    expect(grants).toHaveLength(2);
    const optional = grants[1];
    expect(squash(optional.condition)).toBe('(grantMemberReadHidden)');
    expect(literal(variable(parsed, 'memberReadHiddenAppRoleId'))).toBe('658aa5d8-239f-45c4-aa12-864f4fc7e490');
    expect(prop(optional.body, 'appRoleId')?.text).toBe('memberReadHiddenAppRoleId');
    expect(param(parsed, 'grantMemberReadHidden').defaultValue?.text).toBe('false');
    expect(grants[0].apiVersion).toBe('v1.0');
    expect(squash(grants[0].loopOver)).toBe('items(graphAppRoles)');
    expect(prop(grants[0].body, 'principalId')?.text).toBe('principalId');
    expect(prop(grants[0].body, 'resourceId')?.text).toBe('microsoftGraph.id');
    const graph = resource(parsed, 'microsoftGraph');
    expect(graph.existing).toBe(true);
    expect(literal(prop(graph.body, 'appId'))).toBe('00000003-0000-0000-c000-000000000000');
  });

  it('uses the Microsoft Graph Bicep extension, declared in bicepconfig.json', () => {
    expect(readFileSync(infraPath('app/graph-permissions.bicep'), 'utf8')).toMatch(/^extension microsoftGraphV1$/m);
    const config = JSON.parse(readFileSync(infraPath('bicepconfig.json'), 'utf8'));
    expect(config.extensions.microsoftGraphV1).toMatch(
      /^br:mcr\.microsoft\.com\/bicep\/extensions\/microsoftgraph\/v1\.0:\d+\.\d+\.\d+$/,
    );
  });

  it("can be skipped by a parameter, and is given the identity's principal id", async () => {
    const main = await bicep('main.bicep');
    const grant = param(main, 'grantGraphPermissions');
    expect(grant.type).toBe('bool');
    const module = modules(main).find((m) => m.path === 'app/graph-permissions.bicep');
    expect(squash(module?.condition)).toBe('(grantGraphPermissions)');
    expect(prop(module?.body, 'params.principalId')?.text).toBe('identity.outputs.principalId');
    const parameters = JSON.parse(readFileSync(infraPath('main.parameters.json'), 'utf8')).parameters;
    expect(parameters.grantGraphPermissions.value).toMatch(/^\$\{GRANT_GRAPH_PERMISSIONS(=(true|false))?\}$/);
  });

  it('the admin script grants the same list', () => {
    const script = readFileSync(infraPath('scripts/grant-graph-permissions.sh'), 'utf8');
    const list = /^PERMISSIONS="([^"]*)"/m.exec(script)?.[1].split(/\s+/).filter(Boolean);
    expect(list?.sort()).toEqual([...GRAPH_PERMISSIONS].sort());
    expect(script).toContain('/appRoleAssignedTo');
    expect(script).toContain('az rest');
  });
});
