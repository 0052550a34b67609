/** ARM paths as the Azure reports compare and show them. */

export type AzureScopeType = 'Management group' | 'Subscription' | 'Resource group' | 'Resource';

const GUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const SUBSCRIPTION_FORM = new RegExp(`^/providers/microsoft\\.subscription(/subscriptions/${GUID})`, 'i');
export const MG_PATH = /^\/providers\/microsoft\.management\/managementgroups\/[^/]+$/;

/** An ARM path as compared and reported: lower case, `/subscriptions/…` for both subscription forms, no trailing `/`. */
export function normaliseArmPath(path: string): string {
  return path.trim().replace(/\/+$/, '').replace(SUBSCRIPTION_FORM, '$1').toLowerCase();
}

export function azureScopeType(scopeId: string): AzureScopeType {
  if (MG_PATH.test(scopeId)) return 'Management group';
  if (/^\/subscriptions\/[^/]+$/.test(scopeId)) return 'Subscription';
  if (/^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+$/.test(scopeId)) return 'Resource group';
  return 'Resource';
}

/** The GUID at the end of a role definition path. */
export function roleGuid(roleDefinitionId: string | null | undefined): string {
  const id = (roleDefinitionId ?? '').replace(/\/+$/, '');
  return id.slice(id.lastIndexOf('/') + 1).toLowerCase();
}
