import {
  createMetricsRegistry,
  createTracing,
  startMetricsServer,
  type Logger,
  type MetricsRegistry,
  type MetricsServer,
  type Tracing,
} from "@authplat/observability";
import type { TracingOptions } from "@authplat/observability";
import type { ClientInterceptor, ServerInterceptor } from "../interceptor.ts";
import { createRpcMetrics } from "./rpc-metrics.ts";
import { clientTracing, serverTracing } from "./rpc-tracing.ts";

/** The telemetry settings of a service (see `serviceEnv` in `@authplat/config`). */
export interface TelemetrySettings {
  /** Interface of the `/metrics` endpoint; default `127.0.0.1`. */
  readonly METRICS_HOST?: string;
  /** Port of the `/metrics` endpoint; unset or 0 serves no endpoint. */
  readonly METRICS_PORT?: number;
  /** OTLP/HTTP collector base URL; unset turns tracing off entirely. */
  readonly OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  /** `service.name` of exported spans; default the service's short name. */
  readonly OTEL_SERVICE_NAME?: string | undefined;
}

/** Options of {@link startServiceTelemetry}. */
export interface ServiceTelemetryOptions {
  /** The service's short name, e.g. `token`. */
  readonly name: string;
  readonly settings: TelemetrySettings;
  readonly logger: Logger;
  /** Tests: export spans here (e.g. an `InMemorySpanExporter`) instead of over OTLP. */
  readonly spanExporter?: NonNullable<TracingOptions["exporter"]>;
  /** Tests: leave out the process default metrics. */
  readonly defaultMetrics?: boolean;
}

/** The metrics and tracing of one service process. */
export interface ServiceTelemetry {
  /** The service's registry; add breaker, cache or policy metrics with its helpers. */
  readonly metrics: MetricsRegistry;
  /** The tracing, when it is on. */
  readonly tracing: Tracing | undefined;
  /** For the server chain's `observers` slot: tracing (when on), then metrics. */
  readonly observers: readonly ServerInterceptor[];
  /** For every client's `interceptors`: tracing (when on), then metrics. */
  readonly clientInterceptors: readonly ClientInterceptor[];
  /** The bound port of the `/metrics` endpoint; undefined when it is off. */
  readonly metricsPort: number | undefined;
  /** Closes the metrics endpoint and flushes and stops tracing. Safe to call twice. */
  shutdown(): Promise<void>;
}

/**
 * Builds a service's telemetry from its settings: the metrics registry and RPC metrics, the
 * `/metrics` endpoint when `METRICS_PORT` is set, and tracing when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set (otherwise no tracing interceptor is installed).
 * Create it first in `main.ts`, so clients built before the server get its interceptors.
 */
export async function startServiceTelemetry(
  options: ServiceTelemetryOptions,
): Promise<ServiceTelemetry> {
  const metrics = createMetricsRegistry(
    options.defaultMetrics === undefined ? {} : { defaultMetrics: options.defaultMetrics },
  );
  const rpcMetrics = createRpcMetrics(metrics);
  const tracing = createTracing({
    serviceName: options.settings.OTEL_SERVICE_NAME ?? options.name,
    otlpEndpoint: options.settings.OTEL_EXPORTER_OTLP_ENDPOINT,
    ...(options.spanExporter === undefined ? {} : { exporter: options.spanExporter }),
  });
  const port = options.settings.METRICS_PORT ?? 0;
  let server: MetricsServer | undefined;
  if (port !== 0) {
    server = await startMetricsServer({
      host: options.settings.METRICS_HOST ?? "127.0.0.1",
      port,
      metrics,
      logger: options.logger,
    });
    options.logger.info({ metricsPort: server.port }, "serving metrics");
  }
  let stopping: Promise<void> | undefined;
  return {
    metrics,
    tracing,
    observers: tracing ? [serverTracing(tracing), rpcMetrics.server] : [rpcMetrics.server],
    clientInterceptors: tracing ? [clientTracing(tracing), rpcMetrics.client] : [rpcMetrics.client],
    metricsPort: server?.port,
    shutdown: () => {
      stopping ??= Promise.all([server?.close(), tracing?.shutdown()]).then(() => undefined);
      return stopping;
    },
  };
}
