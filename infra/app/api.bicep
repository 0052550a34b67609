// The Flex Consumption Function App (Node.js 22, Functions v4 programming model) running as the
// user-assigned identity. Every setting the app reads comes from a resource or a parameter here;
// none is a key or a connection string with a secret in it.
//
// Flex Consumption rejects the old settings FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
// WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT*, and ignores WEBSITE_TIME_ZONE/TZ (schedules are UTC):
// the runtime is declared in functionAppConfig instead, and none of those settings appear here.

param name string
param planName string
param location string = resourceGroup().location
param tags object = {}

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string
@description('Client id of that identity (MANAGED_IDENTITY_CLIENT_ID, AzureWebJobsStorage__clientId).')
param identityClientId string

@description('Blob endpoint of the host storage account (AzureWebJobsStorage__blobServiceUri).')
param hostStorageBlobEndpoint string
param deploymentContainerName string

param applicationInsightsConnectionString string

param graphEndpoint string
param reportsStorageAccountUrl string
param reportsContainerName string
param archiveContainerName string
param acsEndpoint string
param emailSender string
param emailRecipients string

@minValue(1)
@maxValue(365)
param expiryWindowDays int
@minValue(1)
@maxValue(3650)
param unusedAfterDays int
param dailySchedule string
param monthlySchedule string
param privilegedRoleIds string = ''
param excludedPrincipalIds string = ''
@minValue(1)
@maxValue(20)
param exportMaxConcurrent int = 2
@minValue(1)
@maxValue(720)
param harvestOverlapHours int = 24
param expiryReminderDays string = ''
@minValue(1)
@maxValue(10000)
param remindersPerRun int = 200
@description('PIM for Azure resources: ARM scopes to report; empty: off.')
param azureResourceScopes string = ''
@description('ARM of the cloud deployed to.')
param armEndpoint string = 'https://management.azure.com'
param azurePrivilegedRoleIds string = ''

param maximumInstanceCount int = 100
param instanceMemoryMB int = 2048

// App Service authentication (Easy Auth) with Microsoft Entra ID in front of the function key: the
// platform rejects a request without a valid Entra token for the app registration before the
// function (and its key check) runs. Timers are not HTTP and are unaffected.
// https://learn.microsoft.com/azure/app-service/configure-authentication-provider-aad
@description('Require a Microsoft Entra ID token (App Service authentication) on the HTTP export, in addition to the function key.')
param entraAuthEnabled bool = false
@description('Client id of the Entra app registration that callers request tokens for (audience api://<client id>). Required when entraAuthEnabled.')
param entraAuthClientId string = ''
@description('Tenant whose tokens are accepted.')
param entraAuthTenantId string = subscription().tenantId
@description('Client ids of the applications allowed to call; empty: any caller with a token for the app registration.')
param entraAuthAllowedApplications array = []

var appSettings = {
  // Host storage through the managed identity: the identity-based form of AzureWebJobsStorage
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: hostStorageBlobEndpoint // blob only: timers need blob leases, not queues or tables

  // Telemetry, authenticated with the managed identity (the component has local auth off)
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'

  // pim-reporter (docs/settings.md). The local-run alternatives REPORTS_STORAGE_CONNECTION_STRING and
  // ACS_CONNECTION_STRING are deliberately absent: in Azure everything goes through the identity.
  GRAPH_ENDPOINT: graphEndpoint
  MANAGED_IDENTITY_CLIENT_ID: identityClientId
  REPORTS_STORAGE_ACCOUNT_URL: reportsStorageAccountUrl
  REPORTS_CONTAINER: reportsContainerName
  ARCHIVE_CONTAINER: archiveContainerName
  ACS_ENDPOINT: acsEndpoint
  EMAIL_SENDER: emailSender
  EMAIL_RECIPIENTS: emailRecipients
  EXPIRY_WINDOW_DAYS: string(expiryWindowDays)
  UNUSED_AFTER_DAYS: string(unusedAfterDays)
  PRIVILEGED_ROLE_IDS: privilegedRoleIds // empty: the app's built-in CISA SCuBA list
  EXCLUDED_PRINCIPAL_IDS: excludedPrincipalIds
  DAILY_SCHEDULE: dailySchedule // read by the timer trigger as %DAILY_SCHEDULE%
  MONTHLY_SCHEDULE: monthlySchedule // read by the timer trigger as %MONTHLY_SCHEDULE%
  EXPORT_MAX_CONCURRENT: string(exportMaxConcurrent) // HTTP exports per instance at once; more get 429
  HARVEST_OVERLAP_HOURS: string(harvestOverlapHours) // how late an audit event may reach Graph and still be harvested
  EXPIRY_REMINDER_DAYS: expiryReminderDays // empty: no reminders to the holders
  REMINDERS_PER_RUN: string(remindersPerRun)
  AZURE_RESOURCE_SCOPES: azureResourceScopes // empty: PIM for Azure resources off
  ARM_ENDPOINT: armEndpoint
  AZURE_PRIVILEGED_ROLE_IDS: azurePrivilegedRoleIds // empty: Owner, Contributor, UAA, RBAC Administrator
}

// One Flex Consumption plan per app
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      appSettings: map(items(appSettings), setting => {
        name: setting.key
        value: setting.value
      })
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

// No basic (username and password) publishing credentials: azd deploys with Entra ID, and FTP and
// SCM basic auth would be a second, long-lived way in.
// https://learn.microsoft.com/azure/app-service/configure-basic-auth-disable
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

resource entraAuth 'Microsoft.Web/sites/config@2024-04-01' = if (entraAuthEnabled) {
  parent: functionApp
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: entraAuthClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${entraAuthTenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${entraAuthClientId}'
          ]
          defaultAuthorizationPolicy: {
            allowedApplications: entraAuthAllowedApplications
          }
        }
      }
    }
  }
}

output name string = functionApp.name
output id string = functionApp.id
output url string = 'https://${functionApp.properties.defaultHostName}'
