import { describe, expect, it } from "vitest";
import { formatLogLine } from "./dev-log-format.ts";

const plain = { color: false, nameWidth: 10 };

describe("formatLogLine", () => {
  it("shows a JSON log line as time, level, service, message and fields on one line", () => {
    const line = JSON.stringify({
      level: "info",
      time: "2026-11-26T12:00:01.234Z",
      service: "token",
      port: 50052,
      spiffeId: "spiffe://auth.local/ns/auth/sa/token",
      msg: "serving",
    });
    expect(formatLogLine("token", line, plain)).toBe(
      "12:00:01.234 INFO  token      │ serving port=50052 spiffeId=spiffe://auth.local/ns/auth/sa/token",
    );
  });

  it("keeps a warning's error on one line, without its stack", () => {
    const line = JSON.stringify({
      level: "warn",
      time: "2026-11-26T12:00:02.000Z",
      err: {
        type: "RemoteCallError",
        code: "UNAVAILABLE",
        message: "no connection\nmore",
        stack: "at x\nat y",
      },
      msg: "waiting",
    });
    const out = formatLogLine("auth-edge", line, plain);
    expect(out).toBe(
      '12:00:02.000 WARN  auth-edge  │ waiting err="RemoteCallError [UNAVAILABLE]: no connection"',
    );
    expect(out).not.toContain("at x");
  });

  it("shows a taken port at fatal without a stack: its message says what to do", () => {
    const line = JSON.stringify({
      level: "fatal",
      time: "2026-11-26T12:00:03.000Z",
      err: {
        type: "PortInUseError",
        message: "GRPC_PORT: 127.0.0.1:50052 is in use",
        stack: "at x",
      },
      msg: "token service failed to start",
    });
    const out = formatLogLine("token", line, plain);
    expect(out).toContain('err="PortInUseError: GRPC_PORT: 127.0.0.1:50052 is in use"');
    expect(out).not.toContain("at x");
  });

  it("keeps the stack of an error logged at level error, indented under the line", () => {
    const line = JSON.stringify({
      level: "error",
      time: "2026-11-26T12:00:03.000Z",
      err: { type: "TypeError", message: "boom", stack: "TypeError: boom\n    at f (a.ts:1:1)" },
      msg: "rpc failed with an unexpected error",
    });
    const lines = formatLogLine("mfa", line, plain).split("\n");
    expect(lines[0]).toBe(
      '12:00:03.000 ERROR mfa        │ rpc failed with an unexpected error err="TypeError: boom"',
    );
    expect(lines.slice(1)).toEqual([
      "                   mfa        │   TypeError: boom",
      "                   mfa        │       at f (a.ts:1:1)",
    ]);
  });

  it("quotes values with spaces and hides trace and span IDs", () => {
    const line = JSON.stringify({
      level: "debug",
      time: "2026-11-26T12:00:04.000Z",
      traceId: "a".repeat(32),
      spanId: "b".repeat(16),
      correlationId: "c-1",
      reason: "two words",
      msg: "rpc completed",
    });
    expect(formatLogLine("token", line, plain)).toBe(
      '12:00:04.000 DEBUG token      │ rpc completed correlationId=c-1 reason="two words"',
    );
  });

  it("passes a line that is not JSON through behind the same prefix", () => {
    expect(formatLogLine("token", "(node:1) Warning: something", plain)).toBe(
      "             token      │ (node:1) Warning: something",
    );
    expect(formatLogLine("token", "{not json", plain)).toBe("             token      │ {not json");
  });

  it("colours the level only when asked to", () => {
    const line = JSON.stringify({ level: "error", time: "2026-11-26T12:00:05.000Z", msg: "x" });
    expect(formatLogLine("token", line, { color: true, nameWidth: 5 })).toContain(
      "\x1b[31mERROR\x1b[0m",
    );
    expect(formatLogLine("token", line, plain)).not.toContain("\x1b[");
  });
});
