/** The managed-identity simulator speaks App Service's protocol as @azure/identity 4.13 uses it
 * (https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference). */
import { ManagedIdentityCredential } from '@azure/identity';
import { decodeJwt } from '../../tools/http-util';
import { startManagedIdentitySimulator, type ManagedIdentitySimulator } from '../../tools/msi-simulator';

let msi: ManagedIdentitySimulator;
const saved = { IDENTITY_ENDPOINT: process.env.IDENTITY_ENDPOINT, IDENTITY_HEADER: process.env.IDENTITY_HEADER };

beforeAll(async () => {
  msi = await startManagedIdentitySimulator({ header: 'shh', userAssigned: { 'uami-client-id': 'uami-object-id' } });
  // @azure/identity reads these when a credential is created.
  Object.assign(process.env, msi.env());
});

afterAll(async () => {
  await msi.stop();
  Object.assign(process.env, saved);
});

const get = (query: string, headers: Record<string, string> = { 'x-identity-header': 'shh' }) =>
  fetch(`${msi.endpoint}?${query}`, { headers }).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as Record<string, unknown>,
  }));

test('a system-assigned token through ManagedIdentityCredential: unsigned JWT, aud = resource, 1 h', async () => {
  const token = await new ManagedIdentityCredential().getToken('https://graph.microsoft.com/.default');
  const jwt = decodeJwt(token.token);
  expect(jwt?.header.alg).toBe('none');
  expect(jwt?.payload).toEqual(
    expect.objectContaining({
      aud: 'https://graph.microsoft.com',
      iss: `https://sts.windows.net/${msi.tenantId}/`,
      oid: msi.principalId,
      tid: msi.tenantId,
    }),
  );
  expect(token.expiresOnTimestamp - Date.now()).toBeGreaterThan(3500_000);
  const last = msi.requests[msi.requests.length - 1];
  expect(last).toEqual(expect.objectContaining({ method: 'GET', path: '/msi/token', status: 200 }));
  expect(last.query).toEqual({ 'api-version': '2019-08-01', resource: 'https://graph.microsoft.com' });
});

test('a user-assigned identity by client id; an unknown one fails like App Service', async () => {
  const token = await new ManagedIdentityCredential({ clientId: 'uami-client-id' }).getToken(
    'https://storage.azure.com/.default',
  );
  expect(decodeJwt(token.token)?.payload).toEqual(
    expect.objectContaining({ aud: 'https://storage.azure.com', oid: 'uami-object-id', appid: 'uami-client-id' }),
  );
  expect(msi.requests[msi.requests.length - 1].query.client_id).toBe('uami-client-id');
  const r = await get('api-version=2019-08-01&resource=https://graph.microsoft.com&client_id=nope');
  expect(r).toEqual({ status: 400, body: { statusCode: 400, message: 'Unable to load the proper Managed Identity.' } });
});

test('the identity header is required and must match; api-version and resource are checked', async () => {
  expect((await get('api-version=2019-08-01&resource=https://graph.microsoft.com', {})).status).toBe(400);
  expect(
    (await get('api-version=2019-08-01&resource=https://graph.microsoft.com', { 'x-identity-header': 'wrong' })).status,
  ).toBe(401);
  expect((await get('api-version=2017-09-01&resource=https://graph.microsoft.com')).status).toBe(400);
  expect((await get('api-version=2019-08-01')).status).toBe(400);
});

test('down(true) answers 500, down("refuse") refuses connections, down(false) recovers on the same endpoint', async () => {
  await msi.down(true);
  expect((await get('api-version=2019-08-01&resource=https://graph.microsoft.com')).status).toBe(500);
  await msi.down('refuse');
  await expect(get('api-version=2019-08-01&resource=https://graph.microsoft.com')).rejects.toThrow();
  await msi.down(false);
  expect((await get('api-version=2019-08-01&resource=https://graph.microsoft.com')).status).toBe(200);
});
