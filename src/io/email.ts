/**
 * The digest email through Azure Communication Services: the managed identity against
 * ACS_ENDPOINT, or an ACS connection string. Resolves only once ACS reports the send Succeeded.
 */
import { EmailClient, type EmailMessage } from '@azure/communication-email';
import type { TokenCredential } from '@azure/identity';
import type { EmailSettings } from '../settings';

export interface OutgoingEmail {
  subject: string;
  html: string;
  text: string;
  /**
   * A send ACS accepted earlier (what `SendHooks.onAccepted` was given): its outcome is awaited and
   * the email is not sent again, unless ACS reports that send failed or no longer knows it.
   */
  accepted?: string;
}

export interface SendHooks {
  /**
   * Called once ACS has accepted a new send, before its outcome is known, with what `accepted`
   * takes to resume it: a run that stops after this point resumes instead of sending twice.
   * Must not throw.
   */
  onAccepted?(accepted: string): Promise<void>;
}

export interface Mailer {
  readonly recipients: number;
  /** Resolves with ACS's operation id once delivered to ACS; rejects with ACS's reason otherwise. */
  send(email: OutgoingEmail, hooks?: SendHooks): Promise<string>;
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
    /** ACS says the send failed, or no longer knows it: sending again cannot double it. */
    readonly sendAgain = false,
  ) {
    super(message);
    this.name = 'EmailError';
  }
}

export function createMailer(
  settings: NonNullable<EmailSettings>,
  credential: TokenCredential,
  options: MailerOptions = {},
): Mailer {
  const client =
    settings.transport.kind === 'endpoint'
      ? new EmailClient(settings.transport.endpoint, credential)
      : new EmailClient(settings.transport.connectionString);
  const timeoutMs = options.timeoutMs ?? 5 * 60_000;
  return {
    recipients: settings.recipients.length,
    async send(email, hooks = {}) {
      const message: EmailMessage = {
        senderAddress: settings.sender,
        content: { subject: email.subject, html: email.html, plainText: email.text },
        recipients: { to: settings.recipients.map((address) => ({ address })) },
      };
      const attempt = async (resumeFrom?: string): Promise<string> => {
        const abort = new AbortController();
        const timer = setTimeout(() => abort.abort(), timeoutMs);
        try {
          const poller = await client.beginSend(message, {
            updateIntervalInMs: options.pollIntervalMs ?? 2000,
            abortSignal: abort.signal,
            ...(resumeFrom ? { resumeFrom } : {}),
          });
          if (!resumeFrom) await hooks.onAccepted?.(poller.toString());
          const result = await poller.pollUntilDone({ abortSignal: abort.signal });
          if (result.status !== 'Succeeded') {
            throw new EmailError(`ACS did not deliver the email: status ${result.status}${result.error ? `, ${result.error.code}: ${result.error.message}` : ''}`, true);
          }
          return result.id;
        } catch (error) {
          if (error instanceof EmailError) throw error;
          const e = error as { statusCode?: number; message?: string; name?: string };
          if (abort.signal.aborted) throw new EmailError(`ACS did not confirm the email within ${Math.round(timeoutMs / 1000)} s`);
          // The poller throws when the operation ends Failed or Canceled.
          const ended = e.statusCode === 404 || /long-running operation has (failed|been canceled)/i.test(e.message ?? '');
          throw new EmailError(`sending the digest through ACS failed${e.statusCode ? ` (HTTP ${e.statusCode})` : ''}: ${e.message ?? String(error)}`, ended);
        } finally {
          clearTimeout(timer);
        }
      };
      if (email.accepted) {
        try {
          return await attempt(email.accepted);
        } catch (error) {
          // The send accepted earlier failed, or ACS no longer knows it: only then send it anew.
          if (!(error instanceof EmailError && error.sendAgain)) throw error;
        }
      }
      return attempt();
    },
  };
}
