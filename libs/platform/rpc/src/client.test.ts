import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contextFromIncoming, runWithContext } from "@authplat/correlation";
import { ServiceError } from "@authplat/errors";
import { createLogger } from "@authplat/observability";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki, type TestPki } from "@authplat/spiffe/test-pki";
import { createRpcClient, type RpcClient } from "./client.ts";
import { sameCallersForEveryMethod } from "./access-rules.ts";
import { defineService } from "./handlers.ts";
import type { ClientInterceptor, ClientRequest, ServerInterceptor } from "./interceptor.ts";
import { startRpcServer, type RpcServer } from "./server.ts";
import { RemoteCallError } from "./status-mapping.ts";
import { StreamsService } from "./test-support.ts";

/**
 * Two real servers: `front` (identity token) serves callers and forwards each call to `back`
 * (identity mfa), so what `back` answers crosses a service boundary on its way out.
 */
let pki: TestPki;
let front: RpcServer;
let back: RpcServer;
let toBack: RpcClient<typeof StreamsService>;
let toNowhere: RpcClient<typeof StreamsService>;
let caller: RpcClient<typeof StreamsService>;
/** What `back` saw of each call: its deadline. */
const backCalls: { path: string; deadlineMs: number }[] = [];
/** The downstream codes `front`'s handler could read. */
const seenByFront: string[] = [];

const logger = createLogger({ service: "client-test", level: "silent" });
const recordDeadline: ServerInterceptor = (next) => (req) => {
  backCalls.push({ path: req.path, deadlineMs: req.deadlineMs });
  return next(req);
};

beforeAll(async () => {
  pki = await createTestPki();
  back = await startRpcServer({
    name: "back",
    host: "127.0.0.1",
    port: 0,
    tls: pki.files("mfa"),
    logger,
    shutdownGraceMs: 1_000,
    observers: [recordDeadline],
    // `front` may call Echo but not Count.
    accessRules: {
      isAllowed: (path, id) => path.endsWith("/Echo") && id.toString() === pki.idOf("token"),
    },
    services: [
      defineService(StreamsService, {
        async echo(request) {
          if (request.value === "not-found") throw new ServiceError("NOT_FOUND", "no such user");
          if (request.value === "unavailable") {
            throw new ServiceError("UNAVAILABLE", "store down", { retryAfterMs: 300 });
          }
          return { value: `back:${request.value}` };
        },
        async *count(request) {
          yield { value: request.value };
        },
      }),
    ],
  });
  back.markServing();
  const asFront = {
    tls: pki.files("token"),
    serverId: parseSpiffeId(pki.idOf("mfa")),
    // Longer than any caller's deadline below: what `back` sees comes from propagation.
    defaultTimeoutMs: 60_000,
  };
  toBack = await createRpcClient(StreamsService, {
    ...asFront,
    address: `127.0.0.1:${back.port}`,
  });
  // Port 1 on loopback: nothing listens, the connection is refused.
  toNowhere = await createRpcClient(StreamsService, { ...asFront, address: "127.0.0.1:1" });
  const remember = (error: unknown): never => {
    if (error instanceof RemoteCallError) seenByFront.push(error.remoteCode);
    throw error;
  };
  front = await startRpcServer({
    name: "front",
    host: "127.0.0.1",
    port: 0,
    tls: pki.files("token"),
    logger,
    shutdownGraceMs: 1_000,
    accessRules: sameCallersForEveryMethod([StreamsService], [pki.idOf("operator")]),
    services: [
      defineService(StreamsService, {
        async echo(request) {
          const downstream = request.value === "down" ? toNowhere : toBack;
          return downstream.echo({ value: request.value }).catch(remember);
        },
        async *count(request) {
          try {
            yield* toBack.count({ value: request.value });
          } catch (error) {
            remember(error);
          }
        },
      }),
    ],
  });
  front.markServing();
  caller = await createRpcClient(StreamsService, {
    address: `127.0.0.1:${front.port}`,
    tls: pki.files("operator"),
    serverId: parseSpiffeId(pki.idOf("token")),
  });
});

afterAll(async () => {
  for (const client of [caller, toBack, toNowhere]) client?.close();
  await front?.shutdown();
  await back?.shutdown();
  await pki?.cleanup();
});

