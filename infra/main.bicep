targetScope = 'subscription'

// pim-reporter: a Flex Consumption Function App that reads Entra PIM data from Microsoft Graph with a
// user-assigned managed identity, writes CSVs to Blob Storage and emails a digest through Azure
// Communication Services. Deployed with `azd up`; see infra/README.md.

@minLength(1)
@maxLength(64)
@description('Name of the azd environment, used to derive a short unique token for resource names.')
param environmentName string

@minLength(1)
@description('Primary location for all resources. It must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@minLength(3)
@description('Comma-separated addresses that receive the daily digest (EMAIL_RECIPIENTS).')
param emailRecipients string

@description('Where Azure Communication Services and its Email service keep data at rest; both must use the same one. Examples: Europe, United States, UK, Australia, Japan.')
param communicationDataLocation string = 'Europe'

@description('Grant the Microsoft Graph application permissions to the identity in this deployment. Needs an Entra Privileged Role Administrator (or Global Administrator) as the deployer; set false otherwise and have an admin run infra/scripts/grant-graph-permissions.sh.')
param grantGraphPermissions bool = true

@description('Also grant Member.Read.Hidden so groups with hidden membership are expanded (off by default: it reveals memberships Entra hides; without it such groups are reported as not expanded). The grant script takes --member-read-hidden.')
param grantMemberReadHidden bool = false

@description('Container for daily snapshots, state and exports (REPORTS_CONTAINER).')
param reportsContainerName string = 'pim-reports'

@description('Container for the monthly compliance packs, write-once (ARCHIVE_CONTAINER).')
param archiveContainerName string = 'pim-archive'

@minValue(1)
@maxValue(146000)
@description('Days every archived blob version stays immutable after it is written.')
param archiveRetentionDays int = 365

@allowed([
  'Unlocked'
  'Locked'
])
@description('Unlocked: the retention can still be shortened or removed by an administrator (use for trials). Locked: irreversible; the policy can only be extended, and the account cannot be deleted while protected blobs exist. Bicep cannot lock a policy: the postprovision hook does it when this is Locked.')
param archiveImmutabilityState string = 'Unlocked'

@description('Microsoft Graph root (GRAPH_ENDPOINT); change it for a national cloud, e.g. https://graph.microsoft.us.')
param graphEndpoint string = 'https://graph.microsoft.com'

@minValue(1)
@maxValue(365)
@description('An assignment is "expiring" when its end falls within this many days (EXPIRY_WINDOW_DAYS).')
param expiryWindowDays int = 14

@minValue(1)
@maxValue(3650)
@description('An eligibility held this many days with no activation is listed as unused (UNUSED_AFTER_DAYS).')
param unusedAfterDays int = 90

@description('Six-field NCRONTAB in UTC for the daily digest (DAILY_SCHEDULE). Flex Consumption has no time zone setting.')
param dailySchedule string = '0 0 6 * * *'

@description('Six-field NCRONTAB in UTC for the monthly archive (MONTHLY_SCHEDULE).')
param monthlySchedule string = '0 0 3 1 * *'

@description('Comma-separated role template ids treated as highly privileged (PRIVILEGED_ROLE_IDS). Empty: the CISA SCuBA list built into the app.')
param privilegedRoleIds string = ''

@description('Comma-separated object ids of break-glass and service accounts that are reported but never flagged (EXCLUDED_PRINCIPAL_IDS).')
param excludedPrincipalIds string = ''

@description('Public network access of both storage accounts. Disabled needs a virtual network and private endpoints, which this template does not create.')
@allowed([
  'Enabled'
  'Disabled'
])
param storagePublicNetworkAccess string = 'Enabled'

@description('HTTP exports one instance runs at once (EXPORT_MAX_CONCURRENT); more are answered 429 with Retry-After.')
@minValue(1)
@maxValue(20)
param exportMaxConcurrent int = 2

@description('How far each harvest re-reads before the last one (HARVEST_OVERLAP_HOURS): audit events reaching Graph later than this are missed; a month is sealed this long after its end.')
@minValue(1)
@maxValue(720)
param harvestOverlapHours int = 24

@description('Expiry reminders to the holders at these days left, comma-separated (EXPIRY_REMINDER_DAYS, e.g. 14,7,1); empty: none.')
param expiryReminderDays string = ''

@description('Reminder emails one daily run sends at most (REMINDERS_PER_RUN); the rest wait for the next run.')
@minValue(1)
@maxValue(10000)
param remindersPerRun int = 200
@description('PIM for Azure resources: comma-separated ARM scopes to report (root = the tenant root management group, /providers/Microsoft.Management/managementGroups/{id}, /subscriptions/{id}); empty: off. The postprovision step grants the identity Reader at each.')
param azureResourceScopes string = ''

@description('Azure role definition ids (GUIDs) treated as privileged; empty: Owner, Contributor, User Access Administrator, Role Based Access Control Administrator.')
param azurePrivilegedRoleIds string = ''

@description('Days a saved export (save=true) is kept under exports/ before the lifecycle rule deletes it.')
param exportRetentionDays int = 30

@description('Require a Microsoft Entra ID token (App Service authentication) on the HTTP export, in front of the function key. Recommended.')
param entraAuthEnabled bool = false

@description('Client id of the Entra app registration callers request tokens for (required when entraAuthEnabled).')
param entraAuthClientId string = ''

@description('Client ids of the applications allowed to call the export; empty: any caller with a token for the app registration.')
param entraAuthAllowedApplications array = []

// ARM of the cloud deployed to (https://learn.microsoft.com/azure/azure-resource-manager/bicep/bicep-functions-deployment#environment)
var armEndpoint = endsWith(environment().resourceManager, '/') ? substring(environment().resourceManager, 0, length(environment().resourceManager) - 1) : environment().resourceManager
var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.webSitesFunctions}pim-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(toLower(uniqueString(functionAppName, resourceToken)), 7)}'

