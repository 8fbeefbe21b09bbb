import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthenticationMethod } from "@authplat/contracts/auth/common/v1/authentication";
import {
  InspectRefreshTokenResponseSchema,
  KeyStatus,
  RevocationReason,
  TokenService,
} from "@authplat/contracts/auth/token/v1";
import {
  createTestPki,
  silentLogger,
  startTestServer,
  testClient,
  type TestPki,
} from "@authplat/testing";
import { loadAccessRules, type AccessProfile, type RpcServer } from "@authplat/rpc";
import { toBinary } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { decodeJwt, decodeProtectedHeader } from "jose";
import accessRulesFile from "./access-rules.json" with { type: "json" };
import { tokenServiceRegistration } from "./handlers.ts";
import { KeyManager } from "./keys/key-manager.ts";
import { MemoryKeyStore } from "./keys/key-store.ts";
import { IdTokenIssuer } from "./tokens/id-token.ts";
import { MemoryRefreshTokenStore } from "./tokens/memory-refresh-token-store.ts";
import { RevocationService } from "./tokens/revocation-service.ts";
import { TokenIssuer } from "./tokens/token-issuer.ts";

let pki: TestPki;
/** The token service behind the production rules of access-rules.json. */
let server: RpcServer;
let keyManager: KeyManager;

const INSPECT = "/auth.token.v1.TokenService/InspectRefreshToken";

function rulesOf(profile: AccessProfile) {
  return loadAccessRules({
    rules: { file: "access-rules.json", content: accessRulesFile },
    services: [TokenService],
    trustDomain: pki.trustDomain,
    profile,
  });
}

beforeAll(async () => {
  pki = await createTestPki();
  const nowMs = () => Date.now();
  keyManager = new KeyManager({
    store: new MemoryKeyStore(),
    algorithm: "EdDSA",
    nowMs,
    kek: undefined,
    publishLeadMs: 600_000,
    rotationIntervalMs: 86_400_000,
    retainMs: 960_000,
  });
  await keyManager.start();
  const keys = keyManager.ring;
  const store = new MemoryRefreshTokenStore();
  const issuer = new TokenIssuer({
    keys,
    refreshTokens: store,
    nowMs,
    issuer: "https://auth.local",
    accessTokenTtlSeconds: 600,
    refreshTokenTtlSeconds: 3_600,
    // Shorter than the family's lifetime, so a token's own expiry differs from the family's.
    refreshIdleTimeoutSeconds: 1_800,
  });
  const registration = tokenServiceRegistration({
    issuer,
    keys,
    keyManager,
    revocations: new RevocationService({
      store,
      nowMs,
      verificationKeys: () => keys.published.map((key) => key.jwk),
      maxAccessTokenTtlSeconds: 3_600,
    }),
    idTokens: new IdTokenIssuer({ keys, nowMs, issuer: "https://auth.local", ttlSeconds: 300 }),
  });
  server = await startTestServer(pki, "token", [registration], silentLogger(), {
    accessRules: rulesOf("production"),
  });
});

afterAll(async () => {
  await server?.shutdown();
  await pki?.cleanup();
});

const pairRequest = {
  subject: "user-7",
  clientId: "cli",
  audience: ["https://api.auth.local"],
  scopes: ["a", "b"],
  sessionId: "sess-7",
};

