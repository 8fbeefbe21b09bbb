import { once } from "node:events";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { ServiceError } from "@authplat/errors";
import {
  createLogger,
  InMemorySpanExporter,
  PortInUseError,
  startMetricsServer,
  type Logger,
  type MetricsServer,
  type ReadableSpan,
} from "@authplat/observability";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki, type TestPki } from "@authplat/spiffe/test-pki";
import { createRpcClient, type RpcClient } from "../client.ts";
import { sameCallersForEveryMethod } from "../access-rules.ts";
import { defineService } from "../handlers.ts";
import { startRpcServer, type RpcServer } from "../server.ts";
import { unimplementedHandlers } from "../unimplemented.ts";
import { startServiceTelemetry, type ServiceTelemetry } from "./service-telemetry.ts";
import { parseExposition, seriesKey } from "./telemetry-fixtures.ts";

const ISSUE = "/auth.token.v1.TokenService/IssueTokenPair";

/** A logger whose JSON lines the test reads back. */
function capturingLogger(service: string): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString("utf8")) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ service, level: "debug", destination: stream }), lines };
}

let pki: TestPki;
const exporter = new InMemorySpanExporter();
// "upstream" (A) serves TokenService as auth-edge and forwards to "downstream" (B), the token
// service; both run in this process, each with its own telemetry.
let upstream: { server: RpcServer; telemetry: ServiceTelemetry; lines: Record<string, unknown>[] };
let downstream: {
  server: RpcServer;
  telemetry: ServiceTelemetry;
  lines: Record<string, unknown>[];
};
let toDownstream: RpcClient<typeof TokenService>;
let client: RpcClient<typeof TokenService>;
let metricsEndpoint: MetricsServer;

beforeAll(async () => {
  pki = await createTestPki();

  const b = capturingLogger("token");
  const bTelemetry = await startServiceTelemetry({
    name: "token",
    settings: {},
    logger: b.logger,
    spanExporter: exporter,
    defaultMetrics: false,
  });
  const bServer = await startRpcServer({
    name: "token",
    host: "127.0.0.1",
    port: 0,
    tls: pki.files("token"),
    accessRules: sameCallersForEveryMethod([TokenService], [pki.idOf("auth-edge")]),
    services: [
      defineService(TokenService, {
        ...unimplementedHandlers(TokenService),
        async issueTokenPair(request, context) {
          context.logger.info("issuing in token");
          if (request.subject === "revoked") throw new ServiceError("TOKEN_REVOKED", "revoked");
          return { accessToken: `token for ${request.subject}`, tokenType: "Bearer" };
        },
      }),
    ],
    logger: b.logger,
    shutdownGraceMs: 1_000,
    observers: bTelemetry.observers,
  });
  bServer.markServing();
  downstream = { server: bServer, telemetry: bTelemetry, lines: b.lines };

  const a = capturingLogger("auth-edge");
  const aTelemetry = await startServiceTelemetry({
    name: "auth-edge",
    settings: {},
    logger: a.logger,
    spanExporter: exporter,
    defaultMetrics: false,
  });
  toDownstream = await createRpcClient(TokenService, {
    address: `127.0.0.1:${bServer.port}`,
    tls: pki.files("auth-edge"),
    serverId: parseSpiffeId(pki.idOf("token")),
    target: "token",
    interceptors: aTelemetry.clientInterceptors,
  });
  const aServer = await startRpcServer({
    name: "auth-edge",
    host: "127.0.0.1",
    port: 0,
    tls: pki.files("auth-edge"),
    accessRules: sameCallersForEveryMethod([TokenService], [pki.idOf("operator")]),
    services: [
      defineService(TokenService, {
        ...unimplementedHandlers(TokenService),
        async issueTokenPair(request, context) {
          context.logger.info("forwarding from auth-edge");
          return toDownstream.issueTokenPair(request);
        },
      }),
    ],
    logger: a.logger,
    shutdownGraceMs: 1_000,
    observers: aTelemetry.observers,
  });
  aServer.markServing();
  upstream = { server: aServer, telemetry: aTelemetry, lines: a.lines };

  client = await createRpcClient(TokenService, {
    address: `127.0.0.1:${aServer.port}`,
    tls: pki.files("operator"),
    serverId: parseSpiffeId(pki.idOf("auth-edge")),
  });
  metricsEndpoint = await startMetricsServer({
    host: "127.0.0.1",
    port: 0,
    metrics: upstream.telemetry.metrics,
  });
});

afterAll(async () => {
  client?.close();
  toDownstream?.close();
  await metricsEndpoint?.close();
  await Promise.all([upstream?.server.shutdown(), downstream?.server.shutdown()]);
  await Promise.all([upstream?.telemetry.shutdown(), downstream?.telemetry.shutdown()]);
  await pki?.cleanup();
});

