import * as grpc from "@grpc/grpc-js";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthEdgeService, RejectionReason } from "@authplat/contracts/auth/auth_edge/v1";
import type { RpcServer } from "@authplat/rpc";
import { createTestPki, startTestServer, testClient, type TestPki } from "@authplat/testing";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { authEdgeRegistration } from "./handlers.ts";
import { JwksCache } from "./jwks/jwks-cache.ts";
import { TokenValidator } from "./tokens/token-validator.ts";

let pki: TestPki;
let server: RpcServer;
let privateKey: CryptoKey;

function token(exp = Math.floor(Date.now() / 1000) + 300): Promise<string> {
  return new SignJWT({ client_id: "web", scope: "a b" })
    .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: "k1" })
    .setIssuer("https://auth.local")
    .setSubject("user-1")
    .setAudience("https://api.auth.local")
    .setIssuedAt()
    .setExpirationTime(exp)
    .setJti("j-1")
    .sign(privateKey);
}

beforeAll(async () => {
  pki = await createTestPki();
  const pair = await generateKeyPair("ES256", { extractable: true });
  privateKey = pair.privateKey;
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256" };
  const keys = new JwksCache({
    fetchKeys: async () => [publicJwk],
    algorithms: ["ES256"],
    nowMs: () => Date.now(),
    minRefetchIntervalMs: 1_000,
  });
  await keys.refresh();
  const validator = new TokenValidator({
    keys,
    issuer: "https://auth.local",
    audiences: ["https://api.auth.local"],
    algorithms: ["ES256"],
    clockToleranceSeconds: 0,
    nowMs: () => Date.now(),
  });
  server = await startTestServer(pki, "auth-edge", [
    authEdgeRegistration({ validator, allowedCallers: [pki.idOf("operator")] }),
  ]);
});

afterAll(async () => {
  await server?.shutdown();
  await pki?.cleanup();
});

describe("AuthEdgeService.ValidateToken over mTLS", () => {
  it("returns the claims of a valid token and the caller's SPIFFE ID", async () => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    const reply = await client.validateToken({ token: await token(), requiredScopes: ["a"] });
    client.close();
    expect(reply.result.case).toBe("claims");
    const claims = reply.result.case === "claims" ? reply.result.value : undefined;
    expect(claims).toMatchObject({
      issuer: "https://auth.local",
      subject: "user-1",
      audience: ["https://api.auth.local"],
      clientId: "web",
      scopes: ["a", "b"],
      tokenId: "j-1",
      keyId: "k1",
      algorithm: "ES256",
      callerSpiffeId: "spiffe://auth.local/ns/auth/sa/operator",
    });
    expect(claims?.notBefore).toBeUndefined();
    expect(timestampMs(claims!.expiresAt!)).toBeGreaterThan(Date.now());
  });

  it("says why a token is rejected, with a stable reason", async () => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    const expired = await client.validateToken({
      token: await token(Math.floor(Date.now() / 1000) - 60),
    });
    const tampered = await client.validateToken({ token: `${await token()}x` });
    client.close();
    expect(expired.result).toMatchObject({
      case: "rejection",
      value: { reason: RejectionReason.EXPIRED },
    });
    expect(tampered.result).toMatchObject({
      case: "rejection",
      value: {
        reason: RejectionReason.BAD_SIGNATURE,
        message: "the token signature does not verify",
      },
    });
  });

  it("refuses callers that are not on the allowlist", async () => {
    const client = await testClient(pki, AuthEdgeService, server, "mfa");
    await expect(client.validateToken({ token: await token() })).rejects.toMatchObject({
      remoteCode: "CALLER_NOT_ALLOWED",
      grpcCode: grpc.status.PERMISSION_DENIED,
    });
    client.close();
  });
});

