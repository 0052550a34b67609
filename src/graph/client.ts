/**
 * Microsoft Graph access: one client per run, pages followed to the end as an async iteration,
 * throttling and transient faults retried with a bound, errors surfaced with Graph's code.
 *
 * Built on @microsoft/microsoft-graph-client with our own middleware chain, because the SDK's
 * RetryHandler neither retries a connection reset nor a body cut off mid-page, and gives no count
 * of requests (which the manifest and the benchmark report).
 */
import { Client, AuthenticationHandler, HTTPMessageHandler, GraphError } from '@microsoft/microsoft-graph-client';
import type { Context, Middleware } from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials';
import type { TokenCredential } from '@azure/identity';
import type { Log } from '../log';

export interface GraphClientOptions {
  /** Graph root, e.g. https://graph.microsoft.com (GRAPH_ENDPOINT). */
  endpoint: string;
  credential: TokenCredential;
  log: Log;
  /** Attempts after the first for 429/503/504 and network faults. */
  maxRetries?: number;
  /** Longest single wait, whatever Retry-After asks (Graph's own SDKs cap at 180 s). */
  maxDelayMs?: number;
  /** Wait before the first retry when the response gives no Retry-After; doubles each time. */
  baseDelayMs?: number;
}

export interface GraphStats {
  /** HTTP requests sent, retries included. */
  requests: number;
  retries: number;
  throttled: number;
  /** Requests by endpoint, ids collapsed: `/groups/{id}/transitiveMembers`. */
  byEndpoint: Record<string, number>;
}

/** A Graph failure with Graph's own code, and a message a person can act on. */
export class GraphRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'GraphRequestError';
  }
}

export interface ListQuery {
  /** The caller's name for the list, handed back with each of its pages. */
  key: string;
  path: string;
  query?: Record<string, string | number | undefined>;
}

interface BatchItem {
  key: string;
  /** Relative to the version root, as `$batch` wants it. */
  url: string;
  attempts: number;
  /** Set on a list's first page only (follow-up links carry no query of ours). */
  list?: ListQuery;
}

interface BatchResponse {
  id: string;
  status: number;
  headers?: Record<string, string>;
  body?: { value?: unknown[]; '@odata.nextLink'?: string; error?: { code?: string; message?: string } };
}

/** Graph's JSON batching takes at most 20 requests (graph-pim.md section 6). */
export const BATCH_LIMIT = 20;

const RETRYABLE_STATUS = new Set([429, 503, 504]);
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);

interface Page<T> {
  value?: T[];
  '@odata.nextLink'?: string;
}

/** Why one list of a `$batch` could not be read: its status and Graph's own code and message. */
export interface UnreadableList {
  key: string;
  status: number;
  code: string;
  message: string;
}

/**
 * Lists whose answer means "this one list cannot be read" rather than "the run cannot go on": 403
 * (a group with hidden membership needs Member.Read.Hidden:
 * https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers), 404 (deleted since it
 * was listed) and 400 "Resource not found for the segment" (a national cloud without that API).
 */
export function isUnreadableList(status: number, message: string): boolean {
  return status === 403 || status === 404 || (status === 400 && /Resource not found for the segment/i.test(message));
}

/**
 * A 400 that names `$top` or the page size: Graph does not document `$top` on the PIM lists
 * (https://learn.microsoft.com/en-us/graph/api/rbacapplication-list-roleeligibilityschedules), so
 * an endpoint may refuse it; the list is asked again without it.
 */
export function refusesPageSize(status: number, message: string): boolean {
  return status === 400 && /\$top|\btop\b|page ?size/i.test(message);
}

export class GraphClient {
  readonly stats: GraphStats = { requests: 0, retries: 0, throttled: 0, byEndpoint: {} };
  /** Endpoints (ids collapsed) that refused `$top` in this run: asked without it from then on. */
  private readonly noTop = new Set<string>();
  private readonly client: Client;
  private readonly root: string;

  constructor(private readonly options: GraphClientOptions) {
    this.root = `${options.endpoint.replace(/\/+$/, '')}/v1.0`;
    const authProvider = new TokenCredentialAuthenticationProvider(options.credential, {
      scopes: [`${new URL(options.endpoint).origin}/.default`],
    });
    const chain: Middleware[] = [
      new AuthenticationHandler(authProvider),
      new RetryAndCount(this.stats, options),
      new HTTPMessageHandler(),
    ];
    chain.reduce((previous, next) => {
      previous.setNext?.(next);
      return next;
    });
    this.client = Client.initWithMiddleware({
      middleware: chain,
      baseUrl: options.endpoint,
      defaultVersion: 'v1.0',
      // The SDK attaches the token only to hosts it knows; a national cloud or a local simulator
      // must be named here, without scheme or port (azure-functions.md section 5c).
      customHosts: new Set([new URL(options.endpoint).hostname]),
    });
  }

