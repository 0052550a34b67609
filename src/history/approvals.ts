/**
 * Approvals joined to the activations they approve. PIM logs the approval and the completion as two
 * records sharing a RoleAssignmentRequestId; the approval comes first, and may fall in an earlier
 * run than the completion: approvals no completion has claimed yet are kept in the watermark.
 */
import type { Approval } from '../pim/activations';
import type { ActivationRow } from '../pim/model';

/**
 * How long an unclaimed approval is kept: an activation may be approved, then start later (a
 * scheduled start), and the harvest reads no further back than Graph keeps events (30 days).
 */
const KEPT_MS = 30 * 24 * 3600 * 1000;

export class ApprovalBook {
  private readonly byRequest = new Map<string, Approval>();
  private readonly claimed = new Set<string>();

  constructor(kept: readonly Approval[] = []) {
    for (const approval of kept) this.byRequest.set(approval.requestId, approval);
  }

  note(approval: Approval): void {
    this.byRequest.set(approval.requestId, approval);
  }

  /** The row with its approver, when an approval of its request is known. */
  fill(row: ActivationRow): ActivationRow {
    if (row.approvedBy || !row.requestId) return row;
    const key = row.requestId.toLowerCase();
    const approval = this.byRequest.get(key);
    if (!approval) return row;
    this.claimed.add(key);
    return { ...row, approvedBy: approval.by, approved: approval.at };
  }

  /** Approvals no completion has claimed, newer than the kept period before `now`: for the next run. */
  unclaimed(now: Date): Approval[] {
    const from = now.getTime() - KEPT_MS;
    return [...this.byRequest.values()]
      .filter((a) => !this.claimed.has(a.requestId) && Date.parse(a.at) >= from)
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }
}
