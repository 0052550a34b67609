/**
 * One email out at most once, whatever it is (the digest, an expiry reminder): a send started by
 * an earlier run (its operation id is in the stored entry) is asked after first, and a new send's
 * operation id is stored (`save`) before the send, so a run that dies at any point after ACS
 * accepted it never sends it again.
 */
import { randomUUID } from 'node:crypto';
import type { Mailer } from '../io/email';
import type { Log } from '../log';
import { outboxOperationId, type OutboxEntry } from './state';

export async function sendOnce<E extends OutboxEntry>(
  mailer: Mailer,
  log: Log,
  what: string,
  entry: E,
  save: (entry: E) => Promise<void>,
): Promise<string> {
  let operationId = outboxOperationId(entry);
  if (operationId) {
    const status = await mailer.status(operationId);
    if (status.state === 'succeeded') {
      log.info(`ACS delivered ${what} sent by an earlier run (operation ${operationId})`);
      return operationId;
    }
    if (status.state === 'running') {
      log.info(`Waiting for ${what} sent by an earlier run (operation ${operationId})`);
      return mailer.outcome(operationId);
    }
    if (status.state === 'failed') {
      log.warn(`The earlier send of ${what} failed (${status.reason}); sending it again`);
      operationId = undefined;
    }
    // unknown: ACS never accepted that send; it goes out under the same id.
  }
  if (!operationId) {
    operationId = randomUUID();
    // Must be stored before the send: if it cannot be, nothing is sent (the run fails, the email stays queued).
    await save({ ...entry, operationId, accepted: undefined });
  }
  return mailer.send(entry, operationId);
}
