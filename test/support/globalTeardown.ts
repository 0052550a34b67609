/** Stops the Azurite started by globalSetup.ts (jest runs both in the same parent process). */
import type { AzuriteHandle } from '../../tools/azurite';

export default async function globalTeardown(): Promise<void> {
  const holder = globalThis as { __PIM_TEST_AZURITE__?: AzuriteHandle };
  const azurite = holder.__PIM_TEST_AZURITE__;
  holder.__PIM_TEST_AZURITE__ = undefined;
  if (azurite) await azurite.stop();
}
