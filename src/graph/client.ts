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
import { awaitedLater } from '../util/promises';
import { RetryPolicy } from '../util/retry';

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
  /**
   * How a retry waits `ms` before asking `endpoint` again (ids collapsed): the real timer by
   * default; tests pass one that records the wait and returns at once.
   */
  sleep?: (ms: number, endpoint: string) => Promise<void>;
  /**
   * How long one attempt may go unanswered, its body included, before it is abandoned and retried
   * as a 503 would be (default DEFAULT_GRAPH_REQUEST_TIMEOUT_MS).
   */
  requestTimeoutMs?: number;
}

/**
 * 100 s, the default of Graph's own SDKs (.NET's HttpClient default, which the Java and PHP SDKs
 * were aligned to: https://github.com/microsoftgraph/msgraph-sdk-java-core/pull/774,
 * https://github.com/microsoftgraph/msgraph-sdk-php/pull/366). Graph documents no server-side limit
 * of its own that we could find; a slow list answers 504 from Graph's gateway, which is retried.
 * With the retry budget, a Graph that never answers fails the run after about 12 minutes, inside
 * the Functions timeout of host.json.
 */
export const DEFAULT_GRAPH_REQUEST_TIMEOUT_MS = 100_000;

/** The code of a request that got no answer in time, after its retries (status 0). */
export const GRAPH_TIMEOUT_CODE = 'GraphTimeout';
/** The code of a request answered 2xx with a body that is not JSON, after its retries (status 0). */
export const GRAPH_NOT_JSON_CODE = 'GraphNotJson';

export interface GraphStats {
  /** HTTP requests sent, retries included. */
  requests: number;
  retries: number;
  throttled: number;
  /** Requests by endpoint, ids collapsed: `/groups/{id}/transitiveMembers`. */
  byEndpoint: Record<string, number>;
}

/**
 * Every failure of this client: `code` is Graph's own error code where Graph gave one
 * (`Authorization_RequestDenied`, `TooManyRequests`), or ours where it did not (`GraphThrottled`,
 * `GraphUnavailable`, `GraphTimeout`, `CredentialUnavailable`); `status` is the HTTP status, 0 when
 * no answer came.
 * One base class with a `code` to branch on, subclasses only where a caller acts differently, as
 * the Azure SDK guidelines ask: https://azure.github.io/azure-sdk/typescript_design.html
 */
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

/** Still throttled (429) once the retries are spent. */
export class GraphThrottledError extends GraphRequestError {
  constructor(message: string, code: string, path: string) {
    super(message, 429, code || 'GraphThrottled', path);
    this.name = 'GraphThrottledError';
  }
}

/** Still unavailable (502, 503, 504, a network fault, no answer in time, an answer that is not JSON) once the retries are spent. */
export class GraphUnavailableError extends GraphRequestError {
  constructor(message: string, status: number, code: string, path: string) {
    super(message, status, code || 'GraphUnavailable', path);
    this.name = 'GraphUnavailableError';
  }
}

