import { describe, expect, it } from "vitest";
import {
  contextFromIncoming,
  currentContext,
  outgoingHeaders,
  runWithContext,
} from "./correlation.ts";
import { parseTraceParent } from "./trace-context.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

describe("contextFromIncoming", () => {
  it("keeps a well-formed correlation ID and continues the caller's trace with a new span", () => {
    const context = contextFromIncoming({
      correlationId: "abc-123",
      traceparent: `00-${TRACE}-${PARENT}-01`,
      tracestate: "vendor=1",
    });
    expect(context.correlationId).toBe("abc-123");
    expect(context.traceId).toBe(TRACE);
    expect(context.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(context.spanId).not.toBe(PARENT);
    expect(context.traceState).toBe("vendor=1");
  });

  it("mints a correlation ID when the incoming one is missing or unsafe", () => {
    const minted = contextFromIncoming({ correlationId: "bad id\nwith newline" });
    expect(minted.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(contextFromIncoming({}).correlationId).not.toBe(minted.correlationId);
  });

  it("starts a new trace and drops tracestate when traceparent is invalid", () => {
    const context = contextFromIncoming({
      traceparent: `00-${"0".repeat(32)}-${PARENT}-01`,
      tracestate: "vendor=1",
    });
    expect(context.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(context.traceId).not.toBe("0".repeat(32));
    expect(context.traceState).toBeUndefined();
  });
});

describe("parseTraceParent", () => {
  it.each([
    ["uppercase hex", `00-${TRACE.toUpperCase()}-${PARENT}-01`],
    ["version ff", `ff-${TRACE}-${PARENT}-01`],
    ["zero parent", `00-${TRACE}-${"0".repeat(16)}-01`],
    ["extra field on version 00", `00-${TRACE}-${PARENT}-01-extra`],
    ["short trace id", `00-${TRACE.slice(1)}-${PARENT}-01`],
  ])("rejects %s", (_name, value) => {
    expect(parseTraceParent(value)).toBeUndefined();
  });

  it("accepts future versions with extra fields", () => {
    expect(parseTraceParent(`01-${TRACE}-${PARENT}-01-extra`)).toEqual({
      traceId: TRACE,
      parentId: PARENT,
      flags: "01",
    });
  });
});

describe("outgoingHeaders", () => {
  it("passes on the correlation ID and names this span as the parent", async () => {
    const context = contextFromIncoming({
      correlationId: "c-1",
      traceparent: `00-${TRACE}-${PARENT}-00`,
    });
    const headers = await runWithContext(context, async () => {
      await Promise.resolve();
      expect(currentContext()).toBe(context);
      return outgoingHeaders();
    });
    expect(headers["x-correlation-id"]).toBe("c-1");
    expect(headers["traceparent"]).toBe(`00-${TRACE}-${context.spanId}-00`);
  });

  it("starts a correlation ID and trace outside any request", () => {
    const headers = outgoingHeaders();
    expect(headers["x-correlation-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(parseTraceParent(headers["traceparent"])).toBeDefined();
  });
});
