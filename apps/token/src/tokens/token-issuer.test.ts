import { decodeProtectedHeader, importJWK, jwtVerify } from "jose";
import { ServiceError } from "@authplat/errors";
import { beforeAll, describe, expect, it } from "vitest";
import { KeyRing } from "../keys/key-ring.ts";
import { generateLocalSigner, type Signer } from "../keys/signer.ts";
import { MemoryRefreshTokenStore } from "./memory-refresh-token-store.ts";
import type { RefreshTokenStore } from "./refresh-token-store.ts";
import {
  hashOpaqueToken,
  TokenIssuer,
  type TokenIssuerDeps,
  type TokenPairRequest,
} from "./token-issuer.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const SCOPES_MESSAGE = "scopes must be at most 64 RFC 6749 scope tokens of 1-128 characters";
let signer: Signer;

beforeAll(async () => {
  signer = await generateLocalSigner("ES256");
});

/** An ES256 issuer (15 min access tokens, 1 day families) over `refreshTokens`, with `extra`. */
function testIssuer(refreshTokens: RefreshTokenStore, extra: Partial<TokenIssuerDeps> = {}) {
  return new TokenIssuer({
    keys: new KeyRing(signer),
    refreshTokens,
    nowMs: () => NOW,
    issuer: "https://auth.local",
    accessTokenTtlSeconds: 900,
    refreshTokenTtlSeconds: 86_400,
    ...extra,
  });
}

function issuerWith(store = new MemoryRefreshTokenStore()) {
  return {
    store,
    issuer: testIssuer(store),
  };
}

const request: TokenPairRequest = {
  subject: "user-1",
  clientId: "web-app",
  audience: ["https://api.auth.local"],
  scopes: ["orders:read", "profile", "orders:read"],
  sessionId: "sess-9",
};

describe("TokenIssuer.issuePair", () => {
  it("issues an RFC 9068 access token with every required claim, signed by the active key", async () => {
    const { issuer } = issuerWith();
    const pair = await issuer.issuePair(request);
    expect(decodeProtectedHeader(pair.accessToken)).toEqual({
      alg: "ES256",
      typ: "at+jwt",
      kid: signer.keyId,
    });
    const key = await importJWK({ ...signer.publicJwk }, "ES256");
    const { payload } = await jwtVerify(pair.accessToken, key, {
      typ: "at+jwt",
      currentDate: new Date(NOW),
      issuer: "https://auth.local",
      audience: "https://api.auth.local",
    });
    expect(payload).toEqual({
      iss: "https://auth.local",
      sub: "user-1",
      aud: ["https://api.auth.local"],
      iat: NOW / 1000,
      exp: NOW / 1000 + 900,
      jti: pair.tokenId,
      client_id: "web-app",
      scope: "orders:read profile",
      sid: "sess-9",
    });
    expect(pair.accessTokenExpiresAtMs).toBe(NOW + 900_000);
    expect(pair.scopes).toEqual(["orders:read", "profile"]);
  });

  it("omits scope and sid when none are given", async () => {
    const { issuer } = issuerWith();
    const pair = await issuer.issuePair({ ...request, scopes: [], sessionId: "" });
    const payload = JSON.parse(
      Buffer.from(pair.accessToken.split(".")[1]!, "base64url").toString(),
    );
    expect(payload).not.toHaveProperty("scope");
    expect(payload).not.toHaveProperty("sid");
  });

  it("returns a 256-bit opaque refresh token and stores only its hash, in a new family", async () => {
    const { issuer, store } = issuerWith();
    const first = await issuer.issuePair(request);
    const second = await issuer.issuePair(request);
    expect(first.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.refreshToken).not.toBe(second.refreshToken);
    expect(first.familyId).not.toBe(second.familyId);
    const family = await store.familyOfToken(hashOpaqueToken(first.refreshToken), NOW);
    expect(family).toEqual({
      familyId: first.familyId,
      subject: "user-1",
      clientId: "web-app",
      audience: ["https://api.auth.local"],
      scopes: ["orders:read", "profile"],
      sessionId: "sess-9",
      createdAtMs: NOW,
      expiresAtMs: NOW + 86_400_000,
    });
    expect(first.refreshTokenExpiresAtMs).toBe(NOW + 86_400_000);
    expect(await store.familyOfToken(first.refreshToken, NOW)).toBeUndefined();
  });

  it.each([
    [{ subject: "" }, "subject must be 1-255 printable characters"],
    [{ subject: "has space" }, "subject must be 1-255 printable characters"],
    [{ clientId: "" }, "client_id must be 1-255 printable characters"],
    [{ audience: [] }, "audience must list 1-16 values"],
    [{ scopes: ['bad"quote'] }, SCOPES_MESSAGE],
    [{ scopes: ["two words"] }, SCOPES_MESSAGE],
    [{ scopes: ["tab\there"] }, SCOPES_MESSAGE],
    [{ scopes: ["caf\u00e9"] }, SCOPES_MESSAGE],
    [{ scopes: ["back\\slash"] }, SCOPES_MESSAGE],
    [{ scopes: [""] }, SCOPES_MESSAGE],
    [{ scopes: ["s".repeat(129)] }, SCOPES_MESSAGE],
    [{ scopes: Array.from({ length: 65 }, (_, i) => `s${i}`) }, SCOPES_MESSAGE],
    [{ sessionId: "x".repeat(256) }, "session_id must be 1-255 printable characters"],
  ])("rejects %j with INVALID_ARGUMENT", async (change, message) => {
    const { issuer, store } = issuerWith();
    await expect(issuer.issuePair({ ...request, ...change })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message,
    });
    // Refused before anything is recorded.
    expect(store.size).toBe(0);
  });
});