/** No token for Graph: the identity (or the developer's sign-in) could not give one. Status 0. */
export class GraphCredentialError extends GraphRequestError {
  constructor(
    message: string,
    path: string,
    /** The credential's own error name (`CredentialUnavailableError`, `AuthenticationError`). */
    readonly credentialError: string,
  ) {
    super(message, 0, 'CredentialUnavailable', path);
    this.name = 'GraphCredentialError';
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

/** One page of one list of `batchPages`, or why that list cannot be read. */
export type BatchPage<T> =
  { key: string; items: T[]; unreadable?: undefined } | { key: string; unreadable: UnreadableList; items?: undefined };

interface BatchRound<T> {
  /** In the order of the batch, each with the list's next page to ask for once it is taken. */
  pages: Array<{ page: BatchPage<T>; next?: BatchItem }>;
  /** Retried, or asked again without `$top`. */
  again: BatchItem[];
}

interface BatchResponse {
  id: string;
  status: number;
  headers?: Record<string, string>;
  body?: { value?: unknown[]; '@odata.nextLink'?: string; error?: { code?: string; message?: string } };
}

/** Graph's JSON batching takes at most 20 requests: https://learn.microsoft.com/graph/json-batching */
export const BATCH_LIMIT = 20;

/**
 * The statuses the SDK's own RetryHandler retries (RETRY_STATUS_CODES in
 * @microsoft/microsoft-graph-client's lib/src/middleware), and 502: a gateway's failure, which
 * Graph does answer (https://learn.microsoft.com/microsoft-cloud/dev/dev-proxy/technical-reference/graphrandomerrorplugin
 * lists 429, 500, 502, 503, 504 and 507 as the errors Graph gives). Every request here reads
 * (a `$batch` holds GETs only), so asking again is safe; a 500 is not asked again: it is as likely
 * our own query as a passing fault.
 */
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
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
 * A 400 that names `$top` or the page size, or that calls the query unsupported: Graph does not
 * document `$top` on the PIM lists
 * (https://learn.microsoft.com/en-us/graph/api/rbacapplication-list-roleeligibilityschedules), so
 * an endpoint may refuse it; the list is asked again without it. `roleDefinitions` refuses it in
 * these words, as public code we cannot link to records from live tenants (README, "What we know
 * of Graph", and what it could not verify): `Request_UnsupportedQuery`, "This resource requires a
 * minimum page size of 20." under 20 and "Invalid/unsupported query request" from 20 up. Asked
 * only of a first page whose URL carried `$top`: if the query is refused for another reason, the
 * second answer says so.
 */
export function refusesPageSize(status: number, message: string, code = ''): boolean {
  return (
    status === 400 &&
    (/\$top|\btop\b|page ?size|unsupported query/i.test(message) || code === 'Request_UnsupportedQuery')
  );
}

export class GraphClient {
  readonly stats: GraphStats = { requests: 0, retries: 0, throttled: 0, byEndpoint: {} };
  /** Endpoints (ids collapsed) that refused `$top` in this run: asked without it from then on. */
  private readonly noTop = new Set<string>();
  private readonly client: Client;
  private readonly root: string;
  private readonly retry: RetryPolicy;

  constructor(private readonly options: GraphClientOptions) {
    // RETRYABLE_STATUS, and the SDK's own RetryHandler's longest wait (MAX_DELAY in
    // @microsoft/microsoft-graph-client's lib/src/middleware).
    this.retry = new RetryPolicy(this.stats, {
      retryable: RETRYABLE_STATUS,
      maxRetries: options.maxRetries ?? 6,
      baseDelayMs: options.baseDelayMs ?? 1_000,
      maxDelayMs: options.maxDelayMs ?? 180_000,
      sleep: options.sleep,
    });
    this.root = `${options.endpoint.replace(/\/+$/, '')}/v1.0`;
    const authProvider = new TokenCredentialAuthenticationProvider(options.credential, {
      scopes: [`${new URL(options.endpoint).origin}/.default`],
    });
    const chain: Middleware[] = [
      new AuthenticationHandler(authProvider),
      new RetryAndCount(
        this.stats,
        this.retry,
        options.log,
        options.requestTimeoutMs ?? DEFAULT_GRAPH_REQUEST_TIMEOUT_MS,
      ),
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
      // must be named here, without scheme or port:
      // https://github.com/microsoftgraph/msgraph-sdk-javascript/blob/dev/changelogs/v3-upgrade-guide.md
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
   * empty: https://learn.microsoft.com/graph/paging).
   */
  async *pages<T>(path: string, query?: Record<string, string | number | undefined>): AsyncGenerator<T[]> {
    const fetchPage = (link: string): Promise<Page<T>> => {
      // Surfaced when awaited below; a consumer that stops early must not leave an unhandled rejection.
      return awaitedLater(this.call<Page<T>>(path, () => this.client.api(link).get()));
    };
    const firstUrl = this.url(path, query);
    let pending: Promise<Page<T>> | undefined = fetchPage(firstUrl);
    let first = true;
    while (pending) {
      let page: Page<T>;
      try {
        page = await pending;
      } catch (error) {
        // Only the first page carries our `$top`; a refusal of it is retried once without it.
        if (!first || !carriesTop(firstUrl) || !this.refusedTop(path, error)) throw error;
        page = await fetchPage(this.url(path, query));
      }
      first = false;
      if (!Array.isArray(page?.value)) throw notAList(path);
      const next = page['@odata.nextLink'];
      // Read ahead: the next page is asked for before this one is handed over, so the caller's work
      // overlaps the round trip. Still one request at a time per list (the audit log's limit).
      pending = next ? fetchPage(next) : undefined;
      yield page.value;
    }
  }

  async *list<T>(path: string, query?: Record<string, string | number | undefined>): AsyncGenerator<T> {
    for await (const page of this.pages<T>(path, query)) yield* page;
  }

  /**
   * Every page of many lists, up to 20 at a time in one `$batch` request: expanding 3,000 groups
   * costs 150 requests instead of 3,000, and `concurrency` batches are in flight at once. `lists`
   * may still be growing (an async iterable): full batches go out as lists arrive, the rest once
   * it ends. Each sub-request is throttled on its own (a batch answers 200 while an item answers
   * 429), so items are retried by the same policy as any request; follow-up pages go back into the
   * queue as relative URLs. Each list's pages come in order, and a list's next page is asked for
   * only once the consumer has taken its page; a list that cannot be read comes as `unreadable`.
   * On `abortSignal` nothing more is sent, and the iteration ends once the batches in flight have.
   */
  async *batchPages<T>(
    lists: Iterable<ListQuery> | AsyncIterable<ListQuery>,
    options: { concurrency?: number; abortSignal?: AbortSignal } = {},
  ): AsyncGenerator<BatchPage<T>> {
    const { abortSignal } = options;
    const concurrency = Math.max(1, options.concurrency ?? 1);
    const queue: BatchItem[] = [];
    const answered: Array<BatchRound<T>> = [];
    const inFlight = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    let listed = false;
    let wake: (() => void) | undefined;
    const notify = (): void => {
      const resolve = wake;
      wake = undefined;
      resolve?.();
    };
    abortSignal?.addEventListener('abort', notify);
    void (async () => {
      for await (const l of lists) {
        if (failure || abortSignal?.aborted) break;
        queue.push({ key: l.key, url: this.relative(this.url(l.path, l.query)), attempts: 0, list: l });
        notify();
      }
    })().then(
      () => {
        listed = true;
        notify();
      },
      (error: unknown) => {
        failure ??= { error };
        listed = true;
        notify();
      },
    );
    // A partial batch goes out once no more lists are coming, or for follow-ups and retries (which
    // would otherwise wait on lists that may never come).
    const ready = (): boolean =>
      queue.length >= BATCH_LIMIT || listed || queue.some((item) => !item.list || item.attempts > 0);
    try {
      for (;;) {
        if (failure) throw failure.error;
        if (abortSignal?.aborted && answered.length === 0) return;
        while (!abortSignal?.aborted && queue.length > 0 && inFlight.size < concurrency && ready()) {
          const sent: Promise<void> = this.batchRound<T>(queue.splice(0, BATCH_LIMIT)).then(
            (round) => {
              inFlight.delete(sent);
              answered.push(round);
              notify();
            },
            (error: unknown) => {
              inFlight.delete(sent);
              failure ??= { error };
              notify();
            },
          );
          inFlight.add(sent);
        }
        const round = answered.shift();
        if (round) {
          for (const { page, next } of round.pages) {
            yield page;
            if (next) queue.push(next);
          }
          queue.push(...round.again);
          continue;
        }
        if (listed && queue.length === 0 && inFlight.size === 0) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      abortSignal?.removeEventListener('abort', notify);
      // No batch is left running after the iteration ends (a consumer's clean-up may follow).
      while (inFlight.size > 0) await Promise.race(inFlight);
    }
  }

  /** One `$batch` of up to 20 items: its pages and the items to ask again (after the retry wait). */
  private async batchRound<T>(round: BatchItem[]): Promise<BatchRound<T>> {
    const answer = await this.post<{ responses?: BatchResponse[] }>('/$batch', {
      requests: round.map((item, i) => ({ id: String(i), method: 'GET', url: item.url })),
    });
    const byId = new Map((answer.responses ?? []).map((r) => [r.id, r]));
    const result: BatchRound<T> = { pages: [], again: [] };
    let wait = 0;
    let waitFor = '';
    for (const [i, item] of round.entries()) {
      const response = byId.get(String(i));
      const status = response?.status ?? 0;
      const error = response?.body?.error;
      if (status === 200 && !Array.isArray(response!.body?.value)) {
        // An item answered 200 without a list (a body that is not JSON): asked again like a network
        // fault, never read as an empty list.
        const delay = this.retry.delay(item.attempts, 'network');
        if (delay === undefined) throw notAList(item.url);
        if (delay > wait) [wait, waitFor] = [delay, endpointKey(this.root + item.url)];
        result.again.push({ ...item, attempts: item.attempts + 1 });
      } else if (status === 200) {
        const next = response!.body?.['@odata.nextLink'];
        result.pages.push({
          page: { key: item.key, items: response!.body!.value as T[] },
          next: next ? { key: item.key, url: this.relative(next), attempts: 0 } : undefined,
        });
      } else if (item.list && refusesPageSize(status, error?.message ?? '', error?.code) && carriesTop(item.url)) {
        // The first page of a list asked with `$top`: ask again without it, and never again this run.
        this.noTop.add(endpointKey(this.root + item.list.path));
        this.options.log.warn(
          `Graph refused $top on ${endpointKey(this.root + item.list.path)}; asking without it for the rest of the run`,
        );
        result.again.push({
          key: item.key,
          url: this.relative(this.url(item.list.path, item.list.query)),
          attempts: 0,
        });
      } else if (isUnreadableList(status, error?.message ?? '')) {
        result.pages.push({
          page: {
            key: item.key,
            unreadable: { key: item.key, status, code: error?.code ?? 'Unknown', message: error?.message ?? '' },
          },
        });
      } else {
        // No answer for an item (status 0) is a transient fault like a 503.
        const delay = this.retry.delay(
          item.attempts,
          status === 0 ? 'network' : status,
          headerOf(response?.headers, 'retry-after'),
        );
        if (delay === undefined) {
          const message = `Graph ${status} ${error?.code ?? 'Unknown'} on ${endpointKey(this.root + item.url)} (in a batch): ${error?.message ?? 'no answer for this item'}`;
          throw (
            retriesSpent(message, status, error?.code ?? '', item.url) ??
            new GraphRequestError(message, status, error?.code ?? 'Unknown', item.url)
          );
        }
        if (delay > wait) [wait, waitFor] = [delay, endpointKey(this.root + item.url)];
        result.again.push({ ...item, attempts: item.attempts + 1 });
      }
    }
    if (result.again.length > 0 && wait > 0) {
      // Throttled items wait here, never earlier than Graph asked; the other batches go on.
      this.options.log.warn(`Graph throttled items of a batch; retrying them in ${(wait / 1000).toFixed(1)} s`);
      await this.retry.sleep(wait, waitFor);
    }
    return result;
  }

  /** A URL on this Graph as `$batch` wants it: relative to the version root. */
  private relative(url: string): string {
    return url.startsWith(this.root)
      ? url.slice(this.root.length)
      : new URL(url).pathname.replace(/^\/v1\.0/, '') + new URL(url).search;
  }

  /** True (and remembered) when `error` is Graph refusing `$top` on `path`. */
  private refusedTop(path: string, error: unknown): boolean {
    if (!(error instanceof GraphRequestError) || !refusesPageSize(error.status, error.message, error.code))
      return false;
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
function toGraphRequestError(error: unknown, path: string): Error {
  if (error instanceof GraphRequestError) return error;
  // A request unanswered in time, after its retries: the SDK wraps the middleware's error as a
  // GraphError whose code is the error's name.
  const name = error instanceof GraphError ? error.code : (error as Error | undefined)?.name;
  if (name === GRAPH_TIMEOUT_CODE || name === GRAPH_NOT_JSON_CODE)
    return new GraphUnavailableError((error as Error).message, 0, name, path);
  // The SDK wraps a credential's failure in a GraphError with status -1 and the error's name as code.
  if (error instanceof GraphError && CREDENTIAL_ERRORS.has(error.code ?? ''))
    return credentialFailure(error.code!, error.message, path);
  if (error instanceof Error && CREDENTIAL_ERRORS.has(error.name))
    return credentialFailure(error.name, error.message, path);
  // A network fault that outlived the retries: the SDK hands it on as a GraphError without a status.
  if (!(error instanceof GraphError && error.statusCode > 0) && isTransientNetworkError(error)) {
    return new GraphUnavailableError(`Graph could not be reached on ${path}: ${(error as Error).message}`, 0, '', path);
  }
  if (error instanceof GraphError) {
    const code = error.code ?? 'Unknown';
    const status = error.statusCode;
    let message = `Graph ${status || 'error'} ${code} on ${path}: ${error.message}`;
    const spent = retriesSpent(message, status, error.code ?? '', path);
    if (spent) return spent;
    if (code === 'AadPremiumLicenseRequired') {
      message = `this tenant needs Entra ID P2 or ID Governance for PIM (Graph ${status} ${code} on ${path})`;
    } else if (status === 401) {
      message = `Graph refused the token (401 ${code}) on ${path}: check the identity and GRAPH_ENDPOINT. ${error.message}`;
    } else if (status === 403) {
      message = `Graph denied access (403 ${code}) on ${path}: the identity lacks a Graph application permission (see the README). ${error.message}`;
    }
    return new GraphRequestError(message, status, code, path);
  }
  return error instanceof Error ? error : new Error(String(error));
}

const CREDENTIAL_ERRORS = new Set([
  'CredentialUnavailableError',
  'AuthenticationError',
  'AggregateAuthenticationError',
]);

/** No token: say which source of tokens failed, so an admin knows where to look. */
function credentialFailure(name: string, message: string, path: string): GraphRequestError {
  const source = /ManagedIdentityCredential/.test(message)
    ? 'from the managed identity (IDENTITY_ENDPOINT, and MANAGED_IDENTITY_CLIENT_ID for a user-assigned one)'
    : 'from the Azure CLI or Azure Developer CLI sign-in (az login, azd auth login)';
  return new GraphCredentialError(`could not get a token for Graph ${source}: ${message}`, path, name);
}

/** The error for an answer the retry policy retries, once its retries are spent; undefined for any other. */
function retriesSpent(message: string, status: number, code: string, path: string): GraphRequestError | undefined {
  if (status === 429) return new GraphThrottledError(message, code, path);
  if (status === 0 || status === 502 || status === 503 || status === 504)
    return new GraphUnavailableError(message, status, code, path);
  return undefined;
}

/** True when a URL asks `$top` (percent-encoded or not): only such a request can be refused for it. */
function carriesTop(url: string): boolean {
  return /[?&](\$|%24)top=/i.test(url);
}

/**
 * A list's page answered 200 without its `value` list. Read as an empty page it would end the list
 * short, and the report would lose rows without a word (https://learn.microsoft.com/graph/paging:
 * a page's items are its `value`).
 */
function notAList(path: string): GraphUnavailableError {
  return new GraphUnavailableError(
    `Graph answered ${endpointKey(path)} with a page that holds no "value" list; the list cannot be read to its end`,
    200,
    'NotAList',
    path,
  );
}

/** `/groups/0b1c.../transitiveMembers` -> `/groups/{id}/transitiveMembers`, for counting. */
function endpointKey(url: string): string {
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

/**
 * Applies the retry policy to each request, network faults included, and a body cut off mid-page:
 * the body is read here so that a reset is retried like any other transient fault. Counts every
 * attempt.
 */
class RetryAndCount implements Middleware {
  private next?: Middleware;

  constructor(
    private readonly stats: GraphStats,
    private readonly policy: RetryPolicy,
    private readonly log: Log,
    private readonly timeoutMs: number,
  ) {}

  setNext(next: Middleware): void {
    this.next = next;
  }

  async execute(context: Context): Promise<void> {
    const url = typeof context.request === 'string' ? context.request : context.request.url;
    const key = endpointKey(url);
    const options = context.options ?? {};
    const method = (options.method ?? 'GET').toUpperCase();
    const seconds = `${+(this.timeoutMs / 1000).toFixed(1)} s`;
    for (let attempt = 0; ; attempt++) {
      this.stats.requests++;
      this.stats.byEndpoint[key] = (this.stats.byEndpoint[key] ?? 0) + 1;
      let failure: string;
      let delay: number | undefined;
      // A fresh deadline per attempt, for the answer and its body alike: a server that takes the
      // request and never answers must not hold the run for ever.
      const deadline = AbortSignal.timeout(this.timeoutMs);
      context.options = { ...options, signal: options.signal ? AbortSignal.any([options.signal, deadline]) : deadline };
      try {
        await this.next!.execute(context);
        const response = context.response!;
        // Read the body here: a connection reset mid-page surfaces now and is retried below.
        const body = await response.arrayBuffer();
        delay = this.policy.delay(attempt, response.status, response.headers.get('retry-after'));
        const type = response.headers.get('content-type') ?? '';
        if (delay === undefined && response.ok && !NULL_BODY_STATUS.has(response.status) && !/json/i.test(type)) {
          // A success that is not JSON (a proxy's or a gateway's page) holds no page: the SDK would
          // hand it on as text, and a list would end there, short. Asked again like a network fault.
          const what = `${response.status} with ${type || 'no content type'}, not JSON`;
          delay = this.policy.delay(attempt, 'network');
          if (delay === undefined)
            throw Object.assign(new Error(`Graph answered ${method} ${key} ${what} (${attempt + 1} attempts)`), {
              name: GRAPH_NOT_JSON_CODE,
            });
          failure = `answered ${what}`;
        } else if (delay === undefined) {
          context.response = new Response(NULL_BODY_STATUS.has(response.status) ? null : body, {
            status: response.status,
            statusText: response.statusText,
            headers: response.headers,
          });
          return;
        } else failure = `${response.status}`;
      } catch (error) {
        // Our own verdict on a success that is not JSON, once its retries are spent: not a network fault.
        if ((error as Error | undefined)?.name === GRAPH_NOT_JSON_CODE) throw error;
        if (deadline.aborted && !options.signal?.aborted) {
          delay = this.policy.delay(attempt, 'network');
          if (delay === undefined)
            throw Object.assign(
              new Error(`Graph did not answer ${method} ${key} within ${seconds} (${attempt + 1} attempts)`),
              { name: GRAPH_TIMEOUT_CODE },
            );
          failure = `gave no answer within ${seconds}`;
        } else {
          delay = isTransientNetworkError(error) ? this.policy.delay(attempt, 'network') : undefined;
          if (delay === undefined) throw error;
          failure = (error as Error).message || 'network error';
        }
      }
      this.log.warn(
        `Graph ${failure} on ${key}; retrying in ${(delay / 1000).toFixed(1)} s (retry ${attempt + 1} of ${this.policy.maxRetries})`,
      );
      await this.policy.sleep(delay, key);
    }
  }
}

function isTransientNetworkError(error: unknown): boolean {
  // Duck-typed, not `instanceof Error`: fetch's errors may come from another realm (a test VM, a worker).
  if (typeof error !== 'object' || error === null || typeof (error as Error).message !== 'string') return false;
  const text = `${(error as Error).name} ${(error as Error).message} ${(error as { code?: string }).code ?? ''} ${
    (error as { cause?: { code?: string; message?: string } }).cause?.code ?? ''
  } ${(error as { cause?: { message?: string } }).cause?.message ?? ''}`;
  return /ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|socket hang up|terminated|other side closed|UND_ERR|fetch failed|network/i.test(
    text,
  );
}