describe("errors across a service boundary", () => {
  it("passes a successful answer through (control)", async () => {
    await expect(caller.echo({ value: "hello" })).resolves.toMatchObject({
      value: "back:hello",
    });
  });

  it("answers INTERNAL, not the downstream's PERMISSION_DENIED, when a downstream refuses us", async () => {
    const values: number[] = [];
    const failure = await (async () => {
      for await (const message of caller.count({ value: 7 })) values.push(message.value);
    })().catch((error: unknown) => error);
    expect(values).toEqual([]);
    expect(seenByFront.at(-1)).toBe("CALLER_NOT_ALLOWED");
    expect(failure).toBeInstanceOf(RemoteCallError);
    expect(failure).toMatchObject({
      grpcCode: grpc.status.INTERNAL,
      remoteCode: "INTERNAL",
      message: "internal error",
    });
  });

  it("answers INTERNAL, not NOT_FOUND, and keeps the downstream's words to itself", async () => {
    const failure = (await caller
      .echo({ value: "not-found" })
      .catch((error: unknown) => error)) as RemoteCallError;
    expect(seenByFront.at(-1)).toBe("NOT_FOUND");
    expect(failure).toMatchObject({
      grpcCode: grpc.status.INTERNAL,
      remoteCode: "INTERNAL",
      message: "internal error",
    });
    expect((failure.cause as grpc.StatusObject).details).not.toContain("no such user");
  });

  it("answers UNAVAILABLE with the downstream's retry pushback when it is unavailable", async () => {
    await expect(caller.echo({ value: "unavailable" })).rejects.toMatchObject({
      grpcCode: grpc.status.UNAVAILABLE,
      remoteCode: "UNAVAILABLE",
      message: "a dependency is unavailable",
      retryAfterMs: 300,
    });
    expect(seenByFront.at(-1)).toBe("UNAVAILABLE");
  });

  it("answers UNAVAILABLE when the downstream cannot be reached at all", async () => {
    await expect(caller.echo({ value: "down" })).rejects.toMatchObject({
      grpcCode: grpc.status.UNAVAILABLE,
      remoteCode: "UNAVAILABLE",
      message: "a dependency is unavailable",
    });
    expect(seenByFront.at(-1)).toBe("UNAVAILABLE");
  });
});

describe("deadlines", () => {
  it("gives a call made while serving a request at most the time that request has left", async () => {
    const before = Date.now();
    await caller.echo({ value: "hello" }, { timeoutMs: 1_500 });
    const call = backCalls.at(-1)!;
    expect(call.path).toBe("/authplat.test.v1.Streams/Echo");
    // Without propagation it would be about `before + 60_000`, front's own default.
    expect(call.deadlineMs).toBeLessThanOrEqual(before + 1_500 + 100);
  });

  it("fails at once with DEADLINE_EXCEEDED, without sending, when that time is already up", async () => {
    const sent = backCalls.length;
    const expired = contextFromIncoming({}, Date.now() - 1);
    const failure = await runWithContext(expired, () =>
      toBack.echo({ value: "late" }).catch((error: unknown) => error),
    );
    expect(failure).toBeInstanceOf(RemoteCallError);
    expect(failure).toMatchObject({
      grpcCode: grpc.status.DEADLINE_EXCEEDED,
      remoteCode: "DEADLINE_EXCEEDED",
      message: "deadline exceeded before the call was sent",
      code: "UNAVAILABLE",
    });
    // The same call with time left reaches the server (control).
    await expect(toBack.echo({ value: "on-time" })).resolves.toMatchObject({
      value: "back:on-time",
    });
    expect(backCalls.slice(sent).map((call) => call.path)).toEqual([
      "/authplat.test.v1.Streams/Echo",
    ]);
  });
});

describe("client interceptors", () => {
  it("see the call with its context headers, target and default 5 s deadline, before the transport", async () => {
    const seen: ClientRequest[] = [];
    const order: string[] = [];
    const spy: ClientInterceptor = (next) => async (req) => {
      seen.push(req);
      order.push("spy:before");
      const response = await next(req);
      order.push("spy:after");
      return response;
    };
    const outer: ClientInterceptor = (next) => (req) => {
      order.push("outer");
      return next(req);
    };
    const client = await createRpcClient(StreamsService, {
      address: `127.0.0.1:${back.port}`,
      tls: pki.files("token"),
      serverId: parseSpiffeId(pki.idOf("mfa")),
      target: "back",
      interceptors: [outer, spy],
    });
    try {
      const before = Date.now();
      await runWithContext(contextFromIncoming({ correlationId: "corr-client" }), () =>
        client.echo({ value: "x" }),
      );
      const after = Date.now();
      expect(order).toEqual(["outer", "spy:before", "spy:after"]);
      const req = seen[0]!;
      expect(req).toMatchObject({
        target: "back",
        kind: "unary",
        path: "/authplat.test.v1.Streams/Echo",
      });
      expect(req.header.get("x-correlation-id")).toEqual(["corr-client"]);
      expect(req.header.get("traceparent")[0]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(req.deadlineMs).toBeGreaterThanOrEqual(before + 5_000);
      expect(req.deadlineMs).toBeLessThanOrEqual(after + 5_000);
    } finally {
      client.close();
    }
  });
});
