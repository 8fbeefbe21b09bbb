import type { Context, Span, SpanOptions } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  RandomIdGenerator,
  SimpleSpanProcessor,
  TracerProvider,
  type IdGenerator,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";

/** Options of {@link createTracing}. */
export interface TracingOptions {
  /** `service.name` of every span (`OTEL_SERVICE_NAME`, default the service's short name). */
  readonly serviceName: string;
  /**
   * Base URL of an OTLP/HTTP collector (`OTEL_EXPORTER_OTLP_ENDPOINT`, e.g.
   * `http://127.0.0.1:4318`); spans go, batched, to `<endpoint>/v1/traces` as protobuf.
   */
  readonly otlpEndpoint?: string | undefined;
  /**
   * An exporter to send every span to as soon as it ends, instead of OTLP (tests pass the
   * SDK's `InMemorySpanExporter`).
   */
  readonly exporter?: SpanExporter;
}

/** IDs a span must be created with instead of fresh random ones. */
export interface PresetSpanIds {
  /** Used only when the span has no valid parent (a parent's trace ID always wins). */
  readonly traceId: string;
  readonly spanId: string;
}

/** The tracing of one service. */
export interface Tracing {
  /**
   * Starts a span (`Tracer.startSpan`), optionally with preset IDs: the server span of a call
   * takes the span ID its request context already carries, so every log line of the call,
   * including those written before the span started, names the exported span.
   */
  startSpan(name: string, options: SpanOptions, parent: Context, ids?: PresetSpanIds): Span;
  /** Exports every ended span that is still buffered. */
  flush(): Promise<void>;
  /** Flushes, then stops exporting. Safe to call twice. */
  shutdown(): Promise<void>;
}

/** Random IDs, unless a preset is in place for the span being started. */
class PresettableIdGenerator implements IdGenerator {
  preset: PresetSpanIds | undefined = undefined;
  readonly #random = new RandomIdGenerator();

  generateTraceId(): string {
    return this.preset?.traceId ?? this.#random.generateTraceId();
  }

  generateSpanId(): string {
    return this.preset?.spanId ?? this.#random.generateSpanId();
  }
}

/**
 * OTLP/HTTP signal path for traces. OpenTelemetry SDK configuration: with the generic
 * `OTEL_EXPORTER_OTLP_ENDPOINT`, "the URLs for each signal are constructed by appending
 * `v1/{signal}`" to it.
 */
function tracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, "")}/v1/traces`;
}

/**
 * Sets up the tracing of one service, or returns undefined when neither an OTLP endpoint nor
 * an exporter is given: then no tracer exists and the tracing interceptors are not installed,
 * so calls pay nothing for tracing.
 *
 * The provider is deliberately not registered as the global one: several services may share a
 * test process, and spans are parented explicitly from the platform's request context rather
 * than through OpenTelemetry's context manager.
 */
export function createTracing(options: TracingOptions): Tracing | undefined {
  let processor: SpanProcessor;
  if (options.exporter !== undefined) {
    processor = new SimpleSpanProcessor({ exporter: options.exporter });
  } else if (options.otlpEndpoint !== undefined && options.otlpEndpoint !== "") {
    processor = new BatchSpanProcessor({
      exporter: new OTLPTraceExporter({ url: tracesUrl(options.otlpEndpoint) }),
    });
  } else {
    return undefined;
  }
  const ids = new PresettableIdGenerator();
  const provider = new TracerProvider({
    idGenerator: ids,
    resource: defaultResource().merge(
      resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }),
    ),
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer("@authplat/rpc");
  let stopping: Promise<void> | undefined;
  return {
    startSpan: (name, spanOptions, parent, preset) => {
      // startSpan asks for its IDs synchronously, so the preset cannot leak into another span.
      ids.preset = preset;
      try {
        return tracer.startSpan(name, spanOptions, parent);
      } finally {
        ids.preset = undefined;
      }
    },
    flush: () => provider.forceFlush(),
    shutdown: () => {
      stopping ??= provider.shutdown();
      return stopping;
    },
  };
}
