// Host storage for the Functions runtime: AzureWebJobsStorage (timer schedule status and singleton
// locks, host keys) and the Flex Consumption deployment package. Reached only with Entra ID (the
// app's managed identity); shared keys are off, so no connection string exists for it.

param name string
param location string = resourceGroup().location
param tags object = {}
param deploymentContainerName string

@description('Disabled: the storage account takes no traffic from public networks (the app must then reach it through a virtual network and private endpoints, which this template does not create). Enabled: any network, with Entra ID only.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

resource storage 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false // Entra ID only: no account keys, no SAS signed with them
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    publicNetworkAccess: publicNetworkAccess // Enabled by default: Flex Consumption without a virtual network reaches storage publicly
    supportsHttpsTrafficOnly: true
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
  }

  resource blobService 'blobServices' = {
    name: 'default'

    // Flex Consumption reads the app package from here with the managed identity
    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
