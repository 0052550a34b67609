/**
 * The retry policy the Graph and ARM clients share (src/util/retry.ts): what is asked again, how
 * many times, how long each wait is, and what is counted.
 */
import { RetryPolicy, retryAfterMs } from '../../src/util/retry';

describe('the retry policy', () => {
  const policy = (maxRetries = 3) => {
    const counts = { retries: 0, throttled: 0 };
    const p = new RetryPolicy(counts, {
      retryable: new Set([429, 503]),
      maxRetries,
      baseDelayMs: 1000,
      maxDelayMs: 5000,
    });
    return { p, counts };
  };

  it('doubles from the base without Retry-After, up to the cap, for a retryable status or a network fault', () => {
    const { p, counts } = policy(4);
    expect([0, 1, 2, 3].map((attempt) => p.delay(attempt, attempt % 2 ? 'network' : 503))).toEqual([
      1000, 2000, 4000, 5000,
    ]);
    expect(counts).toEqual({ retries: 4, throttled: 0 });
  });

  it('waits what Retry-After asks (seconds or an HTTP date), never longer than the cap, and counts a 429 as throttled', () => {
    const { p, counts } = policy();
    expect(p.delay(0, 429, '2')).toBe(2000);
    expect(p.delay(1, 429, '0')).toBe(0);
    expect(p.delay(2, 503, '600')).toBe(5000);
    expect(counts).toEqual({ retries: 3, throttled: 2 });
    const now = Date.parse('2026-11-20T06:00:00Z');
    expect(retryAfterMs('Fri, 20 Nov 2026 06:00:03 GMT', now)).toBe(3000);
    expect(retryAfterMs('Fri, 20 Nov 2026 05:59:00 GMT', now)).toBe(0);
    expect(retryAfterMs('1.5')).toBe(1500);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });

  it('does not retry a status outside the set, nor past the budget, and counts nothing then', () => {
    const { p, counts } = policy(2);
    expect(p.delay(0, 500)).toBeUndefined();
    expect(p.delay(0, 404)).toBeUndefined();
    expect(p.delay(2, 503)).toBeUndefined();
    expect(p.delay(2, 'network')).toBeUndefined();
    expect(p.delay(2, 429, '1')).toBeUndefined();
    expect(counts).toEqual({ retries: 0, throttled: 0 });
  });
});
