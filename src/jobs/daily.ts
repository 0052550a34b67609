/**
 * The daily job (docs/files.md, docs/digest.md, docs/guarantees.md): harvest the activations since the last run, take the
 * snapshot, write the day's CSVs, digest and manifest, then email the digest once.
 *
 * A day whose manifest exists is final: a re-run rewrites nothing and only retries an email that
 * has not gone out. Order of writes: the harvested activations and the watermark, and meanwhile the
 * day's assignment files and the snapshot state once the snapshot is taken (the state once the role
 * settings are read too); then the day's other files, then the manifest that marks the day final,
 * then the email, then the pack of the month just ended once it is sealed (pack.ts). A day's files
 * are not final before its manifest, so their order among themselves does not matter, and a day's
 * snapshot state is a baseline only once its manifest exists; a failed harvest stops the
 * assignment files and the state, and a failed assignment file the state.
 */
import { harvestSince, type Harvest } from './harvest';
import { azureDigestManifest, azureDigestOf, startAzureReading, writeAzureAssignments } from './azure';
import { AssignmentChangeTracker, GlobalAdministratorCount, LIST_LIMIT, type AssignmentChanges } from '../pim/changes';
import type { AssignmentRow, UnusedEligibilityRow } from '../pim/model';
import { RoleSettingsInputs } from '../pim/roleSettings';
import { readRoleNames } from '../pim/roleNames';
import { routesUnreadFor, takeSnapshot, type Snapshot } from '../pim/snapshot';
import { ReminderCandidates } from '../pim/reminders';
import { sendExpiryReminders } from './reminders';
import { renderDigest, routesNotComparedText } from '../report/digest';
import { APP_VERSION } from '../version';
import type { JobContext } from './context';
import {
  dayFolder,
  JSON_CONTENT_TYPE,
  utcDay,
  writeActivationsCsv,
  writeAssignmentsCsv,
  writeTextFile,
  writeUnusedCsv,
  type ManifestFile,
} from './files';
import { StateStore } from './state';
import { sendOnce } from './outbox';
import { EmailError } from '../io/email';
import { withRunLock, type RunLockOptions } from './lock';
import { archiveSealedMonth } from './pack';
import { awaitedLater, settled } from '../util/promises';
import { abortable, tapped } from '../util/streams';
import { dailyRoleSettings, startRoleSettings } from './roleSettings';
import {
  HistoryStore,
  LastUses,
  readKeptUses,
  startUnusedEligibilities,
  unusedEligibilities,
  unusedMayBeComplete,
  type UnusedTracker,
  type Watermark,
} from '../history';

export interface DailyOptions {
  /** Send today's digest again even if it was sent. */
  forceEmail?: boolean;
  /** How long to wait for another run that is writing the reports (lock.ts). */
  lock?: RunLockOptions;
}

export interface DailyResult {
  folder: string;
  /** False when the day was already final and nothing was rewritten. */
  wrote: boolean;
  /** The day's digest subject, if a digest was made. */
  subject?: string;
  /** Monthly packs this run wrote (the month just ended, once sealed). */
  archived?: string[];
}

export class DailyRunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DailyRunError';
  }
}

export async function runDaily(ctx: JobContext, options: DailyOptions = {}): Promise<DailyResult> {
  return withRunLock(ctx, 'daily', () => daily(ctx, options), options.lock);
}

async function daily(ctx: JobContext, options: DailyOptions): Promise<DailyResult> {
  const { settings, store, log, now } = ctx;
  const day = utcDay(now);
  const folder = dayFolder(now);
  const container = settings.reportsContainer;
  const state = new StateStore(store, container);
  const history = new HistoryStore(store, container);
  log.info(`Daily run for ${day} into ${store.location(container)}/${folder}`);

  // A first run (no watermark yet) leaves earlier months to the monthly timer: it archives every
  // complete month the harvest covers, and a first daily run stays a daily run's cost.
  const watermark = await history.watermark();
  const firstRun = watermark === undefined;
  let result: DailyResult;
  const manifestText = await store.readText(container, `${folder}manifest.json`);
  if (manifestText) {
    const manifest = JSON.parse(manifestText) as { files: ManifestFile[]; digest?: { subject: string } };
    log.info(`${folder} is complete already (manifest.json exists); nothing is rewritten`);
    result = { folder, wrote: false, subject: manifest.digest?.subject };
  } else {
    result = await writeDay(ctx, state, history, day, folder, watermark);
  }

  let emailFailure: { error: unknown } | undefined;
  if (!ctx.mailer) {
    log.info('Email is not configured (ACS_ENDPOINT or ACS_CONNECTION_STRING): the digest is stored, not sent');
  } else {
    // A day already final sends no new reminder; one an earlier run left unsent is retried.
    if (!result.wrote) await sendExpiryReminders(ctx, state, day);
    if (options.forceEmail) await requeueToday(ctx, state, day, folder, result.subject);
    try {
      await deliverOutbox(ctx, state);
    } catch (error) {
      emailFailure = { error };
    }
  }
  // Last: the month just ended is sealed once the harvest covers its end plus the overlap, which
  // the monthly timer (early on the 1st) cannot see; an archive failure never holds up the email.
  if (!firstRun) result.archived = await archiveSealedMonth(ctx, history);
  if (emailFailure) throw emailFailure.error;
  return result;
}

