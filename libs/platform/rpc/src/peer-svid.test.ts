import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary, create } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServiceError } from "@authplat/errors";
import { createLogger } from "@authplat/observability";
import { createCa, issueSvid, type DevCa, type IssuedSvid } from "@authplat/spiffe/dev-pki";
import { sameCallersForEveryMethod } from "./access-rules.ts";
import { defineService } from "./handlers.ts";
import type { ServerRequest, ServerResponse } from "./interceptor.ts";
import {
  peerCertificateChecks,
  peerCertificateReader,
  peerSvidInterceptor,
} from "./server-chain.ts";
import { startRpcServer, type RpcServer } from "./server.ts";
import { rawCredentials, StreamsService, writeServerSvid } from "./test-support.ts";

const TRUST_DOMAIN = "auth.local";
const HOUR = 3_600_000;
const idOf = (name: string) => `spiffe://${TRUST_DOMAIN}/ns/auth/sa/${name}`;
const ECHO = "/authplat.test.v1.Streams/Echo";

let dir: string;
let ca: DevCa;
let server: RpcServer;
let bundle: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "authplat-peer-svid-"));
  ca = await createCa({ trustDomain: TRUST_DOMAIN, validityMs: 24 * HOUR });
  const tls = await writeServerSvid(dir, ca, idOf("token"), TRUST_DOMAIN, HOUR);
  bundle = Buffer.from(ca.certPem);
  server = await startRpcServer({
    name: "peer-svid-test",
    host: "127.0.0.1",
    port: 0,
    tls,
    logger: createLogger({ service: "peer-svid-test", level: "silent" }),
    shutdownGraceMs: 1_000,
    accessRules: sameCallersForEveryMethod([StreamsService], [idOf("operator"), idOf("auth-edge")]),
    services: [
      defineService(StreamsService, {
        // Answers with the caller the chain verified, so each connection's identity shows.
        echo: async (_request, context) => ({ value: context.caller.toString() }),
        async *count() {},
      }),
    ],
  });
  server.markServing();
});

afterAll(async () => {
  await server?.shutdown();
  await rm(dir, { recursive: true, force: true });
});

/** One kept-alive grpc-js channel: every call made through it shares one connection. */
function channelAs(svid: IssuedSvid): grpc.Client {
  return new grpc.Client(`127.0.0.1:${server.port}`, rawCredentials(bundle, svid), {
    "grpc.ssl_target_name_override": "spiffe",
  });
}

interface Answer {
  readonly code: grpc.status;
  readonly details: string;
  readonly caller: string | undefined;
}

function echo(channel: grpc.Client): Promise<Answer> {
  return new Promise((resolve) => {
    let response: Buffer | undefined;
    const call = channel.makeUnaryRequest(
      ECHO,
      (value: Buffer) => value,
      (value: Buffer) => value,
      Buffer.from(toBinary(StringValueSchema, create(StringValueSchema, { value: "" }))),
      new grpc.Metadata(),
      { deadline: Date.now() + 5_000 },
      (_error, value) => (response = value),
    );
    call.once("status", (status: grpc.StatusObject) =>
      resolve({
        code: status.code,
        details: status.details,
        caller: response === undefined ? undefined : fromBinary(StringValueSchema, response).value,
      }),
    );
  });
}

