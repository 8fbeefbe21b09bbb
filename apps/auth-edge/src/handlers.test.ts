import * as grpc from "@grpc/grpc-js";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthEdgeService, RejectionReason } from "@authplat/contracts/auth/auth_edge/v1";
import { ServiceError } from "@authplat/errors";
import { sameCallersForEveryMethod, type RpcServer } from "@authplat/rpc";
import {
  createTestPki,
  silentLogger,
  startTestServer,
  testClient,
  type TestPki,
} from "@authplat/testing";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { authEdgeRegistration } from "./handlers.ts";
import { JwksCache } from "./jwks/jwks-cache.ts";
import { TokenValidator } from "./tokens/token-validator.ts";
import {
  TokenIntrospector,
  type RefreshTokenDescription,
  type RefreshTokenInspector,
} from "./tokens/token-introspector.ts";
import { TokenAuthorizer } from "./authorization/token-authorizer.ts";
import type { PolicyDecider, PolicyQuestion } from "./authorization/policy-decider.ts";

let pki: TestPki;
let server: RpcServer;
let privateKey: CryptoKey;

function token(
  exp = Math.floor(Date.now() / 1000) + 300,
  extra: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT({ client_id: "web", scope: "a b", ...extra })
    .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: "k1" })
    .setIssuer("https://auth.local")
    .setSubject("user-1")
    .setAudience("https://api.auth.local")
    .setIssuedAt()
    .setExpirationTime(exp)
    .setJti("j-1")
    .sign(privateKey);
}

/** Only the operator may call the AuthEdgeService RPCs (the default of access-rules.json). */
function operatorOnly() {
  return sameCallersForEveryMethod([AuthEdgeService], [pki.idOf("operator")]);
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
  server = await startTestServer(
    pki,
    "auth-edge",
    [
      authEdgeRegistration({
        validator,
        issuer: "https://auth.local",
        introspector: new TokenIntrospector({ validator, refreshTokens }),
        authorizer: new TokenAuthorizer({ validator, decider, nowMs: () => NOW_MS }),
      }),
    ],
    silentLogger(),
    { accessRules: operatorOnly() },
  );
});

