import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { importJWK, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisBackend, type RedisBackend } from "@authplat/testing";
import { KeyRing } from "../keys/key-ring.ts";
import { generateLocalSigner, type Signer } from "../keys/signer.ts";
import { MemoryRefreshTokenStore } from "./memory-refresh-token-store.ts";
import { RedisTokenStore } from "./redis-token-store.ts";
import type { TokenStore } from "./refresh-token-store.ts";
import { hashOpaqueToken, TokenIssuer } from "./token-issuer.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const ISSUER = "https://auth.local";
const CALLER = "spiffe://auth.local/ns/auth/sa/session-identity";

const scopeToken = fc.stringMatching(/^[\x21\x23-\x5B\x5D-\x7E]{1,20}$/);
const identifier = fc.stringMatching(/^[\x21-\x7E]{1,40}$/);
const role = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,20}$/);
const pairRequest = fc.record({
  subject: identifier,
  clientId: identifier,
  audience: fc.uniqueArray(identifier, { minLength: 1, maxLength: 4 }),
  scopes: fc.array(scopeToken, { maxLength: 6 }),
  sessionId: fc.option(identifier, { nil: "" }),
  roles: fc.array(role, { maxLength: 6 }),
  tenant: fc.option(identifier, { nil: "" }),
  acr: fc.option(identifier, { nil: "" }),
  amr: fc.array(fc.constantFrom("pwd", "otp", "hwk", "mca"), { maxLength: 4 }),
  authTimeMs: fc.option(fc.integer({ min: 0, max: NOW }), { nil: undefined }),
});
type PairRequest = typeof pairRequest extends fc.Arbitrary<infer T> ? T : never;

/** What a family keeps of a request's authorization facts: empty ones are left out. */
function authorizationOf(request: PairRequest) {
  const roles = [...new Set(request.roles)];
  const amr = [...new Set(request.amr)];
  return {
    ...(roles.length > 0 ? { roles } : {}),
    ...(request.tenant !== "" ? { tenant: request.tenant } : {}),
    ...(request.acr !== "" ? { acr: request.acr } : {}),
    ...(amr.length > 0 ? { amr } : {}),
    ...(request.authTimeMs !== undefined ? { authTimeMs: request.authTimeMs } : {}),
  };
}

let signer: Signer;
let redis: RedisBackend | undefined;
let redisStore: RedisTokenStore | undefined;

beforeAll(async () => {
  signer = await generateLocalSigner("ES256");
  redis = await redisBackend();
  if (redis !== undefined) {
    redisStore = new RedisTokenStore({ client: redis.client, prefix: redis.prefix });
  }
});

afterAll(async () => {
  await redis?.cleanup();
});

function issuerOn(store: TokenStore, clock: { ms: number }) {
  return new TokenIssuer({
    keys: new KeyRing(signer),
    refreshTokens: store,
    nowMs: () => clock.ms,
    issuer: ISSUER,
    accessTokenTtlSeconds: 900,
    refreshTokenTtlSeconds: 86_400,
    refreshIdleTimeoutSeconds: 3_600,
  });
}

const backends: [string, () => TokenStore | undefined, number][] = [
  ["memory", () => new MemoryRefreshTokenStore(), 100],
  ["redis", () => redisStore, 40],
];

async function rejectedAsInvalid(promise: Promise<unknown>): Promise<boolean> {
  try {
    await promise;
    return false;
  } catch (error) {
    return (error as { code?: string }).code === "INVALID_CREDENTIALS";
  }
}

