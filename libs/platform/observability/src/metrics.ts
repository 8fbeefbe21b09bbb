import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
  type Metric,
} from "prom-client";

/**
 * Latency buckets in seconds, from 100 µs to 10 s in steps of at most 2.5x, so that
 * `histogram_quantile` reads p50/p95/p99 of both sub-millisecond cache hits and multi-second
 * backend stalls with a bounded interpolation error (a quantile falls between two bucket
 * bounds that differ by at most 2.5x).
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05,
  0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2.5, 5, 10,
];

/**
 * The metrics registry of one service: its own prom-client `Registry` (never the global
 * one, so a test process can run several services side by side), with the process and
 * Node.js default metrics, and typed helpers to add a service's own metrics to it.
 *
 * The helpers are idempotent by name: asking twice for `breaker_state` returns the same
 * metric (so one per-target component can be built many times), and asking for a name that
 * is already taken by a metric of another type throws.
 */
export interface MetricsRegistry {
  /** The underlying registry, for scraping and for libraries that take a `Registry`. */
  readonly registry: Registry;
  /** A counter (name ends in `_total` by Prometheus convention) on this registry. */
  counter<L extends string>(config: CounterConfiguration<L>): Counter<L>;
  /** A gauge on this registry. */
  gauge<L extends string>(config: GaugeConfiguration<L>): Gauge<L>;
  /** A histogram on this registry; `buckets` default to {@link LATENCY_BUCKETS_SECONDS}. */
  histogram<L extends string>(config: HistogramConfiguration<L>): Histogram<L>;
  /** The exposition text of every metric, as served on `/metrics`. */
  expose(): Promise<string>;
  /** The content type of {@link MetricsRegistry.expose}'s text. */
  readonly contentType: string;
}

/** Options of {@link createMetricsRegistry}. */
export interface MetricsRegistryOptions {
  /**
   * Whether to collect the process and Node.js default metrics (CPU, memory, event-loop
   * lag, GC, handles); default true. Tests that only read RPC metrics may turn them off.
   */
  readonly defaultMetrics?: boolean;
}

function existing<M>(
  registry: Registry,
  name: string,
  type: abstract new (...args: never[]) => M,
): M | undefined {
  const metric: Metric | undefined = registry.getSingleMetric(name);
  if (metric === undefined) return undefined;
  if (!(metric instanceof type)) {
    throw new Error(`metric ${name} is already registered with another type`);
  }
  return metric;
}

/** Creates the metrics registry of one service (see {@link MetricsRegistry}). */
export function createMetricsRegistry(options: MetricsRegistryOptions = {}): MetricsRegistry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    counter: (config) =>
      existing(registry, config.name, Counter) ?? new Counter({ ...config, registers: [registry] }),
    gauge: (config) =>
      existing(registry, config.name, Gauge) ?? new Gauge({ ...config, registers: [registry] }),
    histogram: (config) =>
      existing(registry, config.name, Histogram) ??
      new Histogram({
        buckets: [...LATENCY_BUCKETS_SECONDS],
        ...config,
        registers: [registry],
      }),
    expose: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
