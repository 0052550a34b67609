/**
 * Azure Resource Manager access for PIM for Azure resources: GET lists followed through `nextLink`,
 * 429 and transient faults retried honouring `Retry-After`, a cap on requests in flight across
 * scopes, and errors surfaced with ARM's own code (`{"error":{"code","message"}}`, the ErrorResponse of
 * https://learn.microsoft.com/rest/api/authorization/role-eligibility-schedules/list-for-scope). On
 * throttling: https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling.
 *
 * Tokens come from the same credential as Graph's, for the ARM endpoint's own audience
 * (`{ARM_ENDPOINT}/.default`), so a national cloud gets its own.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { Agent, get as httpsGet } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { Log } from '../log';
import { RetryPolicy } from '../util/retry';

export interface ArmClientOptions {
  /** ARM root, e.g. https://management.azure.com (ARM_ENDPOINT). */
  endpoint: string;
  credential: TokenCredential;
  log: Log;
  /** Attempts after the first for 429/5xx and network faults. */
  maxRetries?: number;
  /** Requests in flight at once, across every scope being read. */
  maxConcurrent?: number;
  /** Wait before a retry without Retry-After; doubles each time. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Injectable wait (tests record it and return at once). */
  sleep?: (ms: number) => Promise<void>;
  /**
   * How long one attempt may go unanswered, its body included, before it is abandoned and retried
   * as a 503 would be (default DEFAULT_ARM_REQUEST_TIMEOUT_MS).
   */
  requestTimeoutMs?: number;
}

/**
 * 90 s. ARM gives a resource provider 60 s and then answers 504 itself
 * (https://github.com/Azure/azure-resource-manager-rpc/blob/master/v1.0/common-api-details.md,
 * "Client Request Timeout"), which is retried; no answer well after that means ARM itself is stuck.
 */
export const DEFAULT_ARM_REQUEST_TIMEOUT_MS = 90_000;

export interface ArmStats {
  requests: number;
  retries: number;
  throttled: number;
}

/** An ARM failure with ARM's code and the path asked. */
export class ArmRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'ArmRequestError';
  }
}

interface ArmPage<T> {
  value?: T[];
  nextLink?: string | null;
}

const RETRYABLE = new Set([429, 500, 502, 503, 504]);
/**
 * A token is used until this long before it expires (or until its `refreshAfterTimestamp`), then
 * asked for again: as @azure/core-rest-pipeline's bearerTokenAuthenticationPolicy does, whose token
 * cycler starts refreshing 2 minutes before expiry
 * (https://github.com/Azure/azure-sdk-for-js/blob/main/sdk/core/core-rest-pipeline/src/util/tokenCycler.ts).
 * Asking the credential for every request costs a cache lookup in MSAL each time.
 */
export const TOKEN_REFRESH_WINDOW_MS = 2 * 60_000;
/**
 * Requests in flight at once. ARM throttles reads per principal with a token bucket per
 * subscription and region, with 429 and Retry-After
 * (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling:
 * 250 reads, refilled at 25 a second, per subscription, and the same for tenant-level requests, which
 * those at management groups seem to be: they name no subscription), so reads spread across subscriptions can run side by side; a 429
 * is waited out, not raced. A run asks four lists of each subscription, far inside its bucket; the
 * tenant's bucket is the one a large tree of management groups (four lists each) can empty, at 16 in
 * flight as at 32. 32 read 500 subscriptions faster but raised the daily run's peak memory (likely
 * as the reading then overlaps the Entra snapshot's busiest part; docs/performance.md): 16 is kept.
 */
export const DEFAULT_MAX_CONCURRENT = 16;

