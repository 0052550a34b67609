/**
 * The App Service / Functions managed-identity endpoint (IDENTITY_ENDPOINT + IDENTITY_HEADER), which is what
 * @azure/identity's ManagedIdentityCredential calls there: `GET <endpoint>?api-version=2019-08-01&resource=…
 * [&client_id=…]` with header `x-identity-header`
 * (https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference). Plain http is fine: identity allows it.
 * Tokens are unsigned JWTs (alg none) with aud = resource, accepted by the Graph and ACS simulators.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { closeServer, listen, queryRecord } from './http-util';

export interface MsiRequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  at: number;
}

export interface ManagedIdentitySimulatorOptions {
  /** The IDENTITY_HEADER secret; random when omitted. */
  header?: string;
  tenantId?: string;
  /** oid of the system-assigned identity. */
  principalId?: string;
  /** client id of the system-assigned identity. */
  clientId?: string;
  /** Known user-assigned identities, clientId -> principal (oid). Other client_ids fail like App Service. */
  userAssigned?: Record<string, string>;
  /** Token lifetime, seconds. Default 3600. */
  lifetimeSeconds?: number;
  port?: number;
}

export interface ManagedIdentitySimulator {
  /** http://127.0.0.1:<port>/msi/token (IDENTITY_ENDPOINT) */
  readonly endpoint: string;
  /** IDENTITY_HEADER */
  readonly header: string;
  readonly tenantId: string;
  readonly principalId: string;
  readonly clientId: string;
  readonly requests: MsiRequestRecord[];
  /** The env a process needs to use this identity (@azure/identity reads it when a credential is created). */
  env(): { IDENTITY_ENDPOINT: string; IDENTITY_HEADER: string };
  /**
   * true: answer 500; 'echo': answer 500 with the presented X-IDENTITY-HEADER in the message (a
   * misbehaving endpoint or proxy); 'refuse': stop listening (connection refused); false: back to normal.
   */
  down(state: boolean | 'echo' | 'refuse'): Promise<void>;
  stop(): Promise<void>;
}

export const MSI_API_VERSION = '2019-08-01';

/** Builds an unsigned JWT like the ones the simulator issues (handy for tests that need a token directly). */
export function fakeAccessToken(claims: {
  aud: string;
  tenantId?: string;
  oid?: string;
  appid?: string;
  lifetimeSeconds?: number;
}): {
  token: string;
  expiresOn: number;
} {
  const now = Math.floor(Date.now() / 1000);
  const exp = now + (claims.lifetimeSeconds ?? 3600);
  const tid = claims.tenantId ?? '72f988bf-86f1-41af-91ab-2d7cd011db47';
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const payload = {
    aud: claims.aud,
    iss: `https://sts.windows.net/${tid}/`,
    iat: now,
    nbf: now - 60,
    exp,
    oid: claims.oid ?? randomUUID(),
    sub: claims.oid ?? randomUUID(),
    tid,
    appid: claims.appid ?? randomUUID(),
    idtyp: 'app',
  };
  return { token: `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`, expiresOn: exp };
}

export async function startManagedIdentitySimulator(
  opts: ManagedIdentitySimulatorOptions = {},
): Promise<ManagedIdentitySimulator> {
  const secret = opts.header ?? randomBytes(16).toString('hex');
  const tenantId = opts.tenantId ?? randomUUID();
  const principalId = opts.principalId ?? randomUUID();
  const clientId = opts.clientId ?? randomUUID();
  const requests: MsiRequestRecord[] = [];
  let failing: false | 'plain' | 'echo' = false;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const reply = (status: number, body: object) => {
      requests.push({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: queryRecord(url.searchParams),
        status,
        at: Date.now(),
      });
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    if (failing === 'echo') {
      return reply(500, {
        statusCode: 500,
        message: `Token request with X-IDENTITY-HEADER ${String(req.headers['x-identity-header'])} failed.`,
      });
    }
    if (failing)
      return reply(500, { statusCode: 500, message: 'An unexpected error occured while fetching the AAD Token.' });
    if (url.pathname !== '/msi/token') return reply(404, { statusCode: 404, message: 'Not found.' });
    if (req.method !== 'GET')
      return reply(405, {
        statusCode: 405,
        message: `The requested resource does not support http method '${req.method}'.`,
      });
    const presented = req.headers['x-identity-header'];
    if (presented === undefined) return reply(400, { statusCode: 400, message: 'Missing X-IDENTITY-HEADER header.' });
    if (presented !== secret)
      return reply(401, { statusCode: 401, message: 'The X-IDENTITY-HEADER value is not valid.' });
    if (url.searchParams.get('api-version') !== MSI_API_VERSION) {
      return reply(400, {
        statusCode: 400,
        message: `api-version '${url.searchParams.get('api-version') ?? ''}' is not supported; use ${MSI_API_VERSION}.`,
      });
    }
    const resource = url.searchParams.get('resource');
    if (!resource) return reply(400, { statusCode: 400, message: "Required query parameter 'resource' is missing." });
    let oid = principalId;
    let appid = clientId;
    const requestedClient = url.searchParams.get('client_id');
    if (requestedClient !== null) {
      const uami = opts.userAssigned?.[requestedClient];
      if (!uami && requestedClient !== clientId) {
        // What App Service answers for an identity that is not assigned to the app:
        // https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
        return reply(400, { statusCode: 400, message: 'Unable to load the proper Managed Identity.' });
      }
      if (uami) {
        oid = uami;
        appid = requestedClient;
      }
    }
    const { token, expiresOn } = fakeAccessToken({
      aud: resource,
      tenantId,
      oid,
      appid,
      lifetimeSeconds: opts.lifetimeSeconds,
    });
    return reply(200, {
      access_token: token,
      expires_on: String(expiresOn),
      resource,
      token_type: 'Bearer',
      client_id: appid,
    });
  });
  let port = await listen(server, opts.port);
  const endpoint = `http://127.0.0.1:${port}/msi/token`;

  return {
    endpoint,
    header: secret,
    tenantId,
    principalId,
    clientId,
    requests,
    env: () => ({ IDENTITY_ENDPOINT: endpoint, IDENTITY_HEADER: secret }),
    async down(state) {
      failing = state === true ? 'plain' : state === 'echo' ? 'echo' : false;
      if (state === 'refuse' && server.listening) await closeServer(server);
      if (state !== 'refuse' && !server.listening) port = await listen(server, port);
    },
    stop: () => closeServer(server),
  };
}
