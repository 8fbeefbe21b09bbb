import { createServer, type AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthEdgeService } from "@authplat/contracts/auth/auth_edge/v1";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { ServiceError } from "@authplat/errors";
import { createLogger } from "@authplat/observability";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki, type TestPki } from "@authplat/spiffe/test-pki";
import { sameCallersForEveryMethod } from "./access-rules.ts";
import {
  CircuitBreaker,
  circuitBreakerInterceptor,
  classifyOutcome,
  type CircuitBreakerOptions,
  type CircuitStateChange,
} from "./circuit-breaker.ts";
import { createRpcClient } from "./client.ts";
import { defineService } from "./handlers.ts";
import type { ClientInterceptor } from "./interceptor.ts";
import { startRpcServer, type RpcServer } from "./server.ts";
import { RemoteCallError } from "./status-mapping.ts";
import { unimplementedHandlers } from "./unimplemented.ts";

const remote = (code: grpc.status) =>
  new RemoteCallError({ code, details: "downstream said so", metadata: new grpc.Metadata() });

function breakerWithClock(options: Partial<CircuitBreakerOptions> = {}) {
  const clock = { now: 1_000 };
  const changes: CircuitStateChange[] = [];
  const breaker = new CircuitBreaker({
    name: "token",
    trip: { kind: "consecutive", failures: 3 },
    openMs: 5_000,
    nowMs: () => clock.now,
    onStateChange: (change) => changes.push(change),
    ...options,
  });
  return { breaker, clock, changes };
}

const fail = (breaker: CircuitBreaker, code = grpc.status.UNAVAILABLE) =>
  breaker.run(() => Promise.reject(remote(code))).catch((error: unknown) => error);
const succeed = (breaker: CircuitBreaker) => breaker.run(() => Promise.resolve("ok"));

describe("classifyOutcome", () => {
  it.each([
    grpc.status.UNAVAILABLE,
    grpc.status.DEADLINE_EXCEEDED,
    grpc.status.INTERNAL,
    grpc.status.UNKNOWN,
    grpc.status.RESOURCE_EXHAUSTED,
    grpc.status.DATA_LOSS,
  ])("counts gRPC status %i from the downstream as a failure", (code) => {
    expect(classifyOutcome(remote(code))).toBe("failure");
  });

  it.each([
    grpc.status.INVALID_ARGUMENT,
    grpc.status.NOT_FOUND,
    grpc.status.PERMISSION_DENIED,
    grpc.status.UNAUTHENTICATED,
    grpc.status.FAILED_PRECONDITION,
    grpc.status.ALREADY_EXISTS,
    grpc.status.UNIMPLEMENTED,
  ])("takes gRPC status %i as a healthy downstream's answer", (code) => {
    expect(classifyOutcome(remote(code))).toBe("success");
  });

  it("is neutral on our own cancellation and on failures that never reached the wire", () => {
    expect(classifyOutcome(remote(grpc.status.CANCELLED))).toBe("neutral");
    expect(classifyOutcome(new ServiceError("DEADLINE_EXCEEDED", "no time left"))).toBe("neutral");
    expect(classifyOutcome(new TypeError("bug"))).toBe("neutral");
  });
});

