import {
  createTraceState,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from "@opentelemetry/api";
import type { Metadata } from "@grpc/grpc-js";
import {
  contextFromIncoming,
  contextWithSpan,
  CORRELATION_ID_HEADER,
  currentContext,
  parseTraceParent,
  runWithContext,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
  type RequestContext,
} from "@authplat/correlation";
import type { Tracing } from "@authplat/observability";
import type { ClientInterceptor, RpcCallInfo, ServerInterceptor } from "../interceptor.ts";
import { clientFailure, OK_OUTCOME, serverFailure, type CallOutcome } from "./call-outcome.ts";
import { isAsyncIterable, observeStream } from "./observe-stream.ts";

// OpenTelemetry semantic conventions for RPC spans (gRPC), as most tracing backends read them.
const ATTR_RPC_SYSTEM = "rpc.system";
const ATTR_RPC_SERVICE = "rpc.service";
const ATTR_RPC_METHOD = "rpc.method";
const ATTR_RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code";
// The stable `error.type`: "a low-cardinality class of error"; ours is the platform's code.
const ATTR_ERROR_TYPE = "error.type";
// The downstream's configured name on client spans.
const ATTR_PEER_SERVICE = "peer.service";

function firstString(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === "string" ? value : undefined;
}

/** `package.Service/Method`, the span name the RPC conventions prescribe. */
function spanName(call: RpcCallInfo): string {
  return `${call.service.typeName}/${call.method.name}`;
}

function rpcAttributes(call: RpcCallInfo): Attributes {
  return {
    [ATTR_RPC_SYSTEM]: "grpc",
    [ATTR_RPC_SERVICE]: call.service.typeName,
    [ATTR_RPC_METHOD]: call.method.name,
  };
}

function endSpan(span: Span, outcome: CallOutcome): void {
  span.setAttribute(ATTR_RPC_GRPC_STATUS_CODE, outcome.grpcStatus);
  if (outcome.code !== "OK") {
    // Only the stable code: messages and causes stay in this service's logs.
    span.setAttribute(ATTR_ERROR_TYPE, outcome.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.code });
  }
  span.end();
}

function flagsNumber(flags: string): number {
  return Number.parseInt(flags, 16) & 0xff;
}

function flagsHex(flags: number): string {
  return (flags & 0xff).toString(16).padStart(2, "0");
}

/** An OpenTelemetry context whose current span is the one these W3C IDs name (the parent). */
function parentOf(
  traceId: string,
  spanId: string,
  flags: string,
  traceState: string | undefined,
  isRemote: boolean,
): Context {
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId,
    spanId,
    traceFlags: flagsNumber(flags),
    isRemote,
    ...(traceState === undefined ? {} : { traceState: createTraceState(traceState) }),
  });
}

/**
 * Runs the rest of a call and ends `span` when the call ends: at once for a unary call, when
 * its stream ends for a streaming one (each pull of the stream runs inside `context`).
 */
async function traced<Res extends { readonly message: unknown }>(
  span: Span,
  call: RpcCallInfo,
  context: RequestContext,
  failure: (error: unknown) => CallOutcome,
  next: () => Promise<Res>,
): Promise<Res> {
  let res: Res;
  try {
    res = await runWithContext(context, next);
  } catch (error) {
    endSpan(span, failure(error));
    throw error;
  }
  if (call.kind === "server_streaming" && isAsyncIterable(res.message)) {
    return {
      ...res,
      message: observeStream(
        res.message,
        (outcome) => endSpan(span, outcome),
        failure,
        (pull) => runWithContext(context, pull),
      ),
    };
  }
  endSpan(span, OK_OUTCOME);
  return res;
}

/**
 * The server tracing interceptor: one SERVER span per call, child of the caller's span named
 * by the incoming `traceparent` (a new trace without one). The span takes the trace and span
 * IDs the request context already carries, so the IDs on the call's log lines are the IDs of
 * the exported span. Install it in the `observers` slot, after the context interceptor.
 */
export function serverTracing(tracing: Tracing): ServerInterceptor {
  return (next) => (req) => {
    const context =
      currentContext() ??
      contextFromIncoming(
        {
          correlationId: firstString(req.header, CORRELATION_ID_HEADER),
          traceparent: firstString(req.header, TRACEPARENT_HEADER),
          tracestate: firstString(req.header, TRACESTATE_HEADER),
        },
        req.deadlineMs,
      );
    const caller = parseTraceParent(firstString(req.header, TRACEPARENT_HEADER));
    // The request context continues the caller's trace only when its traceparent was valid;
    // a context that started a new trace has a trace ID of its own and no remote parent.
    const parent =
      caller !== undefined && caller.traceId === context.traceId
        ? parentOf(caller.traceId, caller.parentId, caller.flags, context.traceState, true)
        : ROOT_CONTEXT;
    const span = tracing.startSpan(
      spanName(req),
      { kind: SpanKind.SERVER, attributes: rpcAttributes(req) },
      parent,
      { traceId: context.traceId, spanId: context.spanId },
    );
    return traced(span, req, context, serverFailure, () => next(req));
  };
}

/**
 * The client tracing interceptor: one CLIENT span per outgoing call, child of the current
 * request's span (a new trace outside a request). The call's `traceparent` names the client
 * span, so the downstream's server span becomes its child; the rest of the client chain runs
 * in a request context whose span is the client span.
 */
export function clientTracing(tracing: Tracing): ClientInterceptor {
  return (next) => (req) => {
    const outer = currentContext();
    const parent =
      outer === undefined
        ? ROOT_CONTEXT
        : parentOf(outer.traceId, outer.spanId, outer.traceFlags, outer.traceState, false);
    const span = tracing.startSpan(
      spanName(req),
      {
        kind: SpanKind.CLIENT,
        attributes: { ...rpcAttributes(req), [ATTR_PEER_SERVICE]: req.target },
      },
      parent,
    );
    const ids = span.spanContext();
    const base =
      outer ??
      contextFromIncoming({ correlationId: firstString(req.header, CORRELATION_ID_HEADER) });
    const context = contextWithSpan(base, {
      traceId: ids.traceId,
      spanId: ids.spanId,
      traceFlags: flagsHex(ids.traceFlags),
    });
    // Set here as well as through the context, so the header is right whether the built-in
    // trace-context interceptor runs before or after this one.
    req.header.set(
      TRACEPARENT_HEADER,
      `00-${context.traceId}-${context.spanId}-${context.traceFlags}`,
    );
    if (context.traceState !== undefined) req.header.set(TRACESTATE_HEADER, context.traceState);
    return traced(span, req, context, clientFailure, () => next(req));
  };
}
