/**
 * The simulators' latency test (test/tools/graph-simulator.test.ts, arm-simulator.test.ts): the
 * simulated latency counts from a request's arrival, so the simulator's own work is inside it. Work
 * is stood for by a busy clock; what is left of the latency is recorded as the simulator asks it.
 */
export const PROBE_LATENCY_MS = 400;

export function latencyProbe() {
  let work = 0;
  const waits: number[] = [];
  return {
    /** Busy for the current amount of work: call it where the simulator reads its clock. */
    busy(): void {
      const until = Date.now() + work;
      while (Date.now() < until);
    },
    /** The simulator's `latencyWait`: records what is left of the latency, then waits it. */
    wait(ms: number): Promise<void> {
      waits.push(ms);
      return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
    },
    /**
     * GETs `url` with the bearer `token`, idle and then with 300 ms of work: about 100 ms is left to
     * wait (400 when it was waited after the work), and each answer takes at least the latency.
     */
    async expectWorkInsideLatency(url: string, token: string): Promise<void> {
      const timed = async () => {
        const t0 = performance.now();
        const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
        await res.text();
        expect(res.status).toBe(200);
        return performance.now() - t0;
      };
      await timed(); // the connection and TLS
      expect(await timed()).toBeGreaterThanOrEqual(PROBE_LATENCY_MS - 5);
      work = 300;
      expect(await timed()).toBeGreaterThanOrEqual(PROBE_LATENCY_MS - 5);
      const [idle, afterWork] = waits.slice(-2);
      expect(idle).toBeGreaterThan(350);
      expect(afterWork).toBeLessThan(110);
    },
  };
}
