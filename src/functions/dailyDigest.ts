import { app, type InvocationContext, type Timer } from '@azure/functions';
import { invocationFailure, jobContextFor } from '../hosting';
import { runDaily } from '../jobs/daily';
import { DEFAULT_DAILY_SCHEDULE } from '../settings';

/** Timer: the daily snapshot, activations and digest. A failed run is not retried by the host; the next day's run catches up. */
export async function dailyDigest(timer: Timer, context: InvocationContext): Promise<void> {
  if (timer.isPastDue) context.warn('dailyDigest is running late (the host was down or busy at the scheduled time)');
  try {
    await runDaily(jobContextFor(context));
  } catch (error) {
    throw invocationFailure(error);
  }
}

// %DAILY_SCHEDULE% is resolved by the host; without the setting the host would fail to start, so the default applies.
app.timer('dailyDigest', {
  schedule: process.env.DAILY_SCHEDULE ? '%DAILY_SCHEDULE%' : DEFAULT_DAILY_SCHEDULE,
  handler: dailyDigest,
});
