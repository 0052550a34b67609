import { app, type InvocationContext, type Timer } from '@azure/functions';
import { invocationFailure, jobContextFor } from '../hosting';
import { runMonthly } from '../jobs/monthly';
import { DEFAULT_MONTHLY_SCHEDULE } from '../settings';

/** Timer: the compliance pack of every complete month not yet archived. */
export async function monthlyArchive(timer: Timer, context: InvocationContext): Promise<void> {
  if (timer.isPastDue) context.warn('monthlyArchive is running late (the host was down or busy at the scheduled time)');
  try {
    await runMonthly(jobContextFor(context));
  } catch (error) {
    throw invocationFailure(error);
  }
}

// %MONTHLY_SCHEDULE% is resolved by the host; without the setting the host would fail to start, so the default applies.
app.timer('monthlyArchive', {
  schedule: process.env.MONTHLY_SCHEDULE ? '%MONTHLY_SCHEDULE%' : DEFAULT_MONTHLY_SCHEDULE,
  handler: monthlyArchive,
});