/**
 * eligible-assignments.csv and active-assignments.csv from the snapshot, and what the digest counts
 * on the way (Global Administrators, the role-settings findings' inputs).
 */
async function writeAssignmentFiles(
  ctx: JobContext,
  folder: string,
  snapshot: Snapshot,
  signal: AbortSignal,
  /** Fed the eligible rows on their way to the CSV, once ready (the history is complete then). */
  unused?: Promise<UnusedTracker>,
): Promise<{
  files: ManifestFile[];
  globalAdministrators: GlobalAdministratorCount;
  roleSettingsInputs: RoleSettingsInputs;
}> {
  const { settings, store, log } = ctx;
  const globalAdministrators = new GlobalAdministratorCount();
  const roleSettingsInputs = new RoleSettingsInputs(settings.excludedPrincipalIds);
  // A file that fails stops the other: neither may still read the sorters once the caller disposes of them.
  const failed = new AbortController();
  const stop = AbortSignal.any([signal, failed.signal]);
  // Batches of rows (ExternalSorter.sortedBatches): one await per batch on the way to the CSV, not one per row.
  const observed = async function* (batches: AsyncIterable<AssignmentRow[]>, tracker?: UnusedTracker) {
    for await (const batch of abortable(batches, stop)) {
      for (const row of batch) {
        globalAdministrators.observe(row);
        roleSettingsInputs.observe(row);
      }
      if (tracker?.collecting) await tracker.observe(batch);
      yield batch;
    }
  };
  stop.throwIfAborted();
  // Both at once: while one waits on its upload the other merges its runs (one thread, fewer idle gaps).
  const written = await Promise.allSettled(
    (
      [
        ['eligible-assignments.csv', snapshot.eligible],
        ['active-assignments.csv', snapshot.active],
      ] as const
    ).map(async ([name, rows]) => {
      try {
        const tracker = rows === snapshot.eligible && unused ? await unused : undefined;
        stop.throwIfAborted(); // the other file failed while this one waited for the unused list
        const file = await writeAssignmentsCsv(
          store,
          settings.reportsContainer,
          `${folder}${name}`,
          observed(rows.sortedBatches(), tracker),
          snapshot.scopeName,
        );
        log.info(`Wrote ${folder}${name} (${file.rows} row(s))`);
        return file;
      } catch (error) {
        failed.abort(error);
        throw error;
      }
    }),
  );
  const failure = written.find((w): w is PromiseRejectedResult => w.status === 'rejected');
  if (failure) throw failure.reason;
  const files = written.map((w) => (w as PromiseFulfilledResult<ManifestFile>).value);
  return { files, globalAdministrators, roleSettingsInputs };
}

