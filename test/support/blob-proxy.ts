/**
 * A fault-injecting HTTP proxy in front of Azurite's blob service (docs/faults.md). Point
 * REPORTS_STORAGE_CONNECTION_STRING at `proxy.connectionString` and every request goes through it;
 * each write (PUT or DELETE) is numbered from 1, and `onWrite` decides what happens to it:
 *
 *   'pass'                     forward to Azurite
 *   { status: 500 | 403 | … }  answer with a Storage-style XML error, Azurite never sees it
 *   'reset'                    drop the connection before answering
 *   'hold'                     never answer (the test kills the process that sent it)
 *   { until: promise }         forward to Azurite once `promise` settles (orders a run's requests)
 *
 * Reads (GET, HEAD) are recorded apart, in `reads`, so they do not shift the writes' numbers;
 * `onRead` may hold one back the same way ({ until: promise }). Each request's `answered` is set once
 * its answer has gone out (or its connection closed): what was still in flight when a run returned.
 * `down('refuse')` stops listening (connection refused), `down(false)` listens again on the same port.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export type WriteAction = 'pass' | 'reset' | 'hold' | { status: number; code?: string } | { until: Promise<unknown> };
export type ReadAction = 'pass' | { until: Promise<unknown> };

export interface BlobWrite {
  /** 1 for the first write through this proxy. */
  n: number;
  method: string;
  /** Path and query, e.g. /devstoreaccount1/reports-1/daily/2026/11/24/manifest.json */
  url: string;
  /** The blob name (path after the container), decoded; '' for container operations. */
  blob: string;
  /** The container ('' for the account's own operations). */
  container: string;
  action: WriteAction;
  /** False until the answer has gone out (or the connection closed). */
  answered?: boolean;
}

export interface BlobRead {
  method: string;
  url: string;
  /** The blob name, decoded; '' for container operations (a listing: its `prefix` is in `url`). */
  blob: string;
  container: string;
  action: ReadAction;
  answered?: boolean;
}

export interface BlobProxy {
  /** A connection string like Azurite's, with BlobEndpoint pointing at the proxy. */
  readonly connectionString: string;
  readonly writes: BlobWrite[];
  readonly reads: BlobRead[];
  /** Decides each write's fate (default: pass). */
  onWrite: (write: Omit<BlobWrite, 'action'>) => WriteAction;
  /** Decides each read's (default: pass). */
  onRead: (read: Omit<BlobRead, 'action' | 'answered'>) => ReadAction;
  /** Fails writes from the `n`th on (counted from now) with `action`, until `clear()`. */
  failFrom(n: number, action: WriteAction): void;
  /** Fails only the `n`th write from now. */
  failOnce(n: number, action: WriteAction): void;
  clear(): void;
  down(state: false | 'refuse'): Promise<void>;
  stop(): Promise<void>;
}

const ERROR_MESSAGES: Record<number, [string, string]> = {
  500: ['InternalError', 'The server encountered an internal error. Please retry the request.'],
  503: ['ServerBusy', 'The server is currently unable to receive requests. Please retry your request.'],
  403: ['AuthorizationFailure', 'This request is not authorized to perform this operation.'],
};

export async function startBlobProxy(
  upstreamConnectionString = process.env.PIM_TEST_AZURITE_CONNECTION_STRING,
): Promise<BlobProxy> {
  if (!upstreamConnectionString) throw new Error('Azurite is not running: run the tests with npm test');
  const endpoint = /BlobEndpoint=([^;]+)/.exec(upstreamConnectionString)?.[1];
  if (!endpoint) throw new Error('the Azurite connection string has no BlobEndpoint');
  const upstream = new URL(endpoint);
  const account = upstream.pathname.replace(/^\/+|\/+$/g, '');
  const writes: BlobWrite[] = [];
  const reads: BlobRead[] = [];
  const held = new Set<http.ServerResponse>();
  const sockets = new Set<import('node:net').Socket>();

  const server = http.createServer((req, res) => {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = req.url ?? '/';
    let action: WriteAction | ReadAction = 'pass';
    const path = decodeURIComponent(url.split('?')[0]);
    const segments = path.split('/').filter(Boolean); // account, container, blob...
    const where = { method, url, blob: segments.slice(2).join('/'), container: segments[1] ?? '' };
    let record: BlobWrite | BlobRead | undefined;
    if (method === 'PUT' || method === 'DELETE') {
      const write = { n: writes.length + 1, ...where };
      action = proxy.onWrite(write);
      writes.push((record = { ...write, action, answered: false }));
    } else if (method === 'GET' || method === 'HEAD') {
      action = proxy.onRead(where);
      reads.push((record = { ...where, action, answered: false }));
    }
    if (record) {
      const seen = record;
      res.once('close', () => (seen.answered = true));
    }
    if (action === 'reset') {
      req.socket.destroy();
      return;
    }
    if (action === 'hold') {
      held.add(res);
      req.resume();
      return;
    }
    if (typeof action === 'object' && 'until' in action) {
      // Forwarded once the promise settles; the body waits in the request meanwhile.
      req.pause();
      const forwardLater = () => forward(req, res, method, url);
      action.until.then(forwardLater, forwardLater);
      return;
    }
    if (typeof action === 'object') {
      const [code, message] = ERROR_MESSAGES[action.status] ?? ['InternalError', 'Injected fault.'];
      req.resume();
      req.on('end', () => {
        res.writeHead(action.status as number, {
          'content-type': 'application/xml',
          'x-ms-error-code': action.code ?? code,
          'x-ms-request-id': `proxy-${Date.now()}`,
        });
        res.end(
          `<?xml version="1.0" encoding="utf-8"?><Error><Code>${action.code ?? code}</Code><Message>${message}</Message></Error>`,
        );
      });
      return;
    }
    forward(req, res, method, url);
  });
  const forward = (req: http.IncomingMessage, res: http.ServerResponse, method: string, url: string) => {
    const upstreamRequest = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method,
        path: url,
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstreamRequest.on('error', () => res.destroy());
    req.pipe(upstreamRequest);
  };
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 1000;

  const listen = (port = 0) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const close = () =>
    new Promise<void>((resolve) => {
      for (const res of held) res.destroy();
      held.clear();
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  const port = await listen();
  const proxyEndpoint = `http://127.0.0.1:${port}/${account}`;

  const proxy: BlobProxy = {
    connectionString: upstreamConnectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=${proxyEndpoint}`),
    writes,
    reads,
    onWrite: () => 'pass',
    onRead: () => 'pass',
    failFrom(n, action) {
      const from = writes.length + n;
      proxy.onWrite = (w) => (w.n >= from ? action : 'pass');
    },
    failOnce(n, action) {
      const at = writes.length + n;
      proxy.onWrite = (w) => (w.n === at ? action : 'pass');
    },
    clear() {
      proxy.onWrite = () => 'pass';
      proxy.onRead = () => 'pass';
      for (const res of held) res.destroy();
      held.clear();
    },
    async down(state) {
      if (state === 'refuse' && server.listening) await close();
      if (state === false && !server.listening) await listen(port);
    },
    async stop() {
      if (server.listening) await close();
    },
  };
  return proxy;
}
