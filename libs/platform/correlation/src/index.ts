export {
  contextFromIncoming,
  contextWithSpan,
  CORRELATION_ID_HEADER,
  currentContext,
  outgoingHeaders,
  runWithContext,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
  type IncomingTraceHeaders,
  type RequestContext,
  type SpanIdentity,
} from "./correlation.ts";
export { parseTraceParent, type TraceParent } from "./trace-context.ts";
