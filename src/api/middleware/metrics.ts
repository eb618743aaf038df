/** Prometheus metrics for the API: request duration by route template and status. */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ApiMetrics {
  registry: Registry;
  middleware: RequestHandler;
  workflowStarts: Counter<'workflow'>;
}

const PREFIX = 'podplane_api_';

/** The event-loop delay statistics of prom-client's default metrics, with its names and help texts. */
const EVENT_LOOP_DELAY_STATS = {
  min: 'The minimum recorded event loop delay.',
  max: 'The maximum recorded event loop delay.',
  mean: 'The mean of the recorded event loop delays.',
  stddev: 'The standard deviation of the recorded event loop delays.',
  p50: 'The 50th percentile of the recorded event loop delays.',
  p90: 'The 90th percentile of the recorded event loop delays.',
  p99: 'The 99th percentile of the recorded event loop delays.',
} as const;

type EventLoopDelayStat = keyof typeof EVENT_LOOP_DELAY_STATS;

/**
 * Replaces prom-client's event-loop delay gauges (`…_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds`).
 * Those copy perf_hooks' delay histogram at every scrape and reset it; a histogram without a sample
 * (before its first, about 10 ms after start, or when two scrapes come less than 10 ms apart) reads
 * int64-max ns as the minimum (9223372036.85 s), NaN as mean and standard deviation, and stray
 * percentiles. These gauges read their own histogram the same way, per scrape, and report 0 while it
 * is empty. `…_eventloop_lag_seconds` stays prom-client's; its collect still samples prom-client's
 * histogram into the detached gauges (one more 10 ms timer, nothing exported).
 */
function replaceEventLoopDelayGauges(registry: Registry): void {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const stats = Object.keys(EVENT_LOOP_DELAY_STATS) as EventLoopDelayStat[];
  const gauges = {} as Record<EventLoopDelayStat, Gauge>;
  const sample = () => {
    const empty = histogram.count === 0;
    const ns: Record<EventLoopDelayStat, number> = {
      min: histogram.min,
      max: histogram.max,
      mean: histogram.mean,
      stddev: histogram.stddev,
      p50: histogram.percentile(50),
      p90: histogram.percentile(90),
      p99: histogram.percentile(99),
    };
    for (const stat of stats) gauges[stat].set(empty ? 0 : ns[stat] / 1e9);
    histogram.reset();
  };
  stats.forEach((stat, i) => {
    const name = `${PREFIX}nodejs_eventloop_lag_${stat}_seconds`;
    registry.removeSingleMetric(name);
    gauges[stat] = new Gauge({
      name,
      help: EVENT_LOOP_DELAY_STATS[stat],
      registers: [registry],
      // The first gauge read in a scrape sets them all, so one scrape reports one histogram.
      ...(i === 0 ? { collect: sample } : {}),
    });
  });
}

export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  replaceEventLoopDelayGauges(registry);
  const duration = new Histogram({
    name: 'podplane_http_request_duration_seconds',
    help: 'HTTP request duration by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const workflowStarts = new Counter({
    name: 'podplane_workflow_starts_total',
    help: 'Workflows started by the API, by workflow type',
    labelNames: ['workflow'] as const,
    registers: [registry],
  });
  const middleware: RequestHandler = (req, res, next) => {
    const end = duration.startTimer();
    res.once('finish', () => {
      // The route template (not the raw path) keeps label cardinality bounded; the route table
      // records it before anything can fail, so error answers carry it too.
      const template: unknown = res.locals.route;
      const route = typeof template === 'string' ? template : 'unmatched';
      end({ method: req.method, route, status_code: String(res.statusCode) });
    });
    next();
  };
  return { registry, middleware, workflowStarts };
}
