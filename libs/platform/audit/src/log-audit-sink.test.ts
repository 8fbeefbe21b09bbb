import { describe, expect, it } from "vitest";
import type { AuditEvent } from "./audit-event.ts";
import { createLogAuditSink, createMemoryAuditSink } from "./log-audit-sink.ts";

const event: AuditEvent = {
  timestamp: "2026-01-01T00:00:00.000Z",
  type: "authz.decision",
  actor: "user:alice",
  action: "read",
  resource: "document:d-1",
  result: "deny",
  correlationId: "c-1",
  callerSpiffeId: "spiffe://auth.local/ns/auth/sa/auth-edge",
  details: { decisionId: "d-1" },
};

describe("createLogAuditSink", () => {
  it("writes each event as one info line under the audit key", () => {
    const lines: { fields: object; message: string }[] = [];
    const sink = createLogAuditSink({ info: (fields, message) => lines.push({ fields, message }) });
    sink.record(event);
    expect(lines).toEqual([{ fields: { audit: event }, message: "audit" }]);
  });
});

describe("createMemoryAuditSink", () => {
  it("keeps the events in order", () => {
    const sink = createMemoryAuditSink();
    sink.record(event);
    sink.record({ ...event, result: "allow" });
    expect(sink.events.map((e) => e.result)).toEqual(["deny", "allow"]);
  });
});
