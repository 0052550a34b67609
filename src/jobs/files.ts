/** Writing report files to Blob: CSVs streamed from sorted rows, manifests last. */
import type { Readable } from 'node:stream';
import type { BlobStore } from '../io/blob';
import {
  ACTIVATION_COLUMNS,
  ASSIGNMENT_COLUMNS,
  ROLE_SETTINGS_COLUMNS,
  UNUSED_COLUMNS,
  activationValues,
  assignmentValues,
  csvStreamOfBatches,
  roleSettingsValues,
  sha256,
  unusedValues,
} from '../report/csv';
import type { FileFacts } from '../report/csv';
import type { ActivationRow, AssignmentRow, RoleSettingsRow, ScopeNamer, UnusedEligibilityRow } from '../pim/model';
import { map } from '../util/streams';

export const CSV_CONTENT_TYPE = 'text/csv; charset=utf-8';
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

export interface ManifestFile extends FileFacts {
  name: string;
}

/** The assignments CSV's bytes as `writeAssignmentsCsv` writes them, and their facts once read. */
function assignmentsCsv(
  batches: AsyncIterable<AssignmentRow[]>,
  scopeName: ScopeNamer,
): { stream: Readable; facts: () => FileFacts } {
  return csvStreamOfBatches(
    ASSIGNMENT_COLUMNS,
    map(batches, (batch) => batch.map((row) => assignmentValues(row, scopeName))),
  );
}

/** The activations CSV's bytes as `writeActivationsCsv` writes them, and their facts once read. */
export function activationsCsv(batches: AsyncIterable<ActivationRow[]>): { stream: Readable; facts: () => FileFacts } {
  return csvStreamOfBatches(
    ACTIVATION_COLUMNS,
    map(batches, (batch) => batch.map(activationValues)),
  );
}

/** unused-eligibilities.csv's bytes, and their facts once read. */
export function unusedCsv(
  batches: AsyncIterable<UnusedEligibilityRow[]>,
  scopeName: ScopeNamer,
): { stream: Readable; facts: () => FileFacts } {
  return csvStreamOfBatches(
    UNUSED_COLUMNS,
    map(batches, (batch) => batch.map((row) => unusedValues(row, scopeName))),
  );
}

export async function writeUnusedCsv(
  store: BlobStore,
  container: string,
  name: string,
  batches: AsyncIterable<UnusedEligibilityRow[]>,
  scopeName: ScopeNamer,
): Promise<ManifestFile> {
  const { stream, facts } = unusedCsv(batches, scopeName);
  await store.writeStream(container, name, stream, { contentType: CSV_CONTENT_TYPE });
  return { name: baseName(name), ...facts() };
}

export async function writeAssignmentsCsv(
  store: BlobStore,
  container: string,
  name: string,
  batches: AsyncIterable<AssignmentRow[]>,
  scopeName: ScopeNamer,
  onlyIfAbsent = false,
): Promise<ManifestFile> {
  // Batches (ExternalSorter.sortedBatches): one await per batch of rows, not one per row.
  const { stream, facts } = assignmentsCsv(batches, scopeName);
  await store.writeStream(container, name, stream, { contentType: CSV_CONTENT_TYPE, onlyIfAbsent });
  return { name: baseName(name), ...facts() };
}

export async function writeActivationsCsv(
  store: BlobStore,
  container: string,
  name: string,
  batches: AsyncIterable<ActivationRow[]>,
  onlyIfAbsent = false,
): Promise<ManifestFile> {
  // Batches (ExternalSorter.sortedBatches), as for the assignments.
  const { stream, facts } = activationsCsv(batches);
  await store.writeStream(container, name, stream, { contentType: CSV_CONTENT_TYPE, onlyIfAbsent });
  return { name: baseName(name), ...facts() };
}

/** role-settings.csv: one row per role (a few hundred at most), so one batch. */
export async function writeRoleSettingsCsv(
  store: BlobStore,
  container: string,
  name: string,
  rows: readonly RoleSettingsRow[],
  onlyIfAbsent = false,
): Promise<ManifestFile> {
  const { stream, facts } = csvStreamOfBatches(
    ROLE_SETTINGS_COLUMNS,
    (async function* () {
      yield rows.map(roleSettingsValues);
    })(),
  );
  await store.writeStream(container, name, stream, { contentType: CSV_CONTENT_TYPE, onlyIfAbsent });
  return { name: baseName(name), ...facts() };
}

export async function writeTextFile(
  store: BlobStore,
  container: string,
  name: string,
  text: string,
  contentType: string,
  onlyIfAbsent = false,
): Promise<ManifestFile> {
  await store.writeText(container, name, text, { contentType, onlyIfAbsent });
  return { name: baseName(name), rows: 0, bytes: Buffer.byteLength(text), sha256: sha256(text) };
}

function baseName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

export { dailyManifest, dayFolder, utcDay } from '../history';
