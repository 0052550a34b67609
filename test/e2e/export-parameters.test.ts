/**
 * docs/http-export.md: a parameter the export cannot serve answers 400 naming it, with nothing
 * called or written, also when only the job finds it out (an Azure dataset while PIM for Azure
 * resources is off), not 500 "the export failed".
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { httpExport } from '../../src/functions/httpExport';
import { generateTenant } from '../../tools/tenant/generate';
import { startWorld, type World } from '../support/world';

describe('the HTTP export, parameters the job refuses', () => {
  let world: World;
  beforeAll(async () => {
    const now = new Date();
    world = await startWorld(
      generateTenant({ seed: 'export-params', now, users: 6, groups: 1, eligible: 4, active: 2 }),
      { email: 'none' },
    );
    world.useProcessEnv();
    delete process.env.AZURE_RESOURCE_SCOPES;
  });
  afterAll(async () => world?.stop());

  it.each(['azure-eligible', 'azure-active', 'azure-activations'])(
    '%s while AZURE_RESOURCE_SCOPES is not set: 400 BadParameter naming dataset, nothing read or written',
    async (dataset) => {
      const before = world.graph.requests.length;
      const response = await httpExport(
        new HttpRequest({ method: 'GET', url: `http://localhost:7071/api/export?dataset=${dataset}&save=true` }),
        new InvocationContext({ invocationId: `inv-${dataset}`, functionName: 'export', logHandler: () => undefined }),
      );
      expect({ status: response.status, error: (response.jsonBody as { error: unknown }).error }).toEqual({
        status: 400,
        error: {
          code: 'BadParameter',
          parameter: 'dataset',
          message: expect.stringContaining('AZURE_RESOURCE_SCOPES'),
        },
      });
      expect((response.headers as Record<string, string>)['x-invocation-id']).toBe(`inv-${dataset}`);
      expect(world.graph.requests.length).toBe(before);
      expect(await world.list(world.reports)).toEqual([]);
    },
  );
});
