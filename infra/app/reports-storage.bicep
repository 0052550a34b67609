// Reports storage: the reports container (daily snapshots, state, exports) and the archive container
// (monthly compliance packs). The archive has version-level immutability (WORM): every blob version
// written there is kept unchanged for archiveRetentionDays, whatever role the writer holds.
// Entra ID only: shared keys are off, so no connection string exists for this account.

param name string
param location string = resourceGroup().location
param tags object = {}
param reportsContainerName string
param archiveContainerName string

@minValue(1)
@maxValue(146000)
param archiveRetentionDays int

@allowed([
  'Unlocked'
  'Locked'
])
param archiveImmutabilityState string = 'Unlocked'

@description('Days an export saved with save=true is kept under exports/ in the reports container before the lifecycle rule deletes it.')
@minValue(1)
@maxValue(3650)
param exportRetentionDays int = 30

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
    publicNetworkAccess: publicNetworkAccess
    supportsHttpsTrafficOnly: true
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
    }
  }

  resource blobService 'blobServices' = {
    name: 'default'
    properties: {
      isVersioningEnabled: true // required by version-level immutability
      deleteRetentionPolicy: {
        enabled: true
        days: 7
      }
      containerDeleteRetentionPolicy: {
        enabled: true
        days: 7
      }
    }

    resource reports 'containers' = {
      name: reportsContainerName
      properties: {
        publicAccess: 'None'
      }
    }

    resource archive 'containers' = {
      name: archiveContainerName
      properties: {
        publicAccess: 'None'
        immutableStorageWithVersioning: {
          enabled: true // version-level WORM; cannot be turned off once on
        }
      }

      // The container's default time-based retention, inherited by every new blob version. ARM can
      // create and change it only while it is unlocked: once archiveImmutabilityState is Locked,
      // infra/scripts/lock-archive-immutability.sh (run by the postprovision hook) owns it.
      resource retention 'immutabilityPolicies' = if (archiveImmutabilityState == 'Unlocked') {
        name: 'default'
        properties: {
          immutabilityPeriodSinceCreationInDays: archiveRetentionDays
          allowProtectedAppendWrites: false
        }
      }
    }
  }

  // Versioning is on for the whole account; drop old versions of rewritten report files (state,
  // re-run exports) after 30 days. The archive is left alone: it is never rewritten.
  resource lifecycle 'managementPolicies' = {
    name: 'default'
    dependsOn: [
      blobService // version actions need versioning on first
    ]
    properties: {
      policy: {
        rules: [
          {
            name: 'expire-old-report-versions'
            enabled: true
            type: 'Lifecycle'
            definition: {
              filters: {
                blobTypes: [
                  'blockBlob'
                ]
                prefixMatch: [
                  '${reportsContainerName}/'
                ]
              }
              actions: {
                version: {
                  delete: {
                    daysAfterCreationGreaterThan: 30
                  }
                }
              }
            }
          }
          // Exports saved with save=true are a convenience copy, not a record: each call writes a new
          // blob, so they are deleted after exportRetentionDays (and their old versions with them).
          // https://learn.microsoft.com/azure/storage/blobs/lifecycle-management-overview
          {
            name: 'delete-saved-exports'
            enabled: true
            type: 'Lifecycle'
            definition: {
              filters: {
                blobTypes: [
                  'blockBlob'
                ]
                prefixMatch: [
                  '${reportsContainerName}/exports/'
                ]
              }
              actions: {
                baseBlob: {
                  delete: {
                    daysAfterCreationGreaterThan: exportRetentionDays
                  }
                }
                version: {
                  delete: {
                    daysAfterCreationGreaterThan: exportRetentionDays
                  }
                }
              }
            }
          }
        ]
      }
    }
  }
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