  /** An absolute URL for a Graph path with an OData query, values percent-encoded. */
  url(path: string, query: Record<string, string | number | undefined> = {}): string {
    const withoutTop = this.noTop.has(endpointKey(this.root + path));
    const parts = Object.entries(query)
      .filter(([k, v]) => v !== undefined && v !== '' && !(withoutTop && k === '$top'))
      .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`);
    return `${this.root}${path}${parts.length ? `?${parts.join('&')}` : ''}`;
  }


  async post<T>(path: string, body: unknown): Promise<T> {
    return this.call(path, () => this.client.api(this.url(path)).post(body));
  }

  /**
   * Every page of a list, following `@odata.nextLink` unchanged until it is absent (a page may be
   * empty; graph-pim.md section 6).
   */
  async *pages<T>(path: string, query?: Record<string, string | number | undefined>): AsyncGenerator<T[]> {
    const fetchPage = (link: string): Promise<Page<T>> => {
      const page = this.call<Page<T>>(path, () => this.client.api(link).get());
      // Surfaced when awaited below; a consumer that stops early must not leave an unhandled rejection.
      page.catch(() => undefined);
      return page;
    };
    let pending: Promise<Page<T>> | undefined = fetchPage(this.url(path, query));
    let first = true;
    while (pending) {
      let page: Page<T>;
      try {
        page = await pending;
      } catch (error) {
        // Only the first page carries our `$top`; a refusal of it is retried once without it.
        if (!first || query?.$top === undefined || !this.refusedTop(path, error)) throw error;
        page = await fetchPage(this.url(path, query));
      }
      first = false;
      const next = page['@odata.nextLink'];
      // Read ahead: the next page is asked for before this one is handed over, so the caller's work
      // overlaps the round trip. Still one request at a time per list (the audit log's limit).
      pending = next ? fetchPage(next) : undefined;
      yield page.value ?? [];
    }
  }

  async *list<T>(path: string, query?: Record<string, string | number | undefined>): AsyncGenerator<T> {
    for await (const page of this.pages<T>(path, query)) yield* page;
  }

  /**
   * Every page of many lists, up to 20 at a time in one `$batch` request: expanding 3,000 groups
   * costs 150 requests instead of 3,000, and `concurrency` batches are in flight at once. Each
   * sub-request is throttled on its own (a batch answers 200 while an item answers 429), so items
   * are retried after their Retry-After; follow-up pages go back into the queue as relative URLs.
   * `onPage` sees each list's pages in order (a list's next page is asked for only once its page
   * has been handled); `onMissing` hears of lists that answer 404.
   */
  async batchPages<T>(
    lists: ListQuery[],
    onPage: (key: string, items: T[]) => Promise<void> | void,
    onUnreadable: (list: UnreadableList) => void = () => undefined,
    options: { concurrency?: number } = {},
  ): Promise<void> {
    const queue: BatchItem[] = lists.map((l) => ({ key: l.key, url: this.relative(this.url(l.path, l.query)), attempts: 0, list: l }));
    const concurrency = Math.max(1, options.concurrency ?? 1);
    const inFlight = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    while (!failure && (queue.length > 0 || inFlight.size > 0)) {
      while (!failure && queue.length > 0 && inFlight.size < concurrency) {
        const round = queue.splice(0, BATCH_LIMIT);
        const batch: Promise<void> = this.batchRound<T>(round, queue, onPage, onUnreadable).then(
          () => void inFlight.delete(batch),
          (error: unknown) => {
            inFlight.delete(batch);
            failure ??= { error };
          },
        );
        inFlight.add(batch);
      }
      if (inFlight.size > 0) await Promise.race(inFlight);
    }
    // Let batches already sent finish (no onPage after we return), then report the first failure.
    await Promise.all(inFlight);
    if (failure) throw failure.error;
  }

  /** One `$batch` of up to 20 items; pages handled, follow-ups and throttled items put back in `queue`. */
  private async batchRound<T>(
    round: BatchItem[],
    queue: BatchItem[],
    onPage: (key: string, items: T[]) => Promise<void> | void,
    onUnreadable: (list: UnreadableList) => void,
  ): Promise<void> {
    const answer = await this.post<{ responses?: BatchResponse[] }>('/$batch', {
      requests: round.map((item, i) => ({ id: String(i), method: 'GET', url: item.url })),
    });
    const byId = new Map((answer.responses ?? []).map((r) => [r.id, r]));
    let wait = 0;
    const retry: BatchItem[] = [];
    for (const [i, item] of round.entries()) {
      const response = byId.get(String(i));
      const status = response?.status ?? 0;
      if (status === 200) {
        await onPage(item.key, (response!.body?.value ?? []) as T[]);
        const next = response!.body?.['@odata.nextLink'];
        if (next) queue.push({ key: item.key, url: this.relative(next), attempts: 0 });
      } else if (item.list && status === 400 && refusesPageSize(status, response?.body?.error?.message ?? '') && item.list.query?.$top !== undefined) {
        // The first page of a list asked with `$top`: ask again without it, and never again this run.
        this.noTop.add(endpointKey(this.root + item.list.path));
        this.options.log.warn(`Graph refused $top on ${endpointKey(this.root + item.list.path)}; asking without it for the rest of the run`);
        queue.push({ key: item.key, url: this.relative(this.url(item.list.path, item.list.query)), attempts: 0 });
      } else if (isUnreadableList(status, response?.body?.error?.message ?? '')) {
        const error = response?.body?.error;
        onUnreadable({ key: item.key, status, code: error?.code ?? 'Unknown', message: error?.message ?? '' });
      } else if ((RETRYABLE_STATUS.has(status) || status === 0) && item.attempts < (this.options.maxRetries ?? 6)) {
        if (status === 429) this.stats.throttled++;
        this.stats.retries++;
        const retryAfter = retryAfterMs(headerOf(response?.headers, 'retry-after') ?? null);
        wait = Math.max(wait, Math.min(retryAfter ?? (this.options.baseDelayMs ?? 1000) * 2 ** item.attempts, this.options.maxDelayMs ?? 180_000));
        retry.push({ ...item, attempts: item.attempts + 1 });
      } else {
        const error = response?.body?.error;
        throw new GraphRequestError(
          `Graph ${status} ${error?.code ?? 'Unknown'} on ${endpointKey(this.root + item.url)} (in a batch): ${error?.message ?? 'no answer for this item'}`,
          status,
          error?.code ?? 'Unknown',
          item.url,
        );
      }
    }
    if (retry.length > 0) {
      // Throttled items wait here, never earlier than Graph asked; the rest of the queue goes on.
      if (wait > 0) {
        this.options.log.warn(`Graph throttled items of a batch; retrying them in ${(wait / 1000).toFixed(1)} s`);
        await sleep(wait);
      }
      queue.push(...retry);
    }
  }

  /** A URL on this Graph as `$batch` wants it: relative to the version root. */
  private relative(url: string): string {
    return url.startsWith(this.root) ? url.slice(this.root.length) : new URL(url).pathname.replace(/^\/v1\.0/, '') + new URL(url).search;
  }

  /** True (and remembered) when `error` is Graph refusing `$top` on `path`. */
  private refusedTop(path: string, error: unknown): boolean {
    if (!(error instanceof GraphRequestError) || !refusesPageSize(error.status, error.message)) return false;
    const key = endpointKey(this.root + path);
    this.noTop.add(key);
    this.options.log.warn(`Graph refused $top on ${key}; asking without it for the rest of the run`);
    return true;
  }

  private async call<T>(path: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw toGraphRequestError(error, path);
    }
  }
}

/** Graph's errors, rewritten where Graph's own words would leave an admin guessing. */
export function toGraphRequestError(error: unknown, path: string): Error {
  if (error instanceof GraphRequestError) return error;
  // The SDK wraps a credential's failure in a GraphError with status -1 and the error's name as code.
  if (error instanceof GraphError && CREDENTIAL_ERRORS.has(error.code ?? '')) return credentialFailure(error.code!, error.message, path);
  if (error instanceof GraphError) {
    const code = error.code ?? 'Unknown';
    const status = error.statusCode;
    let message = `Graph ${status || 'error'} ${code} on ${path}: ${error.message}`;
    if (code === 'AadPremiumLicenseRequired') {
      message = `this tenant needs Entra ID P2 or ID Governance for PIM (Graph ${status} ${code} on ${path})`;
    } else if (status === 401) {
      message = `Graph refused the token (401 ${code}) on ${path}: check the identity and GRAPH_ENDPOINT. ${error.message}`;
    } else if (status === 403) {
      message = `Graph denied access (403 ${code}) on ${path}: the identity lacks a Graph application permission (see the README). ${error.message}`;
    }
    return new GraphRequestError(message, status, code, path);
  }
  if (error instanceof Error && CREDENTIAL_ERRORS.has(error.name)) return credentialFailure(error.name, error.message, path);
  return error instanceof Error ? error : new Error(String(error));
}

const CREDENTIAL_ERRORS = new Set(['CredentialUnavailableError', 'AuthenticationError', 'AggregateAuthenticationError']);

/** No token: say which source of tokens failed, so an admin knows where to look. */
function credentialFailure(name: string, message: string, path: string): GraphRequestError {
  const source = /ManagedIdentityCredential/.test(message)
    ? 'from the managed identity (IDENTITY_ENDPOINT, and MANAGED_IDENTITY_CLIENT_ID for a user-assigned one)'
    : 'from the Azure CLI or Azure Developer CLI sign-in (az login, azd auth login)';
  return new GraphRequestError(`could not get a token for Graph ${source}: ${message}`, 0, name, path);
}

/** `/groups/0b1c.../transitiveMembers` -> `/groups/{id}/transitiveMembers`, for counting. */
export function endpointKey(url: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    path = url.split('?')[0];
  }
  return path
    .replace(/^\/v1\.0/, '')
    .split('/')
    .map((segment) => (/[0-9a-f]{8}-[0-9a-f]{4}-/i.test(segment) ? '{id}' : segment))
    .join('/');
}

function headerOf(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Retry-After is seconds or an HTTP date (RFC 9110); undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+(\.\d+)?$/.test(header.trim())) return Math.ceil(Number(header) * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Retries 429/503/504 honouring Retry-After (graph-pim.md section 6: throttled calls still count,
 * so never retry early) and network faults, including a body cut off mid-page: the body is read
 * here so that a reset is retried like any other transient fault. Counts every attempt.
 */
class RetryAndCount implements Middleware {
  private next?: Middleware;
  private readonly maxRetries: number;
  private readonly maxDelayMs: number;
  private readonly baseDelayMs: number;

  constructor(
    private readonly stats: GraphStats,
    private readonly options: GraphClientOptions,
  ) {
    this.maxRetries = options.maxRetries ?? 6;
    this.maxDelayMs = options.maxDelayMs ?? 180_000;
    this.baseDelayMs = options.baseDelayMs ?? 1_000;
  }

  setNext(next: Middleware): void {
    this.next = next;
  }

  async execute(context: Context): Promise<void> {
    const url = typeof context.request === 'string' ? context.request : context.request.url;
    const key = endpointKey(url);
    for (let attempt = 0; ; attempt++) {
      this.stats.requests++;
      this.stats.byEndpoint[key] = (this.stats.byEndpoint[key] ?? 0) + 1;
      let failure: string;
      let wait: number | undefined;
      try {
        await this.next!.execute(context);
        const response = context.response!;
        // Read the body here: a connection reset mid-page surfaces now and is retried below.
        const body = await response.arrayBuffer();
        if (!RETRYABLE_STATUS.has(response.status) || attempt >= this.maxRetries) {
          context.response = new Response(NULL_BODY_STATUS.has(response.status) ? null : body, {
            status: response.status,
            statusText: response.statusText,
            headers: response.headers,
          });
          return;
        }
        if (response.status === 429) this.stats.throttled++;
        wait = retryAfterMs(response.headers.get('retry-after'));
        failure = `${response.status}`;
      } catch (error) {
        if (attempt >= this.maxRetries || !isTransientNetworkError(error)) throw error;
        failure = (error as Error).message || 'network error';
      }
      const delay = Math.min(wait ?? this.baseDelayMs * 2 ** attempt, this.maxDelayMs);
      this.stats.retries++;
      this.options.log.warn(
        `Graph ${failure} on ${key}; retrying in ${(delay / 1000).toFixed(1)} s (retry ${attempt + 1} of ${this.maxRetries})`,
      );
      await sleep(delay);
    }
  }
}

function isTransientNetworkError(error: unknown): boolean {
  // Duck-typed, not `instanceof Error`: fetch's errors may come from another realm (a test VM, a worker).
  if (typeof error !== 'object' || error === null || typeof (error as Error).message !== 'string') return false;
  const text = `${(error as Error).name} ${(error as Error).message} ${(error as { code?: string }).code ?? ''} ${
    (error as { cause?: { code?: string; message?: string } }).cause?.code ?? ''
  } ${(error as { cause?: { message?: string } }).cause?.message ?? ''}`;
  return /ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|socket hang up|terminated|other side closed|UND_ERR|fetch failed|network/i.test(text);
}