describe("TokenService over mTLS", () => {
  it("issues a token pair to an allowed caller, with timestamps and a Bearer type", async () => {
    const client = await testClient(pki, TokenService, server, "session-identity");
    const before = Date.now();
    const reply = await client.issueTokenPair(pairRequest);
    client.close();
    expect(reply.tokenType).toBe("Bearer");
    expect(reply.accessToken.split(".")).toHaveLength(3);
    expect(reply.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(reply.scopes).toEqual(["a", "b"]);
    const expiresAt = timestampMs(reply.accessTokenExpiresAt!);
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 600_000);
    expect(timestampMs(reply.refreshTokenExpiresAt!)).toBeGreaterThan(expiresAt);
  });

  it("publishes the active key in the JWKS with a cache lifetime", async () => {
    const client = await testClient(pki, TokenService, server, "auth-edge");
    const reply = await client.getJwks({});
    client.close();
    expect(reply.keys[0]).toMatchObject({
      kty: "OKP",
      crv: "Ed25519",
      alg: "EdDSA",
      use: "sig",
      kid: keyManager.ring.active.keyId,
      y: "",
      status: KeyStatus.ACTIVE,
    });
    expect(reply.maxAge?.seconds).toBe(300n);
  });

  it("reports a bad request as INVALID_ARGUMENT through the shared error model", async () => {
    const client = await testClient(pki, TokenService, server, "session-identity");
    await expect(
      client.issueTokenPair({ subject: "u", clientId: "c", audience: [] }),
    ).rejects.toMatchObject({
      remoteCode: "INVALID_ARGUMENT",
      grpcCode: grpc.status.INVALID_ARGUMENT,
      message: "audience must list 1-16 values",
    });
    await expect(
      client.issueTokenPair({ ...pairRequest, scopes: ["with space"] }),
    ).rejects.toMatchObject({
      remoteCode: "INVALID_ARGUMENT",
      message: "scopes must be at most 64 RFC 6749 scope tokens of 1-128 characters",
    });
    client.close();
  });

  it("refuses IssueTokenPair to a workload that may not mint tokens (auth-edge)", async () => {
    const client = await testClient(pki, TokenService, server, "auth-edge");
    await expect(
      client.issueTokenPair({ subject: "u", clientId: "c", audience: ["x"] }),
    ).rejects.toMatchObject({
      remoteCode: "CALLER_NOT_ALLOWED",
      grpcCode: grpc.status.PERMISSION_DENIED,
    });
    client.close();
  });

  it("rotates a refresh token once; of 50 concurrent uses exactly one succeeds and then the family is dead", async () => {
    const client = await testClient(pki, TokenService, server, "session-identity");
    const pair = await client.issueTokenPair(pairRequest);
    const next = await client.refreshTokens({ refreshToken: pair.refreshToken, clientId: "cli" });
    expect(next).toMatchObject({ familyId: pair.familyId, subject: "user-7", sessionId: "sess-7" });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, () =>
        client.refreshTokens({ refreshToken: next.refreshToken, clientId: "cli" }),
      ),
    );
    const won = outcomes.filter((o) => o.status === "fulfilled");
    expect(won).toHaveLength(1);
    for (const outcome of outcomes.filter((o) => o.status === "rejected")) {
      expect(outcome.reason).toMatchObject({
        remoteCode: "INVALID_CREDENTIALS",
        grpcCode: grpc.status.UNAUTHENTICATED,
        message: "the refresh token is invalid",
      });
    }
    const winner = (won[0] as PromiseFulfilledResult<typeof next>).value;
    await expect(
      client.refreshTokens({ refreshToken: winner.refreshToken, clientId: "cli" }),
    ).rejects.toMatchObject({ remoteCode: "INVALID_CREDENTIALS" });
    client.close();
  });

  it("reports a revoked jti to a WatchRevocations subscriber connected before and to one connecting after", async () => {
    const issuing = await testClient(pki, TokenService, server, "session-identity");
    const edge = await testClient(pki, TokenService, server, "auth-edge");
    const abort = new AbortController();
    const early = edge
      .watchRevocations({}, { signal: abort.signal, timeoutMs: Infinity })
      [Symbol.asyncIterator]();
    const snapshot = await early.next();
    expect(snapshot.value).toMatchObject({ snapshot: true });
    const pair = await issuing.issueTokenPair(pairRequest);
    const reply = await issuing.revokeToken({
      target: { case: "token", value: pair.accessToken },
      reason: RevocationReason.LOGOUT,
    });
    expect(reply.found).toBe(true);
    const update = await early.next();
    expect(update.value).toMatchObject({
      snapshot: false,
      revoked: [{ tokenId: pair.tokenId, expiresAt: pair.accessTokenExpiresAt }],
    });
    const late = edge
      .watchRevocations({}, { signal: abort.signal, timeoutMs: Infinity })
      [Symbol.asyncIterator]();
    const lateSnapshot = await late.next();
    expect(lateSnapshot.value?.snapshot).toBe(true);
    expect(lateSnapshot.value?.revoked.map((r: { tokenId: string }) => r.tokenId)).toContain(
      pair.tokenId,
    );
    abort.abort();
    issuing.close();
    edge.close();
  });

  it("sends heartbeats on request: one at once when resuming, then one while the feed is quiet, with the resume cursor", async () => {
    const issuing = await testClient(pki, TokenService, server, "session-identity");
    const edge = await testClient(pki, TokenService, server, "auth-edge");
    const abort = new AbortController();
    const first = edge
      .watchRevocations({}, { signal: abort.signal, timeoutMs: Infinity })
      [Symbol.asyncIterator]();
    const snapshot = await first.next();
    const cursor = snapshot.value!.cursor;
    const resumed = edge
      .watchRevocations(
        { cursor, heartbeatInterval: durationFromMs(100) },
        { signal: abort.signal, timeoutMs: Infinity },
      )
      [Symbol.asyncIterator]();
    const heartbeat = { snapshot: false, revoked: [], cursor };
    expect((await resumed.next()).value).toMatchObject(heartbeat);
    expect((await resumed.next()).value).toMatchObject(heartbeat);
    const pair = await issuing.issueTokenPair(pairRequest);
    await issuing.revokeToken({ target: { case: "tokenId", value: pair.tokenId } });
    let next = await resumed.next();
    while (next.value?.revoked.length === 0) next = await resumed.next();
    expect(next.value?.revoked.map((entry: { tokenId: string }) => entry.tokenId)).toEqual([
      pair.tokenId,
    ]);
    expect(next.value?.cursor).not.toBe(cursor);
    abort.abort();
    issuing.close();
    edge.close();
  });

  it.each([50, 60_001])("refuses a heartbeat interval of %d ms as INVALID_ARGUMENT", async (ms) => {
    const edge = await testClient(pki, TokenService, server, "auth-edge");
    const stream = edge.watchRevocations(
      { heartbeatInterval: durationFromMs(ms) },
      { timeoutMs: 5_000 },
    );
    await expect(stream[Symbol.asyncIterator]().next()).rejects.toMatchObject({
      remoteCode: "INVALID_ARGUMENT",
      message: "heartbeat_interval must be between 100 ms and 60 s",
    });
    edge.close();
  });

  it("treats an unknown token as revoked successfully, and a request without a target as invalid", async () => {
    const client = await testClient(pki, TokenService, server, "session-identity");
    expect(
      await client.revokeToken({ target: { case: "token", value: "A".repeat(43) } }),
    ).toMatchObject({ found: false });
    await expect(client.revokeToken({})).rejects.toMatchObject({
      remoteCode: "INVALID_ARGUMENT",
      message: "exactly one revocation target is required",
    });
    client.close();
  });

  it("signs ID tokens with RFC 8176 amr values and at_hash", async () => {
    const client = await testClient(pki, TokenService, server, "session-identity");
    const authTime = Date.now() - 10_000;
    const reply = await client.issueIdToken({
      subject: "user-7",
      clientId: "cli",
      nonce: "n-1",
      authTime: timestampFromMs(authTime),
      authenticationMethods: [AuthenticationMethod.PASSWORD, AuthenticationMethod.WEBAUTHN],
      accessToken: "token-value",
    });
    client.close();
    expect(decodeProtectedHeader(reply.idToken)).toMatchObject({ typ: "JWT", alg: "EdDSA" });
    expect(decodeJwt(reply.idToken)).toMatchObject({
      sub: "user-7",
      aud: "cli",
      azp: "cli",
      nonce: "n-1",
      amr: ["pwd", "hwk"],
      auth_time: Math.floor(authTime / 1000),
    });
    expect(decodeJwt(reply.idToken).at_hash).toEqual(expect.any(String));
  });

  it("stages a key rotation for an operator only, publishing the next key at once", async () => {
    const operator = await testClient(pki, TokenService, server, "operator");
    const staged = await operator.rotateSigningKeys({});
    operator.close();
    expect(timestampMs(staged.activatesAt!) - timestampMs(staged.publishedAt!)).toBe(600_000);
    const edge = await testClient(pki, TokenService, server, "auth-edge");
    const jwks = await edge.getJwks({});
    expect(jwks.keys.map((k) => [k.kid, k.status])).toContainEqual([staged.kid, KeyStatus.NEXT]);
    await expect(edge.rotateSigningKeys({})).rejects.toMatchObject({
      remoteCode: "CALLER_NOT_ALLOWED",
    });
    edge.close();
  });
});