describe("TokenIssuer.issuePair limits", () => {
  it("accepts 64 scopes of 128 characters each, the largest allowed", async () => {
    const { issuer } = issuerWith();
    const scopes = Array.from({ length: 64 }, (_, i) => `${i}`.padStart(128, "x"));
    expect((await issuer.issuePair({ ...request, scopes })).scopes).toHaveLength(64);
  });
});

function recordingLog() {
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  return {
    lines,
    log: {
      warn: (fields: Record<string, unknown>, message: string) =>
        lines.push({ level: "warn", fields, message }),
      info: (fields: Record<string, unknown>, message: string) =>
        lines.push({ level: "info", fields, message }),
    },
  };
}

describe("TokenIssuer.refresh", () => {
  const CALLER = "spiffe://auth.local/ns/auth/sa/session-identity";

  function refresher(now = { ms: NOW }, idleSeconds?: number) {
    const store = new MemoryRefreshTokenStore();
    const { lines, log } = recordingLog();
    const issuer = testIssuer(store, {
      nowMs: () => now.ms,
      ...(idleSeconds === undefined ? {} : { refreshIdleTimeoutSeconds: idleSeconds }),
      log,
    });
    return { store, issuer, lines, now };
  }

  it("returns a new pair in the same family and makes the presented token unusable", async () => {
    const { issuer, now } = refresher();
    const pair = await issuer.issuePair(request);
    now.ms = NOW + 60_000;
    const next = await issuer.refresh({
      refreshToken: pair.refreshToken,
      clientId: "web-app",
      scopes: [],
      caller: CALLER,
    });
    expect(next).toMatchObject({
      familyId: pair.familyId,
      subject: "user-1",
      sessionId: "sess-9",
      scopes: ["orders:read", "profile"],
      accessTokenExpiresAtMs: NOW + 60_000 + 900_000,
      refreshTokenExpiresAtMs: NOW + 86_400_000,
    });
    expect(next.refreshToken).not.toBe(pair.refreshToken);
    const key = await importJWK({ ...signer.publicJwk }, "ES256");
    const { payload } = await jwtVerify(next.accessToken, key, {
      typ: "at+jwt",
      currentDate: new Date(now.ms),
    });
    expect(payload).toMatchObject({ jti: next.tokenId, sub: "user-1", client_id: "web-app" });
  });

  it("narrows the scopes of the new access token when asked, and refuses to widen them", async () => {
    const { issuer } = refresher();
    const pair = await issuer.issuePair(request);
    const base = { refreshToken: pair.refreshToken, clientId: "web-app", caller: CALLER };
    await expect(issuer.refresh({ ...base, scopes: ["admin"] })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: "scopes must be among those granted to the refresh token",
    });
    const narrowed = await issuer.refresh({ ...base, scopes: ["profile"] });
    expect(narrowed.scopes).toEqual(["profile"]);
    const payload = JSON.parse(
      Buffer.from(narrowed.accessToken.split(".")[1]!, "base64url").toString(),
    );
    expect(payload.scope).toBe("profile");
  });

  it("fails every bad refresh token alike, and logs which check failed", async () => {
    const { issuer, lines, now } = refresher({ ms: NOW }, 600);
    const pair = await issuer.issuePair(request);
    const other = await issuer.issuePair(request);
    const attempts = [
      { refreshToken: "not-a-token", clientId: "web-app" },
      { refreshToken: "A".repeat(43), clientId: "web-app" },
      { refreshToken: pair.refreshToken, clientId: "another-app" },
    ];
    for (const attempt of attempts) {
      await expect(
        issuer.refresh({ ...attempt, scopes: [], caller: CALLER }),
      ).rejects.toMatchObject({
        code: "INVALID_CREDENTIALS",
        message: "the refresh token is invalid",
      });
    }
    now.ms = NOW + 600_000;
    await expect(
      issuer.refresh({
        refreshToken: other.refreshToken,
        clientId: "web-app",
        scopes: [],
        caller: CALLER,
      }),
    ).rejects.toMatchObject({
      code: "INVALID_CREDENTIALS",
      message: "the refresh token is invalid",
    });
    expect(lines.map((line) => line.fields.reason)).toEqual([
      "malformed",
      "unknown",
      "wrong_client",
      "expired",
    ]);
  });

  it("revokes the whole family when a used refresh token is presented again, and logs a security event", async () => {
    const { issuer, store, lines } = refresher();
    const pair = await issuer.issuePair(request);
    const base = { clientId: "web-app", scopes: [], caller: CALLER };
    const next = await issuer.refresh({ ...base, refreshToken: pair.refreshToken });
    await expect(
      issuer.refresh({ ...base, refreshToken: pair.refreshToken }),
    ).rejects.toMatchObject({
      code: "INVALID_CREDENTIALS",
      message: "the refresh token is invalid",
    });
    expect(lines).toContainEqual({
      level: "warn",
      message: "a used refresh token was presented again: its family is revoked",
      fields: {
        event: "refresh_token_reuse",
        familyId: pair.familyId,
        clientId: "web-app",
        subject: "user-1",
        generation: 0,
        caller: CALLER,
        revokedAccessTokens: 2,
      },
    });
    expect(await store.isRevoked(pair.tokenId, NOW)).toBe(true);
    expect(await store.isRevoked(next.tokenId, NOW)).toBe(true);
    await expect(
      issuer.refresh({ ...base, refreshToken: next.refreshToken }),
    ).rejects.toMatchObject({
      code: "INVALID_CREDENTIALS",
    });
  });
});

