import * as grpc from "@grpc/grpc-js";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import {
  contextFromIncoming,
  currentContext,
  runWithContext,
  type RequestContext,
} from "@authplat/correlation";
import { ServiceError } from "@authplat/errors";
import { createTracing, InMemorySpanExporter, type ReadableSpan } from "@authplat/observability";
import { describe, expect, it } from "vitest";
import type { ClientNext, ServerNext } from "../interceptor.ts";
import { clientTracing, serverTracing } from "./rpc-tracing.ts";
import { clientRequest, drain, messages, serverRequest } from "./telemetry-fixtures.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN = "00f067aa0ba902b7";

function setup() {
  const exporter = new InMemorySpanExporter();
  const tracing = createTracing({ serviceName: "token", exporter });
  if (tracing === undefined) throw new Error("tracing with an exporter must be on");
  return { exporter, tracing, spans: (): ReadableSpan[] => exporter.getFinishedSpans() };
}

/** Runs a server chain the way the server does: inside the context built from the headers. */
function serve(next: ServerNext, header: Record<string, string>, kind?: "server_streaming") {
  const { tracing, spans } = setup();
  const req = serverRequest("IssueTokenPair", { header, ...(kind ? { kind } : {}) });
  const context = contextFromIncoming({
    traceparent: header["traceparent"],
    tracestate: header["tracestate"],
  });
  let seen: RequestContext | undefined;
  const observed: ServerNext = async (r) => {
    seen = currentContext();
    return next(r);
  };
  const result = runWithContext(context, () => serverTracing(tracing)(observed)(req));
  return { result, context, spans, seen: () => seen };
}

const ok: ServerNext = async () => ({ message: {}, trailer: new grpc.Metadata() });

describe("serverTracing", () => {
  it("starts a SERVER span under the caller's span with the span ID the logs carry", async () => {
    const run = serve(ok, {
      traceparent: `00-${TRACE}-${CALLER_SPAN}-01`,
      tracestate: "vendor=1",
    });
    await run.result;
    const [span] = run.spans();
    expect(run.spans()).toHaveLength(1);
    expect(span!.kind).toBe(SpanKind.SERVER);
    expect(span!.name).toBe("auth.token.v1.TokenService/IssueTokenPair");
    expect(span!.spanContext().traceId).toBe(TRACE);
    expect(span!.spanContext().spanId).toBe(run.context.spanId);
    expect(span!.spanContext().traceState?.serialize()).toBe("vendor=1");
    expect(span!.parentSpanContext).toMatchObject({ spanId: CALLER_SPAN, isRemote: true });
    expect(span!.attributes).toEqual({
      "rpc.system": "grpc",
      "rpc.service": "auth.token.v1.TokenService",
      "rpc.method": "IssueTokenPair",
      "rpc.grpc.status_code": 0,
    });
    expect(span!.status.code).toBe(SpanStatusCode.UNSET);
    expect(run.seen()).toBe(run.context);
  });

  it("starts a new trace with the request context's IDs when the caller sent no traceparent", async () => {
    const run = serve(ok, {});
    await run.result;
    const [span] = run.spans();
    expect(span!.parentSpanContext).toBeUndefined();
    expect(span!.spanContext().traceId).toBe(run.context.traceId);
    expect(span!.spanContext().spanId).toBe(run.context.spanId);
  });

  it("marks a failed call ERROR with the platform code and the gRPC status", async () => {
    const run = serve(async () => {
      throw new ServiceError("ACCESS_DENIED", "no");
    }, {});
    await expect(run.result).rejects.toMatchObject({ code: "ACCESS_DENIED" });
    const [span] = run.spans();
    expect(span!.status).toEqual({ code: SpanStatusCode.ERROR, message: "ACCESS_DENIED" });
    expect(span!.attributes["error.type"]).toBe("ACCESS_DENIED");
    expect(span!.attributes["rpc.grpc.status_code"]).toBe(grpc.status.PERMISSION_DENIED);
  });

  it("ends a streaming call's span when the stream ends, pulling inside the request context", async () => {
    const pulledIn: (string | undefined)[] = [];
    async function* observedMessages() {
      for await (const item of messages(2)) {
        pulledIn.push(currentContext()?.spanId);
        yield item;
      }
    }
    const run = serve(
      async () => ({ message: observedMessages(), trailer: new grpc.Metadata() }),
      {},
      "server_streaming",
    );
    const res = await run.result;
    expect(run.spans()).toHaveLength(0);
    // The consumer pulls outside any request context, as the transport does.
    await drain(res.message);
    expect(run.spans()).toHaveLength(1);
    expect(pulledIn).toEqual([run.context.spanId, run.context.spanId]);
  });
});

describe("clientTracing", () => {
  it("starts a CLIENT span under the current span and sends it as the parent", async () => {
    const { tracing, spans } = setup();
    const request = contextFromIncoming({
      correlationId: "c-7",
      traceparent: `00-${TRACE}-${CALLER_SPAN}-01`,
    });
    const req = clientRequest("token", "IssueTokenPair");
    let inside: RequestContext | undefined;
    const next: ClientNext = async () => {
      inside = currentContext();
      return { message: {}, trailer: new grpc.Metadata() };
    };
    await runWithContext(request, () => clientTracing(tracing)(next)(req));

    const [span] = spans();
    expect(span!.kind).toBe(SpanKind.CLIENT);
    expect(span!.parentSpanContext?.spanId).toBe(request.spanId);
    expect(span!.spanContext().traceId).toBe(TRACE);
    expect(span!.attributes).toMatchObject({ "peer.service": "token", "rpc.grpc.status_code": 0 });
    const clientSpanId = span!.spanContext().spanId;
    expect(clientSpanId).not.toBe(request.spanId);
    expect(req.header.get("traceparent")).toEqual([`00-${TRACE}-${clientSpanId}-01`]);
    expect(inside).toMatchObject({ correlationId: "c-7", traceId: TRACE, spanId: clientSpanId });
  });

  it("records the downstream's failure and starts a new trace outside a request", async () => {
    const { tracing, spans } = setup();
    const req = clientRequest("token", "IssueTokenPair");
    const next: ClientNext = async () => {
      throw new ServiceError("DEADLINE_EXCEEDED", "too slow");
    };
    await expect(clientTracing(tracing)(next)(req)).rejects.toMatchObject({
      code: "DEADLINE_EXCEEDED",
    });
    const [span] = spans();
    expect(span!.parentSpanContext).toBeUndefined();
    expect(span!.status.code).toBe(SpanStatusCode.ERROR);
    expect(span!.attributes["error.type"]).toBe("DEADLINE_EXCEEDED");
    expect(req.header.get("traceparent")).toEqual([
      `00-${span!.spanContext().traceId}-${span!.spanContext().spanId}-01`,
    ]);
  });
});

describe("createTracing", () => {
  it("is off without an OTLP endpoint or an exporter", () => {
    expect(createTracing({ serviceName: "token" })).toBeUndefined();
    expect(createTracing({ serviceName: "token", otlpEndpoint: "" })).toBeUndefined();
  });
});
