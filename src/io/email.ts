/**
 * The digest email through Azure Communication Services: the managed identity against
 * ACS_ENDPOINT, or an ACS connection string. Each send carries an operation id the caller chose and
 * stored first, so a run that stops after ACS accepted it asks ACS how it went instead of sending
 * again.
 */
import { EmailClient, type EmailMessage } from '@azure/communication-email';
import type { TokenCredential } from '@azure/identity';
import type { EmailSettings } from '../settings';

export interface OutgoingEmail {
  subject: string;
  html: string;
  text: string;
  /** Who it goes to; the digest's EMAIL_RECIPIENTS when absent (an expiry reminder names its one holder). */
  to?: string[];
}

/** What ACS knows of a send operation (GET /emails/operations/{id}). */
export type SendStatus =
  { state: 'unknown' } | { state: 'running' } | { state: 'succeeded' } | { state: 'failed'; reason: string };

export interface Mailer {
  readonly recipients: number;
  /**
   * Sends under `operationId`, a GUID the caller chose and stored first (ACS takes it in the
   * Operation-Id header), and waits for the outcome. Resolves with the id once ACS reports the send
   * Succeeded; rejects with ACS's reason otherwise.
   */
  send(email: OutgoingEmail, operationId: string): Promise<string>;
  /** What ACS knows of an operation this app started: `unknown` when ACS answers 404 (never accepted). */
  status(operationId: string): Promise<SendStatus>;
  /** Waits for an accepted operation to end; resolves once Succeeded, rejects otherwise. */
  outcome(operationId: string): Promise<string>;
}

export interface MailerOptions {
  /** How often to poll the send operation. */
  pollIntervalMs?: number;
  /** Give up waiting on ACS after this long. */
  timeoutMs?: number;
}

export class EmailError extends Error {
  constructor(
    message: string,
    /** ACS says the send failed: sending again (under a new operation id) cannot double it. */
    readonly sendAgain = false,
  ) {
    super(message);
    this.name = 'EmailError';
  }
}

/**
 * The SDK's EmailClient exposes only beginSend; the operation status GET it polls with
 * (getSendResult, GET /emails/operations/{operationId}) lives on its generated client:
 * https://github.com/Azure/azure-sdk-for-js/blob/main/sdk/communication/communication-email/src/generated/src/operations/email.ts
 * REST: https://learn.microsoft.com/rest/api/communication/dataplane/email/get-send-result
 * Checked when the mailer is made, so an SDK that moved it fails at start, not after a send.
 */
interface SendResultReader {
  getSendResult(
    operationId: string,
    options?: { abortSignal?: AbortSignal },
  ): Promise<{ id: string; status: string; error?: { code?: string; message?: string } }>;
}

function sendResultReader(client: EmailClient): SendResultReader {
  const generated = (client as unknown as { generatedClient?: { email?: SendResultReader } }).generatedClient?.email;
  if (typeof generated?.getSendResult !== 'function') {
    throw new Error(
      '@azure/communication-email no longer offers getSendResult: the send status cannot be read, so a resumed send could be doubled',
    );
  }
  return generated;
}

const TERMINAL_FAILURE = new Set(['Failed', 'Canceled']);

export function createMailer(
  settings: NonNullable<EmailSettings>,
  credential: TokenCredential,
  options: MailerOptions = {},
): Mailer {
  const client =
    settings.transport.kind === 'endpoint'
      ? new EmailClient(settings.transport.endpoint, credential)
      : new EmailClient(settings.transport.connectionString);
  const reader = sendResultReader(client);
  const timeoutMs = options.timeoutMs ?? 5 * 60_000;
  const pollIntervalMs = options.pollIntervalMs ?? 2000;

  const failure = (error: unknown, aborted: boolean, what: string): EmailError => {
    if (error instanceof EmailError) return error;
    const e = error as { statusCode?: number; message?: string };
    if (aborted) return new EmailError(`ACS did not confirm the email within ${Math.round(timeoutMs / 1000)} s`);
    // The poller throws when the operation ends Failed or Canceled.
    const ended = /long-running operation has (failed|been canceled)/i.test(e.message ?? '');
    return new EmailError(
      `${what} through ACS failed${e.statusCode ? ` (HTTP ${e.statusCode})` : ''}: ${e.message ?? String(error)}`,
      ended,
    );
  };
  const withTimeout = async <T>(what: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      return await run(abort.signal);
    } catch (error) {
      throw failure(error, abort.signal.aborted, what);
    } finally {
      clearTimeout(timer);
    }
  };
  const status = async (operationId: string, signal?: AbortSignal): Promise<SendStatus> => {
    try {
      const result = await reader.getSendResult(operationId, { abortSignal: signal });
      if (result.status === 'Succeeded') return { state: 'succeeded' };
      if (TERMINAL_FAILURE.has(result.status)) {
        return {
          state: 'failed',
          reason: `status ${result.status}${result.error ? `, ${result.error.code}: ${result.error.message}` : ''}`,
        };
      }
      return { state: 'running' };
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return { state: 'unknown' };
      throw error;
    }
  };

  return {
    recipients: settings.recipients.length,
    send: (email, operationId) =>
      withTimeout('sending the email', async (signal) => {
        const message: EmailMessage = {
          senderAddress: settings.sender,
          content: { subject: email.subject, html: email.html, plainText: email.text },
          recipients: { to: (email.to ?? settings.recipients).map((address) => ({ address })) },
        };
        // Operation-Id: "the ID provided by the customer to identify the long running operation":
        // https://learn.microsoft.com/rest/api/communication/dataplane/email/send
        const poller = await client.beginSend(message, {
          operationId,
          updateIntervalInMs: pollIntervalMs,
          abortSignal: signal,
        });
        const result = await poller.pollUntilDone({ abortSignal: signal });
        if (result.status !== 'Succeeded') {
          throw new EmailError(
            `ACS did not deliver the email: status ${result.status}${result.error ? `, ${result.error.code}: ${result.error.message}` : ''}`,
            true,
          );
        }
        return result.id;
      }),
    status: (operationId) => withTimeout('reading the send status', (signal) => status(operationId, signal)),
    outcome: (operationId) =>
      withTimeout('waiting for the send', async (signal) => {
        for (;;) {
          const now = await status(operationId, signal);
          if (now.state === 'succeeded') return operationId;
          if (now.state === 'failed') throw new EmailError(`ACS did not deliver the email: ${now.reason}`, true);
          if (now.state === 'unknown') throw new EmailError(`ACS no longer knows the send ${operationId}`);
          await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
          if (signal.aborted) throw new Error('aborted');
        }
      }),
  };
}
