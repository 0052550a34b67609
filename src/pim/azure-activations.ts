/**
 * Azure activations: every `SelfActivate` roleAssignmentScheduleRequest that was `Provisioned`, as
 * ARM lists them at each scope (api-version 2020-10-01,
 * https://learn.microsoft.com/rest/api/authorization/role-assignment-schedule-requests/list-for-scope).
 * ARM forgets requests after a while (about 30 to 45 days), so the app keeps them (src/jobs/azure.ts).
 */
import { requiredUtcTime, rowTable, text, utcTime } from '../util/table';
import { addDuration, isoTime, sameEnum, type ActivationRow } from './model';
import { azureScopeType, normaliseArmPath, roleGuid } from './arm-paths';

/**
 * One line of azure-activations.csv: the fields it shares with an Entra activation (`ActivationRow`),
 * with `requestId` the normalised ARM path of the request, lower case (the de-duplication key), and
 * the scope's display name as harvested (kept: ARM may forget the scope's name with the request).
 */
export type AzureActivationRow = Pick<
  ActivationRow,
  | 'activated'
  | 'principalDisplayName'
  | 'principalName'
  | 'principalId'
  | 'roleName'
  | 'roleId'
  | 'scopeId'
  | 'start'
  | 'end'
  | 'justification'
  | 'ticketNumber'
  | 'ticketSystem'
  | 'requestId'
> & { scopeName: string };

export const AZURE_ACTIVATION_TABLE = rowTable<AzureActivationRow>()([
  { column: 'Activated (UTC)', key: 'activated', format: requiredUtcTime },
  { column: 'User Group Name', key: 'principalDisplayName', format: text },
  { column: 'PrincipalName', key: 'principalName', format: text },
  { column: 'Principal Id', key: 'principalId', format: text },
  { column: 'Role Name', key: 'roleName', format: text },
  { column: 'Role Id', key: 'roleId', format: text },
  { column: 'Scope', key: 'scopeName', format: text },
  { column: 'Scope Type', cell: (row) => azureScopeType(row.scopeId) },
  { column: 'Scope Id', key: 'scopeId', format: text },
  { column: 'Start Time (UTC)', key: 'start', format: utcTime },
  { column: 'End Time (UTC)', key: 'end', format: utcTime },
  { column: 'Justification', key: 'justification', format: text },
  { column: 'Ticket Number', key: 'ticketNumber', format: text },
  { column: 'Ticket System', key: 'ticketSystem', format: text },
  { column: 'Request Id', key: 'requestId', format: text },
]);

export function compareAzureActivations(a: AzureActivationRow, b: AzureActivationRow): number {
  return a.activated < b.activated
    ? -1
    : a.activated > b.activated
      ? 1
      : a.requestId < b.requestId
        ? -1
        : a.requestId > b.requestId
          ? 1
          : 0;
}

/** roleAssignmentScheduleRequest as ARM lists it. */
export interface ArmScheduleRequest {
  id: string;
  properties?: {
    requestType?: string | null;
    status?: string | null;
    createdOn?: string | null;
    principalId?: string | null;
    roleDefinitionId?: string | null;
    scope?: string | null;
    justification?: string | null;
    ticketInfo?: { ticketNumber?: string | null; ticketSystem?: string | null } | null;
    scheduleInfo?: {
      startDateTime?: string | null;
      expiration?: { type?: string | null; endDateTime?: string | null; duration?: string | null } | null;
    } | null;
    expandedProperties?: {
      principal?: {
        id?: string | null;
        displayName?: string | null;
        email?: string | null;
        type?: string | null;
      } | null;
      roleDefinition?: { displayName?: string | null } | null;
      scope?: { displayName?: string | null } | null;
    } | null;
  } | null;
}

/** The activation a request records, or undefined when it is not a provisioned self-activation. */
export function azureActivationOf(request: ArmScheduleRequest): AzureActivationRow | undefined {
  const p = request.properties ?? {};
  if (!sameEnum(p.requestType, 'SelfActivate') || !sameEnum(p.status, 'Provisioned')) return undefined;
  const activated = isoTime(p.createdOn);
  if (!activated) return undefined;
  const expanded = p.expandedProperties ?? {};
  const start = isoTime(p.scheduleInfo?.startDateTime) ?? activated;
  const expiration = p.scheduleInfo?.expiration;
  const end = sameEnum(expiration?.type, 'AfterDateTime')
    ? isoTime(expiration?.endDateTime)
    : sameEnum(expiration?.type, 'AfterDuration') && expiration?.duration
      ? addDuration(start, expiration.duration)
      : null;
  const principal = expanded.principal ?? {};
  return {
    activated,
    principalDisplayName: principal.displayName ?? '',
    principalName: sameEnum(principal.type, 'User') ? (principal.email ?? '') : '',
    principalId: (p.principalId ?? principal.id ?? '').toLowerCase(),
    roleName: expanded.roleDefinition?.displayName ?? '',
    roleId: roleGuid(p.roleDefinitionId),
    scopeName: expanded.scope?.displayName ?? '',
    scopeId: normaliseArmPath(p.scope ?? ''),
    start,
    end,
    justification: p.justification ?? '',
    ticketNumber: p.ticketInfo?.ticketNumber ?? '',
    ticketSystem: p.ticketInfo?.ticketSystem ?? '',
    requestId: normaliseArmPath(request.id),
  };
}