async function writeDay(
  ctx: JobContext,
  state: StateStore,
  history: HistoryStore,
  day: string,
  folder: string,
  /** The watermark before this run's harvest. */
  watermarkBefore: Watermark | undefined,
): Promise<DailyResult> {
  const { settings, graph, store, log, now } = ctx;
  const started = new Date();
  const container = settings.reportsContainer;
  const files: ManifestFile[] = [];

  // The audit log (sequential, rate limited) and the snapshot's lists are independent: read them together.
  const reminderCandidates =
    settings.expiryReminderDays.length > 0 ? new ReminderCandidates(settings.expiryReminderDays, now) : undefined;
  // Awaited below; never an unhandled rejection meanwhile.
  // The role names once, for the snapshot and the role settings alike.
  const roleNames = awaitedLater(readRoleNames(graph));
  const snapshotTaken = awaitedLater(
    takeSnapshot(graph, {
      privilegedRoleIds: settings.privilegedRoleIds,
      log,
      observe: reminderCandidates?.observe,
      roleNames,
    }),
  );
  // PIM for Azure resources, when on: read meanwhile; it never rejects (failures are reported as incomplete).
  const azureReading = startAzureReading(ctx);
  // The role settings too: the roles' policies now, the groups' member policies once the snapshot
  // has found the groups that hold highly privileged roles (alongside the rate-limited audit log).
  const roleSettingsRead = startRoleSettings(
    ctx,
    snapshotTaken.then(
      (taken) => taken.privilegedGroups,
      () => new Map<string, string>(),
    ),
    roleNames,
  );
  // The day's assignment files as soon as the snapshot is taken, while the harvest still waits on the
  // audit log's rate limit (the files are not final before the manifest, whatever order they come in).
  // A harvest that fails stops them (the run fails; nothing more of the day is written).
  const harvestFailed = new AbortController();
  // The unused eligibilities on the same pass as eligible-assignments.csv, when the history may
  // already cover UNUSED_AFTER_DAYS: its kept uses are read while the snapshot pages, this run's
  // harvest is added as activations.csv is written, and the pass waits for both.
  const lastUses = unusedMayBeComplete(watermarkBefore, now, settings.unusedAfterDays) ? new LastUses() : undefined;
  const historySince = watermarkBefore?.coverageStartUtc ?? '';
  const keptUsesRead =
    lastUses &&
    awaitedLater(
      readKeptUses(
        lastUses,
        { history, store, archiveContainer: settings.archiveContainer },
        new Date(historySince),
        now,
        day,
      ),
    );
  let activationsWritten!: () => void;
  let activationsFailed!: (error: unknown) => void;
  const activationsCsv = new Promise<void>((resolve, reject) => {
    activationsWritten = resolve;
    activationsFailed = reject;
  });
  activationsCsv.catch(() => undefined); // seen through unusedReady, when there is one
  const unusedReady =
    lastUses &&
    awaitedLater(
      Promise.all([keptUsesRead, activationsCsv]).then(() =>
        startUnusedEligibilities({
          history,
          store,
          archiveContainer: settings.archiveContainer,
          groupRoles: snapshotTaken.then((taken) => taken.groupRoles),
          now,
          afterDays: settings.unusedAfterDays,
          lastUses: { since: historySince, uses: Promise.resolve(lastUses) },
        }),
      ),
    );
  const assignmentsWritten = awaitedLater(
    snapshotTaken.then((taken) => writeAssignmentFiles(ctx, folder, taken, harvestFailed.signal, unusedReady)),
  );
  // The snapshot state, and on the same pass the diff with the last final day's, as soon as the
  // snapshot is taken and the role settings are read: on a first run while the harvest still waits
  // on the audit log's rate limit. A run that fails later leaves a state no diff reads: only a day
  // made final by its manifest is ever a baseline (StateStore.previousSnapshotBatches).
  // A failed harvest or assignment file stops it: the run fails then, and need not wait for the state.
  const filesFailed = new AbortController();
  assignmentsWritten.catch((error: unknown) => filesFailed.abort(error));
  const stateSaved = awaitedLater(
    snapshotTaken.then((taken) =>
      storeSnapshotState(
        ctx,
        state,
        history,
        day,
        taken,
        roleSettingsRead,
        AbortSignal.any([harvestFailed.signal, filesFailed.signal]),
      ),
    ),
  );
  let harvest: Harvest;
  try {
    // Scope Id from the Activated schedule of the same request, when the snapshot still has it (a
    // failed snapshot fails the run below; here it only leaves the scopes blank).
    const scopesReady = snapshotTaken.then(
      (taken) => taken.activatedScopes,
      () => new Map<string, string>(),
    );
    const groupRolesReady = snapshotTaken.then(
      (taken) => taken.groupRoles,
      () => new Map(),
    );
    harvest = await harvestSince(ctx, history, day, { activatedScopes: scopesReady, groupRoles: groupRolesReady });
    try {
      // What the day's run-day files now hold (the kept uses above left them out), within the history.
      const [from, to] = [Date.parse(historySince), now.getTime()];
      const reported = lastUses
        ? tapped(harvest.reported(), (batch) =>
            lastUses.add(batch.filter((a) => Date.parse(a.activated) >= from && Date.parse(a.activated) < to)),
          )
        : harvest.reported();
      files.push(await writeActivationsCsv(store, container, `${folder}activations.csv`, reported));
    } finally {
      await harvest.dispose();
    }
    activationsWritten();
    log.info(`Wrote ${folder}activations.csv (${harvest.count} activation(s))`);
  } catch (error) {
    // First: the eligible file's pass may be waiting for the activations.
    activationsFailed(error);
    harvestFailed.abort(error);
    await settled(assignmentsWritten); // it reads the snapshot's sorters
    await settled(stateSaved); // so does this
    await snapshotTaken.then(
      (taken) => taken.dispose(),
      () => undefined,
    );
    await azureReading?.then((r) => r.snapshot?.dispose());
    await settled(roleSettingsRead);
    await unusedReady?.then(
      (tracker) => tracker.dispose(),
      () => undefined,
    );
    await settled(keptUsesRead); // unusedReady waits for it only once the activations are written
    throw error;
  }
  const snapshot = await snapshotTaken.catch(async (error: unknown) => {
    await azureReading?.then((r) => r.snapshot?.dispose());
    await settled(roleSettingsRead);
    await settled(assignmentsWritten);
    await settled(stateSaved);
    await unusedReady?.then(
      (tracker) => tracker.dispose(),
      () => undefined,
    );
    // Already over when unusedReady is (it waits for the kept history); kept so that no way out
    // depends on that.
    await settled(keptUsesRead);
    throw error;
  });
  try {
    const { globalAdministrators, roleSettingsInputs, ...written } = await assignmentsWritten;
    files.push(...written.files);
    // The Azure files go here in the manifest; they are written once the Azure reading is done, below.
    const azureFilesAt = files.length;

    // Eligibilities nobody used in UNUSED_AFTER_DAYS, from the history the harvest above completed:
    // gathered on the eligible file's pass, or (a history that became long enough only now) read here.
    const tracker = unusedReady && (await unusedReady);
    const unused = tracker
      ? tracker.finish()
      : await unusedEligibilities({
          history,
          store,
          archiveContainer: settings.archiveContainer,
          eligible: snapshot.eligible.sortedBatches(),
          groupRoles: snapshot.groupRoles,
          now,
          afterDays: settings.unusedAfterDays,
        });
    // The unused list's file is written while the snapshot state is stored below: neither waits
    // for the other. The digest's first few are taken on the way.
    const unusedShown: UnusedEligibilityRow[] = [];
    const unusedWritten = awaitedLater(
      (async () => {
        try {
          const shown = (batch: UnusedEligibilityRow[]) => {
            if (unusedShown.length < LIST_LIMIT) unusedShown.push(...batch.slice(0, LIST_LIMIT - unusedShown.length));
          };
          return await writeUnusedCsv(
            store,
            container,
            `${folder}unused-eligibilities.csv`,
            tapped(unused.rows.sortedBatches(), shown),
            snapshot.scopeName,
          );
        } finally {
          await unused.dispose();
        }
      })(),
    );

    let changes: AssignmentChanges;
    try {
      changes = await stateSaved;
    } catch (error) {
      await settled(unusedWritten);
      throw error;
    }
    files.push(await unusedWritten);
    log.info(
      `Wrote ${folder}unused-eligibilities.csv (${unused.count} row(s)${unused.complete ? '' : `; complete from ${unused.completeFrom}`})`,
    );
    const reminders = await sendExpiryReminders(ctx, state, day, reminderCandidates?.items ?? [], snapshot.scopeName);
    const roleSettings = await dailyRoleSettings(ctx, day, folder, roleSettingsRead, roleSettingsInputs, (d) =>
      history.isDayFinal(d),
    );
    files.push(roleSettings.file);
    // PIM for Azure resources, awaited only now: its reading (hundreds of scopes) is the longest
    // chain of the run, and the Entra work above goes on meanwhile.
    const azure = azureReading && (await azureReading);
    const azureFiles = azure ? await writeAzureAssignments(ctx, container, folder, azure) : undefined;
    if (azureFiles) files.splice(azureFilesAt, 0, ...azureFiles.files);
    const incomplete: Array<{
      list: string;
      groupId: string;
      groupName: string;
      status: number;
      code: string;
      reason: string;
    }> = [...snapshot.incomplete, ...(azureFiles?.incomplete ?? []), ...roleSettings.incomplete];
    const azureDigest = azure?.snapshot
      ? await azureDigestOf(ctx, day, azure.snapshot, azureFiles!.incomplete.length === 0, azureFiles!.activations)
      : undefined;

    const digest = renderDigest({
      day,
      changes,
      activations: { count: harvest.count, items: harvest.latest },
      groupActivations: harvest.groupActivations,
      globalAdministratorActivations: harvest.globalAdministratorActivations,
      globalAdministrators: {
        count: globalAdministrators.count,
        names: globalAdministrators.names,
        isFinding: globalAdministrators.isFinding,
      },
      expiryWindowDays: settings.expiryWindowDays,
      unused: {
        count: unused.count,
        items: unusedShown,
        complete: unused.complete,
        completeFrom: unused.completeFrom,
        afterDays: unused.afterDays,
        gaps: unused.gaps,
      },
      gaps: harvest.newGaps,
      incomplete,
      roleSettings: roleSettings.report,
      folder,
      scopeName: snapshot.scopeName,
      reminders,
      azure: azureDigest,
    });
    files.push(await writeTextFile(store, container, `${folder}digest.html`, digest.html, 'text/html; charset=utf-8'));
    files.push(await writeTextFile(store, container, `${folder}digest.txt`, digest.text, 'text/plain; charset=utf-8'));
    log.info(`Digest: ${digest.subject}`);

    if (ctx.mailer && !(await state.wasSent(day))) {
      await state.addToOutbox({
        day,
        subject: digest.subject,
        html: digest.html,
        text: digest.text,
        createdUtc: new Date().toISOString(),
      });
    }

    const manifest = {
      kind: 'daily',
      day,
      appVersion: APP_VERSION,
      asOfUtc: now.toISOString(),
      runStartedUtc: started.toISOString(),
      runFinishedUtc: new Date().toISOString(),
      files,
      digest: {
        subject: digest.subject,
        new: changes.added.count,
        removed: changes.removed.count,
        expiring: changes.expiring.count,
        permanent: changes.permanent.count,
        permanentPrivilegedFindings: changes.permanentPrivilegedFindings.count,
        ...(changes.routesNotCompared ? { routesNotCompared: changes.routesNotCompared } : {}),
        globalAdministrators: globalAdministrators.count,
        unusedEligibilities: unused.count,
        unusedComplete: unused.complete,
        ...(unused.gaps ? { unusedGaps: unused.gaps } : {}),
        baseline: changes.baseline,
        roleSettingsFindings: roleSettings.report.findings.length,
        roleSettingChanges: roleSettings.report.changes?.items.length ?? null,
        ...(azureDigest ? { azure: azureDigestManifest(azureDigest) } : {}),
      },
      schedules: snapshot.counts,
      ...(azureFiles ? { azure: azureFiles.manifest } : {}),
      incomplete: incomplete.map(({ list, groupId, groupName, status, code, reason }) => ({
        list,
        groupId,
        groupName,
        status,
        code,
        reason,
      })),
      reminders: reminders
        ? {
            sent: reminders.sent.length,
            assignments: reminders.sent.reduce((n, u) => n + u.items.length, 0),
            withoutMail: reminders.withoutMail,
            waiting: reminders.waiting,
            failed: reminders.failed,
          }
        : null,
      activations: {
        harvestedFromUtc: harvest.window?.from.toISOString() ?? null,
        harvestedToUtc: harvest.window?.to.toISOString() ?? null,
        count: harvest.count,
        groupActivations: harvest.groupActivations.count,
        globalAdministratorActivations: harvest.globalAdministratorActivations,
        gaps: harvest.newGaps,
      },
      graph: graph.stats,
    };
    await writeTextFile(
      store,
      container,
      `${folder}manifest.json`,
      `${JSON.stringify(manifest, null, 2)}\n`,
      JSON_CONTENT_TYPE,
    );
    log.info(`Wrote ${folder}manifest.json (${graph.stats.requests} Graph request(s))`);
    return { folder, wrote: true, subject: digest.subject };
  } finally {
    await settled(stateSaved); // it reads the snapshot's sorters, disposed of below
    await Promise.all([
      unusedReady?.then(
        (t) => t.dispose(),
        () => undefined,
      ),
      snapshot.dispose(),
      azureReading?.then((r) => r.snapshot?.dispose()),
      settled(roleSettingsRead),
      settled(keptUsesRead),
    ]);
  }
}

