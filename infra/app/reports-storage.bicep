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
    publicNetworkAccess: 'Enabled'
    supportsHttpsTrafficOnly: true
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
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
        ]
      }
    }
  }
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
