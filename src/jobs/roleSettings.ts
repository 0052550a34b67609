/**
 * Role settings for the daily run and the monthly pack: read them, write role-settings.csv, and
 * for the daily digest the findings and the changes since the previous stored settings, kept as
 *
 *   state/role-settings/<day>.json   the day's rows, for the next day's "What changed" (last 7 kept)
 *
 * Job plumbing, not a job: daily.ts and monthly.ts call it.
 */
import type { RoleSettingsRow } from '../pim/model';
import type { RoleNames } from '../pim/roleNames';
import {
  readRoleSettings,
  roleSettingChanges,
  roleSettingsFindings,
  type RoleSettings,
  type RoleSettingsIncomplete,
  type RoleSettingsInputs,
  type RoleSettingsReport,
} from '../pim/roleSettings';
import { awaitedLater } from '../util/promises';
import type { JobContext } from './context';
import { JSON_CONTENT_TYPE, writeRoleSettingsCsv, type ManifestFile } from './files';

const STATE = 'state/role-settings/';
const KEPT = 7;

export interface RoleSettingsOutcome {
  file: ManifestFile;
  report: RoleSettingsReport;
  incomplete: RoleSettingsIncomplete[];
}

/**
 * Starts reading the role settings: the roles' policies at once, the member policies of the groups
 * that hold highly privileged roles once `groups` (the snapshot's) resolves. Awaited by
 * `dailyRoleSettings`; meanwhile never an unhandled rejection.
 */
export function startRoleSettings(
  ctx: JobContext,
  groups: PromiseLike<ReadonlyMap<string, string>>,
  roleNames: PromiseLike<RoleNames>,
): Promise<RoleSettings> {
  return awaitedLater(
    readRoleSettings(ctx.graph, {
      privilegedRoleIds: ctx.settings.privilegedRoleIds,
      groups,
      roleNames,
      log: ctx.log,
    }),
  );
}

/**
 * The daily part: role-settings.csv in `folder` from what `startRoleSettings` read, the findings,
 * and the changes since the newest stored settings of a final day before `day` (`isFinal`), then
 * today's settings stored.
 */
export async function dailyRoleSettings(
  ctx: JobContext,
  day: string,
  folder: string,
  read: Promise<RoleSettings>,
  inputs: RoleSettingsInputs,
  isFinal: (day: string) => Promise<boolean>,
): Promise<RoleSettingsOutcome> {
  const { settings, store, log } = ctx;
  const container = settings.reportsContainer;
  const { rows, incomplete } = await read;
  const file = await writeRoleSettingsCsv(store, container, `${folder}role-settings.csv`, rows);
  log.info(`Wrote ${folder}role-settings.csv (${rows.length} row(s))`);

  const previous = await previousSettings(ctx, day, isFinal);
  const changes = previous ? { sinceDay: previous.day, items: roleSettingChanges(previous.rows, rows) } : null;
  await store.writeText(container, `${STATE}${day}.json`, JSON.stringify({ day, rows }), {
    contentType: JSON_CONTENT_TYPE,
  });
  await prune(ctx, previous?.day);
  return { file, report: { findings: roleSettingsFindings(rows, inputs), changes, roles: rows.length }, incomplete };
}

/** The monthly pack's role-settings.csv (kept under state/ until the pack is sealed): the settings as Graph gives them when the pack's snapshot is taken. */
export async function packRoleSettings(
  ctx: JobContext,
  container: string,
  name: string,
  groups: ReadonlyMap<string, string>,
  roleNames: RoleNames,
): Promise<{ file: ManifestFile; incomplete: RoleSettingsIncomplete[] }> {
  const { rows, incomplete } = await readRoleSettings(ctx.graph, {
    privilegedRoleIds: ctx.settings.privilegedRoleIds,
    groups,
    roleNames: Promise.resolve(roleNames),
    log: ctx.log,
  });
  return { file: await writeRoleSettingsCsv(ctx.store, container, name, rows), incomplete };
}

async function previousSettings(
  ctx: JobContext,
  day: string,
  isFinal: (day: string) => Promise<boolean>,
): Promise<{ day: string; rows: RoleSettingsRow[] } | undefined> {
  const { store, settings } = ctx;
  const days: string[] = [];
  for await (const name of store.list(settings.reportsContainer, STATE)) {
    const d = name.slice(STATE.length, -'.json'.length);
    if (d < day) days.push(d);
  }
  for (const d of days.sort().reverse()) {
    if (!(await isFinal(d))) continue;
    const text = await store.readText(settings.reportsContainer, `${STATE}${d}.json`);
    if (text) return { day: d, rows: (JSON.parse(text) as { rows: RoleSettingsRow[] }).rows };
  }
  return undefined;
}

async function prune(ctx: JobContext, keep: string | undefined): Promise<void> {
  const { store, settings } = ctx;
  const names: string[] = [];
  for await (const name of store.list(settings.reportsContainer, STATE)) names.push(name);
  for (const old of names.sort().slice(0, -KEPT))
    if (old !== `${STATE}${keep}.json`) await store.delete(settings.reportsContainer, old);
}
