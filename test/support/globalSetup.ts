/**
 * One Azurite for the whole jest run. Workers are started after this and inherit process.env, so tests find it
 * through PIM_TEST_AZURITE_CONNECTION_STRING. Tests isolate themselves with their own container names.
 */
import { startAzurite, type AzuriteHandle } from '../../tools/azurite';

export default async function globalSetup(): Promise<void> {
  const azurite = await startAzurite();
  // globalSetup and globalTeardown run in the same jest parent process and share globalThis.
  (globalThis as { __PIM_TEST_AZURITE__?: AzuriteHandle }).__PIM_TEST_AZURITE__ = azurite;
  process.env.PIM_TEST_AZURITE_CONNECTION_STRING = azurite.connectionString;
  process.env.PIM_TEST_AZURITE_BLOB_ENDPOINT = azurite.blobEndpoint;
}
