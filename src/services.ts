/**
 * The clients a job uses, made once from the settings. The Functions worker keeps them for the
 * life of the instance; the CLI makes them per run.
 */
import {
  AzureCliCredential,
  AzureDeveloperCliCredential,
  ChainedTokenCredential,
  ManagedIdentityCredential,
} from '@azure/identity';
import type { TokenCredential } from '@azure/identity';
import type { StorageRetryOptions } from '@azure/storage-blob';
import { ArmClient } from './arm/client';
import { GraphClient } from './graph/client';
import { BlobStore } from './io/blob';
import { createMailer, type Mailer } from './io/email';
import { registerSecrets, type Log } from './log';
import type { Settings } from './settings';

export interface Services {
  graph: GraphClient;
  /** Present when PIM for Azure resources is on (AZURE_RESOURCE_SCOPES). */
  arm?: ArmClient;
  store: BlobStore;
  credential: TokenCredential;
  mailer?: Mailer;
}

/**
 * How the clients wait: the real timer and the SDKs' own retry delays unless a test sets them,
 * so that tests assert the waits asked for instead of spending them (docs/architecture.md, "Time
 * in tests").
 */
export interface Timing {
  /** Graph's retry waits (Retry-After, backoff): `ms` before asking `endpoint` again. */
  sleep?: (ms: number, endpoint: string) => Promise<void>;
  /** How long the Graph and ARM clients wait for one answer before asking again (default: each client's own). */
  requestTimeoutMs?: number;
  /** How often the send of the digest is polled (ACS). */
  emailPollIntervalMs?: number;
  /** The Storage SDK's own retries: how many, and how long between them. */
  storageRetry?: StorageRetryOptions;
}

/**
 * The managed identity where the platform offers one (IDENTITY_ENDPOINT, set by App Service and
 * Functions), a user-assigned one when MANAGED_IDENTITY_CLIENT_ID names it; elsewhere the
 * developer's own sign-in (`az login`, then `azd auth login`).
 */
export function createCredential(settings: Settings): TokenCredential {
  if (settings.managedIdentityAvailable) {
    return settings.managedIdentityClientId
      ? new ManagedIdentityCredential({ clientId: settings.managedIdentityClientId })
      : new ManagedIdentityCredential();
  }
  return new ChainedTokenCredential(new AzureCliCredential(), new AzureDeveloperCliCredential());
}

export function createServices(
  settings: Settings,
  log: Log,
  credential = createCredential(settings),
  timing: Timing = {},
): Services {
  registerSecrets(settings.secrets);
  return {
    credential,
    graph: new GraphClient({
      endpoint: settings.graphEndpoint,
      credential,
      log,
      sleep: timing.sleep,
      requestTimeoutMs: timing.requestTimeoutMs,
    }),
    store: BlobStore.fromSettings(settings.storage, credential, timing.storageRetry),
    mailer: settings.email
      ? createMailer(settings.email, credential, { pollIntervalMs: timing.emailPollIntervalMs })
      : undefined,
    arm: settings.azure
      ? new ArmClient({
          endpoint: settings.azure.armEndpoint,
          credential,
          log,
          sleep: timing.sleep && ((ms: number) => timing.sleep!(ms, 'ARM')),
          requestTimeoutMs: timing.requestTimeoutMs,
        })
      : undefined,
  };
}