/**
 * Stores today's snapshot state and works out the diff with the last final day's on the same pass:
 * the schedules are merged from their sorted runs once, not twice. A failed read of the role
 * settings fails the run before the state is stored.
 */
async function storeSnapshotState(
  ctx: JobContext,
  state: StateStore,
  history: HistoryStore,
  day: string,
  snapshot: Snapshot,
  roleSettingsRead: Promise<unknown>,
  signal: AbortSignal,
): Promise<AssignmentChanges> {
  const { settings, now } = ctx;
  await roleSettingsRead;
  signal.throwIfAborted();
  // The last day that became final: a day whose run stopped before its manifest sent no digest.
  const previous = await state.previousSnapshotBatches(day, (d) => history.isDayFinal(d));
  const unread = routesUnreadFor(snapshot.incomplete);
  const changeTracker = new AssignmentChangeTracker(previous, {
    now,
    expiryWindowDays: settings.expiryWindowDays,
    excludedPrincipalIds: settings.excludedPrincipalIds,
    routesUnreadFor: unread,
  });
  try {
    await state.saveSnapshot(
      day,
      tapped(abortable(snapshot.schedules.sortedBatches(), signal), (batch) => changeTracker.observe(batch)),
      previous?.day,
      { routesUnreadFor: unread },
    );
    const changes = await changeTracker.result();
    if (changes.routesNotCompared) ctx.log.warn(`${routesNotComparedText(changes.routesNotCompared, previous!.day)}`);
    return changes;
  } finally {
    await changeTracker.close();
  }
}

