import { contextFromIncoming, runWithContext } from "@authplat/correlation";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.ts";

function capture(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString("utf8")) as Record<string, unknown>);
      done();
    },
  });
  return { lines, stream };
}

describe("createLogger", () => {
  it("puts the correlation and trace IDs of the current request on every line", () => {
    const { lines, stream } = capture();
    const logger = createLogger({ service: "token", level: "info", destination: stream });
    const context = contextFromIncoming({ correlationId: "req-42" });
    runWithContext(context, () => logger.info("inside"));
    logger.info("outside");
    expect(lines[0]).toMatchObject({
      service: "token",
      level: "info",
      msg: "inside",
      correlationId: "req-42",
      traceId: context.traceId,
      spanId: context.spanId,
    });
    expect(lines[1]).not.toHaveProperty("correlationId");
  });

  it("redacts secrets at the top level and one level down", () => {
    const { lines, stream } = capture();
    const logger = createLogger({ service: "token", level: "info", destination: stream });
    logger.info({ refreshToken: "rt-secret", request: { password: "hunter2" } }, "issued");
    const line = JSON.stringify(lines[0]);
    expect(line).not.toContain("rt-secret");
    expect(line).not.toContain("hunter2");
    expect(lines[0]).toMatchObject({ refreshToken: "[redacted]" });
  });

  it("prints error codes, which are not secrets", () => {
    const { lines, stream } = capture();
    const logger = createLogger({ service: "token", level: "info", destination: stream });
    logger.info(
      { code: "REFRESH_TOKEN_REUSED", status: "UNAUTHENTICATED", err: { code: "ECONNREFUSED" } },
      "rpc failed",
    );
    expect(lines[0]).toMatchObject({
      code: "REFRESH_TOKEN_REUSED",
      err: { code: "ECONNREFUSED" },
    });
  });

  it("still redacts authorization codes, one-time codes, verifiers and client secrets", () => {
    const { lines, stream } = capture();
    const logger = createLogger({
      service: "session-identity",
      level: "info",
      destination: stream,
    });
    logger.info(
      {
        authorizationCode: "ac-top",
        request: { code: "ac-in-request", codeVerifier: "pkce-verifier", clientSecret: "cs-1" },
        body: { code: "ac-in-body", code_verifier: "pkce-2", client_secret: "cs-2" },
        challenge: { totpCode: "123456", backupCode: "bk-9999" },
        session: { sessionToken: "st-secret" },
        headers: { authorization: "Bearer at-secret", cookie: "sid=cookie-secret" },
      },
      "exchange",
    );
    const line = JSON.stringify(lines[0]);
    for (const secret of [
      "ac-top",
      "ac-in-request",
      "ac-in-body",
      "pkce-verifier",
      "pkce-2",
      "cs-1",
      "cs-2",
      "123456",
      "bk-9999",
      "st-secret",
      "at-secret",
      "cookie-secret",
    ]) {
      expect(line).not.toContain(secret);
    }
    expect(lines[0]).toMatchObject({
      authorizationCode: "[redacted]",
      request: { code: "[redacted]", codeVerifier: "[redacted]" },
      challenge: { totpCode: "[redacted]" },
    });
  });
});
