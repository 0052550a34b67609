import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { activationOf, harvestActivations, isRoleActivation, type DirectoryAudit } from '../../src/pim/activations';
import { GraphRequestError, type GraphClient } from '../../src/graph/client';
import type { Log } from '../../src/log';
import { activationsWindow, HARVEST_OVERLAP_MS, ofMonth } from '../../src/history';
import { compareActivationRows, type ActivationRow, type HarvestGap } from '../../src/pim/model';

const sample = JSON.parse(readFileSync(join(__dirname, '../fixtures/directoryAudits-pim-activation.json'), 'utf8'))
  .value[0] as DirectoryAudit;

describe('activation records', () => {
  it('reads the reference sample by key and type', () => {
    expect(isRoleActivation(sample)).toBe(true);
    const { row, missing } = activationOf(sample);
    expect(missing).toEqual([]);
    expect(row).toEqual({
      activated: '2024-04-12T15:01:02.123Z',
      principalDisplayName: 'Conf Room Adams',
      principalName: 'Adams@Contoso.com',
      principalId: '071cc716-8147-4397-a5ba-b2105951cc0b',
      roleName: 'Global Administrator',
      roleId: '62e90394-69f5-4237-9190-012177145e10',
      scopeId: '',
      start: '2024-04-12T15:00:55.000Z',
      end: '2024-04-12T23:00:55.000Z',
      justification: 'Investigating incident INC-1234',
      ticketNumber: 'INC-1234',
      ticketSystem: 'ServiceNow',
      requestId: '61998d6f-fcf3-400a-9d40-cbfa74a3bfbd',
      auditId: sample.id,
      activationType: 'Role',
      groupName: '',
      groupId: '',
      groupRoles: '',
      approvedBy: '',
      approved: null,
      groupAccess: '',
    });
  });

  it('does not depend on the order of targets and details, nor on the case of `type`', () => {
    const shuffled: DirectoryAudit = {
      ...sample,
      targetResources: [...sample.targetResources!].reverse().map((t) => {
        const { type, ...rest } = t;
        return { ...rest, Type: type };
      }),
      additionalDetails: [...sample.additionalDetails!].reverse(),
    };
    expect(activationOf(shuffled).row).toEqual(activationOf(sample).row);
  });

  it('keeps an incomplete record with blanks and says what is missing', () => {
    const bare: DirectoryAudit = {
      id: 'PIM_x',
      activityDateTime: null,
      targetResources: null,
      additionalDetails: null,
      resultReason: 'why',
    };
    const { row, missing } = activationOf(bare);
    expect(missing).toEqual(['activated', 'principalId', 'roleId']);
    expect(row.justification).toBe('why');
    expect(row.auditId).toBe('PIM_x');
  });

  it('counts only Entra-role activations logged by PIM', () => {
    expect(isRoleActivation({ ...sample, category: 'GroupManagement' })).toBe(false);
    expect(isRoleActivation({ ...sample, loggedByService: 'Core Directory' })).toBe(false);
    expect(isRoleActivation({ ...sample, activityDisplayName: 'Add member to role requested (PIM activation)' })).toBe(
      false,
    );
  });
});

describe('harvest window', () => {
  const now = new Date('2026-11-24T06:00:00Z');
  const day = 24 * 3600 * 1000;
  const mark = (at: Date, recentFromUtc: string | null = '2026-01-01T00:00:00Z') => ({
    harvestedThroughUtc: at.toISOString(),
    coverageStartUtc: '2026-01-01T00:00:00Z',
    recent: {},
    ...(recentFromUtc ? { recentFromUtc } : {}),
    gaps: [],
  });

  it('reads what Graph holds on the first run', () => {
    const { window, gaps } = activationsWindow(undefined, now);
    expect(window).toEqual({ from: new Date(now.getTime() - 30 * day), to: now });
    expect(gaps).toEqual([]);
  });

  it('overlaps the watermark by a day by default, or by HARVEST_OVERLAP_HOURS', () => {
    const through = new Date(now.getTime() - day);
    expect(HARVEST_OVERLAP_MS).toBe(day);
    expect(activationsWindow(mark(through), now).window?.from).toEqual(new Date(through.getTime() - day));
    expect(activationsWindow(mark(through), now, 48 * 3600_000).window?.from).toEqual(
      new Date(through.getTime() - 2 * day),
    );
  });

  it('never reads further back than the ids kept to de-duplicate reach (an overlap made longer, a watermark from before)', () => {
    const through = new Date(now.getTime() - day);
    const kept = new Date(through.getTime() - 10 * 3600_000);
    expect(activationsWindow(mark(through, kept.toISOString()), now).window?.from).toEqual(kept);
    // A watermark written when the overlap was six hours, without recentFromUtc.
    expect(activationsWindow(mark(through, null), now).window?.from).toEqual(
      new Date(through.getTime() - 6 * 3600_000),
    );
  });

  it('records a gap when runs stopped for longer than Graph keeps events', () => {
    const through = new Date(now.getTime() - 40 * day);
    const { window, gaps } = activationsWindow(mark(through), now);
    expect(window?.from).toEqual(new Date(now.getTime() - 30 * day));
    expect(gaps).toEqual([
      {
        fromUtc: through.toISOString(),
        toUtc: new Date(now.getTime() - 30 * day).toISOString(),
        reason: expect.any(String),
      },
    ]);
  });

  it('harvests nothing when the clock is behind the watermark', () => {
    const result = activationsWindow(mark(new Date(now.getTime() + 3600_000)), now);
    expect(result.clockBehind).toBe(true);
    expect(result.window).toBeUndefined();
  });
});

