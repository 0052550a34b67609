/** What every job is given: settings, clients, a log and the moment it runs as. No trigger types. */
import type { ArmClient } from '../arm/client';
import type { GraphClient } from '../graph/client';
import type { BlobStore } from '../io/blob';
import type { Mailer } from '../io/email';
import type { Log } from '../log';
import type { Settings } from '../settings';

export interface JobContext {
  settings: Settings;
  graph: GraphClient;
  /** ARM, when PIM for Azure resources is on (AZURE_RESOURCE_SCOPES). */
  arm?: ArmClient;
  store: BlobStore;
  /** Absent when email is not configured: the digest is then stored, not sent. */
  mailer?: Mailer;
  log: Log;
  /** The moment the run behaves as (`--now` on the CLI; the clock otherwise). */
  now: Date;
}