const authorizedRequest = {
  ...pairRequest,
  roles: ["admin", "orders.viewer", "admin"],
  tenant: "acme",
  acr: "phr",
  authenticationMethods: [AuthenticationMethod.PASSWORD, AuthenticationMethod.TOTP],
};

describe("IssueTokenPair authorization claims over mTLS", () => {
  it("puts roles, tenant, acr, amr and auth_time in the access token, and keeps them on refresh", async () => {
    const client = await testClient(pki, TokenService, server, "session-identity");
    const authTime = Date.now() - 30_000;
    const pair = await client.issueTokenPair({
      ...authorizedRequest,
      authTime: timestampFromMs(authTime),
    });
    const expected = {
      roles: ["admin", "orders.viewer"],
      tenant: "acme",
      acr: "phr",
      amr: ["pwd", "otp"],
      auth_time: Math.floor(authTime / 1000),
    };
    expect(decodeJwt(pair.accessToken)).toMatchObject(expected);
    const next = await client.refreshTokens({ refreshToken: pair.refreshToken, clientId: "cli" });
    client.close();
    expect(decodeJwt(next.accessToken)).toMatchObject(expected);
  });

  it("omits them when the request has none", async () => {
    const client = await testClient(pki, TokenService, server, "session-identity");
    const pair = await client.issueTokenPair(pairRequest);
    client.close();
    const payload = decodeJwt(pair.accessToken);
    for (const claim of ["roles", "tenant", "acr", "amr", "auth_time"]) {
      expect(payload).not.toHaveProperty(claim);
    }
  });

  it.each([
    [
      "an unspecified authentication method",
      { authenticationMethods: [AuthenticationMethod.UNSPECIFIED] },
      "authentication_methods must be known methods",
    ],
    [
      "auth_time an hour ahead",
      { authTime: timestampFromMs(Date.now() + 3_600_000) },
      "auth_time must not be in the future",
    ],
    [
      "auth_time before 1970",
      { authTime: timestampFromMs(-1_000) },
      "auth_time must not be before 1970",
    ],
    [
      "a role with a space",
      { roles: ["two words"] },
      "roles must be at most 64 names of 1-128 characters from A-Z a-z 0-9 _ . : -",
    ],
    ["a tenant with a space", { tenant: "two words" }, "tenant must be 1-255 printable characters"],
    [
      "an acr of 256 characters",
      { acr: "x".repeat(256) },
      "acr must be 1-255 printable characters",
    ],
  ])("answers INVALID_ARGUMENT for %s", async (_case, change, message) => {
    const client = await testClient(pki, TokenService, server, "session-identity");
    await expect(client.issueTokenPair({ ...authorizedRequest, ...change })).rejects.toMatchObject({
      remoteCode: "INVALID_ARGUMENT",
      grpcCode: grpc.status.INVALID_ARGUMENT,
      message,
    });
    client.close();
  });
});

