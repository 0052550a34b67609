// Azure RBAC for the app's managed identity, each grant on the narrowest scope that works.
// Role assignment names are guid(scope.id, principalId, roleDefinitionId), so re-deploying is idempotent.
//
//   host storage account   Storage Blob Data Owner        AzureWebJobsStorage and the deployment package (the Functions host needs Owner)
//   reports container      Storage Blob Data Contributor  read, write, rewrite state
//   archive container      pim-reporter archive writer    read, list, create; no delete (and the WORM policy protects every version anyway)
//   Application Insights   Monitoring Metrics Publisher   telemetry with Entra ID
//   Communication Services pim-reporter email sender      the Email send data action and read; no control-plane write, no keys

param principalId string
@description('Makes the custom role names unique in the tenant.')
param resourceToken string
param hostStorageAccountName string
param reportsStorageAccountName string
param reportsContainerName string
param archiveContainerName string
param applicationInsightsName string
param communicationServiceName string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe' // Storage Blob Data Contributor
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: hostStorageAccountName
}

resource reportsStorage 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: reportsStorageAccountName

  resource blobService 'blobServices' existing = {
    name: 'default'

    resource reports 'containers' existing = {
      name: reportsContainerName
    }

    resource archive 'containers' existing = {
      name: archiveContainerName
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource communicationService 'Microsoft.Communication/communicationServices@2025-09-01' existing = {
  name: communicationServiceName
}

// Create-only access to the archive: blobs/write creates a blob (the app uses "only if absent"; the
// app never appends, so blobs/add/action, which only append blocks need, is not granted), and
// there is deliberately no blobs/delete and no blobs/immutableStorage/runAsSuperUser/action (which
// would let it remove an unlocked policy from a blob version). containers/write is there because the
// app calls createIfNotExists on each container it uses; on this container it cannot turn immutability
// off (that is permanent) nor touch the retention policy (immutabilityPolicies/* is not granted).
resource archiveWriterRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'pim-reporter-archive-writer')
  properties: {
    roleName: 'pim-reporter archive writer (${resourceToken})'
    description: 'Read, list and create blobs in the pim-reporter archive container. Cannot delete blobs or change immutability.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.Storage/storageAccounts/blobServices/containers/read'
          'Microsoft.Storage/storageAccounts/blobServices/containers/write'
        ]
        notActions: []
        dataActions: [
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'
        ]
        notDataActions: []
      }
    ]
  }
}

// Sending mail with Entra ID and nothing else: the Email send data action, and read on the resource.
// No control-plane write (the Contributor-like CommunicationServices/Write and EmailServices/write
// that older guidance lists would let the identity reconfigure the resource), no listKeys or
// regenerateKey (it can never obtain a key; local auth is off on the resource anyway).
// The operations of each provider: https://learn.microsoft.com/azure/role-based-access-control/resource-provider-operations
// (`az provider operation show --namespace Microsoft.Communication` lists them for a subscription).
// Not verified against a live send: if ACS still asks for CommunicationServices/Write, the first
// send fails with 403 and the digest stays queued (infra/README.md, "Sending a first test email").
resource emailSenderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'pim-reporter-email-sender')
  properties: {
    roleName: 'pim-reporter email sender (${resourceToken})'
    description: 'Send email through the pim-reporter Azure Communication Services resource with Entra ID. No keys.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.Communication/CommunicationServices/Read'
        ]
        notActions: []
        dataActions: [
          'Microsoft.Communication/CommunicationServices/Email/Send/action'
        ]
        notDataActions: []
      }
    ]
  }
}

resource hostStorageBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, principalId, roles.storageBlobDataOwner)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource reportsContainerContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(reportsStorage::blobService::reports.id, principalId, roles.storageBlobDataContributor)
  scope: reportsStorage::blobService::reports
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource archiveContainerWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(reportsStorage::blobService::archive.id, principalId, archiveWriterRole.name)
  scope: reportsStorage::blobService::archive
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', archiveWriterRole.name)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource applicationInsightsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource communicationEmailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communicationService.id, principalId, emailSenderRole.name)
  scope: communicationService
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', emailSenderRole.name)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output archiveWriterRoleName string = archiveWriterRole.properties.roleName
output emailSenderRoleName string = emailSenderRole.properties.roleName
