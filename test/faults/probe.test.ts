import { generateTenant } from '../../tools/tenant/generate';
import { startWorld, type World } from '../support/world';
import { startBlobProxy } from '../support/blob-proxy';
import { spawnCli } from '../support/child';

const NOW = '2026-11-20T06:00:00Z';
jest.setTimeout(120000);
describe('probe', () => {
  let world: World;
  afterEach(async () => world?.stop());
  it('times', async () => {
    const tenant = generateTenant({ seed: 'probe', now: new Date(NOW), users: 20, groups: 3, eligible: 20, active: 10, auditDays: 31 });
    world = await startWorld(tenant, { auditRateLimit: { requests: 1000, perMs: 1000 } });
    await world.identity.down(true);
    let t = Date.now();
    let c = await spawnCli(['daily', '--now', NOW], world.env).done;
    console.log('msi 500', Date.now() - t, c.code, c.stderr, world.identity.requests.length);
    await world.identity.down('refuse');
    t = Date.now();
    c = await spawnCli(['daily', '--now', NOW], world.env).done;
    console.log('msi refuse', Date.now() - t, c.code, c.stderr);
    await world.identity.down(false);
    const proxy = await startBlobProxy();
    proxy.failFrom(5, { status: 403 });
    t = Date.now();
    let r = await world.cli(['daily', '--now', NOW], { REPORTS_STORAGE_CONNECTION_STRING: proxy.connectionString });
    console.log('blob 403', Date.now() - t, r.code, r.stderr);
    proxy.clear();
    world.graph.inject({ path: /roleAssignmentSchedules/, status: 500, times: 1 });
    t = Date.now();
    r = await world.cli(['daily', '--now', NOW], { REPORTS_STORAGE_CONNECTION_STRING: proxy.connectionString });
    console.log('graph 500', Date.now() - t, r.code, r.stderr);
    world.graph.inject({ path: /directoryAudits/, status: 429, retryAfterSeconds: 0, times: 7 });
    t = Date.now();
    r = await world.cli(['daily', '--now', NOW], { REPORTS_STORAGE_CONNECTION_STRING: proxy.connectionString });
    console.log('graph 429 storm', Date.now() - t, r.code, r.stderr);
    await proxy.stop();
  });
});
