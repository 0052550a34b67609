/**
 * The clients a job uses, made once from the settings. The Functions worker keeps them for the
 * life of the instance; the CLI makes them per run.
 */
import { AzureCliCredential, AzureDeveloperCliCredential, ChainedTokenCredential, ManagedIdentityCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/identity';
import { GraphClient } from './graph/client';
import { BlobStore } from './io/blob';
import { createMailer, type Mailer } from './io/email';
import { registerSecrets, type Log } from './log';
import type { Settings } from './settings';

export interface Services {
  graph: GraphClient;
  store: BlobStore;
  credential: TokenCredential;
  mailer?: Mailer;
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

export function createServices(settings: Settings, log: Log, credential = createCredential(settings)): Services {
  registerSecrets(settings.secrets);
  return {
    credential,
    graph: new GraphClient({ endpoint: settings.graphEndpoint, credential, log }),
    store: BlobStore.fromSettings(settings.storage, credential),
    mailer: settings.email ? createMailer(settings.email, credential) : undefined,
  };
}
