/**
 * The one retry policy of the HTTP clients (src/graph/client.ts, src/arm/client.ts): which answers
 * are asked again, how many times, and how long to wait before each. Each client keeps what is its
 * own (which statuses are transient, which errors are network faults, how a failure is reported).
 */

export interface RetryCounts {
  /** Retries granted. */
  retries: number;
  /** Of them, after a 429. */
  throttled: number;
}

export interface RetryPolicyOptions {
  /** Statuses asked again (a network fault, `network`, always is). */
  retryable: ReadonlySet<number>;
  /** Attempts after the first. */
  maxRetries: number;
  /** Wait before the first retry when the answer gives no Retry-After; doubles each time. */
  baseDelayMs: number;
  /** Longest single wait, whatever Retry-After asks. */
  maxDelayMs: number;
  /** How a retry waits `ms` before asking `endpoint` again (tests record the wait and return at once). */
  sleep?: (ms: number, endpoint: string) => Promise<void>;
}

/**
 * Transient answers and network faults, at most `maxRetries` times, waiting what Retry-After asks
 * (not earlier: throttled requests still count against the caller,
 * https://learn.microsoft.com/graph/throttling,
 * https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling)
 * or else doubling from `baseDelayMs`; every wait is capped at `maxDelayMs`, so a Retry-After longer
 * than that is cut short (a retry that comes too early is throttled again and counts against the
 * budget, so the run fails within a bounded time instead of sleeping on a service's word).
 */
export class RetryPolicy {
  readonly maxRetries: number;
  readonly sleep: (ms: number, endpoint: string) => Promise<void>;
  private readonly retryable: ReadonlySet<number>;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(
    private readonly counts: RetryCounts,
    options: RetryPolicyOptions,
  ) {
    this.retryable = options.retryable;
    this.maxRetries = options.maxRetries;
    this.baseDelayMs = options.baseDelayMs;
    this.maxDelayMs = options.maxDelayMs;
    this.sleep = options.sleep ?? realSleep;
  }

  /**
   * The wait before asking again after attempt `attempt` (0 for the first) answered `status`
   * (`network` for a fault before any answer, or no answer in time); undefined when it is not
   * retried. Counted.
   */
  delay(attempt: number, status: number | 'network', retryAfter?: string | null): number | undefined {
    if ((status !== 'network' && !this.retryable.has(status)) || attempt >= this.maxRetries) return undefined;
    if (status === 429) this.counts.throttled++;
    this.counts.retries++;
    return Math.min(retryAfterMs(retryAfter ?? null) ?? this.baseDelayMs * 2 ** attempt, this.maxDelayMs);
  }
}

/** Retry-After is seconds or an HTTP date (RFC 9110); undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+(\.\d+)?$/.test(header.trim())) return Math.ceil(Number(header) * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function realSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
