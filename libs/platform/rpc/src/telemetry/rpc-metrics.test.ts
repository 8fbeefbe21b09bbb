import * as grpc from "@grpc/grpc-js";
import { ServiceError } from "@authplat/errors";
import { createMetricsRegistry, startMetricsServer } from "@authplat/observability";
import { describe, expect, it } from "vitest";
import type { ClientNext, ServerNext, ServerResponse } from "../interceptor.ts";
import { ERROR_CODE_TRAILER, RemoteCallError } from "../status-mapping.ts";
import { createRpcMetrics } from "./rpc-metrics.ts";
import {
  clientRequest,
  drain,
  messages,
  parseExposition,
  serverRequest,
  seriesKey,
} from "./telemetry-fixtures.ts";

const ISSUE = "/auth.token.v1.TokenService/IssueTokenPair";
const JWKS = "/auth.token.v1.TokenService/GetJwks";

function setup() {
  const metrics = createMetricsRegistry({ defaultMetrics: false });
  return { metrics, rpc: createRpcMetrics(metrics) };
}

async function scrape(metrics: ReturnType<typeof createMetricsRegistry>) {
  return parseExposition(await metrics.expose());
}

const ok: ServerNext = async () => ({ message: {}, trailer: new grpc.Metadata() });
const failWith =
  (error: unknown): ServerNext =>
  async () => {
    throw error;
  };