// Organize resources in a resource group
resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

// User-assigned managed identity: the app's only credential, for Graph, storage, App Insights and email
module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}pim-${resourceToken}'
    location: location
    tags: tags
  }
}

// Host storage: AzureWebJobsStorage (timer locks, host keys) and the Flex deployment package
module hostStorage 'app/host-storage.bicep' = {
  name: 'hostStorage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    publicNetworkAccess: storagePublicNetworkAccess
  }
}

// Reports storage: daily CSVs and the write-once monthly archive, kept apart from host storage so that
// the identity's broad host role does not reach the reports
module reportsStorage 'app/reports-storage.bicep' = {
  name: 'reportsStorage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}rpt${resourceToken}'
    location: location
    tags: tags
    reportsContainerName: reportsContainerName
    archiveContainerName: archiveContainerName
    archiveRetentionDays: archiveRetentionDays
    archiveImmutabilityState: archiveImmutabilityState
    exportRetentionDays: exportRetentionDays
    publicNetworkAccess: storagePublicNetworkAccess
  }
}

// Monitor the app with Application Insights (Entra authentication only) on a Log Analytics workspace
module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

// Azure Communication Services with an Email service and a linked Azure-managed domain
module email 'app/email.bicep' = {
  name: 'email'
  scope: rg
  params: {
    communicationServiceName: '${abbrs.communicationServices}${resourceToken}'
    emailServiceName: '${abbrs.communicationEmailServices}${resourceToken}'
    dataLocation: communicationDataLocation
    tags: tags
  }
}

