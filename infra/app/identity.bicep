// The user-assigned managed identity the function app runs as. Every grant (Azure RBAC and the
// Microsoft Graph application permissions) goes to this identity, so it survives re-creating the app.

param name string
param location string = resourceGroup().location
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
