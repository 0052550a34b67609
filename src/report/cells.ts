/**
 * The cells the Entra and Azure digests show of an assignment alike (docs/digest.md): who holds it,
 * and of what kind it is.
 */
import { isGroupEligibilityRoute, type AssignmentRow } from '../pim/model';

/** The display name, else the principal name, else the id: a deleted principal still has one. */
export const who = (r: { principalDisplayName: string; principalName: string; principalId: string }): string =>
  r.principalDisplayName || r.principalName || r.principalId || '(unknown)';

/** Eligible, Active (Assigned or Activated), or a PIM-for-Groups eligibility's route through its group. */
export const kind = (r: AssignmentRow): string =>
  isGroupEligibilityRoute(r)
    ? `Eligible through ${r.viaGroup || r.viaGroupId} (PIM for Groups)`
    : r.state === 'Eligible'
      ? 'Eligible'
      : `Active${r.assignmentType ? ` (${r.assignmentType})` : ''}`;
