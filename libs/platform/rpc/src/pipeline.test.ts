import { readFile } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentContext } from "@authplat/correlation";
import { ServiceError } from "@authplat/errors";
import { createLogger } from "@authplat/observability";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki, type TestPki } from "@authplat/spiffe/test-pki";
import { createRpcClient } from "./client.ts";
import { defineService } from "./handlers.ts";
import type { ServerInterceptor } from "./interceptor.ts";
import { startRpcServer, type RpcServer } from "./server.ts";
import { rawCredentials, rawUnaryCall, StreamsService } from "./test-support.ts";

interface Seen {
  readonly step: string;
  readonly caller: string | undefined;
  readonly correlationId: string | undefined;
  readonly outcome?: string;
  readonly messageIsBytes?: boolean;
}

let pki: TestPki;
let server: RpcServer;
const seen: Seen[] = [];

/** An observer such as metrics: records each call and the code it ends with. */
const observer: ServerInterceptor = (next) => async (req) => {
  const entry = {
    step: "observer",
    caller: req.caller?.toString(),
    correlationId: req.correlationId,
  };
  try {
    const response = await next(req);
    seen.push({ ...entry, outcome: "OK" });
    return response;
  } catch (error) {
    seen.push({ ...entry, outcome: error instanceof ServiceError ? error.code : "not normalised" });
    throw error;
  }
};

/** A service's own interceptor: runs after the access rule, on the raw request bytes. */
const own: ServerInterceptor = (next) => (req) => {
  seen.push({
    step: "own",
    caller: req.caller?.toString(),
    correlationId: req.correlationId,
    messageIsBytes: req.message instanceof Uint8Array,
  });
  return next(req);
};

beforeAll(async () => {
  pki = await createTestPki();
  server = await startRpcServer({
    name: "pipeline",
    host: "127.0.0.1",
    port: 0,
    tls: pki.files("token"),
    logger: createLogger({ service: "pipeline-test", level: "silent" }),
    shutdownGraceMs: 1_000,
    observers: [observer],
    interceptors: [own],
    // Only the operator; the others are refused (see below).
    accessRules: {
      isAllowed: (_path, caller) => caller.toString() === pki.idOf("operator"),
    },
    services: [
      defineService(StreamsService, {
        async echo(request, context) {
          seen.push({
            step: "handler",
            caller: context.caller.toString(),
            correlationId: currentContext()?.correlationId,
          });
          if (request.value === "crash") throw new Error("secret: postgres://u:p@db");
          return { value: request.value };
        },
        async *count() {},
      }),
    ],
  });
  server.markServing();
});

afterAll(async () => {
  await server?.shutdown();
  await pki?.cleanup();
});

async function echoAs(identity: string, value: string) {
  const client = await createRpcClient(StreamsService, {
    address: `127.0.0.1:${server.port}`,
    tls: pki.files(identity),
    serverId: parseSpiffeId(pki.idOf("token")),
  });
  try {
    return await client.echo({ value }).then(
      (reply) => reply.value,
      (error: unknown) => error,
    );
  } finally {
    client.close();
  }
}

describe("the server chain", () => {
  it("runs observer, the service's interceptors and the handler in that order, with caller and context", async () => {
    const from = seen.length;
    expect(await echoAs("operator", "hi")).toBe("hi");
    const steps = seen.slice(from);
    expect(steps.map((entry) => entry.step)).toEqual(["own", "handler", "observer"]);
    const operator = pki.idOf("operator");
    // Observers run before the caller is verified; the service's interceptors after.
    expect(steps[2]).toMatchObject({ caller: undefined, outcome: "OK" });
    expect(steps[0]).toMatchObject({ caller: operator, messageIsBytes: true });
    expect(steps[1]).toMatchObject({ caller: operator });
    const correlationId = steps[2]!.correlationId;
    expect(correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(steps.map((entry) => entry.correlationId)).toEqual(Array(3).fill(correlationId));
  });

  it("lets observers see a caller the access rules refuse, with the code it is answered", async () => {
    const from = seen.length;
    const failure = await echoAs("mfa", "hi");
    expect(failure).toMatchObject({
      remoteCode: "CALLER_NOT_ALLOWED",
      grpcCode: grpc.status.PERMISSION_DENIED,
      message: `${pki.idOf("mfa")} may not call Echo`,
    });
    // Neither the service's interceptors nor the handler ran.
    expect(seen.slice(from)).toEqual([
      expect.objectContaining({ step: "observer", outcome: "CALLER_NOT_ALLOWED" }),
    ]);
  });

  it("lets observers see a call without a valid SVID and one with bad bytes", async () => {
    const from = seen.length;
    const bundle = await readFile(pki.files("operator").bundleFile);
    const foreign = await pki.foreign("operator");
    const path = "/authplat.test.v1.Streams/Echo";
    const operator = pki.files("operator");
    const badBytes = await rawUnaryCall({
      port: server.port,
      credentials: rawCredentials(bundle, {
        certPem: await readFile(operator.certFile),
        keyPem: await readFile(operator.keyFile),
      }),
      path,
      request: Buffer.from([0x0a, 0xff, 0xff]),
    });
    expect(badBytes.code).toBe(grpc.status.INVALID_ARGUMENT);
    // A foreign CA fails the TLS handshake: no call reaches the chain at all.
    const refused = await rawUnaryCall({
      port: server.port,
      credentials: rawCredentials(bundle, {
        certPem: await readFile(foreign.certFile),
        keyPem: await readFile(foreign.keyFile),
      }),
      path,
      request: new Uint8Array(0),
    });
    expect(refused.code).toBe(grpc.status.UNAVAILABLE);
    expect(seen.slice(from).map((entry) => [entry.step, entry.outcome])).toEqual([
      ["own", undefined],
      ["observer", "INVALID_ARGUMENT"],
    ]);
  });

  it("hands observers the normalised INTERNAL for an unexpected error, never the raw one", async () => {
    const from = seen.length;
    const failure = await echoAs("operator", "crash");
    expect(failure).toMatchObject({ remoteCode: "INTERNAL", message: "internal error" });
    expect(seen.slice(from).at(-1)).toMatchObject({ step: "observer", outcome: "INTERNAL" });
  });
});
