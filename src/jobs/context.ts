/** What every job is given: settings, clients, a log and the moment it runs as. No trigger types. */
import type { GraphClient } from '../graph/client';
import type { BlobStore } from '../io/blob';
import type { Log } from '../log';
import type { Settings } from '../settings';

export interface JobContext {
  settings: Settings;
  graph: GraphClient;
  store: BlobStore;
  log: Log;
  /** The moment the run behaves as (`--now` on the CLI; the clock otherwise). */
  now: Date;
}