describe("AuthEdgeService.IntrospectToken over mTLS (RFC 7662)", () => {
  it("answers active with the claims for a valid access token", async () => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    const reply = await client.introspectToken({ token: await token() });
    client.close();
    expect(reply.active).toBe(true);
    expect(reply.claims).toMatchObject({ subject: "user-1", tokenId: "j-1", clientId: "web" });
  });

  it.each([
    ["expired", async () => token(Math.floor(Date.now() / 1000) - 60)],
    ["tampered", async () => `${await token()}x`],
    ["opaque", async () => "A".repeat(43)],
  ])("answers active=false and nothing else for an %s token", async (_kind, make) => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    const reply = await client.introspectToken({ token: await make() });
    client.close();
    expect(reply.active).toBe(false);
    expect(reply.claims).toBeUndefined();
  });

  it("refuses an empty token as INVALID_ARGUMENT", async () => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    await expect(client.introspectToken({ token: "" })).rejects.toMatchObject({
      remoteCode: "INVALID_ARGUMENT",
      message: "token is required",
    });
    client.close();
  });
});

describe("AuthEdgeService.ValidateToken over mTLS, at the edges of its input", () => {
  it.each([
    ["huge", 1e300],
    ["fractional", Math.floor(Date.now() / 1000) + 300.0001],
    ["negative", -1],
  ])(
    "rejects a signed token whose exp is %s as MALFORMED, naming the claim",
    async (_kind, exp) => {
      const client = await testClient(pki, AuthEdgeService, server, "operator");
      const reply = await client.validateToken({ token: await token(exp) });
      client.close();
      expect(reply.result).toEqual({
        case: "rejection",
        value: expect.objectContaining({
          reason: RejectionReason.MALFORMED,
          message: 'the token\'s "exp" claim is not a valid NumericDate',
        }),
      });
    },
  );

  it("answers INVALID_ARGUMENT, naming the limit, for more than 64 required scopes", async () => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    const requiredScopes = Array.from({ length: 65 }, (_, i) => `s${i}`);
    const error: unknown = await client
      .validateToken({ token: await token(), requiredScopes })
      .catch((thrown: unknown) => thrown);
    client.close();
    expect(error).toMatchObject({
      grpcCode: grpc.status.INVALID_ARGUMENT,
      message: "required_scopes holds at most 64 entries",
    });
    // The server's stable code, as the client error exposes it.
    expect(error).toMatchObject({ remoteCode: "INVALID_ARGUMENT" });
  });

  it("fails closed with UNAVAILABLE and retry pushback once its key set is too stale to trust", async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k-stale", alg: "ES256" };
    let cacheNow = Date.now();
    let tokenServiceDown = false;
    const keys = new JwksCache({
      fetchKeys: async () => {
        if (tokenServiceDown) throw new Error("token service unreachable");
        return [jwk];
      },
      algorithms: ["ES256"],
      nowMs: () => cacheNow,
      minRefetchIntervalMs: 5_000,
      maxStalenessMs: 60_000,
    });
    await keys.refresh();
    const validator = new TokenValidator({
      keys,
      issuer: "https://auth.local",
      audiences: ["https://api.auth.local"],
      algorithms: ["ES256"],
      clockToleranceSeconds: 0,
      nowMs: () => Date.now(),
    });
    const stale = await startTestServer(pki, "auth-edge", [
      authEdgeRegistration({ validator, allowedCallers: [pki.idOf("operator")] }),
    ]);
    const client = await testClient(pki, AuthEdgeService, stale, "operator");
    try {
      const signed = await new SignJWT({ client_id: "web" })
        .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: "k-stale" })
        .setIssuer("https://auth.local")
        .setSubject("user-1")
        .setAudience("https://api.auth.local")
        .setIssuedAt()
        .setExpirationTime("5m")
        .setJti("j-2")
        .sign(pair.privateKey);
      expect((await client.validateToken({ token: signed })).result.case).toBe("claims");
      tokenServiceDown = true;
      cacheNow += 60_000;
      await expect(client.validateToken({ token: signed })).rejects.toMatchObject({
        code: "UNAVAILABLE",
        grpcCode: grpc.status.UNAVAILABLE,
        message: expect.stringContaining("signing keys are out of date"),
        retryAfterMs: 5_000,
      });
    } finally {
      client.close();
      await stale.shutdown();
    }
  });
});
