/**
 * The response shapes the product relies on, read from test/fixtures/ (each file names its source
 * in `_source`): what public captures and the docs' samples show, not what our simulator sends.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GraphRequestError, isUnreadableList, refusesPageSize } from '../../src/graph/client';
import { activationOf, retentionFloor, type DirectoryAudit } from '../../src/pim/activations';
import { directRow, principalOf, sameEnum, type RoleSchedule } from '../../src/pim/model';

const fixture = <T>(name: string): T => JSON.parse(readFileSync(join(__dirname, '../fixtures', name), 'utf8')) as T;
type ErrorBody = { error: { code: string; message: string } };
type BatchItem = { status: number; body: ErrorBody };

describe('Graph response shapes (test/fixtures)', () => {
  it('every fixture names its source', () => {
    for (const name of readFileSync(join(__dirname, '../fixtures/README.md'), 'utf8').match(/[\w-]+\.json/g) ?? []) {
      const body = fixture<Record<string, unknown>>(name);
      expect(typeof (body._source ?? body._provenance)).toBe('string');
    }
  });

  it("the audit log's retention 400: the floor is read as UTC from M/D/YYYY h:mm:ss AM/PM", () => {
    const { error } = fixture<ErrorBody>('error-audit-retention.json');
    const refused = new GraphRequestError(
      `Graph 400 ${error.code} on /auditLogs/directoryAudits: ${error.message}`,
      400,
      error.code,
      '/auditLogs/directoryAudits',
    );
    expect(retentionFloor(refused)?.toISOString()).toBe('2023-02-05T00:00:00.000Z');
    const pm = new GraphRequestError(
      error.message.replace('12:00:00 AM', '1:05:09 PM').replace('2/5/2023', '11/20/2026'),
      400,
      'BadRequest',
      '',
    );
    expect(retentionFloor(pm)?.toISOString()).toBe('2026-11-20T13:05:09.000Z');
    // .NET on ICU 72 and later writes the en-US time with a narrow no-break space (U+202F) before
    // AM/PM (https://github.com/dotnet/runtime/issues/102220): a backend that moves to it still gives its floor.
    const narrow = new GraphRequestError(error.message.replace(' AM', '\u202fAM'), 400, 'BadRequest', '');
    expect(retentionFloor(narrow)?.toISOString()).toBe('2023-02-05T00:00:00.000Z');
    expect(
      retentionFloor(new GraphRequestError(error.message.replace('2/5/2023', '2/31/2023'), 400, 'BadRequest', '')),
    ).toBeUndefined();
    expect(retentionFloor(new GraphRequestError(error.message, 403, 'Forbidden', ''))).toBeUndefined();
    // Not a page-size refusal: the list must not be repeated without $top for it.
    expect(refusesPageSize(400, error.message, error.code)).toBe(false);
  });

  it("roleDefinitions' refusals of $top, as live tenants answer them, are page-size refusals; other 400s are not", () => {
    expect(refusesPageSize(400, 'This resource requires a minimum page size of 20.', 'Request_UnsupportedQuery')).toBe(
      true,
    );
    expect(refusesPageSize(400, 'Invalid/unsupported query request', 'Request_UnsupportedQuery')).toBe(true);
    expect(refusesPageSize(400, 'Invalid/unsupported query request')).toBe(true);
    expect(refusesPageSize(400, 'Invalid filter clause', 'BadRequest')).toBe(false);
    expect(refusesPageSize(403, 'Invalid/unsupported query request', 'Request_UnsupportedQuery')).toBe(false);
  });

  it("an agent's identity and its blueprint's principal are service principals (they inherit from it)", () => {
    for (const type of ['#microsoft.graph.agentIdentity', '#microsoft.graph.agentIdentityBlueprintPrincipal'])
      expect(
        principalOf('a1', { id: 'a1', '@odata.type': type, displayName: 'Agent', appId: 'app-1' } as never),
      ).toEqual({ id: 'a1', type: 'ServicePrincipal', displayName: 'Agent', name: 'app-1' });
    expect(
      principalOf('d1', { id: 'd1', '@odata.type': '#microsoft.graph.device', displayName: 'PC' } as never).type,
    ).toBe('');
  });

  it('403 hidden membership, 404 deleted group and the national-cloud 400 are one list unreadable, not a failed run', () => {
    for (const name of ['error-hidden-membership-403.json', 'error-deleted-group-404.json']) {
      const item = fixture<BatchItem>(name);
      expect(isUnreadableList(item.status, item.body.error.message)).toBe(true);
    }
    const national = fixture<ErrorBody>('error-privilegedAccess-segment-400.json');
    expect(isUnreadableList(400, national.error.message)).toBe(true);
    // Any other 400 still fails the run.
    expect(isUnreadableList(400, 'Invalid filter clause')).toBe(false);
  });

  it('a record naming a group first: the principal is the User target that initiated it; absent details are blank', () => {
    const record = fixture<{ value: DirectoryAudit[] }>('directoryAudits-pim-activation-group-first.json').value[0];
    expect(record.targetResources![0].type).toBe('Group');
    const { row, missing, initiatorMismatch } = activationOf(record);
    expect(missing).toEqual([]);
    expect(initiatorMismatch).toBeUndefined();
    expect(row.principalId).toBe(record.initiatedBy!.user!.id);
    expect(row.principalDisplayName).toBe('Conf Room Adams');
    expect([row.ticketNumber, row.ticketSystem, row.scopeId]).toEqual(['', '', '']);
  });

  it("the docs' schedule samples: memberType, createdUsing, and a principal with @odata.type", () => {
    const eligible = fixture<{ value: RoleSchedule[] }>('roleEligibilitySchedules-list.json').value;
    const assigned = fixture<{ value: RoleSchedule[] }>('roleAssignmentSchedules-list.json').value;
    for (const s of [...eligible, ...assigned]) expect(['Direct', 'Group', 'Inherited']).toContain(s.memberType);
    expect(assigned.some((s) => s.createdUsing === null)).toBe(true);
    const expanded = fixture<{ value: Array<{ principal: { '@odata.type': string; id: string } }> }>(
      'roleAssignmentScheduleRequests-list-expand.json',
    ).value;
    expect(principalOf(expanded[0].principal.id, expanded[0].principal as never).type).toBe('User');
    const groups = fixture<{ value: Array<{ accessId: string; memberType: string }> }>(
      'pimGroups-eligibilitySchedules-list.json',
    ).value;
    for (const g of groups) expect(g.accessId).toBe(g.accessId.toLowerCase());
    expect(groups.some((g) => sameEnum(g.accessId, 'member'))).toBe(true);
  });

  it('a deleted principal as null, left out, or id only: the row keeps its ids, names blank', () => {
    const schedule = fixture<{ value: RoleSchedule[] }>('roleEligibilitySchedules-list.json').value[0];
    for (const principal of [null, undefined, { id: schedule.principalId }]) {
      const row = directRow('Eligible', { ...schedule, principal: principal as never }, 'Role', new Set());
      expect(row).toMatchObject({
        principalId: schedule.principalId,
        principalDisplayName: '',
        principalName: '',
        principalType: '',
      });
    }
  });
});
