// Microsoft Graph application permissions for the app's managed identity (docs/guarantees.md, "Least privilege": read-only,
// least privilege, no secret). Deploying this needs an Entra role that may grant application
// permissions of Microsoft Graph: Privileged Role Administrator (or Global Administrator). When the
// deployer lacks it, set grantGraphPermissions=false and an admin runs
// infra/scripts/grant-graph-permissions.sh with the same list.

extension microsoftGraphV1

@description('Object id of the managed identity\'s service principal (the identity\'s principalId).')
param principalId string

@description('Also grant Member.Read.Hidden, to list members of groups with hidden membership (README: What we know of Graph). Off by default.')
param grantMemberReadHidden bool = false

// Application permission (app role) value -> app role id on the Microsoft Graph service principal.
// The ids are the same in every tenant (Microsoft Graph permissions reference).
// RoleManagement.Read.Directory covers the eligible and active role schedules as well as the role
// definitions (the schedules list it among their application permissions:
// https://learn.microsoft.com/graph/api/rbacapplication-list-roleeligibilityschedules and
// https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignmentschedules), so the
// narrower RoleEligibilitySchedule.Read.Directory and RoleAssignmentSchedule.Read.Directory would
// add nothing and are not granted. It also covers the role settings of Entra roles
// (https://learn.microsoft.com/graph/api/policyroot-list-rolemanagementpolicyassignments lists it
// after RoleManagementPolicy.Read.Directory), so that narrower one is not granted either; PIM for
// Groups policies need RoleManagementPolicy.Read.AzureADGroup, which nothing here covers.
var graphAppRoles = {
  'RoleManagement.Read.Directory': '483bed4a-2ad3-4361-a73b-c83ccdbdc53c' // role definitions, eligible and active role schedules
  'AuditLog.Read.All': 'b0afded3-3588-46d8-8b3d-9842eff778da' // PIM activations in the directory audit log
  'Directory.Read.All': '7ab1d382-f21e-4acd-a863-ba3e13f7da61' // principals, groups and their members, administrative units
  'PrivilegedEligibilitySchedule.Read.AzureADGroup': 'edb419d6-7edc-42a3-9345-509bfdf5d87c' // PIM for Groups eligible members
  'RoleManagementPolicy.Read.AzureADGroup': '69e67828-780e-47fd-b28c-7b27d14864e6' // PIM for Groups membership policies (role settings)
}

// Optional, off by default: members of groups with hidden membership (without it such a group is
// reported as not expanded). App role id from the Microsoft Graph permissions reference.
var memberReadHiddenAppRoleId = '658aa5d8-239f-45c4-aa12-864f4fc7e490'

// Microsoft Graph's service principal in this tenant (well-known appId)
resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000003-0000-0000-c000-000000000000'
}

resource grants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for role in items(graphAppRoles): {
    appRoleId: role.value
    principalId: principalId
    resourceId: microsoftGraph.id
  }
]

resource memberReadHidden 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (grantMemberReadHidden) {
  appRoleId: memberReadHiddenAppRoleId
  principalId: principalId
  resourceId: microsoftGraph.id
}

var requiredPermissions = [for role in items(graphAppRoles): role.key]
output grantedPermissions array = concat(requiredPermissions, grantMemberReadHidden ? ['Member.Read.Hidden'] : [])