/** The payload of a compact JWS, unverified (the tests above verify signatures). */
function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString());
}

const ROLES_MESSAGE = "roles must be at most 64 names of 1-128 characters from A-Z a-z 0-9 _ . : -";
const AMR_MESSAGE = "authentication_methods must list at most 8 methods";
const AUTH_TIME = NOW - 300_500;

const authorized: TokenPairRequest = {
  ...request,
  roles: ["admin", "orders.viewer", "admin", "tenant:acme:ops"],
  tenant: "acme",
  acr: "phr",
  amr: ["pwd", "otp", "otp"],
  authTimeMs: AUTH_TIME,
};

describe("TokenIssuer authorization claims", () => {
  const CALLER = "spiffe://auth.local/ns/auth/sa/session-identity";

  it("emits roles (distinct, in order), tenant, acr, amr and auth_time in seconds, and keeps them in the family", async () => {
    const { issuer, store } = issuerWith();
    const pair = await issuer.issuePair(authorized);
    expect(payloadOf(pair.accessToken)).toMatchObject({
      roles: ["admin", "orders.viewer", "tenant:acme:ops"],
      tenant: "acme",
      acr: "phr",
      amr: ["pwd", "otp"],
      auth_time: Math.floor(AUTH_TIME / 1000),
    });
    expect(Number.isInteger(payloadOf(pair.accessToken).auth_time)).toBe(true);
    expect(await store.familyOfToken(hashOpaqueToken(pair.refreshToken), NOW)).toMatchObject({
      roles: ["admin", "orders.viewer", "tenant:acme:ops"],
      tenant: "acme",
      acr: "phr",
      amr: ["pwd", "otp"],
      authTimeMs: AUTH_TIME,
    });
  });

  it("omits every authorization claim, and keeps nothing in the family, when none is given", async () => {
    const { issuer, store } = issuerWith();
    const pair = await issuer.issuePair(request);
    const payload = payloadOf(pair.accessToken);
    for (const claim of ["roles", "tenant", "acr", "amr", "auth_time"]) {
      expect(payload).not.toHaveProperty(claim);
    }
    const family = await store.familyOfToken(hashOpaqueToken(pair.refreshToken), NOW);
    for (const field of ["roles", "tenant", "acr", "amr", "authTimeMs"]) {
      expect(family).not.toHaveProperty(field);
    }
  });

  it("gives refreshed access tokens the family's claims, through every rotation", async () => {
    const now = { ms: NOW };
    const store = new MemoryRefreshTokenStore();
    const issuer = testIssuer(store, { nowMs: () => now.ms });
    const first = await issuer.issuePair(authorized);
    now.ms = NOW + 60_000;
    const base = { clientId: "web-app", caller: CALLER };
    const second = await issuer.refresh({ ...base, refreshToken: first.refreshToken, scopes: [] });
    now.ms = NOW + 120_000;
    const third = await issuer.refresh({
      ...base,
      refreshToken: second.refreshToken,
      scopes: ["profile"],
    });
    const expected = {
      roles: ["admin", "orders.viewer", "tenant:acme:ops"],
      tenant: "acme",
      acr: "phr",
      amr: ["pwd", "otp"],
      auth_time: Math.floor(AUTH_TIME / 1000),
    };
    expect(payloadOf(second.accessToken)).toMatchObject({ ...expected, iat: NOW / 1000 + 60 });
    expect(payloadOf(third.accessToken)).toMatchObject({ ...expected, scope: "profile" });
  });

  it("accepts the limits: 64 roles of 128 characters, 8 methods, auth_time 60 s ahead or at 0", async () => {
    const { issuer } = issuerWith();
    const roles = Array.from({ length: 64 }, (_, i) => `${i}`.padStart(128, "r"));
    const amr = Array.from({ length: 8 }, () => "otp");
    const ahead = await issuer.issuePair({ ...request, roles, amr, authTimeMs: NOW + 60_000 });
    expect(payloadOf(ahead.accessToken)).toMatchObject({ auth_time: NOW / 1000 + 60 });
    expect((payloadOf(ahead.accessToken).roles as string[]).length).toBe(64);
    const epoch = await issuer.issuePair({ ...request, authTimeMs: 0 });
    expect(payloadOf(epoch.accessToken)).toMatchObject({ auth_time: 0 });
  });

  it.each([
    [{ roles: Array.from({ length: 65 }, (_, i) => `r${i}`) }, ROLES_MESSAGE],
    [{ roles: ["has space"] }, ROLES_MESSAGE],
    [{ roles: [""] }, ROLES_MESSAGE],
    [{ roles: ["r".repeat(129)] }, ROLES_MESSAGE],
    [{ roles: ["a/b"] }, ROLES_MESSAGE],
    [{ roles: ["caf\u00e9"] }, ROLES_MESSAGE],
    [{ tenant: "two words" }, "tenant must be 1-255 printable characters"],
    [{ tenant: "t".repeat(256) }, "tenant must be 1-255 printable characters"],
    [{ acr: "urn:x phr" }, "acr must be 1-255 printable characters"],
    [{ acr: "a".repeat(256) }, "acr must be 1-255 printable characters"],
    [{ amr: Array.from({ length: 9 }, () => "pwd") }, AMR_MESSAGE],
    [{ amr: ["PWD"] }, AMR_MESSAGE],
    [{ authTimeMs: NOW + 60_001 }, "auth_time must not be in the future"],
    [{ authTimeMs: -1 }, "auth_time must not be before 1970"],
    [{ authTimeMs: Number.NaN }, "auth_time must not be before 1970"],
  ])("rejects %j with INVALID_ARGUMENT naming the field", async (change, message) => {
    const { issuer, store } = issuerWith();
    await expect(issuer.issuePair({ ...request, ...change })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message,
    });
    expect(store.size).toBe(0);
  });
});