describe("the peer identity of a connection", () => {
  it("checks the client certificate once per connection, and again on a new connection", async () => {
    const operator = await issueSvid(ca, { spiffeId: idOf("operator"), validityMs: HOUR });
    const first = channelAs(operator);
    const second = channelAs(operator);
    try {
      const before = peerCertificateChecks();
      for (let i = 0; i < 5; i++) {
        expect(await echo(first)).toEqual({
          code: grpc.status.OK,
          details: "OK",
          caller: idOf("operator"),
        });
      }
      // Pins the grpc-js internals `connectionOf` relies on (call -> stream -> session): if they
      // change shape, the server falls back to one check per call and this fails.
      expect(peerCertificateChecks() - before, "checks for 5 calls on one connection").toBe(1);
      for (let i = 0; i < 3; i++) {
        expect(await echo(second)).toMatchObject({
          code: grpc.status.OK,
          caller: idOf("operator"),
        });
      }
      expect(peerCertificateChecks() - before, "checks after a second connection").toBe(2);
    } finally {
      first.close();
      second.close();
    }
  });

  it("gives a client that reconnects with another SVID the identity of its new certificate", async () => {
    const edge = channelAs(await issueSvid(ca, { spiffeId: idOf("auth-edge"), validityMs: HOUR }));
    const operator = channelAs(
      await issueSvid(ca, { spiffeId: idOf("operator"), validityMs: HOUR }),
    );
    try {
      // Interleaved on two live connections: neither entry leaks into the other.
      expect((await echo(edge)).caller).toBe(idOf("auth-edge"));
      expect((await echo(operator)).caller).toBe(idOf("operator"));
      expect((await echo(edge)).caller).toBe(idOf("auth-edge"));
      expect((await echo(operator)).caller).toBe(idOf("operator"));
    } finally {
      edge.close();
      operator.close();
    }
  });

  it("refuses calls on a kept-alive connection once the client certificate has expired", async () => {
    // X.509 times have whole seconds: this certificate expires 2-3 s from now.
    const shortLived = await issueSvid(ca, { spiffeId: idOf("operator"), validityMs: 3_000 });
    const notAfter = new X509Certificate(shortLived.certPem).validToDate.getTime();
    const channel = channelAs(shortLived);
    try {
      const before = peerCertificateChecks();
      expect(await echo(channel)).toMatchObject({ code: grpc.status.OK, caller: idOf("operator") });
      const deadline = Date.now() + 15_000;
      let answer = await echo(channel);
      while (answer.code === grpc.status.OK && Date.now() < deadline) {
        answer = await echo(channel);
      }
      expect(answer).toEqual({
        code: grpc.status.UNAUTHENTICATED,
        details: "the client certificate has expired",
        caller: undefined,
      });
      expect(Date.now()).toBeGreaterThan(notAfter);
      // Still the same connection: the cached entry itself was refused, not a new handshake.
      expect(peerCertificateChecks() - before).toBe(1);
      expect((await echo(channel)).code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      channel.close();
    }
  });

  it("drops a TLS 1.2 connection whose client tries to renegotiate, so its certificate cannot change", async () => {
    const operator = await issueSvid(ca, { spiffeId: idOf("operator"), validityMs: HOUR });
    const socket = tls.connect({
      host: "127.0.0.1",
      port: server.port,
      ca: bundle,
      cert: operator.certPem,
      key: operator.keyPem,
      maxVersion: "TLSv1.2",
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    });
    socket.on("error", () => undefined);
    try {
      await once(socket, "secureConnect");
      expect(socket.getProtocol()).toBe("TLSv1.2");
      expect(socket.alpnProtocol).toBe("h2");
      // Not events.once: the client socket also errors, and only the close matters here.
      const closed = new Promise((resolve) => socket.once("close", resolve));
      socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
      socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])); // empty SETTINGS
      expect(socket.renegotiate({ rejectUnauthorized: false }, () => undefined)).toBe(true);
      // Node's HTTP/2 server disables renegotiation on every session's socket.
      await closed;
      expect(socket.destroyed).toBe(true);
    } finally {
      socket.destroy();
    }
  });
});

describe("peerSvidInterceptor", () => {
  const done: ServerResponse = { message: undefined, trailer: new grpc.Metadata() };
  const callers: (string | undefined)[] = [];
  let now = 0;
  const step = peerSvidInterceptor(TRUST_DOMAIN, { now: () => now })(async (req) => {
    callers.push(req.caller?.toString());
    return done;
  });
  let leaf: { der: Buffer; notBefore: number; notAfter: number };
  let reads = 0;

  beforeAll(async () => {
    const svid = await issueSvid(ca, { spiffeId: idOf("operator"), validityMs: HOUR });
    const certificate = new X509Certificate(svid.certPem);
    leaf = {
      der: certificate.raw,
      notBefore: certificate.validFromDate.getTime(),
      notAfter: certificate.validToDate.getTime(),
    };
  });

  function request(der: Buffer | undefined, connection: object | undefined): ServerRequest {
    const read = () => {
      reads++;
      return der;
    };
    return { peerCertificate: peerCertificateReader(read, connection) } as ServerRequest;
  }

  async function failure(req: ServerRequest): Promise<unknown> {
    return step(req).then(
      () => "served",
      (error: unknown) => error,
    );
  }

  it("accepts the certificate through notAfter inclusive and refuses it from the next millisecond on", async () => {
    const connection = {};
    now = leaf.notAfter;
    await step(request(leaf.der, connection));
    expect(callers.at(-1)).toBe(idOf("operator"));
    now = leaf.notAfter + 1;
    const refused = await failure(request(leaf.der, connection));
    expect(refused).toBeInstanceOf(ServiceError);
    expect(refused).toMatchObject({
      code: "UNAUTHENTICATED",
      message: "the client certificate has expired",
    });
  });

  it("refuses a certificate before its notBefore", async () => {
    now = leaf.notBefore - 1;
    expect(await failure(request(leaf.der, {}))).toMatchObject({
      code: "UNAUTHENTICATED",
      message: "the client certificate is not yet valid",
    });
  });

  it("reads the certificate once per connection and on every call without one", async () => {
    now = leaf.notBefore;
    const connection = {};
    const before = reads;
    await step(request(leaf.der, connection));
    await step(request(leaf.der, connection));
    expect(reads - before).toBe(1);
    await step(request(leaf.der, undefined));
    await step(request(leaf.der, undefined));
    expect(reads - before).toBe(3);
  });

  it("keeps refusing a connection without a client certificate or with an invalid one", async () => {
    now = leaf.notBefore;
    const bare = {};
    for (let i = 0; i < 2; i++) {
      expect(await failure(request(undefined, bare))).toMatchObject({
        code: "UNAUTHENTICATED",
        message: "a client certificate is required",
      });
    }
    const garbage = {};
    for (let i = 0; i < 2; i++) {
      expect(await failure(request(Buffer.from("not a certificate"), garbage))).toMatchObject({
        code: "UNAUTHENTICATED",
        message: "the client certificate is not a valid SVID",
      });
    }
  });
});
