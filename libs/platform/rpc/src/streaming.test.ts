import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contextFromIncoming, currentContext, runWithContext } from "@authplat/correlation";
import { ServiceError } from "@authplat/errors";
import { createLogger } from "@authplat/observability";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki, type TestPki } from "@authplat/spiffe/test-pki";
import { createRpcClient, type RpcClient } from "./client.ts";
import { sameCallersForEveryMethod } from "./access-rules.ts";
import { defineService } from "./handlers.ts";
import type { ServerResponse } from "./interceptor.ts";
import { startRpcServer, writeStream, type RpcServer } from "./server.ts";
import { RemoteCallError } from "./status-mapping.ts";
import { StreamsService } from "./test-support.ts";

/** Request values that select a behaviour of the Count handler. */
const ENDLESS = 1_000;
const FAILS_AFTER_TWO = 2_000;
const CRASHES_AFTER_ONE = 3_000;
const WAITS_FOR_ABORT = 4_000;

let pki: TestPki;
let server: RpcServer;
let client: RpcClient<typeof StreamsService>;
const ended: { value: number; reason: unknown }[] = [];
const seenCorrelation: (string | undefined)[] = [];

async function waitFor<T>(read: () => T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The streams service the tests call: echo, and count with a few special values. */
function streamsRegistration() {
  return defineService(StreamsService, {
    async echo(request) {
      return { value: request.value };
    },
    async *count(request, context) {
      try {
        if (request.value === WAITS_FOR_ABORT) {
          await new Promise((resolve) =>
            context.signal.addEventListener("abort", resolve, { once: true }),
          );
          return;
        }
        if (request.value === ENDLESS) {
          for (let i = 1; !context.signal.aborted; i++) yield { value: i };
          return;
        }
        for (let i = 1; i <= Math.min(request.value, 100); i++) {
          seenCorrelation.push(currentContext()?.correlationId);
          if (request.value === FAILS_AFTER_TWO && i === 3) {
            throw new ServiceError("NOT_FOUND", "no such feed");
          }
          if (request.value === CRASHES_AFTER_ONE && i === 2) {
            throw new Error("secret: redis://u:p@cache");
          }
          yield { value: i };
        }
      } finally {
        ended.push({ value: request.value, reason: context.signal.reason });
      }
    },
  });
}

/** A serving streams server for the operator, and a client of it. */
async function startStreams(shutdownGraceMs: number) {
  const started = await startRpcServer({
    name: "streams",
    host: "127.0.0.1",
    port: 0,
    tls: pki.files("token"),
    logger: createLogger({ service: "streams-test", level: "silent" }),
    shutdownGraceMs,
    accessRules: sameCallersForEveryMethod([StreamsService], [pki.idOf("operator")]),
    services: [streamsRegistration()],
  });
  started.markServing();
  const caller = await createRpcClient(StreamsService, {
    address: `127.0.0.1:${started.port}`,
    tls: pki.files("operator"),
    serverId: parseSpiffeId(pki.idOf("token")),
  });
  return { server: started, client: caller };
}

beforeAll(async () => {
  pki = await createTestPki();
  ({ server, client } = await startStreams(1_000));
});

afterAll(async () => {
  client?.close();
  await server?.shutdown();
  await pki?.cleanup();
});

async function collect(value: number, timeoutMs?: number) {
  const values: number[] = [];
  try {
    for await (const message of client.count(
      { value },
      timeoutMs === undefined ? {} : { timeoutMs },
    )) {
      values.push(message.value);
    }
    return { values, error: undefined };
  } catch (error) {
    return { values, error: error as RemoteCallError };
  }
}

describe("server streaming", () => {
  it("delivers every message in order and ends OK, inside the caller's request context", async () => {
    const context = contextFromIncoming({ correlationId: "corr-stream" });
    const outcome = await runWithContext(context, () => collect(5));
    expect(outcome).toEqual({ values: [1, 2, 3, 4, 5], error: undefined });
    // The handler's body resumes for each message; it must still see its request's context.
    expect(seenCorrelation.slice(-5)).toEqual(Array(5).fill("corr-stream"));
  });

  it("sends the messages before a failure, then the failure's code and message", async () => {
    const outcome = await collect(FAILS_AFTER_TWO);
    expect(outcome.values).toEqual([1, 2]);
    expect(outcome.error).toBeInstanceOf(RemoteCallError);
    expect(outcome.error).toMatchObject({
      remoteCode: "NOT_FOUND",
      grpcCode: grpc.status.NOT_FOUND,
      message: "no such feed",
      code: "INTERNAL",
    });
  });

  it("answers INTERNAL 'internal error' for an unexpected failure mid-stream", async () => {
    const outcome = await collect(CRASHES_AFTER_ONE);
    expect(outcome.values).toEqual([1]);
    expect(outcome.error).toMatchObject({
      remoteCode: "INTERNAL",
      grpcCode: grpc.status.INTERNAL,
      message: "internal error",
    });
  });

  it("stops the handler when the client stops reading and cancels", async () => {
    const before = ended.length;
    const values: number[] = [];
    for await (const message of client.count({ value: ENDLESS })) {
      values.push(message.value);
      if (values.length === 3) break;
    }
    expect(values).toEqual([1, 2, 3]);
    const end = await waitFor(
      () => ended.slice(before).find((entry) => entry.value === ENDLESS),
      "the endless handler to stop",
    );
    expect(end.reason).toMatchObject({ code: "CANCELLED" });
  });

  it("aborts the handler's signal with DEADLINE_EXCEEDED when the deadline passes", async () => {
    const before = ended.length;
    const outcome = await collect(WAITS_FOR_ABORT, 300);
    expect(outcome.values).toEqual([]);
    expect(outcome.error).toMatchObject({
      grpcCode: grpc.status.DEADLINE_EXCEEDED,
      remoteCode: "DEADLINE_EXCEEDED",
      code: "UNAVAILABLE",
    });
    const end = await waitFor(
      () => ended.slice(before).find((entry) => entry.value === WAITS_FOR_ABORT),
      "the waiting handler to stop",
    );
    expect(end.reason).toMatchObject({ code: "DEADLINE_EXCEEDED" });
  });
});

/** A stand-in for grpc-js's writable call whose buffer is always full until `drain`. */
class FullCall extends EventEmitter {
  readonly written: unknown[] = [];
  endedWith: grpc.Metadata | undefined;
  write(chunk: unknown): boolean {
    this.written.push(chunk);
    return false;
  }
  end(trailer: grpc.Metadata): void {
    this.endedWith = trailer;
  }
}

describe("writing a response stream", () => {
  it("asks the handler for the next message only after the previous one drained", async () => {
    const call = new FullCall();
    let pulled = 0;
    async function* messages() {
      for (let i = 0; i < 3; i++) {
        pulled++;
        yield Buffer.from([i]);
      }
    }
    const trailer = new grpc.Metadata();
    const response: ServerResponse = { message: messages(), trailer };
    const done = writeStream(
      call as unknown as grpc.ServerWritableStream<Buffer, Buffer>,
      Promise.resolve(response),
      new AbortController().signal,
    );
    await waitFor(() => (call.written.length === 1 ? true : undefined), "the first write");
    // Give the writer every chance to run ahead; it must wait for 'drain'.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect({ pulled, written: call.written.length }).toEqual({ pulled: 1, written: 1 });
    call.emit("drain");
    await waitFor(() => (call.written.length === 2 ? true : undefined), "the second write");
    call.emit("drain");
    await waitFor(() => (call.written.length === 3 ? true : undefined), "the third write");
    call.emit("drain");
    await done;
    expect(call.endedWith).toBe(trailer);
  });

  it("stops waiting for 'drain' and ends nothing when the call is cancelled", async () => {
    const call = new FullCall();
    const abort = new AbortController();
    let finished = false;
    async function* messages() {
      try {
        for (let i = 0; ; i++) yield Buffer.from([i]);
      } finally {
        finished = true;
      }
    }
    const done = writeStream(
      call as unknown as grpc.ServerWritableStream<Buffer, Buffer>,
      Promise.resolve({ message: messages(), trailer: new grpc.Metadata() }),
      abort.signal,
    );
    await waitFor(() => (call.written.length === 1 ? true : undefined), "the first write");
    abort.abort(new ServiceError("CANCELLED", "call cancelled"));
    await done;
    expect(finished).toBe(true);
    expect(call.written.length).toBe(1);
    expect(call.endedWith).toBeUndefined();
  });
});

describe("a server shutting down", () => {
  it("ends its open response streams at once with UNAVAILABLE instead of waiting out the grace", async () => {
    const { server: own, client: ownClient } = await startStreams(60_000);
    const before = ended.length;
    const reading = (async () => {
      try {
        for await (const message of ownClient.count({ value: WAITS_FOR_ABORT })) {
          expect.fail(`no message expected, got ${message.value}`);
        }
        return undefined;
      } catch (error) {
        return error;
      }
    })();
    // Give the call time to reach the handler, which waits for its signal.
    await new Promise((resolve) => setTimeout(resolve, 200));
    // With a 60 s grace, a shutdown that waited for the stream would time this test out.
    await own.shutdown();
    expect(await reading).toMatchObject({
      grpcCode: grpc.status.UNAVAILABLE,
      message: "the server is shutting down; reconnect",
    });
    const end = await waitFor(
      () => ended.slice(before).find((entry) => entry.value === WAITS_FOR_ABORT),
      "the handler to stop",
    );
    expect(end.reason).toMatchObject({ code: "UNAVAILABLE" });
    ownClient.close();
  });
});
