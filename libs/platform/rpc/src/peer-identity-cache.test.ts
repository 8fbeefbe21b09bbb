import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@authplat/observability";
import { createTestPki, type TestPki } from "@authplat/spiffe/test-pki";
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRpcClient } from "./client.ts";
import { sameCallersForEveryMethod } from "./access-rules.ts";
import { peerCertificateChecks, peerCertificateReader, verifiedCaller } from "./server-chain.ts";
import { connectionOf, startRpcServer, type RpcServer } from "./server.ts";
import { echoRegistration, StreamsService } from "./test-support.ts";
import { parseSpiffeId } from "@authplat/spiffe";

let pki: TestPki;
let server: RpcServer;
let operatorDer: Buffer;

beforeAll(async () => {
  pki = await createTestPki();
  const pem = await readFile(pki.files("operator").certFile, "utf8");
  operatorDer = Buffer.from(new X509Certificate(pem).raw);
  server = await startRpcServer({
    name: "peer-cache",
    host: "127.0.0.1",
    port: 0,
    tls: pki.files("token"),
    logger: createLogger({ service: "peer-cache-test", level: "silent" }),
    shutdownGraceMs: 1_000,
    accessRules: sameCallersForEveryMethod([StreamsService], [pki.idOf("operator")]),
    services: [echoRegistration()],
  });
  server.markServing();
});

afterAll(async () => {
  await server?.shutdown();
});

function client() {
  return createRpcClient(StreamsService, {
    address: `127.0.0.1:${server.port}`,
    tls: pki.files("operator"),
    serverId: parseSpiffeId(pki.idOf("token")),
  });
}

describe("the peer identity, checked once per connection", () => {
  it("reads and checks the certificate once for many calls on one connection, again on a new one", async () => {
    const first = await client();
    await first.echo({ value: "warm-up" });
    const afterFirst = peerCertificateChecks();
    for (let i = 0; i < 20; i++) await first.echo({ value: `call ${i}` });
    expect(peerCertificateChecks()).toBe(afterFirst);
    first.close();

    const second = await client();
    await second.echo({ value: "new connection" });
    expect(peerCertificateChecks()).toBe(afterFirst + 1);
    second.close();
  });

  it("refuses a cached identity once the certificate's validity period has passed", () => {
    const connection = {};
    const reader = peerCertificateReader(() => operatorDer, connection);
    const { validFromDate, validToDate } = new X509Certificate(operatorDer);
    const inside = validFromDate.getTime() + 1_000;
    expect(verifiedCaller(reader, "auth.local", inside).toString()).toBe(pki.idOf("operator"));
    const checks = peerCertificateChecks();
    // Served from the cache while valid, refused after notAfter without another parse.
    expect(verifiedCaller(reader, "auth.local", validToDate.getTime()).toString()).toBe(
      pki.idOf("operator"),
    );
    expect(() => verifiedCaller(reader, "auth.local", validToDate.getTime() + 1)).toThrow(
      expect.objectContaining({
        code: "UNAUTHENTICATED",
        message: "the client certificate has expired",
      }),
    );
    expect(() => verifiedCaller(reader, "auth.local", validFromDate.getTime() - 1)).toThrow(
      expect.objectContaining({ code: "UNAUTHENTICATED" }),
    );
    expect(peerCertificateChecks()).toBe(checks);
  });

  it("checks every call when the connection cannot be named", () => {
    const reader = peerCertificateReader(() => operatorDer, undefined);
    const checks = peerCertificateChecks();
    const now = new X509Certificate(operatorDer).validFromDate.getTime() + 1_000;
    verifiedCaller(reader, "auth.local", now);
    verifiedCaller(reader, "auth.local", now);
    expect(peerCertificateChecks()).toBe(checks + 2);
  });

  it("does not serve one trust domain's verdict to another", () => {
    const reader = peerCertificateReader(() => operatorDer, {});
    const now = new X509Certificate(operatorDer).validFromDate.getTime() + 1_000;
    expect(verifiedCaller(reader, "auth.local", now).toString()).toBe(pki.idOf("operator"));
    expect(() => verifiedCaller(reader, "other.example", now)).toThrow(
      expect.objectContaining({ code: "UNAUTHENTICATED" }),
    );
  });

  it("finds the HTTP/2 session behind a grpc-js call object (fails loudly if grpc-js changes shape)", () => {
    const session = {};
    expect(connectionOf({ call: { nextCall: { stream: { session } } } })).toBe(session);
    expect(connectionOf({ call: { stream: { session } } })).toBe(session);
    expect(connectionOf({})).toBeUndefined();
  });
});