describe("InspectRefreshToken over mTLS, under access-rules.json", () => {
  it("describes an active token to auth-edge: the family, and the token's own times", async () => {
    const issuing = await testClient(pki, TokenService, server, "session-identity");
    const before = Date.now();
    const pair = await issuing.issueTokenPair(authorizedRequest);
    issuing.close();
    const edge = await testClient(pki, TokenService, server, "auth-edge");
    const reply = await edge.inspectRefreshToken({ refreshToken: pair.refreshToken });
    edge.close();
    expect(reply).toMatchObject({
      active: true,
      subject: "user-7",
      clientId: "cli",
      scopes: ["a", "b"],
      sessionId: "sess-7",
      familyId: pair.familyId,
      expiresAt: pair.refreshTokenExpiresAt,
      roles: ["admin", "orders.viewer"],
      tenant: "acme",
    });
    const issuedAt = timestampMs(reply.issuedAt!);
    expect(issuedAt).toBeGreaterThanOrEqual(before);
    expect(issuedAt).toBeLessThanOrEqual(Date.now());
  });

  it("answers the empty message, active false and nothing else, for a malformed, an unknown or a used token", async () => {
    const issuing = await testClient(pki, TokenService, server, "session-identity");
    const pair = await issuing.issueTokenPair(authorizedRequest);
    const next = await issuing.refreshTokens({ refreshToken: pair.refreshToken, clientId: "cli" });
    issuing.close();
    const edge = await testClient(pki, TokenService, server, "auth-edge");
    for (const refreshToken of ["", "not a token", "A".repeat(43), pair.refreshToken]) {
      const reply = await edge.inspectRefreshToken({ refreshToken });
      expect(reply.active).toBe(false);
      expect(toBinary(InspectRefreshTokenResponseSchema, reply)).toHaveLength(0);
    }
    // Inspecting the used token did not revoke the family: the successor is active and rotates.
    expect(await edge.inspectRefreshToken({ refreshToken: next.refreshToken })).toMatchObject({
      active: true,
      familyId: pair.familyId,
    });
    edge.close();
    const again = await testClient(pki, TokenService, server, "session-identity");
    await expect(
      again.refreshTokens({ refreshToken: next.refreshToken, clientId: "cli" }),
    ).resolves.toMatchObject({ familyId: pair.familyId });
    again.close();
  });

  it.each(["session-identity", "operator"])("refuses %s with PERMISSION_DENIED", async (caller) => {
    const client = await testClient(pki, TokenService, server, caller);
    await expect(
      client.inspectRefreshToken({ refreshToken: "A".repeat(43) }),
    ).rejects.toMatchObject({
      remoteCode: "CALLER_NOT_ALLOWED",
      grpcCode: grpc.status.PERMISSION_DENIED,
    });
    client.close();
  });

  it("allows auth-edge alone in both profiles of access-rules.json", () => {
    for (const profile of ["production", "development"] as const) {
      expect({ profile, callers: rulesOf(profile).callersOf(INSPECT) }).toEqual({
        profile,
        callers: [pki.idOf("auth-edge")],
      });
    }
  });
});
