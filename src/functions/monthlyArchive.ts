import { app, type InvocationContext, type Timer } from '@azure/functions';
import { invocationFailure, jobContextFor } from '../hosting';
import { runMonthly } from '../jobs/monthly';
import { loadSchedules } from '../settings';

/** Timer: the compliance pack of every complete month not yet archived. */
export async function monthlyArchive(timer: Timer, context: InvocationContext): Promise<void> {
  if (timer.isPastDue) context.warn('monthlyArchive is running late (the host was down or busy at the scheduled time)');
  try {
    await runMonthly(jobContextFor(context));
  } catch (error) {
    throw invocationFailure(error);
  }
}

// The v4 model registers when the worker loads this file, so the schedule is read now: the
// validated MONTHLY_SCHEDULE (app settings are the worker's environment), or its default. A
// malformed one throws a SettingsError naming it, and the worker fails to start saying so
// (docs/settings.md). Schedule expressions:
// https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#ncrontab-expressions
app.timer('monthlyArchive', {
  schedule: loadSchedules().monthly,
  handler: monthlyArchive,
});