const NOW_MS = Date.parse("2026-11-27T12:00:00Z");
const REFRESH_TOKEN = "R".repeat(43);
const REFRESH_DESCRIPTION: RefreshTokenDescription = {
  subject: "user-1",
  clientId: "web",
  scopes: ["a"],
  sessionId: "s-9",
  familyId: "f-1",
  issuedAtMs: NOW_MS - 60_000,
  expiresAtMs: NOW_MS + 3_600_000,
  roles: ["editor"],
  tenant: "acme",
};
// The token service's side of refresh introspection: one active refresh token.
const refreshTokens: RefreshTokenInspector = {
  inspect: async (refreshToken) =>
    refreshToken === REFRESH_TOKEN ? REFRESH_DESCRIPTION : undefined,
};
// A decision point that records each question: it permits `read`, refuses the resource type
// `invoice` as iam-policy's schema would, and cannot decide `archive`.
const questions: PolicyQuestion[] = [];
const decider: PolicyDecider = {
  decide: async (question) => {
    questions.push(question);
    if (question.resource.type === "invoice") {
      throw new ServiceError("INVALID_ARGUMENT", "iam-policy refused the question: unknown type");
    }
    if (question.action === "archive") {
      throw new ServiceError("UNAVAILABLE", "iam-policy cannot decide now", { retryAfterMs: 750 });
    }
    const allowed = question.action === "read";
    return {
      allowed,
      policyIds: allowed ? ["role/viewer/document"] : [],
      reason: allowed ? "permitted by policy" : "no policy permits",
      decisionId: `d-${questions.length}`,
    };
  },
};

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

  it("answers active for a refresh token the token service knows, with what RFC 7662 can say of it", async () => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    const reply = await client.introspectToken({
      token: REFRESH_TOKEN,
      tokenTypeHint: "refresh_token",
    });
    client.close();
    expect(reply).toMatchObject({
      active: true,
      tokenType: "refresh_token",
      claims: {
        issuer: "https://auth.local",
        subject: "user-1",
        clientId: "web",
        scopes: ["a"],
        sessionId: "s-9",
        roles: ["editor"],
        tenant: "acme",
        // Opaque: no JWT header or jti to report.
        tokenId: "",
        keyId: "",
        algorithm: "",
        audience: [],
        callerSpiffeId: "spiffe://auth.local/ns/auth/sa/operator",
      },
    });
    expect(timestampMs(reply.claims!.issuedAt!)).toBe(REFRESH_DESCRIPTION.issuedAtMs);
    expect(timestampMs(reply.claims!.expiresAt!)).toBe(REFRESH_DESCRIPTION.expiresAtMs);
  });

  it("says which kind an active access token is", async () => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    const reply = await client.introspectToken({ token: await token() });
    client.close();
    expect(reply).toMatchObject({ active: true, tokenType: "access_token" });
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

describe("AuthEdgeService.AuthorizeToken over mTLS (requirement 1.4)", () => {
  const document = {
    type: "document",
    id: "d-1",
    attributes: { tenant: "acme", owner: "bob", classification: "internal" },
  };

  it("asks with a principal built from the verified claims and returns the decision with its policies", async () => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    const signed = await token(undefined, {
      roles: ["viewer"],
      tenant: "acme",
      amr: ["pwd", "otp"],
      sid: "s-1",
    });
    const before = questions.length;
    const reply = await client.authorizeToken({
      token: signed,
      requiredScopes: ["a"],
      action: "read",
      resource: document,
      ipAddress: "10.1.2.3",
      contextAttributes: { country: "DE" },
    });
    client.close();
    expect(reply.result).toMatchObject({
      case: "decision",
      value: {
        allowed: true,
        policyIds: ["role/viewer/document"],
        reason: "permitted by policy",
        decisionId: `d-${before + 1}`,
        claims: { subject: "user-1", roles: ["viewer"], tenant: "acme", amr: ["pwd", "otp"] },
      },
    });
    expect(questions.slice(before)).toEqual([
      {
        principal: {
          subject: "user-1",
          kind: "user",
          roles: ["viewer"],
          attributes: { tenant: "acme" },
        },
        action: "read",
        resource: document,
        context: {
          ipAddress: "10.1.2.3",
          requestTimeMs: NOW_MS,
          mfa: "multi-factor",
          sessionId: "s-1",
          clientId: "web",
          caller: "spiffe://auth.local/ns/auth/sa/operator",
          attributes: { country: "DE" },
        },
      },
    ]);
  });

  it("answers a deny as a decision, not an error", async () => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    const reply = await client.authorizeToken({
      token: await token(),
      action: "delete",
      resource: document,
    });
    client.close();
    expect(reply.result).toMatchObject({
      case: "decision",
      value: { allowed: false, policyIds: [], reason: "no policy permits" },
    });
  });

  it("rejects an invalid token or a missing scope without asking the decision point", async () => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    const before = questions.length;
    const expired = await client.authorizeToken({
      token: await token(Math.floor(Date.now() / 1000) - 60),
      action: "read",
      resource: document,
    });
    const unscoped = await client.authorizeToken({
      token: await token(),
      requiredScopes: ["admin"],
      action: "read",
      resource: document,
    });
    client.close();
    expect(expired.result).toMatchObject({
      case: "rejection",
      value: { reason: RejectionReason.EXPIRED },
    });
    expect(unscoped.result).toMatchObject({
      case: "rejection",
      value: { reason: RejectionReason.INSUFFICIENT_SCOPE },
    });
    expect(questions.length).toBe(before);
  });

  it("fails UNAVAILABLE with retry pushback, never allows, when the decision point cannot decide", async () => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    const error: unknown = await client
      .authorizeToken({ token: await token(), action: "archive", resource: document })
      .catch((thrown: unknown) => thrown);
    client.close();
    expect(error).toMatchObject({
      grpcCode: grpc.status.UNAVAILABLE,
      message: "iam-policy cannot decide now",
      retryAfterMs: 750,
    });
  });

  it.each([
    ["no action", { action: "" }, "action must be 1-128 printable characters"],
    ["no resource", { resource: undefined }, "resource.type must be 1-128 printable characters"],
    [
      "a nested attribute",
      { resource: { ...document, attributes: { owner: { id: "bob" } } } },
      "resource.attributes.owner: must be a string of at most 1024 characters, a number or a boolean",
    ],
    [
      "an attribute name that is not snake case",
      { contextAttributes: { Country: "DE" } },
      "context_attributes: attribute names are lower snake case of 1-64 characters",
    ],
    ["a type the schema refuses", { resource: { type: "invoice" } }, "unknown type"],
  ])("answers INVALID_ARGUMENT for %s", async (_case, change, message) => {
    const client = await testClient(pki, AuthEdgeService, server, "operator");
    const error: unknown = await client
      .authorizeToken({ token: await token(), action: "read", resource: document, ...change })
      .catch((thrown: unknown) => thrown);
    client.close();
    expect(error).toMatchObject({
      grpcCode: grpc.status.INVALID_ARGUMENT,
      message: expect.stringContaining(message),
    });
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
    const stale = await startTestServer(
      pki,
      "auth-edge",
      [authEdgeRegistration({ validator, issuer: "https://auth.local" })],
      silentLogger(),
      { accessRules: operatorOnly() },
    );
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
