/**
 * The roles the product calls highly privileged unless PRIVILEGED_ROLE_IDS names others
 * (docs/settings.md): those of CISA's SCuBA baseline for Entra ID (MS.AAD.7,
 * https://github.com/cisagov/ScubaGear), by role template id, the same in every tenant
 * (https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).
 */
export const CISA_PRIVILEGED_ROLES: Readonly<Record<string, string>> = {
  '62e90394-69f5-4237-9190-012177145e10': 'Global Administrator',
  'e8611ab8-c189-46e8-94e1-60213ab1f814': 'Privileged Role Administrator',
  'fe930be7-5e62-47db-91af-98c3a49a38b1': 'User Administrator',
  'f28a1f50-f6e7-4571-818b-6a12f2af6b6c': 'SharePoint Administrator',
  '29232cdf-9323-42fd-ade2-1d097af3e4de': 'Exchange Administrator',
  '8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2': 'Hybrid Identity Administrator',
  '9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3': 'Application Administrator',
  '158c047a-c907-4556-b7ef-446551a6b5f7': 'Cloud Application Administrator',
};

/** Counted by the digest: CISA MS.AAD.7.1 wants 2 to 8 Global Administrators. */
export const GLOBAL_ADMINISTRATOR_ROLE_ID = '62e90394-69f5-4237-9190-012177145e10';

/** The CISA roles' template ids, lower case: the default set of highly privileged roles. */
export const CISA_PRIVILEGED_ROLE_IDS: ReadonlySet<string> = new Set(Object.keys(CISA_PRIVILEGED_ROLES));
