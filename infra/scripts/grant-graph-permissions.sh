#!/bin/sh
# Grants pim-reporter's managed identity the Microsoft Graph application permissions it needs
# (docs/guarantees.md, "Least privilege"), with `az rest` against Microsoft Graph. For tenants where the person running
# `azd up` may not grant Graph permissions (GRANT_GRAPH_PERMISSIONS=false): an Entra admin runs this.
#
# Who can run it: a Privileged Role Administrator (or Global Administrator). Application and Cloud
# Application Administrators can grant app roles of other APIs, but not of Microsoft Graph.
#
# Usage:
#   az login --tenant <tenant>            # as the Entra admin
#   ./infra/scripts/grant-graph-permissions.sh [--dry-run] [--member-read-hidden] [<principal-id>]
#
# --member-read-hidden (or GRANT_MEMBER_READ_HIDDEN=true) also grants Member.Read.Hidden, so groups
# with hidden membership are expanded; off by default (README, "What we know of Graph").
# <principal-id> is the identity's service principal object id (the azd output
# MANAGED_IDENTITY_PRINCIPAL_ID; Azure portal: Managed Identities > id-pim-... > Object (principal) ID).
# Without it the script uses $MANAGED_IDENTITY_PRINCIPAL_ID, then `azd env get-values`.
# Safe to re-run: permissions already granted are left as they are. Nothing is ever removed.
set -eu

# Keep in step with infra/app/graph-permissions.bicep (the infra tests check both against docs/guarantees.md).
PERMISSIONS="RoleManagement.Read.Directory
AuditLog.Read.All
Directory.Read.All
PrivilegedEligibilitySchedule.Read.AzureADGroup
RoleManagementPolicy.Read.AzureADGroup"

GRAPH_APP_ID=00000003-0000-0000-c000-000000000000

dry_run=false
member_read_hidden="${GRANT_MEMBER_READ_HIDDEN:-false}"
principal_id=""
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=true ;;
    --member-read-hidden) member_read_hidden=true ;;
    -h | --help)
      sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "grant-graph-permissions: unknown option $arg" >&2
      exit 2
      ;;
    *) principal_id="$arg" ;;
  esac
done

case "$member_read_hidden" in
  true | True | TRUE) PERMISSIONS="$PERMISSIONS
Member.Read.Hidden" ;;
esac

if [ -z "$principal_id" ]; then
  principal_id="${MANAGED_IDENTITY_PRINCIPAL_ID:-}"
fi
if [ -z "$principal_id" ] && command -v azd >/dev/null 2>&1; then
  principal_id="$(azd env get-values 2>/dev/null | sed -n 's/^MANAGED_IDENTITY_PRINCIPAL_ID="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' | head -n 1)"
fi
if ! printf '%s' "$principal_id" | grep -Eq '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'; then
  echo "grant-graph-permissions: give the managed identity's principal (object) id as the argument," >&2
  echo "  or run it from the azd project after 'azd provision' (MANAGED_IDENTITY_PRINCIPAL_ID). Got: '${principal_id}'" >&2
  exit 2
fi

if ! command -v az >/dev/null 2>&1; then
  echo "grant-graph-permissions: the Azure CLI (az) is required; sign in with 'az login' as an Entra admin" >&2
  exit 2
fi

graph="${GRAPH_ENDPOINT:-https://graph.microsoft.com}"
graph="${graph%/}/v1.0"

# The tenant's Microsoft Graph service principal, and the identity's own service principal
graph_sp_id="$(az rest --method get --url "$graph/servicePrincipals(appId='$GRAPH_APP_ID')" --query id --output tsv)"
if [ -z "$graph_sp_id" ]; then
  echo "grant-graph-permissions: Microsoft Graph's service principal was not found in this tenant" >&2
  exit 1
fi
principal_name="$(az rest --method get --url "$graph/servicePrincipals/$principal_id" --query displayName --output tsv)" || {
  echo "grant-graph-permissions: no service principal with id $principal_id in this tenant (is it the principal id, not the client id?)" >&2
  exit 1
}
echo "Granting Microsoft Graph application permissions to '$principal_name' ($principal_id)"

existing="$(az rest --method get \
  --url "$graph/servicePrincipals/$principal_id/appRoleAssignments" \
  --query "value[?resourceId=='$graph_sp_id'].appRoleId" --output tsv)"

failed=0
for permission in $PERMISSIONS; do
  role_id="$(az rest --method get --url "$graph/servicePrincipals/$graph_sp_id?\$select=appRoles" \
    --query "appRoles[?value=='$permission' && contains(allowedMemberTypes, 'Application')].id | [0]" --output tsv)"
  if [ -z "$role_id" ]; then
    echo "  $permission: NOT FOUND on Microsoft Graph's service principal" >&2
    failed=1
    continue
  fi
  if printf '%s\n' "$existing" | grep -qix "$role_id"; then
    echo "  $permission: already granted"
    continue
  fi
  if [ "$dry_run" = true ]; then
    echo "  $permission: would grant (app role $role_id)"
    continue
  fi
  if az rest --method post --url "$graph/servicePrincipals/$graph_sp_id/appRoleAssignedTo" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\":\"$principal_id\",\"resourceId\":\"$graph_sp_id\",\"appRoleId\":\"$role_id\"}" \
    --output none; then
    echo "  $permission: granted"
  else
    echo "  $permission: FAILED (the signed-in account needs Privileged Role Administrator or Global Administrator)" >&2
    failed=1
  fi
done

if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "Done. Tokens the app already holds keep their old permissions until they expire (up to 24 hours for managed identities)."
