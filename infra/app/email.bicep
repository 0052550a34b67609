// Azure Communication Services with an Email Communication Service and an Azure-managed domain
// (DoNotReply@<guid>.azurecomm.net), linked. Local (key) authentication is off: the app sends with
// its managed identity, through the custom role in rbac.bicep.

param communicationServiceName string
param emailServiceName string

@description('Data location of both services; linking needs them in the same geography.')
param dataLocation string
param tags object = {}

@description('Local part of the sender address on the Azure-managed domain.')
param senderUsername string = 'DoNotReply'

resource emailService 'Microsoft.Communication/emailServices@2025-09-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }

  resource domain 'domains' = {
    name: 'AzureManagedDomain'
    location: 'global'
    tags: tags
    properties: {
      domainManagement: 'AzureManaged'
      userEngagementTracking: 'Disabled' // no tracking pixels or rewritten links in a security digest
    }
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2025-09-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    disableLocalAuth: true // no access keys, no connection strings: Entra ID only
    linkedDomains: [
      emailService::domain.id
    ]
  }
}

output name string = communicationService.name
output id string = communicationService.id
output endpoint string = 'https://${communicationService.properties.hostName}'
output senderAddress string = '${senderUsername}@${emailService::domain.properties.mailFromSenderDomain}'
