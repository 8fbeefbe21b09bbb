import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { createLogger } from "@authplat/observability";
import { createCa, issueSvid, type DevCa } from "@authplat/spiffe/dev-pki";
import { sameCallersForEveryMethod } from "./access-rules.ts";
import { defineService } from "./handlers.ts";
import { startRpcServer, type RpcServer } from "./server.ts";
import { rawCredentials, rawUnaryCall, writeServerSvid } from "./test-support.ts";
import { unimplementedHandlers } from "./unimplemented.ts";

const TRUST_DOMAIN = "auth.local";
const HOUR = 3_600_000;
/** Workloads on the allowlist; valid SVIDs for other paths must get PERMISSION_DENIED. */
const ALLOWED = ["ns/auth/sa/operator", "ns/auth/sa/auth-edge", "ns/edge/sa/gateway"];

/** One client certificate the property presents, and whether it is a valid SVID. */
type ClientCase =
  | { kind: "valid"; path: string }
  | { kind: "expired" | "not-yet-valid" | "foreign-ca" | "ca-certificate"; path: string }
  | { kind: "other-trust-domain" | "no-uri-san" | "two-uri-sans" | "non-spiffe-uri"; path: string }
  | { kind: "no-key-usage"; path: string };

let dir: string;
let ca: DevCa;
let foreignCa: DevCa;
let server: RpcServer;
let bundle: Buffer;
const seenCallers: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "authplat-p21-"));
  ca = await createCa({ trustDomain: TRUST_DOMAIN, validityMs: 24 * HOUR });
  foreignCa = await createCa({ trustDomain: TRUST_DOMAIN, validityMs: 24 * HOUR });
  const tls = await writeServerSvid(
    dir,
    ca,
    `spiffe://${TRUST_DOMAIN}/ns/auth/sa/token`,
    TRUST_DOMAIN,
  );
  bundle = Buffer.from(ca.certPem);
  server = await startRpcServer({
    name: "token",
    host: "127.0.0.1",
    port: 0,
    tls,
    logger: createLogger({ service: "property-21", level: "silent" }),
    shutdownGraceMs: 1_000,
    accessRules: sameCallersForEveryMethod(
      [TokenService],
      ALLOWED.map((path) => `spiffe://${TRUST_DOMAIN}/${path}`),
    ),
    services: [
      defineService(TokenService, {
        ...unimplementedHandlers(TokenService),
        async getJwks(_request, context) {
          seenCallers.push(context.caller.toString());
          return {};
        },
      }),
    ],
  });
  server.markServing();
});

afterAll(async () => {
  await server?.shutdown();
  await rm(dir, { recursive: true, force: true });
});

async function certificateFor(c: ClientCase): Promise<{ certPem: string; keyPem: string }> {
  const id = `spiffe://${TRUST_DOMAIN}/${c.path}`;
  switch (c.kind) {
    case "valid":
      return issueSvid(ca, { spiffeId: id, validityMs: HOUR });
    case "expired":
      return issueSvid(ca, {
        spiffeId: id,
        validityMs: HOUR,
        now: new Date(Date.now() - 3 * HOUR),
      });
    case "not-yet-valid":
      return issueSvid(ca, {
        spiffeId: id,
        validityMs: HOUR,
        now: new Date(Date.now() + 2 * HOUR),
      });
    case "foreign-ca":
      return issueSvid(foreignCa, { spiffeId: id, validityMs: HOUR });
    case "ca-certificate":
      return issueSvid(ca, { spiffeId: id, validityMs: HOUR, overrides: { isCa: true } });
    case "other-trust-domain":
      return issueSvid(ca, {
        spiffeId: id,
        overrides: { uris: [`spiffe://other.test/${c.path}`] },
      });
    case "no-uri-san":
      return issueSvid(ca, { spiffeId: id, overrides: { uris: [] } });
    case "two-uri-sans":
      return issueSvid(ca, { spiffeId: id, overrides: { uris: [id, `${id}x`] } });
    case "non-spiffe-uri":
      return issueSvid(ca, {
        spiffeId: id,
        overrides: { uris: [`https://${TRUST_DOMAIN}/${c.path}`] },
      });
    case "no-key-usage":
      return issueSvid(ca, { spiffeId: id, overrides: { omitKeyUsage: true } });
  }
}

async function callAs(certificate: { certPem: string; keyPem: string }): Promise<grpc.status> {
  const outcome = await rawUnaryCall({
    port: server.port,
    credentials: rawCredentials(bundle, certificate),
    path: "/auth.token.v1.TokenService/GetJwks",
    request: new Uint8Array(0),
  });
  return outcome.code;
}

const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((s) => s !== "." && s !== "..");
const path = fc.oneof(
  fc.constantFrom(...ALLOWED),
  fc.array(segment, { minLength: 1, maxLength: 4 }).map((segments) => segments.join("/")),
);
const clientCase: fc.Arbitrary<ClientCase> = fc.record({
  kind: fc.constantFrom(
    "valid",
    "valid",
    "valid",
    "expired",
    "not-yet-valid",
    "foreign-ca",
    "ca-certificate",
    "other-trust-domain",
    "no-uri-san",
    "two-uri-sans",
    "non-spiffe-uri",
    "no-key-usage",
  ),
  path,
}) as fc.Arbitrary<ClientCase>;

describe("mutual TLS", () => {
  it("Property 21: mTLS certificate validation — a call is served iff the client presents a valid SVID of the trust domain that the RPC allows, and the handler sees exactly its SPIFFE ID", async () => {
    await fc.assert(
      fc.asyncProperty(clientCase, async (c) => {
        const before = seenCallers.length;
        const code = await callAs(await certificateFor(c));
        const id = `spiffe://${TRUST_DOMAIN}/${c.path}`;
        if (c.kind === "valid" && ALLOWED.includes(c.path)) {
          expect(code).toBe(grpc.status.OK);
          expect(seenCallers.slice(before)).toEqual([id]);
        } else if (c.kind === "valid") {
          expect(code).toBe(grpc.status.PERMISSION_DENIED);
          expect(seenCallers.length).toBe(before);
        } else {
          // Refused at the handshake (chain, validity) or by the SVID checks after it.
          expect([grpc.status.UNAVAILABLE, grpc.status.UNAUTHENTICATED]).toContain(code);
          expect(seenCallers.length).toBe(before);
        }
      }),
      { numRuns: 60 },
    );
  });
});