/** `store` with its `inspect` calls recorded. */
function spyingOnInspect(store: RefreshTokenStore) {
  const calls: [string, number][] = [];
  const spy: RefreshTokenStore = {
    createFamily: (entry, nowMs) => store.createFamily(entry, nowMs),
    rotate: (rotation) => store.rotate(rotation),
    familyOfToken: (hash, nowMs) => store.familyOfToken(hash, nowMs),
    revokeFamilies: (selector, nowMs) => store.revokeFamilies(selector, nowMs),
    inspect: (hash, nowMs) => {
      calls.push([hash, nowMs]);
      return store.inspect(hash, nowMs);
    },
  };
  return { spy, calls };
}

describe("TokenIssuer.inspectRefreshToken", () => {
  const CALLER = "spiffe://auth.local/ns/auth/sa/session-identity";

  function inspector(now = { ms: NOW }) {
    const store = new MemoryRefreshTokenStore();
    const { spy, calls } = spyingOnInspect(store);
    const { lines, log } = recordingLog();
    const issuer = testIssuer(spy, { nowMs: () => now.ms, refreshIdleTimeoutSeconds: 3_600, log });
    return { issuer, calls, lines, now };
  }

  it("describes an active token by its hash and the issuer's clock, and logs nothing", async () => {
    const { issuer, calls, lines, now } = inspector();
    const pair = await issuer.issuePair(authorized);
    now.ms = NOW + 5_000;
    expect(await issuer.inspectRefreshToken(pair.refreshToken)).toEqual({
      family: expect.objectContaining({
        familyId: pair.familyId,
        subject: "user-1",
        roles: ["admin", "orders.viewer", "tenant:acme:ops"],
        tenant: "acme",
      }),
      token: {
        tokenHash: hashOpaqueToken(pair.refreshToken),
        familyId: pair.familyId,
        generation: 0,
        issuedAtMs: NOW,
        expiresAtMs: NOW + 3_600_000,
      },
    });
    expect(calls).toEqual([[hashOpaqueToken(pair.refreshToken), NOW + 5_000]]);
    expect(lines).toEqual([]);
  });

  it("answers inactive for a value that is not a refresh token without asking the store", async () => {
    const { issuer, calls } = inspector();
    for (const value of ["", "not-a-token", "A".repeat(42), "A".repeat(44), `${"A".repeat(42)}=`]) {
      expect(await issuer.inspectRefreshToken(value)).toBeUndefined();
    }
    expect(calls).toEqual([]);
  });

  it("answers inactive for an unknown, a used or an idle-expired token, and changes nothing", async () => {
    const { issuer, now } = inspector();
    expect(await issuer.inspectRefreshToken("A".repeat(43))).toBeUndefined();
    const pair = await issuer.issuePair(request);
    const next = await issuer.refresh({
      refreshToken: pair.refreshToken,
      clientId: "web-app",
      scopes: [],
      caller: CALLER,
    });
    expect(await issuer.inspectRefreshToken(pair.refreshToken)).toBeUndefined();
    expect(await issuer.inspectRefreshToken(next.refreshToken)).toMatchObject({
      token: { generation: 1 },
    });
    now.ms = next.refreshTokenExpiresAtMs;
    expect(await issuer.inspectRefreshToken(next.refreshToken)).toBeUndefined();
  });

  it("lets a store outage through as UNAVAILABLE", async () => {
    const { spy } = spyingOnInspect(new MemoryRefreshTokenStore());
    const down: RefreshTokenStore = {
      ...spy,
      inspect: async () => {
        throw new ServiceError("UNAVAILABLE", "the token store is unavailable");
      },
    };
    const issuer = testIssuer(down);
    await expect(issuer.inspectRefreshToken("A".repeat(43))).rejects.toMatchObject({
      code: "UNAVAILABLE",
    });
  });
});
