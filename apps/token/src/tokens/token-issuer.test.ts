import { decodeProtectedHeader, importJWK, jwtVerify } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { KeyRing } from "../keys/key-ring.ts";
import { generateLocalSigner, type Signer } from "../keys/signer.ts";
import { MemoryRefreshTokenStore } from "./memory-refresh-token-store.ts";
import { hashOpaqueToken, TokenIssuer, type TokenPairRequest } from "./token-issuer.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const SCOPES_MESSAGE = "scopes must be at most 64 RFC 6749 scope tokens of 1-128 characters";
let signer: Signer;

beforeAll(async () => {
  signer = await generateLocalSigner("ES256");
});

function issuerWith(store = new MemoryRefreshTokenStore()) {
  return {
    store,
    issuer: new TokenIssuer({
      keys: new KeyRing(signer),
      refreshTokens: store,
      nowMs: () => NOW,
      issuer: "https://auth.local",
      accessTokenTtlSeconds: 900,
      refreshTokenTtlSeconds: 86_400,
    }),
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
    const issuer = new TokenIssuer({
      keys: new KeyRing(signer),
      refreshTokens: store,
      nowMs: () => now.ms,
      issuer: "https://auth.local",
      accessTokenTtlSeconds: 900,
      refreshTokenTtlSeconds: 86_400,
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