export class ArmClient {
  readonly stats: ArmStats = { requests: 0, retries: 0, throttled: 0 };
  private readonly root: string;
  private readonly scope: string;
  private readonly retry: RetryPolicy;
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];
  /** The token in use, or the one being asked for (shared by the requests that wait for it). */
  private cachedToken?: Promise<AccessToken>;
  private refreshTokenAt = 0;
  /** Connections kept open between requests (never more than the requests in flight). */
  private readonly agent = new Agent({ keepAlive: true });

  constructor(private readonly options: ArmClientOptions) {
    this.root = options.endpoint.replace(/\/+$/, '');
    this.scope = `${new URL(this.root).origin}/.default`;
    const sleep = options.sleep;
    this.retry = new RetryPolicy(this.stats, {
      retryable: RETRYABLE,
      maxRetries: options.maxRetries ?? 5,
      baseDelayMs: options.baseDelayMs ?? 1000,
      maxDelayMs: options.maxDelayMs ?? 120_000,
      sleep: sleep && ((ms: number) => sleep(ms)),
    });
  }

  /** The tenant the identity signs in to (the token's `tid`): the tenant root group's id. */
  async tenantId(): Promise<string> {
    const token = await this.token();
    try {
      const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
        tid?: unknown;
      };
      if (typeof payload.tid === 'string' && payload.tid) return payload.tid.toLowerCase();
    } catch {
      // fall through
    }
    throw new ArmRequestError(
      'the ARM token names no tenant (tid); the tenant root management group cannot be found',
      0,
      'NoTenant',
      '',
    );
  }

  /** Every page of a list, following `nextLink` (only ever to the same host). */
  async *pages<T>(path: string, query: Record<string, string>): AsyncGenerator<T[]> {
    const first = new URL(`${this.root}${path}`);
    for (const [k, v] of Object.entries(query)) first.searchParams.set(k, v);
    let url: string | undefined = first.toString();
    while (url) {
      const next = new URL(url);
      if (next.origin !== first.origin)
        throw new ArmRequestError(`ARM gave a nextLink to another host (${next.host})`, 0, 'ForeignNextLink', path);
      const page: ArmPage<T> = await this.get<ArmPage<T>>(next.toString(), path);
      yield page.value ?? [];
      url = page.nextLink ?? undefined;
    }
  }

  /** The credential's token, asked for again only near its expiry; a failure is not kept. */
  private async token(): Promise<string> {
    if (!this.cachedToken || Date.now() >= this.refreshTokenAt) {
      this.refreshTokenAt = Infinity; // until the token is in: the requests meanwhile wait for it
      const asked = this.options.credential.getToken(this.scope).then((token) => {
        if (!token) throw new ArmRequestError(`no token for ${this.scope}`, 0, 'NoToken', '');
        // An expiry that cannot be read: asked for again next time, as before the cache.
        const expiry = Number.isFinite(token.expiresOnTimestamp)
          ? token.expiresOnTimestamp - TOKEN_REFRESH_WINDOW_MS
          : 0;
        this.refreshTokenAt = Math.min(expiry, token.refreshAfterTimestamp ?? Infinity);
        return token;
      });
      this.cachedToken = asked;
      asked.catch(() => {
        if (this.cachedToken === asked) {
          this.cachedToken = undefined;
          this.refreshTokenAt = 0;
        }
      });
    }
    return (await this.cachedToken).token;
  }

  private async slot(): Promise<() => void> {
    const max = this.options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
    while (this.inFlight >= max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.inFlight++;
    return () => {
      this.inFlight--;
      this.waiting.shift()?.();
    };
  }

  private async get<T>(url: string, path: string): Promise<T> {
    const timeoutMs = this.options.requestTimeoutMs ?? DEFAULT_ARM_REQUEST_TIMEOUT_MS;
    const seconds = `${+(timeoutMs / 1000).toFixed(1)} s`;
    for (let attempt = 0; ; attempt++) {
      let delay: number | undefined;
      let failure: string;
      const release = await this.slot();
      let deadline: AbortSignal | undefined;
      try {
        const token = await this.token();
        this.stats.requests++;
        // A fresh deadline per attempt, for the answer and its body alike.
        deadline = AbortSignal.timeout(timeoutMs);
        const response = await armGet(
          url,
          { authorization: `Bearer ${token}`, accept: 'application/json' },
          this.agent,
          deadline,
        );
        const text = response.text;
        if (response.ok) return JSON.parse(text) as T;
        let code = `HTTP${response.status}`;
        let message = text.slice(0, 300);
        try {
          const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
          code = body.error?.code ?? code;
          message = body.error?.message ?? message;
        } catch {
          // not JSON: keep the status
        }
        delay = this.retry.delay(attempt, response.status, header(response.headers, 'retry-after'));
        if (delay === undefined) {
          throw new ArmRequestError(
            `ARM answered ${response.status} ${code} for ${path}: ${message}`,
            response.status,
            code,
            path,
          );
        }
        failure = `${response.status} ${code}`;
      } catch (error) {
        if (error instanceof ArmRequestError) throw error;
        const timedOut = deadline?.aborted === true;
        delay = this.retry.delay(attempt, 'network');
        if (delay === undefined)
          throw timedOut
            ? new ArmRequestError(
                `ARM did not answer GET ${path} within ${seconds} (${attempt + 1} attempts)`,
                0,
                'ArmTimeout',
                path,
              )
            : new ArmRequestError(
                `ARM could not be reached for ${path}: ${(error as Error).message}`,
                0,
                'NetworkError',
                path,
              );
        failure = timedOut ? `gave no answer within ${seconds}` : (error as Error).message;
      } finally {
        release();
      }
      this.options.log.warn(
        `ARM ${failure} on ${path}; retrying in ${(delay / 1000).toFixed(1)} s (retry ${attempt + 1} of ${this.retry.maxRetries})`,
      );
      await this.retry.sleep(delay, path);
    }
  }
}

interface ArmResponse {
  status: number;
  ok: boolean;
  headers: IncomingHttpHeaders;
  /** The whole body, UTF-8. */
  text: string;
}

function header(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

/**
 * One GET with its body read whole, over node:https rather than fetch: for the small pages ARM
 * answers (about 2,100 of them for 500 subscriptions) Node's fetch cost more than twice the CPU of
 * node:https and about 45 MB more memory for the same requests (docs/performance.md, "With PIM for
 * Azure resources, after this round"). No Accept-Encoding is sent, so the body comes as it is. The
 * signal ends the request whether it aborts before the answer or while its body is read.
 */
function armGet(
  url: string,
  headers: Record<string, string>,
  agent: Agent,
  signal?: AbortSignal,
): Promise<ArmResponse> {
  return new Promise((resolve, reject) => {
    const request = httpsGet(url, { agent, headers, signal }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const status = response.statusCode ?? 0;
        resolve({
          status,
          ok: status >= 200 && status < 300,
          headers: response.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        });
      });
      // A connection lost before the end: an error, never a short body taken for a whole one.
      response.on('close', () => {
        if (!response.complete) reject(new Error('the connection closed before the answer was complete'));
      });
    });
    request.on('error', reject);
  });
}
