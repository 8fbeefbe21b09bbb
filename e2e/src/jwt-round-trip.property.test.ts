import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { JwksCache } from "@authplat/auth-edge/jwks-cache";
import { TokenValidator } from "@authplat/auth-edge/token-validator";
import { KeyRing } from "@authplat/token-service/key-ring";
import { MemoryRefreshTokenStore } from "@authplat/token-service/memory-refresh-token-store";
import { generateLocalSigner, SIGNING_ALGORITHMS } from "@authplat/token-service/signer";
import { TokenIssuer } from "@authplat/token-service/token-issuer";

const ISSUER = "https://auth.local";
const AUDIENCE = "https://api.auth.local";
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

// RFC 6749 §3.3 scope tokens and printable identifiers, as the token service accepts them.
const scopeToken = fc.stringMatching(/^[\x21\x23-\x5B\x5D-\x7E]{1,20}$/);
const identifier = fc.stringMatching(/^[\x21-\x7E]{1,40}$/);
const role = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,20}$/);

async function pipeline(algorithm: (typeof SIGNING_ALGORITHMS)[number]) {
  const keys = new KeyRing(await generateLocalSigner(algorithm));
  const issuer = new TokenIssuer({
    keys,
    refreshTokens: new MemoryRefreshTokenStore(() => NOW),
    nowMs: () => NOW,
    issuer: ISSUER,
    accessTokenTtlSeconds: 900,
    refreshTokenTtlSeconds: 3_600,
  });
  const cache = new JwksCache({
    // The JWKS exactly as the token service publishes it.
    fetchKeys: async () => keys.published.map(({ jwk }) => ({ ...jwk })),
    algorithms: [...SIGNING_ALGORITHMS],
    nowMs: () => NOW,
    minRefetchIntervalMs: 0,
  });
  const validator = new TokenValidator({
    keys: cache,
    issuer: ISSUER,
    audiences: [AUDIENCE],
    algorithms: [...SIGNING_ALGORITHMS],
    clockToleranceSeconds: 0,
    nowMs: () => NOW,
  });
  return { issuer, validator, keys };
}

describe("tokens issued by the token service", () => {
  it.each(SIGNING_ALGORITHMS)(
    "Property 2: JWT round-trip consistency — a %s token validated at the edge yields exactly the claims it was issued with",
    async (algorithm) => {
      const { issuer, validator, keys } = await pipeline(algorithm);
      await fc.assert(
        fc.asyncProperty(
          identifier,
          identifier,
          fc.uniqueArray(identifier, { maxLength: 3 }),
          fc.array(scopeToken, { maxLength: 8 }),
          fc.option(identifier, { nil: "" }),
          fc.record({
            roles: fc.array(role, { maxLength: 4 }),
            tenant: fc.option(identifier, { nil: "" }),
            acr: fc.option(identifier, { nil: "" }),
            amr: fc.array(fc.constantFrom("pwd", "otp", "hwk", "mca"), { maxLength: 3 }),
            authTimeMs: fc.option(
              fc.integer({ min: 0, max: NOW / 1000 }).map((seconds) => seconds * 1000),
              { nil: undefined },
            ),
          }),
          async (subject, clientId, extraAudiences, scopes, sessionId, authorization) => {
            const pair = await issuer.issuePair({
              subject,
              clientId,
              audience: [AUDIENCE, ...extraAudiences],
              scopes,
              sessionId,
              ...authorization,
            });
            const result = await validator.validate(pair.accessToken, scopes);
            expect(result).toEqual({
              valid: true,
              claims: {
                issuer: ISSUER,
                subject,
                audience: [...new Set([AUDIENCE, ...extraAudiences])],
                expiresAt: pair.accessTokenExpiresAtMs / 1000,
                issuedAt: Math.floor(NOW / 1000),
                notBefore: undefined,
                tokenId: pair.tokenId,
                clientId,
                scopes: [...new Set(scopes)],
                sessionId: sessionId === "" ? undefined : sessionId,
                keyId: keys.active.keyId,
                algorithm,
                roles: [...new Set(authorization.roles)],
                tenant: authorization.tenant === "" ? undefined : authorization.tenant,
                acr: authorization.acr === "" ? undefined : authorization.acr,
                amr: [...new Set(authorization.amr)],
                authTime:
                  authorization.authTimeMs === undefined
                    ? undefined
                    : authorization.authTimeMs / 1000,
              },
            });
          },
        ),
        { numRuns: 200 },
      );
    },
  );
});
