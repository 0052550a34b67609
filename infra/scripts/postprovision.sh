#!/bin/sh
# azd postprovision hook (azure.yaml). azd passes the environment's values (the Bicep outputs) in.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"

case "${GRAPH_PERMISSIONS_GRANTED:-false}" in
  [Tt]rue) echo "Microsoft Graph application permissions: granted to ${MANAGED_IDENTITY_NAME:-the app identity} by the deployment." ;;
  *)
    echo "Microsoft Graph application permissions were NOT granted (GRANT_GRAPH_PERMISSIONS=false)."
    echo "The app cannot read PIM data until an Entra Privileged Role Administrator runs, from this folder:"
    echo "  az login --tenant ${AZURE_TENANT_ID:-<tenant id>}"
    echo "  ./infra/scripts/grant-graph-permissions.sh ${MANAGED_IDENTITY_PRINCIPAL_ID:-<principal id>}"
    ;;
esac

case "${ARCHIVE_IMMUTABILITY_STATE:-Unlocked}" in
  Locked) sh "$here/lock-archive-immutability.sh" ;;
  *) echo "Archive immutability: ${ARCHIVE_RETENTION_DAYS:-?} days, Unlocked (an administrator can still shorten or remove it; see infra/README.md to lock)." ;;
esac

# PIM for Azure resources (AZURE_RESOURCE_SCOPES): Reader for the identity at each scope.
sh "$here/grant-azure-reader.sh" "${MANAGED_IDENTITY_PRINCIPAL_ID:-}" "${AZURE_RESOURCE_SCOPES:-}" "${AZURE_TENANT_ID:-}"