// The Flex Consumption Function App and its plan
module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    hostStorageBlobEndpoint: hostStorage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    graphEndpoint: graphEndpoint
    reportsStorageAccountUrl: reportsStorage.outputs.blobEndpoint
    reportsContainerName: reportsContainerName
    archiveContainerName: archiveContainerName
    acsEndpoint: email.outputs.endpoint
    emailSender: email.outputs.senderAddress
    emailRecipients: emailRecipients
    expiryWindowDays: expiryWindowDays
    unusedAfterDays: unusedAfterDays
    dailySchedule: dailySchedule
    monthlySchedule: monthlySchedule
    privilegedRoleIds: privilegedRoleIds
    excludedPrincipalIds: excludedPrincipalIds
    exportMaxConcurrent: exportMaxConcurrent
    harvestOverlapHours: harvestOverlapHours
    expiryReminderDays: expiryReminderDays
    remindersPerRun: remindersPerRun
    azureResourceScopes: azureResourceScopes
    armEndpoint: armEndpoint
    azurePrivilegedRoleIds: azurePrivilegedRoleIds
    entraAuthEnabled: entraAuthEnabled
    entraAuthClientId: entraAuthClientId
    entraAuthAllowedApplications: entraAuthAllowedApplications
  }
}

// Azure RBAC for the identity: host storage, reports, archive (write-once), App Insights, email
module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    resourceToken: resourceToken
    hostStorageAccountName: hostStorage.outputs.name
    reportsStorageAccountName: reportsStorage.outputs.name
    reportsContainerName: reportsContainerName
    archiveContainerName: archiveContainerName
    applicationInsightsName: monitoring.outputs.name
    communicationServiceName: email.outputs.name
  }
}

// Microsoft Graph application permissions (docs/guarantees.md, "Least privilege") for the identity, through the Graph Bicep extension
module graphPermissions 'app/graph-permissions.bicep' = if (grantGraphPermissions) {
  name: 'graphPermissions'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    grantMemberReadHidden: grantMemberReadHidden
  }
}

// azd environment outputs: every app setting the function app gets, plus what the hooks and scripts need
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output AZURE_FUNCTION_URL string = api.outputs.url
output SERVICE_API_NAME string = api.outputs.name
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output MANAGED_IDENTITY_NAME string = identity.outputs.name
output GRAPH_PERMISSIONS_GRANTED bool = grantGraphPermissions
output GRANT_MEMBER_READ_HIDDEN bool = grantMemberReadHidden
output GRAPH_ENDPOINT string = graphEndpoint
output AZUREWEBJOBSSTORAGE__BLOBSERVICEURI string = hostStorage.outputs.blobEndpoint
output HOST_STORAGE_ACCOUNT_NAME string = hostStorage.outputs.name
output REPORTS_STORAGE_ACCOUNT_NAME string = reportsStorage.outputs.name
output REPORTS_STORAGE_ACCOUNT_URL string = reportsStorage.outputs.blobEndpoint
output REPORTS_CONTAINER string = reportsContainerName
output ARCHIVE_CONTAINER string = archiveContainerName
output ARCHIVE_RETENTION_DAYS int = archiveRetentionDays
output ARCHIVE_IMMUTABILITY_STATE string = archiveImmutabilityState
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.connectionString
output APPLICATIONINSIGHTS_AUTHENTICATION_STRING string = 'ClientId=${identity.outputs.clientId};Authorization=AAD'
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.name
output ACS_ENDPOINT string = email.outputs.endpoint
output ACS_NAME string = email.outputs.name
output EMAIL_SENDER string = email.outputs.senderAddress
output EMAIL_RECIPIENTS string = emailRecipients
output EXPIRY_WINDOW_DAYS int = expiryWindowDays
output UNUSED_AFTER_DAYS int = unusedAfterDays
output DAILY_SCHEDULE string = dailySchedule
output MONTHLY_SCHEDULE string = monthlySchedule
output EXPORT_MAX_CONCURRENT int = exportMaxConcurrent
output HARVEST_OVERLAP_HOURS int = harvestOverlapHours
output EXPIRY_REMINDER_DAYS string = expiryReminderDays
output REMINDERS_PER_RUN int = remindersPerRun
output PRIVILEGED_ROLE_IDS string = privilegedRoleIds
output EXCLUDED_PRINCIPAL_IDS string = excludedPrincipalIds
output AZURE_RESOURCE_SCOPES string = azureResourceScopes
output ARM_ENDPOINT string = armEndpoint
output AZURE_PRIVILEGED_ROLE_IDS string = azurePrivilegedRoleIds
