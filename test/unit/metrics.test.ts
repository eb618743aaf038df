/** The API's /metrics registry: values a scraper can store, from the very first scrape. */
import { createApiMetrics } from '../../src/api/middleware/metrics';
import { waitFor } from '../helpers/wait';

const LAG = /^podplane_api_nodejs_eventloop_lag_(\w+)_seconds (\S+)$/gm;

function lagValues(text: string): Record<string, number> {
  return Object.fromEntries([...text.matchAll(LAG)].map(([, stat, value]) => [stat, Number(value)]));
}

describe('API metrics', () => {
  it('reports the event-loop delay gauges as 0, not NaN or int64-max, before the first sample', async () => {
    const { registry } = createApiMetrics();
    // Scraped in the same tick: perf_hooks' delay histogram has no sample yet.
    const first = await registry.metrics();
    // Scraped again at once: the previous scrape reset the histogram, which is empty again.
    const second = await registry.metrics();
    for (const text of [first, second]) {
      // prom-client prints NaN as `Nan`.
      expect(text).not.toMatch(/\bnan\b/i);
      expect(text).not.toContain('9223372036');
      const lag = lagValues(text);
      expect(Object.keys(lag).sort()).toEqual(['max', 'mean', 'min', 'p50', 'p90', 'p99', 'stddev']);
      for (const value of Object.values(lag)) expect(value).toBe(0);
    }
  });

  it('reports the measured event-loop delay once there are samples', async () => {
    const { registry } = createApiMetrics();
    await registry.metrics();
    // Each scrape resets the histogram, so a scrape with samples sees a mean above 0.
    const lag = await waitFor(
      async () => {
        const values = lagValues(await registry.metrics());
        return (values.mean ?? 0) > 0 ? values : undefined;
      },
      { what: 'an event-loop delay sample', timeoutMs: 5000, intervalMs: 50 },
    );
    expect(lag.min).toBeGreaterThan(0);
    expect(lag.min).toBeLessThan(60);
    expect(lag.max).toBeGreaterThanOrEqual(lag.min!);
  });
});
