import { decodeProtectedHeader, importJWK, jwtVerify } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { KeyRing } from "../keys/key-ring.ts";
import { generateLocalSigner, type Signer } from "../keys/signer.ts";
import { MemoryRefreshTokenStore } from "./memory-refresh-token-store.ts";
import { hashOpaqueToken, TokenIssuer, type TokenPairRequest } from "./token-issuer.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
let signer: Signer;

beforeAll(async () => {
  signer = await generateLocalSigner("ES256");
});

function issuerWith(store = new MemoryRefreshTokenStore(() => NOW)) {
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
    const record = await store.findByHash(hashOpaqueToken(first.refreshToken));
    expect(record).toMatchObject({
      familyId: first.familyId,
      subject: "user-1",
      clientId: "web-app",
      scopes: ["orders:read", "profile"],
      sessionId: "sess-9",
      expiresAtMs: NOW + 86_400_000,
    });
    expect(JSON.stringify(record)).not.toContain(first.refreshToken);
  });

  it.each([
    [{ subject: "" }, "subject must be 1-255 printable characters"],
    [{ subject: "has space" }, "subject must be 1-255 printable characters"],
    [{ clientId: "" }, "client_id must be 1-255 printable characters"],
    [{ audience: [] }, "audience must list 1-16 values"],
    [{ scopes: ['bad"quote'] }, "scopes must be at most 64 RFC 6749 scope tokens"],
    [{ sessionId: "x".repeat(256) }, "session_id must be 1-255 printable characters"],
  ])("rejects %j with INVALID_ARGUMENT", async (change, message) => {
    const { issuer, store } = issuerWith();
    await expect(issuer.issuePair({ ...request, ...change })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message,
    });
    expect(await store.findByHash("anything")).toBeUndefined();
  });
});