describe.each(backends)("token lifecycle on the %s store", (name, storeOf, numRuns) => {
  it("Property 3: token pair issuance completeness — every pair carries every RFC 9068 claim, a 256-bit refresh token stored only as its hash, and a matching family", async () => {
    const store = storeOf();
    if (store === undefined) return void console.warn(`[${name}] skipped: no backend`);
    const clock = { ms: NOW };
    const issuer = issuerOn(store, clock);
    const key = await importJWK({ ...signer.publicJwk }, "ES256");
    await fc.assert(
      fc.asyncProperty(pairRequest, fc.integer({ min: 0, max: 10 ** 9 }), async (request, step) => {
        clock.ms = NOW + step;
        const pair = await issuer.issuePair(request);
        const { payload, protectedHeader } = await jwtVerify(pair.accessToken, key, {
          typ: "at+jwt",
          issuer: ISSUER,
          currentDate: new Date(clock.ms),
        });
        expect(protectedHeader).toEqual({ alg: "ES256", typ: "at+jwt", kid: signer.keyId });
        // RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti are REQUIRED.
        const iat = Math.floor(clock.ms / 1000);
        expect(payload).toMatchObject({
          iss: ISSUER,
          sub: request.subject,
          aud: [...new Set(request.audience)],
          client_id: request.clientId,
          iat,
          exp: iat + 900,
          jti: pair.tokenId,
        });
        expect(payload.scope).toBe(
          request.scopes.length === 0 ? undefined : [...new Set(request.scopes)].join(" "),
        );
        expect(payload.sid).toBe(request.sessionId === "" ? undefined : request.sessionId);
        const authorization = authorizationOf(request);
        expect(payload.roles).toEqual(authorization.roles);
        expect(payload.tenant).toBe(authorization.tenant);
        expect(payload.acr).toBe(authorization.acr);
        expect(payload.amr).toEqual(authorization.amr);
        expect(payload.auth_time).toBe(
          request.authTimeMs === undefined ? undefined : Math.floor(request.authTimeMs / 1000),
        );
        // At least 256 bits of entropy: 32 bytes from the CSPRNG, base64url.
        expect(Buffer.from(pair.refreshToken, "base64url")).toHaveLength(32);
        expect(pair.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(await store.familyOfToken(pair.refreshToken, clock.ms)).toBeUndefined();
        expect(await store.familyOfToken(hashOpaqueToken(pair.refreshToken), clock.ms)).toEqual({
          familyId: pair.familyId,
          subject: request.subject,
          clientId: request.clientId,
          audience: [...new Set(request.audience)],
          scopes: [...new Set(request.scopes)],
          sessionId: request.sessionId === "" ? undefined : request.sessionId,
          createdAtMs: clock.ms,
          expiresAtMs: clock.ms + 86_400_000,
          ...authorizationOf(request),
        });
      }),
      { numRuns },
    );
    if (store instanceof MemoryRefreshTokenStore) await store.close();
  });

  it("Property 4: refresh rotation invalidates the previous token — along any chain of refreshes at any times within the limits, each token works exactly once", async () => {
    const store = storeOf();
    if (store === undefined) return void console.warn(`[${name}] skipped: no backend`);
    const clock = { ms: NOW };
    const issuer = issuerOn(store, clock);
    await fc.assert(
      fc.asyncProperty(
        pairRequest,
        fc.array(fc.integer({ min: 0, max: 3_599_999 }), { minLength: 1, maxLength: 6 }),
        async (request, gaps) => {
          clock.ms = NOW;
          let current = await issuer.issuePair(request);
          for (const gap of gaps) {
            clock.ms += gap;
            const next = await issuer.refresh({
              refreshToken: current.refreshToken,
              clientId: request.clientId,
              scopes: [],
              caller: CALLER,
            });
            expect(next.familyId).toBe(current.familyId);
            expect(next.refreshToken).not.toBe(current.refreshToken);
            current = next;
          }
          // The latest token is the only one of the chain that still works.
          const last = await issuer.refresh({
            refreshToken: current.refreshToken,
            clientId: request.clientId,
            scopes: [],
            caller: CALLER,
          });
          expect(last.familyId).toBe(current.familyId);
          expect(
            await rejectedAsInvalid(
              issuer.refresh({
                refreshToken: current.refreshToken,
                clientId: request.clientId,
                scopes: [],
                caller: CALLER,
              }),
            ),
          ).toBe(true);
        },
      ),
      { numRuns },
    );
  });

  it("Property 5: refresh replay detection revokes the family — replaying any used token of a chain, alone or racing other presentations of it, leaves exactly the allowed winners and then rejects every token of the family and revokes every access token it issued", async () => {
    const store = storeOf();
    if (store === undefined) return void console.warn(`[${name}] skipped: no backend`);
    const clock = { ms: NOW };
    const issuer = issuerOn(store, clock);
    await fc.assert(
      fc.asyncProperty(
        pairRequest,
        fc.integer({ min: 1, max: 5 }),
        fc.nat(),
        fc.integer({ min: 1, max: 8 }),
        async (request, length, pick, racers) => {
          clock.ms = NOW;
          const chain = [await issuer.issuePair(request)];
          const present = (refreshToken: string) =>
            issuer.refresh({
              refreshToken,
              clientId: request.clientId,
              scopes: [],
              caller: CALLER,
            });
          for (let i = 0; i < length; i++) chain.push(await present(chain.at(-1)!.refreshToken));
          const replayed = chain[pick % length]!; // a used token (never the latest)
          const outcomes = await Promise.allSettled(
            Array.from({ length: racers }, () => present(replayed.refreshToken)),
          );
          expect(outcomes.every((o) => o.status === "rejected")).toBe(true);
          for (const outcome of outcomes) {
            expect((outcome as PromiseRejectedResult).reason).toMatchObject({
              code: "INVALID_CREDENTIALS",
              message: "the refresh token is invalid",
            });
          }
          for (const pair of chain) {
            expect(await rejectedAsInvalid(present(pair.refreshToken))).toBe(true);
            expect(await store.isRevoked(pair.tokenId, clock.ms)).toBe(true);
          }
        },
      ),
      { numRuns },
    );
  });

  it("Property 5: refresh replay detection revokes the family — of N concurrent presentations of a fresh token exactly one gets a pair, and afterwards no token of the family works", async () => {
    const store = storeOf();
    if (store === undefined) return void console.warn(`[${name}] skipped: no backend`);
    const clock = { ms: NOW };
    const issuer = issuerOn(store, clock);
    await fc.assert(
      fc.asyncProperty(pairRequest, fc.integer({ min: 2, max: 50 }), async (request, racers) => {
        const pair = await issuer.issuePair({ ...request, subject: randomUUID() });
        const present = (refreshToken: string) =>
          issuer.refresh({ refreshToken, clientId: request.clientId, scopes: [], caller: CALLER });
        const outcomes = await Promise.allSettled(
          Array.from({ length: racers }, () => present(pair.refreshToken)),
        );
        const winners = outcomes.filter((o) => o.status === "fulfilled");
        expect(winners).toHaveLength(1);
        const won = (winners[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof present>>>)
          .value;
        expect(await rejectedAsInvalid(present(won.refreshToken))).toBe(true);
        expect(await store.isRevoked(won.tokenId, clock.ms)).toBe(true);
        expect(await store.isRevoked(pair.tokenId, clock.ms)).toBe(true);
      }),
      { numRuns: Math.ceil(numRuns / 2) },
    );
  });
});
