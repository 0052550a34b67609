/**
 * docs/faults.md: The managed-identity endpoint down: the run stops before anything is written, with an
 * error that names the managed identity (not a Graph status of -1), never the IDENTITY_HEADER
 * secret; once the endpoint is back, the next run completes. Separate processes: MSAL caches
 * managed-identity tokens for the life of a process, as the Functions worker would.
 */
import { RUN_LOCK } from '../../src/jobs/lock';
import { generateTenant } from '../../tools/tenant/generate';
import { spawnCli } from '../support/child';
import { finalDays, LogBook } from '../support/faults';
import { startWorld, type World } from '../support/world';

const NOW = '2026-11-20T06:00:00Z';
const logs = new LogBook();

describe('managed identity down', () => {
  let world: World;
  beforeAll(async () => {
    world = await startWorld(
      generateTenant({ seed: 'msi', now: new Date(NOW), users: 15, groups: 2, eligible: 10, active: 6 }),
      {
        auditRateLimit: { requests: 1000, perMs: 1000 },
      },
    );
    logs.knowSecretsOf(world);
  });
  afterAll(async () => {
    await world?.identity.down(false);
    await world?.stop();
    expect(logs.leaks()).toEqual([]);
  });

  it.each([
    ['answers 500', true as const, '2026-11-20'],
    ['refuses connections', 'refuse' as const, '2026-11-21'],
    // The header's value is redacted as a value, whatever text it comes in.
    ['echoes its secret header in the error', 'echo' as const, '2026-11-22'],
  ])(
    'when the endpoint %s: a clear error, nothing written; the next run completes',
    async (_what, state, day) => {
      const now = `${day}T06:00:00Z`;
      const before = await world.list(world.reports);
      world.graph.requests.length = 0;
      await world.identity.down(state);
      const failed = await spawnCli(['daily', '--now', now], world.env).done;
      logs.add(failed.stderr, failed.stdout);
      expect(failed.code).toBe(1);
      const error = failed.stderr.split('\n').filter((l) => / error: /.test(l));
      if (state === 'echo') expect(error.join('\n')).toContain('[redacted]');
      expect(error.length).toBe(1);
      expect(error[0]).toMatch(/managed identity/i);
      expect(error[0]).toContain('IDENTITY_ENDPOINT');
      expect(error[0]).not.toMatch(/Graph -1/);
      expect(failed.stderr).not.toContain(world.identity.header);
      // Nothing but the run lock (an empty blob, taken before anything is read, and let go).
      expect((await world.list(world.reports)).filter((name) => name !== RUN_LOCK)).toEqual(
        before.filter((name) => name !== RUN_LOCK),
      );
      const lock = await world.blobs.getContainerClient(world.reports).getBlockBlobClient(RUN_LOCK).getProperties();
      expect([lock.contentLength, lock.leaseState, lock.metadata]).toEqual([0, 'available', {}]);
      expect(world.graph.requests).toEqual([]);

      await world.identity.down(false);
      const again = await spawnCli(['daily', '--now', now], world.env).done;
      logs.add(again.stderr, again.stdout);
      expect(again.code).toBe(0);
      expect((await finalDays(world)).pop()).toBe(day);
    },
    30_000,
  );
});
