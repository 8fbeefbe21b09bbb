import { describe, expect, it } from "vitest";
import {
  contextFromIncoming,
  contextWithSpan,
  outgoingHeaders,
  runWithContext,
} from "./correlation.ts";

describe("contextWithSpan", () => {
  it("keeps the correlation ID and trace state and makes the span the outgoing parent", () => {
    const request = contextFromIncoming(
      {
        correlationId: "c-9",
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        tracestate: "vendor=1",
      },
      1_000,
    );
    const inSpan = contextWithSpan(request, {
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "b7ad6b7169203331",
      traceFlags: "00",
    });
    expect(inSpan).toEqual({ ...request, spanId: "b7ad6b7169203331", traceFlags: "00" });
    expect(inSpan).toSatisfy(Object.isFrozen);
    expect(request.spanId).not.toBe("b7ad6b7169203331");
    expect(runWithContext(inSpan, outgoingHeaders)).toEqual({
      "x-correlation-id": "c-9",
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-00",
      tracestate: "vendor=1",
    });
  });
});
