export {
  contextFromIncoming,
  CORRELATION_ID_HEADER,
  currentContext,
  isValidCorrelationId,
  outgoingHeaders,
  runWithContext,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
  type IncomingTraceHeaders,
  type RequestContext,
} from "./correlation.ts";
export {
  formatTraceParent,
  newSpanId,
  newTraceId,
  parseTraceParent,
  type TraceParent,
} from "./trace-context.ts";
