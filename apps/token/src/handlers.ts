import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { defineService, unimplementedHandlers, type ServiceRegistration } from "@authplat/rpc";
import { KeyStatus, TokenService } from "@authplat/contracts/auth/token/v1";
import type { KeyRing, KeyStatus as DomainKeyStatus } from "./keys/key-ring.ts";
import type { TokenIssuer } from "./tokens/token-issuer.ts";

/** SPIFFE IDs allowed to call each token RPC. */
export interface TokenAllowlist {
  readonly issuers: readonly string[];
  readonly jwksReaders: readonly string[];
  readonly revokers: readonly string[];
}

const KEY_STATUS: Record<DomainKeyStatus, KeyStatus> = {
  next: KeyStatus.NEXT,
  active: KeyStatus.ACTIVE,
  retired: KeyStatus.RETIRED,
};

/** How long verifiers may cache the JWKS before asking again. */
const JWKS_MAX_AGE_SECONDS = 300n;

/** The TokenService registration: protobuf in, domain call, protobuf out. */
export function tokenServiceRegistration(deps: {
  readonly issuer: TokenIssuer;
  readonly keys: KeyRing;
  readonly allow: TokenAllowlist;
}): ServiceRegistration {
  return defineService(
    TokenService,
    {
      ...unimplementedHandlers(TokenService),
      async issueTokenPair(request) {
        const pair = await deps.issuer.issuePair({
          subject: request.subject,
          clientId: request.clientId,
          audience: request.audience,
          scopes: request.scopes,
          sessionId: request.sessionId,
        });
        return {
          accessToken: pair.accessToken,
          tokenType: "Bearer",
          accessTokenExpiresAt: timestampFromMs(pair.accessTokenExpiresAtMs),
          refreshToken: pair.refreshToken,
          refreshTokenExpiresAt: timestampFromMs(pair.refreshTokenExpiresAtMs),
          tokenId: pair.tokenId,
          familyId: pair.familyId,
          scopes: [...pair.scopes],
        };
      },
      async getJwks() {
        return {
          keys: deps.keys.published.map(({ jwk, status }) => ({
            kty: jwk.kty,
            kid: jwk.kid,
            use: jwk.use,
            alg: jwk.alg,
            crv: jwk.crv,
            x: jwk.x,
            y: jwk.y ?? "",
            status: KEY_STATUS[status],
          })),
          maxAge: create(DurationSchema, { seconds: JWKS_MAX_AGE_SECONDS }),
        };
      },
    },
    {
      issueTokenPair: deps.allow.issuers,
      refreshTokens: deps.allow.issuers,
      revokeToken: deps.allow.revokers,
      getJwks: deps.allow.jwksReaders,
      issueIdToken: deps.allow.issuers,
    },
  );
}
