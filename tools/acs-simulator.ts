/**
 * Azure Communication Services Email over HTTPS, as @azure/communication-email 1.1 uses it
 * (https://learn.microsoft.com/rest/api/communication/dataplane/email/send): POST /emails:send -> 202 + operation-location, then GET /emails/operations/{id}
 * until Succeeded/Failed. As real ACS does, every accepted send (the 202) is delivered, whether or not
 * the client ever polls it; a client may choose the operation id (the Operation-Id header,
 * https://learn.microsoft.com/rest/api/communication/dataplane/email/send) and read its status later
 * (https://learn.microsoft.com/rest/api/communication/dataplane/email/get-send-result), 404 for an
 * id ACS never accepted. Both auth modes are checked for real: Entra bearer tokens by audience, access-key
 * HMAC by recomputing the signature (the same string-to-sign as @azure/communication-common's
 * createCommunicationAccessKeyCredentialPolicy).
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import * as https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { bearerToken, closeServer, decodeJwt, isRecord, listen, readBody } from './http-util';

export interface EmailAddress {
  address: string;
  displayName?: string;
}

export interface SentEmail {
  senderAddress: string;
  content: { subject: string; plainText?: string; html?: string };
  recipients: { to: EmailAddress[]; cc?: EmailAddress[]; bcc?: EmailAddress[] };
  attachments?: { name: string; contentType: string; contentInBase64: string }[];
  replyTo?: EmailAddress[];
  headers?: Record<string, string>;
  userEngagementTrackingDisabled?: boolean;
  operationId: string;
  /** epoch ms when ACS accepted the send (the 202): from then on it is delivered */
  at: number;
  authMode: 'hmac' | 'bearer';
}

export type EmailFault =
  | {
      on: 'send';
      status: 400 | 401 | 403 | 429 | 500 | 503;
      times: number;
      error?: { code: string; message: string };
      retryAfterSeconds?: number;
    }
  | { on: 'operation'; status: 'Failed'; error: { code: string; message: string }; times: number }
  /** Holds each status GET this long before answering (a slow ACS; a client may die meanwhile). */
  | { on: 'poll'; delayMs: number; times: number };

export interface EmailRequestRecord {
  method: string;
  path: string;
  status: number;
  at: number;
  authMode: 'hmac' | 'bearer' | 'none';
}

export interface EmailSimulator {
  /** https://127.0.0.1:<port> */
  readonly endpoint: string;
  /** endpoint=https://127.0.0.1:<port>/;accesskey=<base64> */
  readonly connectionString: string;
  readonly accessKey: string;
  /** Messages ACS accepted and delivers (every 202 whose operation does not end Failed), in order. */
  readonly sent: SentEmail[];
  readonly requests: EmailRequestRecord[];
  inject(fault: EmailFault): void;
  clearFaults(): void;
  stop(): Promise<void>;
}

