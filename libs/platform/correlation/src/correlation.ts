import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { newSpanId, newTraceId, parseTraceParent, type TraceParent } from "./trace-context.ts";

/** Metadata key carrying the correlation ID between services. */
export const CORRELATION_ID_HEADER = "x-correlation-id";
/** Metadata key of the W3C trace context. */
export const TRACEPARENT_HEADER = "traceparent";
/** Metadata key of the W3C vendor trace state, passed on unchanged. */
export const TRACESTATE_HEADER = "tracestate";

/** What every log line and outgoing call of one request carries. */
export interface RequestContext {
  /** Correlation ID: taken from the caller when well-formed, otherwise minted here. */
  readonly correlationId: string;
  /** Trace ID shared by every span of the request. */
  readonly traceId: string;
  /** This service's span for the request; outgoing calls name it as their parent. */
  readonly spanId: string;
  /** Trace flags received (or `01`, sampled, for a new trace). */
  readonly traceFlags: string;
  /** The caller's `tracestate`, passed on unchanged; undefined when absent. */
  readonly traceState: string | undefined;
  /**
   * Absolute deadline of the request in epoch milliseconds (`Infinity` when the caller set
   * none). Outgoing calls made on its behalf get at most the time that is left.
   */
  readonly deadlineMs: number;
}

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const storage = new AsyncLocalStorage<RequestContext>();

/**
 * Whether a received correlation ID is acceptable. IDs come from other services and end up in
 * logs, so only a short, plain alphabet is accepted (no log injection).
 */
function isValidCorrelationId(value: string): boolean {
  return CORRELATION_ID.test(value);
}

/** Incoming header values, as read from gRPC metadata or HTTP headers. */
export interface IncomingTraceHeaders {
  readonly correlationId?: string | undefined;
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
}

/**
 * Builds the context of a request entering this service: keeps a well-formed correlation ID or
 * mints one, continues the caller's trace with a new span, or starts a new trace. `deadlineMs`
 * is the request's absolute deadline (epoch milliseconds), `Infinity` when it has none.
 */
export function contextFromIncoming(
  headers: IncomingTraceHeaders,
  deadlineMs = Number.POSITIVE_INFINITY,
): RequestContext {
  const correlationId =
    headers.correlationId !== undefined && isValidCorrelationId(headers.correlationId)
      ? headers.correlationId
      : randomUUID();
  const parent: TraceParent | undefined = parseTraceParent(headers.traceparent);
  return Object.freeze({
    correlationId,
    traceId: parent?.traceId ?? newTraceId(),
    spanId: newSpanId(),
    traceFlags: parent?.flags ?? "01",
    // Trace Context §3.3: tracestate is only meaningful with a valid traceparent.
    traceState: parent && headers.tracestate ? headers.tracestate.slice(0, 512) : undefined,
    deadlineMs,
  });
}

/** Runs `fn` with `context` as the current request context (propagates through awaits). */
export function runWithContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The current request context, or undefined outside a request. */
export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}

/**
 * Headers for an outgoing call made on behalf of the current request: the same correlation ID
 * and a `traceparent` naming this service's span as the parent. Outside a request a new
 * correlation ID and trace are started, so every call carries both.
 */
export function outgoingHeaders(): Record<string, string> {
  const context = currentContext() ?? contextFromIncoming({});
  const headers: Record<string, string> = {
    [CORRELATION_ID_HEADER]: context.correlationId,
    [TRACEPARENT_HEADER]: `00-${context.traceId}-${context.spanId}-${context.traceFlags}`,
  };
  if (context.traceState !== undefined) headers[TRACESTATE_HEADER] = context.traceState;
  return headers;
}

/** The identity of a span, as a tracer reports it (W3C hex forms). */
export interface SpanIdentity {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** 16 lowercase hex digits. */
  readonly spanId: string;
  /** Two lowercase hex digits of trace flags. */
  readonly traceFlags: string;
}

/**
 * The same request context, now inside `span`: logs carry the span's IDs and outgoing calls
 * name it as their parent. Tracing uses it once a real span has been started for the request
 * (or for an outgoing call), so that logs, `traceparent` and exported spans agree.
 */
export function contextWithSpan(context: RequestContext, span: SpanIdentity): RequestContext {
  return Object.freeze({
    ...context,
    traceId: span.traceId,
    spanId: span.spanId,
    traceFlags: span.traceFlags,
  });
}