/** `--force-email`: put the day's stored digest back in the outbox, exactly as it was stored. */
async function requeueToday(
  ctx: JobContext,
  state: StateStore,
  day: string,
  folder: string,
  subject?: string,
): Promise<void> {
  const container = ctx.settings.reportsContainer;
  const [html, text] = await Promise.all([
    ctx.store.readText(container, `${folder}digest.html`),
    ctx.store.readText(container, `${folder}digest.txt`),
  ]);
  if (!html || !text || !subject) throw new Error(`no stored digest for ${day} to send again`);
  await state.addToOutbox({ day, subject, html, text, createdUtc: new Date().toISOString() });
  ctx.log.info(`Digest of ${day} queued to be sent again (--force-email)`);
}

/**
 * Sends every digest waiting in the outbox, oldest first: a digest that failed yesterday goes out
 * today. The run fails if any send fails; the digest stays queued for the next run.
 */
async function deliverOutbox(ctx: JobContext, state: StateStore): Promise<void> {
  const mailer = ctx.mailer!;
  const failures: string[] = [];
  for (const entry of await state.outbox()) {
    // Sent since it was queued: a run stopped between recording the send and emptying the outbox.
    const record = await state.sentRecord(entry.day);
    if (record && record.sentUtc >= entry.createdUtc) {
      await state.dropFromOutbox(entry.day);
      ctx.log.info(`The digest of ${entry.day} was sent at ${record.sentUtc}; removed from the outbox`);
      continue;
    }
    // Queued by a run that stopped before its manifest: that day never became final, and what it
    // harvested is reported by a later day's files and digest (harvest.ts), so it is not sent.
    if (!(await new HistoryStore(ctx.store, ctx.settings.reportsContainer).isDayFinal(entry.day))) {
      await state.dropFromOutbox(entry.day);
      ctx.log.warn(
        `The run of ${entry.day} stopped before its files were final: its digest is not sent; a later day's digest reports what it harvested`,
      );
      continue;
    }
    try {
      const operationId = await sendOnce(mailer, ctx.log, `the digest of ${entry.day}`, entry, (queued) =>
        state.addToOutbox(queued),
      );
      await state.markSent(entry.day, {
        subject: entry.subject,
        sentUtc: new Date().toISOString(),
        operationId,
        recipients: mailer.recipients,
      });
      ctx.log.info(`Emailed the digest of ${entry.day} to ${mailer.recipients} recipient(s)`);
    } catch (error) {
      if (!(error instanceof EmailError)) throw error;
      failures.push(`${entry.day}: ${error.message}`);
      ctx.log.error(`The digest of ${entry.day} was not sent; it stays queued for the next run. ${error.message}`);
    }
  }
  if (failures.length > 0) {
    throw new DailyRunError(
      `the CSVs are written but the digest email failed (${failures.join('; ')}); the next run sends it`,
    );
  }
}