describe("server RPC metrics", () => {
  it("counts finished calls by method, platform code and gRPC status, and times each", async () => {
    const { metrics, rpc } = setup();
    await rpc.server(ok)(serverRequest("IssueTokenPair"));
    await rpc.server(ok)(serverRequest("IssueTokenPair"));
    await expect(
      rpc.server(failWith(new ServiceError("CALLER_NOT_ALLOWED", "no")))(serverRequest("GetJwks")),
    ).rejects.toMatchObject({ code: "CALLER_NOT_ALLOWED" });
    await expect(rpc.server(failWith(new Error("boom")))(serverRequest("GetJwks"))).rejects.toThrow(
      "boom",
    );

    const series = await scrape(metrics);
    const requests = (method: string, code: string, grpcStatus: string) =>
      series.get(seriesKey("rpc_server_requests_total", { method, code, grpc_status: grpcStatus }));
    expect(requests(ISSUE, "OK", "OK")).toBe(2);
    expect(requests(JWKS, "CALLER_NOT_ALLOWED", "PERMISSION_DENIED")).toBe(1);
    expect(requests(JWKS, "INTERNAL", "INTERNAL")).toBe(1);
    expect(series.get(seriesKey("rpc_server_duration_seconds_count", { method: ISSUE }))).toBe(2);
    expect(series.get(seriesKey("rpc_server_duration_seconds_count", { method: JWKS }))).toBe(2);
    expect(
      series.get(seriesKey("rpc_server_duration_seconds_bucket", { method: ISSUE, le: "+Inf" })),
    ).toBe(2);
    expect(series.get(seriesKey("rpc_server_in_flight", { method: ISSUE }))).toBe(0);
  });

  it("counts a downstream failure escaping a handler as what the caller is answered", async () => {
    const { metrics, rpc } = setup();
    const trailer = new grpc.Metadata();
    trailer.set(ERROR_CODE_TRAILER, "CALLER_NOT_ALLOWED");
    const downstream = new RemoteCallError({
      code: grpc.status.PERMISSION_DENIED,
      details: "denied downstream",
      metadata: trailer,
    });
    await expect(rpc.server(failWith(downstream))(serverRequest("IssueTokenPair"))).rejects.toBe(
      downstream,
    );
    const series = await scrape(metrics);
    expect(
      series.get(
        seriesKey("rpc_server_requests_total", {
          method: ISSUE,
          code: "INTERNAL",
          grpc_status: "INTERNAL",
        }),
      ),
    ).toBe(1);
  });

  it("reports a call as in flight until it finishes", async () => {
    const { metrics, rpc } = setup();
    let finish!: (res: ServerResponse) => void;
    const pending = rpc.server(() => new Promise<ServerResponse>((r) => (finish = r)))(
      serverRequest("IssueTokenPair"),
    );
    const inFlight = async () =>
      (await scrape(metrics)).get(seriesKey("rpc_server_in_flight", { method: ISSUE }));
    expect(await inFlight()).toBe(1);
    finish({ message: {}, trailer: new grpc.Metadata() });
    await pending;
    expect(await inFlight()).toBe(0);
  });

  it("counts a streaming call when its stream ends, with the stream's outcome", async () => {
    const { metrics, rpc } = setup();
    const streaming =
      (stream: AsyncIterable<unknown>): ServerNext =>
      async () => ({
        message: stream,
        trailer: new grpc.Metadata(),
      });
    const key = (code: string, grpcStatus: string) =>
      seriesKey("rpc_server_requests_total", { method: ISSUE, code, grpc_status: grpcStatus });

    const whole = await rpc.server(streaming(messages(3)))(
      serverRequest("IssueTokenPair", { kind: "server_streaming" }),
    );
    // The OK series exists from the first call (at 0), but the stream has not ended yet.
    expect((await scrape(metrics)).get(key("OK", "OK"))).toBe(0);
    expect(await drain(whole.message)).toHaveLength(3);
    expect((await scrape(metrics)).get(key("OK", "OK"))).toBe(1);

    const failing = await rpc.server(
      streaming(messages(1, new ServiceError("UNAVAILABLE", "store down"))),
    )(serverRequest("IssueTokenPair", { kind: "server_streaming" }));
    await expect(drain(failing.message)).rejects.toMatchObject({ code: "UNAVAILABLE" });

    const abandoned = await rpc.server(streaming(messages(5)))(
      serverRequest("IssueTokenPair", { kind: "server_streaming" }),
    );
    const iterator = (abandoned.message as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    await iterator.return?.();

    const series = await scrape(metrics);
    expect(series.get(key("OK", "OK"))).toBe(1);
    expect(series.get(key("UNAVAILABLE", "UNAVAILABLE"))).toBe(1);
    expect(series.get(key("CANCELLED", "CANCELLED"))).toBe(1);
    expect(series.get(seriesKey("rpc_server_in_flight", { method: ISSUE }))).toBe(0);
    expect(series.get(seriesKey("rpc_server_duration_seconds_count", { method: ISSUE }))).toBe(3);
  });
});

describe("client RPC metrics", () => {
  it("counts outgoing calls by target, method and the downstream's code", async () => {
    const { metrics, rpc } = setup();
    const trailer = new grpc.Metadata();
    trailer.set(ERROR_CODE_TRAILER, "TOKEN_REVOKED");
    const remoteFailure: ClientNext = async () => {
      throw new RemoteCallError({
        code: grpc.status.UNAUTHENTICATED,
        details: "revoked",
        metadata: trailer,
      });
    };
    const success: ClientNext = async () => ({ message: {}, trailer: new grpc.Metadata() });

    await rpc.client(success)(clientRequest("token", "IssueTokenPair"));
    await expect(
      rpc.client(remoteFailure)(clientRequest("token", "IssueTokenPair")),
    ).rejects.toBeInstanceOf(RemoteCallError);
    await rpc.client(success)(clientRequest("iam-policy", "GetJwks"));

    const series = await scrape(metrics);
    const requests = (target: string, method: string, code: string) =>
      series.get(seriesKey("rpc_client_requests_total", { target, method, code }));
    expect(requests("token", ISSUE, "OK")).toBe(1);
    expect(requests("token", ISSUE, "TOKEN_REVOKED")).toBe(1);
    expect(requests("iam-policy", JWKS, "OK")).toBe(1);
    expect(
      series.get(
        seriesKey("rpc_client_duration_seconds_count", { target: "token", method: ISSUE }),
      ),
    ).toBe(2);
  });
});

describe("metrics registry", () => {
  it("returns the same metric for the same name and refuses a name taken by another type", () => {
    const { metrics } = setup();
    const first = metrics.counter({
      name: "breaker_open_total",
      help: "h",
      labelNames: ["target"],
    });
    expect(metrics.counter({ name: "breaker_open_total", help: "h", labelNames: ["target"] })).toBe(
      first,
    );
    expect(() => metrics.gauge({ name: "breaker_open_total", help: "h" })).toThrow(
      "metric breaker_open_total is already registered with another type",
    );
  });

  it("keeps each service's metrics apart", async () => {
    const a = setup();
    const b = setup();
    await a.rpc.server(ok)(serverRequest("IssueTokenPair"));
    const key = seriesKey("rpc_server_requests_total", {
      method: ISSUE,
      code: "OK",
      grpc_status: "OK",
    });
    expect((await scrape(a.metrics)).get(key)).toBe(1);
    expect((await scrape(b.metrics)).get(key)).toBeUndefined();
  });
});

describe("metrics endpoint", () => {
  it("serves GET /metrics in the exposition format and 404 for anything else", async () => {
    const { metrics, rpc } = setup();
    await rpc.server(ok)(serverRequest("IssueTokenPair"));
    const server = await startMetricsServer({ host: "127.0.0.1", port: 0, metrics });
    try {
      const base = `http://127.0.0.1:${server.port}`;
      const scraped = await fetch(`${base}/metrics?name[]=x`);
      expect(scraped.status).toBe(200);
      expect(scraped.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
      const text = await scraped.text();
      expect(text).toContain("# TYPE rpc_server_requests_total counter");
      expect(text).toContain("# TYPE rpc_server_duration_seconds histogram");
      expect((await fetch(`${base}/`)).status).toBe(404);
      expect((await fetch(`${base}/metrics/extra`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`, { method: "POST" })).status).toBe(404);
    } finally {
      await server.close();
    }
    await expect(fetch(`http://127.0.0.1:${server.port}/metrics`)).rejects.toThrow();
  });
});