describe("CircuitBreaker", () => {
  it("opens after the threshold, then fails at once with CIRCUIT_OPEN and the time left", async () => {
    const { breaker, clock, changes } = breakerWithClock();
    for (let i = 0; i < 3; i++) expect(await fail(breaker)).toBeInstanceOf(RemoteCallError);
    expect(breaker.state).toBe("open");
    clock.now += 1_250;
    let sent = false;
    const error = await breaker
      .run(() => {
        sent = true;
        return Promise.resolve("never");
      })
      .catch((e: unknown) => e);
    expect(sent).toBe(false);
    expect(error).toMatchObject({
      code: "CIRCUIT_OPEN",
      message: "the circuit to token is open",
      retryAfterMs: 3_750,
      grpcStatus: grpc.status.UNAVAILABLE,
    });
    expect(changes).toEqual([{ name: "token", from: "closed", to: "open", atMs: 1_000 }]);
  });

  it("does not count answers of a healthy downstream, and a success resets the run", async () => {
    const { breaker } = breakerWithClock();
    await fail(breaker);
    await fail(breaker);
    await fail(breaker, grpc.status.NOT_FOUND);
    await fail(breaker);
    await fail(breaker);
    expect(breaker.state).toBe("closed");
    await succeed(breaker);
    await fail(breaker);
    await fail(breaker);
    expect(breaker.state).toBe("closed");
    await fail(breaker, grpc.status.DEADLINE_EXCEEDED);
    expect(breaker.state).toBe("open");
  });

  it("closes only when every one of the half-open probes succeeded", async () => {
    const { breaker, clock, changes } = breakerWithClock({ halfOpenProbes: 2 });
    for (let i = 0; i < 3; i++) await fail(breaker);
    clock.now += 5_000;
    let releaseFirst!: () => void;
    const first = breaker.run(() => new Promise<string>((r) => (releaseFirst = () => r("a"))));
    const second = breaker.run(() => Promise.resolve("b"));
    expect(await second).toBe("b");
    // Both probe slots are taken (one still in flight): a third caller is turned away at once.
    expect(await succeed(breaker).catch((e: unknown) => e)).toMatchObject({
      code: "CIRCUIT_OPEN",
      retryAfterMs: 0,
    });
    expect(breaker.state).toBe("half_open");
    releaseFirst();
    expect(await first).toBe("a");
    expect(breaker.state).toBe("closed");
    expect(changes.map((c) => `${c.from}->${c.to}@${c.atMs}`)).toEqual([
      "closed->open@1000",
      "open->half_open@6000",
      "half_open->closed@6000",
    ]);
  });

  it("reopens for the full period when a probe fails", async () => {
    const { breaker, clock } = breakerWithClock({ halfOpenProbes: 2 });
    for (let i = 0; i < 3; i++) await fail(breaker);
    clock.now += 5_000;
    await succeed(breaker);
    clock.now += 10;
    await fail(breaker, grpc.status.INTERNAL);
    expect(breaker.state).toBe("open");
    expect(await succeed(breaker).catch((e: unknown) => e)).toMatchObject({
      code: "CIRCUIT_OPEN",
      retryAfterMs: 5_000,
    });
  });

  it("gives a cancelled probe's slot back", async () => {
    const { breaker, clock } = breakerWithClock();
    for (let i = 0; i < 3; i++) await fail(breaker);
    clock.now += 5_000;
    await fail(breaker, grpc.status.CANCELLED);
    expect(breaker.state).toBe("half_open");
    await succeed(breaker);
    expect(breaker.state).toBe("closed");
  });

  it("trips on the failure ratio of the window once it has the minimum number of calls", async () => {
    const { breaker } = breakerWithClock({
      trip: { kind: "ratio", ratio: 0.5, windowMs: 10_000, minimumCalls: 4, buckets: 10 },
    });
    await succeed(breaker);
    await fail(breaker);
    await fail(breaker);
    expect(breaker.state).toBe("closed"); // 2 of 3: too few calls to judge
    await succeed(breaker);
    await succeed(breaker);
    await fail(breaker);
    expect(breaker.state).toBe("open"); // 3 of 6
  });

  it("forgets outcomes older than the window", async () => {
    const { breaker, clock } = breakerWithClock({
      trip: { kind: "ratio", ratio: 0.5, windowMs: 10_000, minimumCalls: 2, buckets: 10 },
    });
    await fail(breaker);
    clock.now += 10_000;
    await succeed(breaker);
    await succeed(breaker);
    await fail(breaker);
    expect(breaker.state).toBe("closed"); // 1 of 3 within the window
    await fail(breaker);
    expect(breaker.state).toBe("open"); // 2 of 4
  });

  it("is not disturbed by a state observer that throws", async () => {
    const { breaker } = breakerWithClock({
      trip: { kind: "consecutive", failures: 1 },
      onStateChange: () => {
        throw new Error("metrics down");
      },
    });
    await fail(breaker);
    expect(breaker.state).toBe("open");
  });

  it.each<[string, Partial<CircuitBreakerOptions>, string]>([
    [
      "a zero threshold",
      { trip: { kind: "consecutive", failures: 0 } },
      "trip.failures must be an integer ≥ 1",
    ],
    ["no open period", { openMs: 0 }, "openMs must be > 0"],
    ["no probes", { halfOpenProbes: 0 }, "halfOpenProbes must be an integer ≥ 1"],
    [
      "a ratio above 1",
      { trip: { kind: "ratio", ratio: 1.5, windowMs: 1_000, minimumCalls: 1 } },
      "trip.ratio must be in (0, 1]",
    ],
    [
      "a window the buckets do not divide",
      { trip: { kind: "ratio", ratio: 0.5, windowMs: 1_001, minimumCalls: 1 } },
      "trip.windowMs must be a positive multiple of trip.buckets",
    ],
  ])("rejects %s", (_, options, message) => {
    expect(() => breakerWithClock(options)).toThrow(message);
  });
});

