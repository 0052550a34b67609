/**
 * PIM activations from the audit log (SPEC sections 2 and 6): completed activations of Entra
 * roles, read by type and key (never by position), over a time window, sequentially.
 */
import type { GraphClient } from '../graph/client';
import { GraphRequestError } from '../graph/client';
import type { Log } from '../log';
import { isoTime, type ActivationRow } from './model';

export const ACTIVATION_ACTIVITY = 'Add member to role completed (PIM activation)';
const DIRECTORY_AUDITS = '/auditLogs/directoryAudits';
/** Graph keeps audit events 30 days (graph-pim.md section 3.4). */
export const AUDIT_RETENTION_MS = 30 * 24 * 3600 * 1000;

interface KeyValue {
  key?: string | null;
  value?: string | null;
}
interface TargetResource {
  id?: string | null;
  displayName?: string | null;
  type?: string | null;
  Type?: string | null;
  userPrincipalName?: string | null;
}
export interface DirectoryAudit {
  id: string;
  category?: string | null;
  activityDisplayName?: string | null;
  activityDateTime?: string | null;
  loggedByService?: string | null;
  resultReason?: string | null;
  initiatedBy?: { user?: { id?: string | null; displayName?: string | null; userPrincipalName?: string | null } | null } | null;
  targetResources?: TargetResource[] | null;
  additionalDetails?: KeyValue[] | null;
}

/**
 * True for a completed Entra-role activation. PIM for Groups logs the same activity name under
 * category GroupManagement, and Core Directory logs its own record of the change: both excluded
 * (graph-pim.md sections 3.2 and 3.4; `category` cannot be filtered server-side).
 */
export function isRoleActivation(record: DirectoryAudit): boolean {
  return (
    (record.activityDisplayName ?? '').toLowerCase() === ACTIVATION_ACTIVITY.toLowerCase() &&
    (record.category ?? '').toLowerCase() === 'rolemanagement' &&
    (record.loggedByService ?? '').toLowerCase() === 'pim'
  );
}

const PRINCIPAL_TYPES = ['user', 'serviceprincipal', 'group'];

/** The record as an activation row; blanks (and a warning from the caller) where a field is missing. */
export function activationOf(record: DirectoryAudit): { row: ActivationRow; missing: string[] } {
  // Targets' order varies between records, and the docs sample spells the key `Type`: match by type,
  // case-insensitively (graph-pim.md section 3.3).
  const targets = (record.targetResources ?? []).filter(Boolean);
  const typeOf = (t: TargetResource) => (t.type ?? t.Type ?? '').toLowerCase();
  const target = (...types: string[]) => targets.find((t) => types.includes(typeOf(t)));
  const details = new Map<string, string>();
  for (const kv of record.additionalDetails ?? []) {
    if (kv?.key && kv.value != null && !details.has(kv.key.toLowerCase())) details.set(kv.key.toLowerCase(), String(kv.value));
  }
  const detail = (...keys: string[]) => {
    for (const key of keys) {
      const value = details.get(key.toLowerCase());
      if (value) return value;
    }
    return '';
  };
  const role = target('role');
  const principal = target(...PRINCIPAL_TYPES);
  const user = record.initiatedBy?.user;
  const row: ActivationRow = {
    activated: isoTime(record.activityDateTime) ?? '',
    principalDisplayName: principal?.displayName ?? user?.displayName ?? '',
    principalName: principal?.userPrincipalName ?? user?.userPrincipalName ?? '',
    principalId: principal?.id ?? user?.id ?? '',
    roleName: role?.displayName ?? '',
    roleId: detail('RoleDefinitionOriginId', 'TemplateId') || role?.id || '',
    scopeId: detail('DirectoryScopeId'),
    start: isoTime(detail('StartTime')),
    end: isoTime(detail('ExpirationTime')),
    // PIM puts the user's justification in resultReason as well (graph-pim.md section 3.3).
    justification: detail('Justification') || record.resultReason || '',
    ticketNumber: detail('TicketNumber'),
    ticketSystem: detail('TicketSystem'),
    requestId: detail('RoleAssignmentRequestId') || target('request')?.id || '',
    auditId: record.id,
  };
  const missing = (['activated', 'principalId', 'roleId'] as const).filter((k) => !row[k]);
  return { row, missing };
}

export interface HarvestWindow {
  /** Inclusive start. */
  from: Date;
  /** Exclusive end (rounded up to the second in the query; the caller de-duplicates). */
  to: Date;
}

/**
 * Every completed Entra-role activation in the window, oldest first, as Graph pages it. Sequential
 * by design: the audit log allows 5 requests per 10 s per app and tenant (graph-pim.md section 6).
 * A skip token Graph no longer honours is not fatal: the query restarts from the last time seen,
 * not from the link (links are never checkpoints), and the caller de-duplicates by audit id.
 */
export async function* harvestActivations(graph: GraphClient, window: HarvestWindow, log: Log): AsyncGenerator<ActivationRow> {
  let from = window.from;
  let restarts = 0;
  let skipped = 0;
  let malformed = 0;
  for (;;) {
    try {
      const pages = graph.pages<DirectoryAudit>(DIRECTORY_AUDITS, {
        $filter: `loggedByService eq 'PIM' and activityDisplayName eq '${ACTIVATION_ACTIVITY}' and activityDateTime ge ${odataTime(from)} and activityDateTime lt ${odataTime(window.to, 'ceil')}`,
        $orderby: 'activityDateTime asc',
        $top: 999,
      });
      for await (const page of pages) {
        for (const record of page) {
          if (!isRoleActivation(record)) {
            skipped++;
            continue;
          }
          const { row, missing } = activationOf(record);
          if (missing.length > 0) {
            malformed++;
            log.warn(`audit record ${record.id} lacks ${missing.join(', ')}; kept with blanks`);
          }
          const at = row.activated ? new Date(row.activated) : undefined;
          if (at && at > from) from = at;
          yield row;
        }
      }
      break;
    } catch (error) {
      if (isInvalidSkipToken(error) && restarts < 5) {
        restarts++;
        log.warn(`Graph no longer accepts the audit log's skip token; resuming from ${from.toISOString()}`);
        continue;
      }
      throw error;
    }
  }
  if (skipped > 0) log.info(`Ignored ${skipped} audit record(s) that are not Entra-role activations (PIM for Groups, other services)`);
  if (malformed > 0) log.warn(`${malformed} activation record(s) were incomplete`);
}

function isInvalidSkipToken(error: unknown): boolean {
  return error instanceof GraphRequestError && error.status === 400 && /skip ?token/i.test(error.message);
}

/** OData DateTimeOffset literal: unquoted, UTC, whole seconds (rounded down, or up for an exclusive end). */
function odataTime(at: Date, round: 'floor' | 'ceil' = 'floor'): string {
  const ms = round === 'ceil' ? Math.ceil(at.getTime() / 1000) * 1000 : Math.floor(at.getTime() / 1000) * 1000;
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
