import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { ROOT_CONTEXT, SpanKind } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import { createTracing } from "./tracing.ts";

interface Received {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly contentType: string | undefined;
  readonly body: Buffer;
}

/** A stand-in OTLP/HTTP collector that records what it is sent. */
async function fakeCollector() {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      received.push({
        method: req.method,
        url: req.url,
        contentType: req.headers["content-type"],
        body: Buffer.concat(chunks),
      });
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("createTracing", () => {
  it("exports spans as OTLP protobuf to <endpoint>/v1/traces when it shuts down", async () => {
    const collector = await fakeCollector();
    try {
      const tracing = createTracing({ serviceName: "token-eu", otlpEndpoint: collector.url });
      expect(tracing).toBeDefined();
      const span = tracing!.startSpan(
        "auth.token.v1.TokenService/IssueTokenPair",
        { kind: SpanKind.SERVER },
        ROOT_CONTEXT,
        { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" },
      );
      span.end();
      // Batched: nothing is sent before the flush that shutdown performs.
      expect(collector.received).toHaveLength(0);
      await tracing!.shutdown();

      expect(collector.received).toHaveLength(1);
      const [request] = collector.received;
      expect(request).toMatchObject({
        method: "POST",
        url: "/v1/traces",
        contentType: "application/x-protobuf",
      });
      // Protobuf carries IDs as raw bytes and strings as UTF-8.
      const body = request!.body;
      expect(body.includes(Buffer.from("4bf92f3577b34da6a3ce929d0e0e4736", "hex"))).toBe(true);
      expect(body.includes(Buffer.from("00f067aa0ba902b7", "hex"))).toBe(true);
      expect(body.includes(Buffer.from("token-eu"))).toBe(true);
      expect(body.includes(Buffer.from("auth.token.v1.TokenService/IssueTokenPair"))).toBe(true);
    } finally {
      await collector.close();
    }
  });

  it("uses fresh random IDs when none are preset", async () => {
    const collector = await fakeCollector();
    try {
      const tracing = createTracing({ serviceName: "token", otlpEndpoint: collector.url })!;
      const a = tracing.startSpan("a", {}, ROOT_CONTEXT);
      const b = tracing.startSpan("b", {}, ROOT_CONTEXT, {
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        spanId: "00f067aa0ba902b7",
      });
      const c = tracing.startSpan("c", {}, ROOT_CONTEXT);
      expect(b.spanContext().spanId).toBe("00f067aa0ba902b7");
      expect(a.spanContext().spanId).toMatch(/^[0-9a-f]{16}$/);
      expect(c.spanContext().spanId).not.toBe("00f067aa0ba902b7");
      expect(c.spanContext().traceId).not.toBe("4bf92f3577b34da6a3ce929d0e0e4736");
      for (const span of [a, b, c]) span.end();
      await tracing.shutdown();
    } finally {
      await collector.close();
    }
  });

  it("is off without an endpoint or exporter", () => {
    expect(createTracing({ serviceName: "token" })).toBeUndefined();
  });
});