describe('a run day file per month', () => {
  const row = (activated: string, auditId: string) => ({ activated, auditId }) as ActivationRow;
  const rows = [
    row('', 'no-time'),
    ...Array.from({ length: 7 }, (_, i) => row(`2026-10-3${i % 2}T10:00:0${i}.0000000Z`, `oct-${i}`)),
    ...Array.from({ length: 9 }, (_, i) => row(`2026-11-0${1 + (i % 9)}T00:00:00.0000000Z`, `nov-${i}`)),
    row('2026-12-01T00:00:00.0000000Z', 'dec-0'),
  ].sort(compareActivationRows);

  async function take(month: string, batchSize: number): Promise<{ ids: string[]; batchesRead: number }> {
    let batchesRead = 0;
    const batches = (async function* () {
      for (let i = 0; i < rows.length; i += batchSize) {
        batchesRead++;
        yield rows.slice(i, i + batchSize);
      }
    })();
    const ids: string[] = [];
    for await (const batch of ofMonth(batches, month)) ids.push(...batch.map((r) => r.auditId));
    return { ids, batchesRead };
  }

  it.each([1, 3, 100])(
    'gives each month exactly its rows, in order, and stops reading past it (batches of %i)',
    async (size) => {
      const byMonth = {
        unknown: ['no-time'],
        '2026-10': [] as string[],
        '2026-11': [] as string[],
        '2026-12': ['dec-0'],
      };
      for (const r of rows) if (r.activated.startsWith('2026-10')) byMonth['2026-10'].push(r.auditId);
      for (const r of rows) if (r.activated.startsWith('2026-11')) byMonth['2026-11'].push(r.auditId);
      for (const [month, expected] of Object.entries(byMonth)) {
        const { ids, batchesRead } = await take(month, size);
        expect(ids).toEqual(expected);
        // One row a batch: it reads its own rows and the first row past them, no further.
        if (size === 1)
          expect(batchesRead).toBe(
            Math.min(rows.length, rows.findIndex((r) => r.auditId === expected[expected.length - 1]) + 2),
          );
      }
    },
  );
});

describe('the harvest over two queries', () => {
  const completion = (id: string, at: string): DirectoryAudit => ({
    ...sample,
    id,
    activityDateTime: at,
  });
  const refusal = (floor: string) =>
    new GraphRequestError(
      `Specified argument was out of the range of valid values. (Parameter 'Minimum allowed time for activityDateTime is ${floor}')`,
      400,
      'BadRequest',
      '/auditLogs/directoryAudits',
    );
  const silent: Log = { info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as Log;

  /** A Graph whose audit log answers each query in turn from `answers` (pages, then an optional error). */
  function graphOf(answers: Array<{ pages: DirectoryAudit[][]; then?: Error }>) {
    const filters: string[] = [];
    const graph = {
      async *pages(_path: string, query: Record<string, string>) {
        filters.push(query.$filter);
        const answer = answers.shift();
        if (!answer) throw new Error('no more answers');
        for (const page of answer.pages) yield page;
        if (answer.then) throw answer.then;
      },
    } as unknown as GraphClient;
    return { graph, filters };
  }

  it('a retention refusal part way through the completions records a gap from the last one read, not from the window start', async () => {
    const { graph, filters } = graphOf([
      { pages: [[]] }, // the approvals
      {
        pages: [[completion('a', '2026-11-19T07:00:00Z'), completion('b', '2026-11-19T08:00:00Z')]],
        then: refusal('11/19/2026 9:00:00 AM'),
      },
      { pages: [[completion('c', '2026-11-19T10:00:00Z')]] },
    ]);
    const gaps: HarvestGap[] = [];
    const rows: string[] = [];
    const window = { from: new Date('2026-11-19T06:00:00Z'), to: new Date('2026-11-20T06:00:00Z') };
    for await (const row of harvestActivations(graph, window, silent, (g) => gaps.push(g))) rows.push(row.auditId);
    expect(rows).toEqual(['a', 'b', 'c']);
    expect(gaps).toEqual([
      {
        fromUtc: '2026-11-19T08:00:00.000Z',
        toUtc: '2026-11-19T09:00:00.000Z',
        reason: expect.stringContaining('retention'),
      },
    ]);
    expect(filters[2]).toContain('activityDateTime ge 2026-11-19T09:00:00Z');
  });

  it('a retention refusal of the approvals records the gap from the window start, once, and the completions start at the floor', async () => {
    const { graph, filters } = graphOf([
      { pages: [], then: refusal('11/19/2026 9:00:00 AM') },
      { pages: [[]] }, // the approvals from the floor
      { pages: [[completion('c', '2026-11-19T10:00:00Z')]] },
    ]);
    const gaps: HarvestGap[] = [];
    const rows: string[] = [];
    const window = { from: new Date('2026-11-19T06:00:00Z'), to: new Date('2026-11-20T06:00:00Z') };
    for await (const row of harvestActivations(graph, window, silent, (g) => gaps.push(g))) rows.push(row.auditId);
    expect(rows).toEqual(['c']);
    expect(gaps.map((g) => [g.fromUtc, g.toUtc])).toEqual([['2026-11-19T06:00:00.000Z', '2026-11-19T09:00:00.000Z']]);
    expect(filters[1]).toContain("activityDisplayName eq 'Add member to role request approved (PIM activation)'");
    expect(filters[2]).toContain("activityDisplayName eq 'Add member to role completed (PIM activation)'");
    expect(filters[2]).toContain('activityDateTime ge 2026-11-19T09:00:00Z');
  });
});
