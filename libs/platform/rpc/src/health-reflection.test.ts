import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@authplat/observability";
import { createCa, issueSvid, type DevCa } from "@authplat/spiffe/dev-pki";
import { sameCallersForEveryMethod } from "./access-rules.ts";
import { defineService } from "./handlers.ts";
import { serveReflectionStream, type ReflectionCall } from "./reflection.ts";
import { startRpcServer, type RpcServer } from "./server.ts";
import { rawCredentials, rawUnaryCall, StreamsService, writeServerSvid } from "./test-support.ts";
import { unimplementedHandlers } from "./unimplemented.ts";

const TRUST_DOMAIN = "auth.local";
const OPERATOR = `spiffe://${TRUST_DOMAIN}/ns/auth/sa/operator`;
const REFLECTION_V1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
/** `ServerReflectionRequest { list_services: "" }`: field 7, length-delimited, empty. */
const LIST_SERVICES = Buffer.from([0x3a, 0x00]);

let dir: string;
let ca: DevCa;
let bundle: Buffer;
let server: RpcServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "authplat-health-"));
  ca = await createCa({ trustDomain: TRUST_DOMAIN, validityMs: 3_600_000 });
  bundle = Buffer.from(ca.certPem);
  const tls = await writeServerSvid(
    dir,
    ca,
    `spiffe://${TRUST_DOMAIN}/ns/auth/sa/token`,
    TRUST_DOMAIN,
  );
  server = await startRpcServer({
    name: "token",
    host: "127.0.0.1",
    port: 0,
    tls,
    accessRules: sameCallersForEveryMethod([StreamsService], [OPERATOR]),
    services: [defineService(StreamsService, unimplementedHandlers(StreamsService))],
    logger: createLogger({ service: "health-test", level: "silent" }),
    shutdownGraceMs: 1_000,
  });
  server.markServing();
});

afterAll(async () => {
  await server?.shutdown();
  await rm(dir, { recursive: true, force: true });
});

/** Client certificates that all chain to the trust bundle; only the first is a valid SVID. */
const clients = {
  "a valid SVID": () => issueSvid(ca, { spiffeId: OPERATOR }),
  "a certificate without a URI SAN": () =>
    issueSvid(ca, { spiffeId: OPERATOR, overrides: { uris: [] } }),
  "an SVID of another trust domain": () =>
    issueSvid(ca, {
      spiffeId: OPERATOR,
      overrides: { uris: ["spiffe://other.test/ns/auth/sa/operator"] },
    }),
  "a CA certificate": () => issueSvid(ca, { spiffeId: OPERATOR, overrides: { isCa: true } }),
};

async function healthCheck(client: { certPem: string; keyPem: string }) {
  return rawUnaryCall({
    port: server.port,
    credentials: rawCredentials(bundle, client),
    path: "/grpc.health.v1.Health/Check",
    request: new Uint8Array(0),
  });
}

/** Opens a reflection stream, asks `list_services` once, and reports the replies and status. */
async function listServices(client: { certPem: string; keyPem: string }) {
  const channel = new grpc.Client(`127.0.0.1:${server.port}`, rawCredentials(bundle, client), {
    "grpc.ssl_target_name_override": "spiffe",
  });
  try {
    return await new Promise<{ code: grpc.status; details: string; replies: number }>((resolve) => {
      let replies = 0;
      const call = channel.makeBidiStreamRequest(
        REFLECTION_V1,
        (value: Buffer) => value,
        (value: Buffer) => value,
        new grpc.Metadata(),
        { deadline: Date.now() + 5_000 },
      );
      call.on("data", () => replies++);
      call.on("error", () => undefined);
      call.once("status", (status: grpc.StatusObject) =>
        resolve({ code: status.code, details: status.details, replies }),
      );
      call.write(LIST_SERVICES);
      call.end();
    });
  } finally {
    channel.close();
  }
}

describe("health checking and reflection", () => {
  it("answer a caller with a valid SVID of the trust domain (control)", async () => {
    const client = await clients["a valid SVID"]();
    const health = await healthCheck(client);
    expect(health.code).toBe(grpc.status.OK);
    // HealthCheckResponse { status: SERVING (1) }
    expect(health.response).toEqual(Buffer.from([0x08, 0x01]));
    expect(await listServices(client)).toEqual({ code: grpc.status.OK, details: "OK", replies: 1 });
  });

  it.each([
    "a certificate without a URI SAN",
    "an SVID of another trust domain",
    "a CA certificate",
  ] as const)("refuse %s with UNAUTHENTICATED, like every other RPC", async (kind) => {
    const client = await clients[kind]();
    const health = await healthCheck(client);
    expect(health).toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
      details: "the client certificate is not a valid SVID",
      response: undefined,
    });
    expect(health.trailer.get("authplat-error-code")).toEqual(["UNAUTHENTICATED"]);
    expect(await listServices(client)).toEqual({
      code: grpc.status.UNAUTHENTICATED,
      details: "the client certificate is not a valid SVID",
      replies: 0,
    });
  });
});

/**
 * A reflection stream whose peer sends requests and never reads: every write stays queued
 * (its callback never runs), as over a connection whose flow-control window is full.
 */
function stalledPeer(requests: number) {
  let written = 0;
  const call = new Duplex({
    objectMode: true,
    read() {},
    write(_chunk, _encoding, _callback) {
      written++;
    },
  });
  for (let i = 0; i < requests; i++) call.push({ message_request: "list_services" });
  return { call, written: () => written };
}

describe("reflection backpressure", () => {
  it("stops reading requests while its responses are left unread", async () => {
    const peer = stalledPeer(1_000);
    let answered = 0;
    serveReflectionStream(peer.call as unknown as ReflectionCall, () => ({ n: ++answered }));
    // Let every buffered request that is going to be delivered arrive.
    const deadline = Date.now() + 2_000;
    while (!peer.call.isPaused() && Date.now() < deadline) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(peer.call.isPaused()).toBe(true);
    // objectMode's write buffer holds 16 responses; the 16th write reports it full.
    expect(answered).toBe(peer.call.writableHighWaterMark);
    expect(peer.call.writableLength).toBe(answered);
    expect(peer.call.readableLength).toBe(1_000 - answered);
  });

  it("fails a stream with RESOURCE_EXHAUSTED once the cap of queued responses is reached", () => {
    const peer = stalledPeer(0);
    const statuses: unknown[] = [];
    peer.call.on("error", (status) => statuses.push(status));
    serveReflectionStream(peer.call as unknown as ReflectionCall, () => ({}));
    // Responses queued by other means (grpc-js internals) count against the cap too.
    for (let i = 0; i < 32; i++) peer.call.write({});
    peer.call.emit("data", { message_request: "list_services" });
    expect(statuses).toEqual([
      {
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: "too many reflection responses left unread",
      },
    ]);
    expect(peer.written()).toBe(1);
  });
});
