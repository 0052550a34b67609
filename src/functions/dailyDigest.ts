import { app, type InvocationContext, type Timer } from '@azure/functions';
import { invocationFailure, jobContextFor } from '../hosting';
import { runDaily } from '../jobs/daily';
import { loadSchedules } from '../settings';

/** Timer: the daily snapshot, activations and digest. A failed run is not retried by the host; the next day's run catches up. */
export async function dailyDigest(timer: Timer, context: InvocationContext): Promise<void> {
  if (timer.isPastDue) context.warn('dailyDigest is running late (the host was down or busy at the scheduled time)');
  try {
    await runDaily(jobContextFor(context));
  } catch (error) {
    throw invocationFailure(error);
  }
}

// The v4 model registers when the worker loads this file, so the schedule is read now: the
// validated DAILY_SCHEDULE (app settings are the worker's environment), or its default. A
// malformed one throws a SettingsError naming it, and the worker fails to start saying so
// (docs/settings.md). Schedule expressions:
// https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions
app.timer('dailyDigest', {
  schedule: loadSchedules().daily,
  handler: dailyDigest,
});
