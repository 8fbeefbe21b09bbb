import { beforeAll, describe, expect, it } from "vitest";
import { KeyRing } from "../keys/key-ring.ts";
import { generateLocalSigner, type Signer } from "../keys/signer.ts";
import { MemoryRefreshTokenStore } from "./memory-refresh-token-store.ts";
import { RevocationService, type FeedMessage } from "./revocation-service.ts";
import { TokenIssuer, type TokenPairRequest } from "./token-issuer.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const AUDIT = { reason: "LOGOUT", caller: "spiffe://auth.local/ns/auth/sa/operator" };
let signer: Signer;

beforeAll(async () => {
  signer = await generateLocalSigner("ES256");
});

const request: TokenPairRequest = {
  subject: "user-1",
  clientId: "web-app",
  audience: ["https://api.auth.local"],
  scopes: ["a"],
  sessionId: "sess-1",
};

function setup() {
  const clock = { ms: NOW };
  const store = new MemoryRefreshTokenStore();
  const keys = new KeyRing(signer);
  const issuer = new TokenIssuer({
    keys,
    refreshTokens: store,
    nowMs: () => clock.ms,
    issuer: "https://auth.local",
    accessTokenTtlSeconds: 900,
    refreshTokenTtlSeconds: 86_400,
  });
  const revocations = new RevocationService({
    store,
    nowMs: () => clock.ms,
    verificationKeys: () => keys.published.map((key) => key.jwk),
    maxAccessTokenTtlSeconds: 3_600,
  });
  return { clock, store, issuer, revocations };
}

describe("RevocationService.revoke (RFC 7009)", () => {
  it("revokes an access token's jti until its exp", async () => {
    const { issuer, revocations, store } = setup();
    const pair = await issuer.issuePair(request);
    expect(await revocations.revoke({ token: pair.accessToken }, AUDIT)).toEqual({
      revokedAtMs: NOW,
      found: true,
    });
    expect(await store.isRevoked(pair.tokenId, pair.accessTokenExpiresAtMs - 1)).toBe(true);
    expect(await store.isRevoked(pair.tokenId, pair.accessTokenExpiresAtMs)).toBe(false);
  });

  it("revokes a refresh token's whole family, so neither it nor its access tokens work", async () => {
    const { issuer, revocations } = setup();
    const pair = await issuer.issuePair(request);
    expect(await revocations.revoke({ token: pair.refreshToken }, AUDIT)).toMatchObject({
      found: true,
    });
    expect(await revocations.isRevoked(pair.tokenId)).toBe(true);
    await expect(
      issuer.refresh({
        refreshToken: pair.refreshToken,
        clientId: "web-app",
        scopes: [],
        caller: "x",
      }),
    ).rejects.toMatchObject({ code: "INVALID_CREDENTIALS" });
  });

  it("answers success for an unknown, forged or already revoked token and revokes nothing", async () => {
    const { issuer, revocations, store } = setup();
    const pair = await issuer.issuePair(request);
    const [header, payload] = pair.accessToken.split(".");
    const forged = `${header}.${payload}.${"A".repeat(86)}`;
    expect(await revocations.revoke({ token: forged }, AUDIT)).toEqual({
      revokedAtMs: NOW,
      found: false,
    });
    expect(await revocations.revoke({ token: "A".repeat(43) }, AUDIT)).toMatchObject({
      found: false,
    });
    expect(await store.isRevoked(pair.tokenId, NOW)).toBe(false);
    await revocations.revoke({ familyId: pair.familyId }, AUDIT);
    expect(await revocations.revoke({ familyId: pair.familyId }, AUDIT)).toMatchObject({
      found: false,
    });
  });

  it("leaves alone a token of another client when the caller names its client", async () => {
    const { issuer, revocations } = setup();
    const pair = await issuer.issuePair(request);
    for (const token of [pair.accessToken, pair.refreshToken]) {
      expect(await revocations.revoke({ token, clientId: "other-app" }, AUDIT)).toMatchObject({
        found: false,
      });
    }
    expect(await revocations.isRevoked(pair.tokenId)).toBe(false);
    expect(
      await revocations.revoke({ token: pair.accessToken, clientId: "web-app" }, AUDIT),
    ).toMatchObject({
      found: true,
    });
  });

  it("revokes by session and by subject every family that belongs to it", async () => {
    const { issuer, revocations } = setup();
    const a = await issuer.issuePair(request);
    const b = await issuer.issuePair({ ...request, sessionId: "sess-2" });
    const c = await issuer.issuePair({ ...request, subject: "user-2", sessionId: "sess-3" });
    await revocations.revoke({ sessionId: "sess-1" }, AUDIT);
    expect([
      await revocations.isRevoked(a.tokenId),
      await revocations.isRevoked(b.tokenId),
    ]).toEqual([true, false]);
    await revocations.revoke({ subject: "user-1" }, AUDIT);
    expect(await revocations.isRevoked(b.tokenId)).toBe(true);
    expect(await revocations.isRevoked(c.tokenId)).toBe(false);
  });

  it("revokes a bare jti for the longest lifetime an access token can have", async () => {
    const { revocations, store } = setup();
    await revocations.revoke({ tokenId: "some-jti" }, AUDIT);
    expect(await store.isRevoked("some-jti", NOW + 3_599_999)).toBe(true);
    expect(await store.isRevoked("some-jti", NOW + 3_600_000)).toBe(false);
  });
});

describe("RevocationService.watch", () => {
  async function next(feed: AsyncIterator<FeedMessage>): Promise<FeedMessage> {
    const result = await feed.next();
    if (result.done) throw new Error("feed ended");
    return result.value;
  }

  it("gives a subscriber the live list, then each new revocation; a late one gets it in its snapshot", async () => {
    const { issuer, revocations } = setup();
    const before = await issuer.issuePair(request);
    await revocations.revoke({ token: before.accessToken }, AUDIT);
    const abort = new AbortController();
    const early = revocations.watch(undefined, abort.signal);
    const first = await next(early);
    expect(first).toMatchObject({
      snapshot: true,
      entries: [{ id: before.tokenId, expiresAtMs: before.accessTokenExpiresAtMs }],
    });
    const pending = next(early);
    const later = await issuer.issuePair(request);
    await revocations.revoke({ token: later.accessToken }, AUDIT);
    expect(await pending).toMatchObject({
      snapshot: false,
      entries: [{ id: later.tokenId, expiresAtMs: later.accessTokenExpiresAtMs }],
    });
    const late = revocations.watch(undefined, abort.signal);
    expect((await next(late)).entries.map((e) => e.id).sort()).toEqual(
      [before.tokenId, later.tokenId].sort(),
    );
    abort.abort();
    expect(await early.next()).toEqual({ done: true, value: undefined });
  });

  it("resumes after a reconnect from the cursor of the last message, missing nothing", async () => {
    const { revocations } = setup();
    const abort = new AbortController();
    const feed = revocations.watch(undefined, abort.signal);
    const { cursor } = await next(feed);
    abort.abort();
    await feed.return(undefined);
    await revocations.revoke({ tokenId: "while-away" }, AUDIT);
    const resumed = revocations.watch(cursor, new AbortController().signal);
    expect(await next(resumed)).toMatchObject({ snapshot: false, entries: [{ id: "while-away" }] });
    const restarted = revocations.watch("stale-cursor", new AbortController().signal);
    expect(await next(restarted)).toMatchObject({
      snapshot: true,
      entries: [{ id: "while-away" }],
    });
    await resumed.return(undefined);
    await restarted.return(undefined);
  });
});
