import { describe, expect, it } from "vitest";
import { newSpanId, newTraceId } from "./trace-context.ts";

describe("newSpanId and newTraceId", () => {
  it("give W3C-shaped IDs that never repeat, across refills of the random pool", () => {
    // 4 KiB of pool is 512 span IDs or 256 trace IDs: this crosses several refills.
    const spans = Array.from({ length: 3_000 }, newSpanId);
    const traces = Array.from({ length: 3_000 }, newTraceId);
    for (const id of spans) expect(id).toMatch(/^[0-9a-f]{16}$/);
    for (const id of traces) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(spans).size).toBe(spans.length);
    expect(new Set(traces).size).toBe(traces.length);
    // No byte is handed out twice: a span ID is never the start or end of a trace ID.
    const traceHalves = new Set(traces.flatMap((id) => [id.slice(0, 16), id.slice(16)]));
    expect(spans.filter((id) => traceHalves.has(id))).toEqual([]);
  });
});