function spansOf(traceId: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);
}

function oneSpan(spans: ReadableSpan[], kind: SpanKind, service: string): ReadableSpan {
  const found = spans.filter(
    (span) => span.kind === kind && span.resource.attributes["service.name"] === service,
  );
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe("traces across two services", () => {
  it("links the upstream server span, its client span and the downstream server span", async () => {
    const reply = await client.issueTokenPair({ subject: "alice" });
    expect(reply.accessToken).toBe("token for alice");

    const forwarded = upstream.lines.find((line) => line["msg"] === "forwarding from auth-edge");
    const issued = downstream.lines.find((line) => line["msg"] === "issuing in token");
    expect(forwarded).toBeDefined();
    expect(issued).toBeDefined();
    const traceId = forwarded!["traceId"] as string;
    expect(issued!["traceId"]).toBe(traceId);

    const spans = spansOf(traceId);
    expect(spans).toHaveLength(3);
    const aServer = oneSpan(spans, SpanKind.SERVER, "auth-edge");
    const aClient = oneSpan(spans, SpanKind.CLIENT, "auth-edge");
    const bServer = oneSpan(spans, SpanKind.SERVER, "token");

    // The caller (the test's client) has no tracer: A's server span is where the trace starts.
    expect(aServer.parentSpanContext?.spanId).not.toBe(aClient.spanContext().spanId);
    expect(aClient.parentSpanContext?.spanId).toBe(aServer.spanContext().spanId);
    expect(bServer.parentSpanContext?.spanId).toBe(aClient.spanContext().spanId);
    expect(bServer.parentSpanContext?.isRemote).toBe(true);

    // Log lines name the span of the service that wrote them.
    expect(forwarded!["spanId"]).toBe(aServer.spanContext().spanId);
    expect(issued!["spanId"]).toBe(bServer.spanContext().spanId);

    expect(aClient.name).toBe("auth.token.v1.TokenService/IssueTokenPair");
    expect(aClient.attributes).toMatchObject({
      "rpc.system": "grpc",
      "rpc.service": "auth.token.v1.TokenService",
      "rpc.method": "IssueTokenPair",
      "rpc.grpc.status_code": 0,
      "peer.service": "token",
    });
  });

  it("marks the spans of a failed call ERROR with the platform codes", async () => {
    await expect(client.issueTokenPair({ subject: "revoked" })).rejects.toMatchObject({
      name: "RemoteCallError",
    });
    const failed = downstream.lines.find(
      (line) => line["msg"] === "rpc failed" && line["code"] === "TOKEN_REVOKED",
    );
    expect(failed).toBeDefined();
    const spans = spansOf(failed!["traceId"] as string);
    const bServer = oneSpan(spans, SpanKind.SERVER, "token");
    const aClient = oneSpan(spans, SpanKind.CLIENT, "auth-edge");
    const aServer = oneSpan(spans, SpanKind.SERVER, "auth-edge");
    expect(bServer.status).toEqual({ code: SpanStatusCode.ERROR, message: "TOKEN_REVOKED" });
    expect(bServer.spanContext().spanId).toBe(failed!["spanId"]);
    expect(aClient.attributes).toMatchObject({
      "error.type": "TOKEN_REVOKED",
      "rpc.grpc.status_code": 16,
    });
    // A downstream's verdict is not ours: A answers INTERNAL.
    expect(aServer.attributes).toMatchObject({
      "error.type": "INTERNAL",
      "rpc.grpc.status_code": 13,
    });
  });
});

describe("metrics of a real server", () => {
  it("counts OK, failed and denied calls, scraped from the HTTP endpoint", async () => {
    const outsider = await createRpcClient(TokenService, {
      address: `127.0.0.1:${upstream.server.port}`,
      tls: pki.files("outsider"),
      serverId: parseSpiffeId(pki.idOf("auth-edge")),
    });
    const scrape = async () => {
      const response = await fetch(`http://127.0.0.1:${metricsEndpoint.port}/metrics`);
      expect(response.status).toBe(200);
      return parseExposition(await response.text());
    };
    const before = await scrape();
    const count = (series: Map<string, number>, key: string) => series.get(key) ?? 0;
    const okKey = seriesKey("rpc_server_requests_total", {
      method: ISSUE,
      code: "OK",
      grpc_status: "OK",
    });
    const failedKey = seriesKey("rpc_server_requests_total", {
      method: ISSUE,
      code: "INTERNAL",
      grpc_status: "INTERNAL",
    });
    const deniedKey = seriesKey("rpc_server_requests_total", {
      method: ISSUE,
      code: "CALLER_NOT_ALLOWED",
      grpc_status: "PERMISSION_DENIED",
    });
    const clientOkKey = seriesKey("rpc_client_requests_total", {
      target: "token",
      method: ISSUE,
      code: "OK",
    });
    const clientRevokedKey = seriesKey("rpc_client_requests_total", {
      target: "token",
      method: ISSUE,
      code: "TOKEN_REVOKED",
    });
    const durationCount = seriesKey("rpc_server_duration_seconds_count", { method: ISSUE });

    try {
      await client.issueTokenPair({ subject: "a" });
      await client.issueTokenPair({ subject: "b" });
      await client.issueTokenPair({ subject: "c" });
      await expect(client.issueTokenPair({ subject: "revoked" })).rejects.toMatchObject({
        remoteCode: "INTERNAL",
      });
      await expect(outsider.issueTokenPair({ subject: "x" })).rejects.toMatchObject({
        remoteCode: "CALLER_NOT_ALLOWED",
      });
    } finally {
      outsider.close();
    }

    const after = await scrape();
    expect(count(after, okKey) - count(before, okKey)).toBe(3);
    expect(count(after, failedKey) - count(before, failedKey)).toBe(1);
    expect(count(after, deniedKey) - count(before, deniedKey)).toBe(1);
    expect(count(after, durationCount) - count(before, durationCount)).toBe(5);
    expect(count(after, clientOkKey) - count(before, clientOkKey)).toBe(3);
    expect(count(after, clientRevokedKey) - count(before, clientRevokedKey)).toBe(1);
    expect(after.get(seriesKey("rpc_server_in_flight", { method: ISSUE }))).toBe(0);
    // The last bucket holds every observation; every bucket holds at most as many as the next.
    const buckets = [...after.entries()]
      .filter(
        ([key]) => key.startsWith("rpc_server_duration_seconds_bucket{") && key.includes(ISSUE),
      )
      .map(([, value]) => value);
    expect(buckets.length).toBeGreaterThan(20);
    expect(
      after.get(seriesKey("rpc_server_duration_seconds_bucket", { method: ISSUE, le: "+Inf" })),
    ).toBe(after.get(durationCount));
  });
});

/** A port that was free a moment ago (the endpoint needs a fixed one: 0 means "off"). */
async function freePort(): Promise<number> {
  const probe = createServer().listen(0, "127.0.0.1");
  await once(probe, "listening");
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe("startServiceTelemetry", () => {
  it("serves /metrics on METRICS_PORT with the default metrics, and closes it on shutdown", async () => {
    const port = await freePort();
    const telemetry = await startServiceTelemetry({
      name: "mfa",
      settings: { METRICS_HOST: "127.0.0.1", METRICS_PORT: port },
      logger: capturingLogger("mfa").logger,
    });
    expect(telemetry.metricsPort).toBe(port);
    expect(telemetry.tracing).toBeUndefined();
    expect(telemetry.observers).toHaveLength(1);
    expect(telemetry.clientInterceptors).toHaveLength(1);
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    const text = await response.text();
    expect(text).toContain("# TYPE process_cpu_seconds_total counter");
    expect(text).toContain("# TYPE rpc_server_in_flight gauge");
    await telemetry.shutdown();
    await telemetry.shutdown();
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });

  it("names METRICS_PORT and the fix when the port is taken", async () => {
    const taken = createServer().listen(0, "127.0.0.1");
    await once(taken, "listening");
    const port = (taken.address() as AddressInfo).port;
    try {
      const error: unknown = await startServiceTelemetry({
        name: "mfa",
        settings: { METRICS_HOST: "127.0.0.1", METRICS_PORT: port },
        logger: capturingLogger("mfa").logger,
        defaultMetrics: false,
      }).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(PortInUseError);
      expect((error as Error).message).toBe(
        `METRICS_PORT: 127.0.0.1:${port} is already in use by another process (is the platform already running, for example another \`npm start\`?); stop that process or set METRICS_PORT to a free port`,
      );
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it("serves no endpoint and installs no tracing when neither is configured", async () => {
    const telemetry = await startServiceTelemetry({
      name: "mfa",
      settings: {},
      logger: capturingLogger("mfa").logger,
      defaultMetrics: false,
    });
    expect(telemetry.metricsPort).toBeUndefined();
    expect(telemetry.tracing).toBeUndefined();
    await telemetry.shutdown();
  });

  it("installs the tracing interceptors as well when an OTLP endpoint is set", async () => {
    const telemetry = await startServiceTelemetry({
      name: "mfa",
      settings: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" },
      logger: capturingLogger("mfa").logger,
      defaultMetrics: false,
    });
    expect(telemetry.tracing).toBeDefined();
    expect(telemetry.observers).toHaveLength(2);
    expect(telemetry.clientInterceptors).toHaveLength(2);
    await telemetry.shutdown();
  });
});
