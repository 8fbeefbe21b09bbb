import type { TokenService } from "@authplat/contracts/auth/token/v1";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ServiceError } from "@authplat/errors";
import type { RpcClient } from "@authplat/rpc";
import type {
  RefreshTokenDescription,
  RefreshTokenInspector,
} from "./tokens/token-introspector.ts";

/**
 * The {@link RefreshTokenInspector} over the token service's `InspectRefreshToken`, which only
 * auth-edge may call. Any failure of the call (unreachable, the breaker open, deadline, a
 * refusal) is UNAVAILABLE with the retry pushback when there is one: the edge cannot say whether
 * the token is active, so it says neither.
 */
export function refreshTokenInspector(
  client: Pick<RpcClient<typeof TokenService>, "inspectRefreshToken">,
): RefreshTokenInspector {
  return {
    async inspect(refreshToken, signal): Promise<RefreshTokenDescription | undefined> {
      let response;
      try {
        response = await client.inspectRefreshToken(
          { refreshToken },
          signal === undefined ? undefined : { signal },
        );
      } catch (error) {
        const retryAfterMs = error instanceof ServiceError ? error.retryAfterMs : undefined;
        throw new ServiceError(
          "UNAVAILABLE",
          "the token service cannot inspect refresh tokens now",
          {
            cause: error,
            ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
          },
        );
      }
      if (!response.active) return undefined;
      if (response.issuedAt === undefined || response.expiresAt === undefined) {
        // An active answer without its times breaks the contract; do not guess.
        throw new ServiceError("UNAVAILABLE", "the token service answered without token times");
      }
      return {
        subject: response.subject,
        clientId: response.clientId,
        scopes: response.scopes,
        sessionId: response.sessionId === "" ? undefined : response.sessionId,
        familyId: response.familyId,
        issuedAtMs: timestampMs(response.issuedAt),
        expiresAtMs: timestampMs(response.expiresAt),
        roles: response.roles,
        tenant: response.tenant === "" ? undefined : response.tenant,
      };
    },
  };
}
