export { createLogger, REDACTED_PATHS, type Logger, type LoggerOptions } from "./logger.ts";
export {
  createMetricsRegistry,
  LATENCY_BUCKETS_SECONDS,
  type MetricsRegistry,
  type MetricsRegistryOptions,
} from "./metrics.ts";
export {
  PortInUseError,
  startMetricsServer,
  type MetricsServer,
  type MetricsServerOptions,
} from "./metrics-server.ts";
export { createTracing, type PresetSpanIds, type Tracing, type TracingOptions } from "./tracing.ts";
/**
 * The OpenTelemetry SDK's in-memory exporter and span type, for tests that pass an exporter to
 * {@link createTracing} and read the finished spans back.
 */
export { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