describe("circuitBreakerInterceptor over mTLS, in front of a downstream that is down", () => {
  let pki: TestPki;
  let server: RpcServer;
  const sent: string[] = [];
  const changes: CircuitStateChange[] = [];
  const openMs = 30_000;

  beforeAll(async () => {
    pki = await createTestPki();
    // A port nothing listens on: every call to it fails with UNAVAILABLE.
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, "127.0.0.1", done));
    const downstreamAddress = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise<void>((done) => closed.close(() => done()));

    const breaker = new CircuitBreaker({
      name: "token",
      trip: { kind: "consecutive", failures: 3 },
      openMs,
      // A clock that stands still, so the retry-after is exact.
      nowMs: () => 0,
      onStateChange: (change) => changes.push(change),
    });
    const countSent: ClientInterceptor = (next) => (req) => {
      sent.push(req.path);
      return next(req);
    };
    const downstream = await createRpcClient(TokenService, {
      address: downstreamAddress,
      tls: pki.files("auth-edge"),
      serverId: parseSpiffeId(pki.idOf("token")),
      target: "token",
      defaultTimeoutMs: 2_000,
      interceptors: [circuitBreakerInterceptor(breaker), countSent],
    });
    // auth-edge's ValidateToken leans on the token service, as the real one does for its keys.
    server = await startRpcServer({
      name: "auth-edge",
      host: "127.0.0.1",
      port: 0,
      tls: pki.files("auth-edge"),
      services: [
        defineService(AuthEdgeService, {
          ...unimplementedHandlers(AuthEdgeService),
          validateToken: async () => {
            await downstream.getJwks({});
            return {};
          },
        }),
      ],
      accessRules: sameCallersForEveryMethod([AuthEdgeService], [pki.idOf("operator")]),
      logger: createLogger({ service: "circuit-breaker-test", level: "silent" }),
      shutdownGraceMs: 1_000,
    });
    server.markServing();
  });

  afterAll(async () => {
    await server?.shutdown();
    await pki?.cleanup();
  });

  it("fails at once with CIRCUIT_OPEN and a pushback after the threshold, without sending", async () => {
    const edge = await createRpcClient(AuthEdgeService, {
      address: `127.0.0.1:${server.port}`,
      tls: pki.files("operator"),
      serverId: parseSpiffeId(pki.idOf("auth-edge")),
    });
    try {
      const outcome = () =>
        edge.validateToken({ token: "t" }).then(
          () => "ok",
          (e: unknown) => e as RemoteCallError,
        );
      for (let i = 0; i < 3; i++) {
        expect(await outcome()).toMatchObject({
          grpcCode: grpc.status.UNAVAILABLE,
          remoteCode: "UNAVAILABLE",
        });
      }
      expect(sent).toHaveLength(3);
      expect(changes.map((c) => `${c.name}: ${c.from}->${c.to}`)).toEqual(["token: closed->open"]);
      for (let i = 0; i < 2; i++) {
        expect(await outcome()).toMatchObject({
          grpcCode: grpc.status.UNAVAILABLE,
          remoteCode: "CIRCUIT_OPEN",
          retryAfterMs: openMs,
        });
      }
      // The open breaker answered without touching the transport.
      expect(sent).toHaveLength(3);
    } finally {
      edge.close();
    }
  });
});

describe("circuitBreakerInterceptor", () => {
  it("lets a call whose deadline has already passed bypass the breaker (no verdict, no probe)", async () => {
    const { breaker } = breakerWithClock({ trip: { kind: "consecutive", failures: 1 } });
    const late = remote(grpc.status.DEADLINE_EXCEEDED);
    const step = circuitBreakerInterceptor(breaker)(() => Promise.reject(late));
    const request = { deadlineMs: Date.now() - 1 } as Parameters<typeof step>[0];
    await expect(step(request)).rejects.toBe(late);
    expect(breaker.state).toBe("closed");
    await expect(step({ ...request, deadlineMs: Infinity })).rejects.toBe(late);
    expect(breaker.state).toBe("open");
  });
});