/** Versions of the Email data-plane API the simulator accepts (1.1.0 defaults to 2025-09-01). */
const API_VERSIONS = new Set(['2023-03-31', '2024-07-01', '2025-09-01']);
/** Azure rejects HMAC requests whose x-ms-date is too far from its clock. */
const MAX_CLOCK_SKEW_MS = 15 * 60_000;
/** ACS Email: at most 50 recipients over to, cc and bcc. */
const MAX_RECIPIENTS = 50;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ADDRESS = /^[^\s@<>(),;:"[\]]+@[^\s@<>(),;:"[\]]+\.[^\s@<>(),;:"[\]]+$/;

interface Operation {
  id: string;
  message: Omit<SentEmail, 'operationId' | 'at'>;
  polls: number;
  failure?: { code: string; message: string };
  done: boolean;
}

class AcsError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly target?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export async function startEmailSimulator(opts: {
  tls: { cert: string; key: string };
  accessKey?: string;
  port?: number;
}): Promise<EmailSimulator> {
  const accessKey = opts.accessKey ?? randomBytes(32).toString('base64');
  const keyBytes = Buffer.from(accessKey, 'base64');
  const sent: SentEmail[] = [];
  const requests: EmailRequestRecord[] = [];
  const faults: EmailFault[] = [];
  const operations = new Map<string, Operation>();
  let origin = '';

  const server = https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', origin);
      const raw = await readBody(req).catch(() => Buffer.alloc(0));
      let status = 500;
      let authMode: EmailRequestRecord['authMode'] = 'none';
      let headers: Record<string, string> = {};
      let body: unknown;
      try {
        authMode = authenticate(req, url, raw);
        if (/^\/emails\/operations\//.test(url.pathname)) {
          const hold = takeFault('poll');
          if (hold && hold.on === 'poll') await new Promise((resolve) => setTimeout(resolve, hold.delayMs));
        }
        ({ status, headers, body } = route(req.method ?? 'GET', url, raw, authMode, header(req, 'operation-id')));
      } catch (err) {
        const e = err instanceof AcsError ? err : new AcsError(500, 'InternalServerError', String(err));
        status = e.status;
        headers = e.headers;
        body = { error: { code: e.code, message: e.message, ...(e.target ? { target: e.target } : {}) } };
      }
      requests.push({ method: req.method ?? 'GET', path: url.pathname, status, at: Date.now(), authMode });
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'x-ms-request-id': randomUUID(),
        ...headers,
      });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    })();
  });
  const port = await listen(server, opts.port);
  origin = `https://127.0.0.1:${port}`;

  function authenticate(req: IncomingMessage, url: URL, raw: Buffer): 'hmac' | 'bearer' {
    const authorization = req.headers.authorization ?? '';
    if (/^Bearer\s/i.test(authorization)) {
      const jwt = decodeJwt(bearerToken(authorization));
      const aud = typeof jwt?.payload.aud === 'string' ? jwt.payload.aud : '';
      // The SDK asks for https://communication.azure.com//.default -> resource https://communication.azure.com/ (5b).
      if (!jwt || !aud.startsWith('https://communication.azure.com'))
        throw new AcsError(401, 'Unauthorized', 'The access token is invalid or has the wrong audience.');
      if (typeof jwt.payload.exp === 'number' && jwt.payload.exp * 1000 < Date.now())
        throw new AcsError(401, 'Unauthorized', 'The access token has expired.');
      return 'bearer';
    }
    const m = /^HMAC-SHA256\s+SignedHeaders=([^&]+)&Signature=(.+)$/i.exec(authorization);
    if (!m) throw new AcsError(401, 'Denied', 'Denied by the resource provider.');
    if (m[1] !== 'x-ms-date;host;x-ms-content-sha256')
      throw new AcsError(401, 'Denied', `Unsupported SignedHeaders '${m[1]}'.`);
    const date = header(req, 'x-ms-date');
    const contentHash = header(req, 'x-ms-content-sha256');
    const host = header(req, 'host');
    if (!date || !contentHash || !host)
      throw new AcsError(
        401,
        'Denied',
        'x-ms-date, host and x-ms-content-sha256 are required for HMAC authentication.',
      );
    const when = Date.parse(date);
    if (Number.isNaN(when) || Math.abs(Date.now() - when) > MAX_CLOCK_SKEW_MS)
      throw new AcsError(
        401,
        'Denied',
        'The x-ms-date header is missing, malformed or outside the allowed clock skew.',
      );
    const actualHash = createHash('sha256').update(raw).digest('base64');
    if (actualHash !== contentHash)
      throw new AcsError(401, 'Denied', 'The x-ms-content-sha256 header does not match the request body.');
    // The client signs url.pathname + '?' + URLSearchParams.toString() (re-encoded), so re-encode the same way.
    const query = url.searchParams.toString();
    const pathAndQuery = query ? `${url.pathname}?${query}` : url.pathname;
    const stringToSign = `${(req.method ?? 'GET').toUpperCase()}\n${pathAndQuery}\n${date};${host};${contentHash}`;
    const expected = createHmac('sha256', keyBytes).update(stringToSign).digest();
    const given = Buffer.from(m[2], 'base64');
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new AcsError(401, 'Denied', 'Denied by the resource provider: the HMAC signature does not match.');
    return 'hmac';
  }

  function route(
    method: string,
    url: URL,
    raw: Buffer,
    authMode: 'hmac' | 'bearer',
    operationId: string | undefined,
  ): { status: number; headers: Record<string, string>; body?: unknown } {
    const apiVersion = url.searchParams.get('api-version');
    if (!apiVersion)
      throw new AcsError(
        400,
        'MissingApiVersionParameter',
        'The api-version query parameter (?api-version=) is required for all requests.',
      );
    if (!API_VERSIONS.has(apiVersion))
      throw new AcsError(400, 'UnsupportedApiVersion', `The api-version '${apiVersion}' is not supported.`);

    if (url.pathname === '/emails:send') {
      if (method !== 'POST') throw new AcsError(405, 'MethodNotAllowed', `Method ${method} is not allowed.`);
      const fault = takeFault('send');
      if (fault && fault.on === 'send') {
        const e = fault.error ?? {
          code: fault.status === 403 ? 'Forbidden' : fault.status === 429 ? 'TooManyRequests' : 'ServiceUnavailable',
          message: `Injected ${fault.status}.`,
        };
        throw new AcsError(
          fault.status,
          e.code,
          e.message,
          undefined,
          fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {},
        );
      }
      if (operationId !== undefined && !GUID.test(operationId)) {
        throw new AcsError(
          400,
          'InvalidOperationId',
          `The Operation-Id header '${operationId}' is not a valid GUID.`,
          'Operation-Id',
        );
      }
      const message = validateMessage(raw);
      const opFault = takeFault('operation');
      // A repeated Operation-Id is not assumed to be de-duplicated: no document says ACS does, so
      // the simulator delivers it again (never kinder than the real service).
      const id = operationId ?? randomUUID();
      const operation: Operation = {
        id,
        message: { ...message, authMode },
        polls: 0,
        failure: opFault && opFault.on === 'operation' ? opFault.error : undefined,
        done: false,
      };
      operations.set(id, operation);
      if (!operation.failure) sent.push({ ...operation.message, operationId: id, at: Date.now() });
      return {
        status: 202,
        headers: { 'operation-location': `${origin}/emails/operations/${id}?api-version=${apiVersion}` },
        body: { id, status: 'Running' },
      };
    }
    const op = /^\/emails\/operations\/([^/]+)$/.exec(url.pathname);
    if (op) {
      if (method !== 'GET') throw new AcsError(405, 'MethodNotAllowed', `Method ${method} is not allowed.`);
      const operation = operations.get(op[1]);
      if (!operation) throw new AcsError(404, 'NotFound', `Operation '${op[1]}' was not found.`);
      operation.polls++;
      // Running on the first poll, then the final state.
      if (operation.polls < 2)
        return { status: 200, headers: { 'retry-after': '0' }, body: { id: operation.id, status: 'Running' } };
      if (operation.failure)
        return { status: 200, headers: {}, body: { id: operation.id, status: 'Failed', error: operation.failure } };
      operation.done = true;
      return { status: 200, headers: {}, body: { id: operation.id, status: 'Succeeded' } };
    }
    throw new AcsError(404, 'NotFound', `Resource '${url.pathname}' was not found.`);
  }

  function takeFault(on: EmailFault['on']): EmailFault | undefined {
    const i = faults.findIndex((f) => f.on === on);
    if (i < 0) return undefined;
    const f = faults[i];
    if (--f.times <= 0) faults.splice(i, 1);
    return f;
  }

  return {
    endpoint: origin,
    connectionString: `endpoint=${origin}/;accesskey=${accessKey}`,
    accessKey,
    sent,
    requests,
    inject(fault) {
      if (fault.times < 1) throw new Error('a fault needs times >= 1');
      faults.push({ ...fault });
    },
    clearFaults() {
      faults.length = 0;
    },
    stop: () => closeServer(server),
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Strict validation of the send body, with ACS-style 400s naming the offending field. */
function validateMessage(raw: Buffer): Omit<SentEmail, 'operationId' | 'at' | 'authMode'> {
  const invalid = (target: string, message: string) => new AcsError(400, 'BadRequest', message, target);
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new AcsError(400, 'BadRequest', 'The request body is not valid JSON.');
  }
  if (!isRecord(body)) throw new AcsError(400, 'BadRequest', 'The request body must be a JSON object.');
  const known = [
    'senderAddress',
    'content',
    'recipients',
    'attachments',
    'replyTo',
    'headers',
    'userEngagementTrackingDisabled',
  ];
  const extra = Object.keys(body).find((k) => !known.includes(k));
  if (extra) throw invalid(extra, `Unknown property '${extra}'.`);
  if (typeof body.senderAddress !== 'string' || !ADDRESS.test(body.senderAddress))
    throw invalid('senderAddress', 'senderAddress must be a valid email address.');
  const content = body.content;
  if (!isRecord(content)) throw invalid('content', 'content is required.');
  if (typeof content.subject !== 'string' || !content.subject.trim())
    throw invalid('content.subject', 'content.subject is required.');
  const hasText = typeof content.plainText === 'string' && content.plainText.length > 0;
  const hasHtml = typeof content.html === 'string' && content.html.length > 0;
  if (!hasText && !hasHtml) throw invalid('content', 'Either content.plainText or content.html is required.');
  for (const k of ['plainText', 'html'] as const) {
    if (content[k] !== undefined && typeof content[k] !== 'string')
      throw invalid(`content.${k}`, `content.${k} must be a string.`);
  }
  const recipients = body.recipients;
  if (!isRecord(recipients)) throw invalid('recipients', 'recipients is required.');
  const list = (name: string, value: unknown, required: boolean): EmailAddress[] | undefined => {
    if (value === undefined && !required) return undefined;
    if (!Array.isArray(value) || (required && value.length === 0))
      throw invalid(name, `${name} must be a non-empty array of recipients.`);
    return value.map((r, i) => {
      if (!isRecord(r) || typeof r.address !== 'string' || !ADDRESS.test(r.address))
        throw invalid(`${name}[${i}].address`, `${name}[${i}].address is not a valid email address.`);
      if (r.displayName !== undefined && typeof r.displayName !== 'string')
        throw invalid(`${name}[${i}].displayName`, 'displayName must be a string.');
      return r.displayName === undefined ? { address: r.address } : { address: r.address, displayName: r.displayName };
    });
  };
  const to = list('recipients.to', recipients.to, true) as EmailAddress[];
  const cc = list('recipients.cc', recipients.cc, false);
  const bcc = list('recipients.bcc', recipients.bcc, false);
  const total = to.length + (cc?.length ?? 0) + (bcc?.length ?? 0);
  if (total > MAX_RECIPIENTS)
    throw invalid('recipients', `At most ${MAX_RECIPIENTS} recipients are allowed; got ${total}.`);
  const replyTo = list('replyTo', body.replyTo, false);
  let attachments: SentEmail['attachments'];
  if (body.attachments !== undefined) {
    if (!Array.isArray(body.attachments)) throw invalid('attachments', 'attachments must be an array.');
    attachments = body.attachments.map((a, i) => {
      if (
        !isRecord(a) ||
        typeof a.name !== 'string' ||
        !a.name ||
        typeof a.contentType !== 'string' ||
        !a.contentType ||
        typeof a.contentInBase64 !== 'string'
      ) {
        throw invalid(`attachments[${i}]`, 'Each attachment needs name, contentType and contentInBase64.');
      }
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(a.contentInBase64) || a.contentInBase64.length % 4 !== 0) {
        throw invalid(`attachments[${i}].contentInBase64`, 'contentInBase64 is not valid base64.');
      }
      return { name: a.name, contentType: a.contentType, contentInBase64: a.contentInBase64 };
    });
  }
  if (
    body.headers !== undefined &&
    (!isRecord(body.headers) || Object.values(body.headers).some((v) => typeof v !== 'string'))
  ) {
    throw invalid('headers', 'headers must be an object of strings.');
  }
  if (body.userEngagementTrackingDisabled !== undefined && typeof body.userEngagementTrackingDisabled !== 'boolean') {
    throw invalid('userEngagementTrackingDisabled', 'userEngagementTrackingDisabled must be a boolean.');
  }
  return {
    senderAddress: body.senderAddress,
    content: {
      subject: content.subject,
      ...(hasText ? { plainText: content.plainText as string } : {}),
      ...(hasHtml ? { html: content.html as string } : {}),
    },
    recipients: { to, ...(cc ? { cc } : {}), ...(bcc ? { bcc } : {}) },
    ...(attachments ? { attachments } : {}),
    ...(replyTo ? { replyTo } : {}),
    ...(body.headers !== undefined ? { headers: body.headers as Record<string, string> } : {}),
    ...(body.userEngagementTrackingDisabled !== undefined
      ? { userEngagementTrackingDisabled: body.userEngagementTrackingDisabled as boolean }
      : {}),
  };
}
