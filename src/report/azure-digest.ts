/**
 * The digest's "Azure resources" section: new, removed and expiring Azure role assignments, the
 * permanent active assignments of privileged Azure roles at management-group or subscription scope
 * (findings unless the principal is in EXCLUDED_PRINCIPAL_IDS), and the Azure activations
 * harvested. Rendered with the digest's own tables (src/report/digest.ts passes its `section`).
 */
import type { AssignmentChanges, Counted, ExpiringAssignment } from '../pim/changes';
import type { AssignmentRow, ScopeNamer } from '../pim/model';
import { azureScopeType } from '../pim/azure';
import type { AzureActivationRow } from '../pim/azure-activations';
import { csvTime } from '../util/table';
import { kind, who } from './cells';

/** One Azure activation as the digest lists it. */
export type AzureDigestActivation = Omit<
  AzureActivationRow,
  'scopeName' | 'ticketNumber' | 'ticketSystem' | 'requestId'
>;

export interface AzureDigest {
  changes: AssignmentChanges;
  scopeName: ScopeNamer;
  /** Scopes read (management groups expanded). */
  scopes: number;
  /** Harvested this run; absent when the harvest did not run. */
  activations?: Counted<AzureDigestActivation>;
}

export interface DigestTable<T> {
  title: string;
  intro?: string;
  columns: string[];
  cells: (item: T) => string[];
  list: Counted<T>;
  empty: string;
  highlight?: (item: T) => boolean;
}

export type SectionRenderer = <T>(t: DigestTable<T>) => { html: string; text: string };

export function azureDigestSections(
  a: AzureDigest,
  section: SectionRenderer,
  expiryWindowDays: number,
): Array<{ html: string; text: string }> {
  const ch = a.changes;
  const scope = (id: string) => a.scopeName(id) || id;
  const columns = ['Who', 'Role', 'Kind', 'Scope', 'Scope type', 'Ends (UTC)'];
  const cells = (r: AssignmentRow) => [
    who(r),
    r.roleName || r.roleId,
    kind(r),
    scope(r.scopeId),
    azureScopeType(r.scopeId),
    r.end ? csvTime(r.end) : 'never',
  ];
  const baseline =
    ch.baseline.kind === 'previous'
      ? `Compared with the Azure snapshot of ${ch.baseline.day}.`
      : 'First run: no earlier Azure snapshot, so these are the assignments created in the last 24 hours.';
  const out = [
    section({
      title: 'Azure resources: new assignments',
      intro: `${a.scopes} scope(s) read. ${baseline}`,
      columns,
      cells,
      list: ch.added,
      empty: 'None.',
    }),
    section({ title: 'Azure resources: removed assignments', columns, cells, list: ch.removed, empty: 'None.' }),
    section({
      title: `Azure resources: expiring within ${expiryWindowDays} days`,
      columns: ['Who', 'Role', 'Kind', 'Scope', 'Ends (UTC)', 'Days left'],
      cells: (e: ExpiringAssignment) => [
        who(e.row),
        e.row.roleName || e.row.roleId,
        kind(e.row),
        scope(e.row.scopeId),
        e.row.end ? csvTime(e.row.end) : 'never',
        String(e.daysLeft),
      ],
      list: ch.expiring,
      empty: 'None.',
    }),
    section({
      title: 'Azure resources: permanent privileged assignments',
      intro:
        ch.permanentPrivilegedFindings.count > 0
          ? `${ch.permanentPrivilegedFindings.count} permanent active assignment(s) of privileged Azure roles at management-group or subscription scope are findings: make them eligible, or list break-glass principals in EXCLUDED_PRINCIPAL_IDS.`
          : 'No permanent active assignment of a privileged Azure role at management-group or subscription scope.',
      columns,
      cells,
      list: ch.permanentPrivilegedFindings,
      empty: 'None.',
      highlight: () => true,
    }),
  ];
  if (a.activations) {
    out.push(
      section({
        title: 'Azure resources: activations',
        columns: ['Activated (UTC)', 'Who', 'Role', 'Scope', 'Justification'],
        cells: (x: AzureDigestActivation) => [
          csvTime(x.activated),
          who(x),
          x.roleName || x.roleId,
          scope(x.scopeId),
          x.justification,
        ],
        list: a.activations,
        empty: 'No Azure activation harvested.',
      }),
    );
  }
  return out;
}
