#!/bin/sh
# Locks the time-based retention policy of pim-reporter's archive container. IRREVERSIBLE: a locked
# policy can only be extended, never shortened or removed, and the storage account cannot be deleted
# while any archived blob version is still inside its retention period.
#
# Bicep cannot lock a policy (ARM exposes locking only as an action), so the postprovision hook runs
# this when ARCHIVE_IMMUTABILITY_STATE is Locked (azd env set ARCHIVE_IMMUTABILITY_STATE Locked; azd provision).
# It reads AZURE_RESOURCE_GROUP, REPORTS_STORAGE_ACCOUNT_NAME, ARCHIVE_CONTAINER and ARCHIVE_RETENTION_DAYS
# from the environment (azd passes its environment to hooks), and needs the Azure CLI signed in
# with rights to manage the storage account (Owner or Contributor on the resource group).
# Safe to re-run: an already locked policy is left alone.
set -eu

rg="${AZURE_RESOURCE_GROUP:?set AZURE_RESOURCE_GROUP (azd env get-values)}"
account="${REPORTS_STORAGE_ACCOUNT_NAME:?set REPORTS_STORAGE_ACCOUNT_NAME (azd env get-values)}"
container="${ARCHIVE_CONTAINER:-pim-archive}"
days="${ARCHIVE_RETENTION_DAYS:?set ARCHIVE_RETENTION_DAYS}"

policy() {
  az storage container immutability-policy show --resource-group "$rg" --account-name "$account" \
    --container-name "$container" --query "$1" --output tsv
}

state="$(policy state 2>/dev/null || true)"
if [ "$state" = "Locked" ]; then
  current="$(policy immutabilityPeriodSinceCreationInDays)"
  echo "Archive $account/$container: retention policy already locked at $current days."
  if [ "$current" -lt "$days" ]; then
    echo "  ARCHIVE_RETENTION_DAYS is $days; a locked policy can be extended (it cannot be shortened):"
    echo "  az storage container immutability-policy extend --resource-group $rg --account-name $account \\"
    echo "    --container-name $container --period $days --if-match \"\$(az storage container immutability-policy show --resource-group $rg --account-name $account --container-name $container --query etag -o tsv)\""
  fi
  exit 0
fi

echo "Archive $account/$container: setting retention to $days days and LOCKING it (irreversible)."
az storage container immutability-policy create --resource-group "$rg" --account-name "$account" \
  --container-name "$container" --period "$days" --allow-protected-append-writes false --output none
etag="$(policy etag)"
az storage container immutability-policy lock --resource-group "$rg" --account-name "$account" \
  --container-name "$container" --if-match "$etag" --output none
echo "Archive $account/$container: retention policy locked at $(policy immutabilityPeriodSinceCreationInDays) days."
