#!/bin/sh
# PIM for Azure resources: gives the app's identity Reader at each scope of AZURE_RESOURCE_SCOPES,
# so it can list role eligibility and assignment schedules and schedule requests there.
#
# Reader's only action is */read (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/general#reader),
# which covers Microsoft.Authorization/roleEligibilitySchedules/read, roleAssignmentSchedules/read,
# roleAssignmentScheduleRequests/read, Microsoft.Management/managementGroups/descendants/read and
# Microsoft.Resources/subscriptions/read: no built-in role with less reads all of them.
#
# Usage: grant-azure-reader.sh <principal id> "<scopes>" [tenant id]
# Assigning a role needs Microsoft.Authorization/roleAssignments/write at the scope (Owner, User Access
# Administrator or Role Based Access Control Administrator there). At the tenant root group that
# usually means elevated access: https://learn.microsoft.com/azure/role-based-access-control/elevate-access-global-admin
# Exits 0 even when a grant fails, after saying which and why: the rest of the app works without it.
set -u
principal="${1:-}"
scopes="${2:-}"
tenant="${3:-${AZURE_TENANT_ID:-}}"
READER=acdd72a7-3385-48ef-bd42-f606fba81ae7

if [ -z "$scopes" ]; then
  echo "PIM for Azure resources: off (AZURE_RESOURCE_SCOPES is empty); no Azure role granted."
  exit 0
fi
if [ -z "$principal" ]; then
  echo "PIM for Azure resources: no principal id for the app identity (MANAGED_IDENTITY_PRINCIPAL_ID); grant Reader at $scopes by hand."
  exit 0
fi

failed=0
old_ifs=$IFS
IFS=','
for raw in $scopes; do
  IFS=$old_ifs
  scope=$(printf '%s' "$raw" | tr -d ' ')
  [ -z "$scope" ] && continue
  if [ "$scope" = "root" ]; then
    if [ -z "$tenant" ]; then
      echo "Cannot resolve 'root' without the tenant id (AZURE_TENANT_ID)."
      failed=1
      continue
    fi
    scope="/providers/Microsoft.Management/managementGroups/$tenant"
  fi
  if out=$(az role assignment create --assignee-object-id "$principal" --assignee-principal-type ServicePrincipal --role "$READER" --scope "$scope" --only-show-errors 2>&1); then
    echo "Reader granted to the app identity at $scope."
  else
    failed=1
    case "$out" in
      *AuthorizationFailed*|*"does not have authorization"*|*Forbidden*)
        echo "NOT granted at $scope: you lack Microsoft.Authorization/roleAssignments/write there."
        echo "  An Owner, User Access Administrator or Role Based Access Control Administrator of that scope must run:"
        ;;
      *)
        echo "NOT granted at $scope: $out"
        echo "  Run again once fixed:"
        ;;
    esac
    echo "  az role assignment create --assignee-object-id $principal --assignee-principal-type ServicePrincipal --role $READER --scope \"$scope\""
    case "$scope" in
      /providers/Microsoft.Management/managementGroups/"$tenant")
        echo "  At the tenant root group this usually needs elevated access first: https://learn.microsoft.com/azure/role-based-access-control/elevate-access-global-admin"
        ;;
    esac
  fi
  IFS=','
done
IFS=$old_ifs
if [ "$failed" -ne 0 ]; then
  echo "Until then the daily digest and manifest show those scopes listed as incomplete; the Entra report is not affected."
fi
exit 0
