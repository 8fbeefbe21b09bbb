import { ServiceError } from "@authplat/errors";
import type { TokenValidator, ValidatedClaims } from "./token-validator.ts";

/** The answer to an introspection (RFC 7662 §2.2). */
export type IntrospectionResult =
  | { readonly active: true; readonly claims: ValidatedClaims }
  // RFC 7662 §2.2: "If the introspection call is properly authorized but the token is not
  // active, does not exist on this server, or the protected resource is not allowed to
  // introspect this particular token, then the authorization server MUST return an
  // introspection response with the "active" field set to "false"" (and nothing else).
  | { readonly active: false };

/** Dependencies of {@link TokenIntrospector}. */
export interface TokenIntrospectorDeps {
  readonly validator: TokenValidator;
}

const INACTIVE: IntrospectionResult = Object.freeze({ active: false });
/** The longest token accepted; anything longer is no token of this platform. */
const MAX_TOKEN_LENGTH = 16 * 1024;

/**
 * RFC 7662 token introspection at the edge. An access token is active when a full validation
 * accepts it (signature, issuer, audience, time and the revocation list); its claims are then
 * returned. Anything else, a token that is malformed, expired, revoked, of an unknown key or not
 * a platform access token at all, is `active: false` and nothing more.
 *
 * Opaque refresh tokens are answered `active: false`: only the token service can look them up,
 * and it has no lookup that leaves a refresh token unconsumed yet (TODO(refresh introspection):
 * an IntrospectRefreshToken RPC at token, which needs a store read of a token's used and
 * revoked state).
 *
 * When the edge cannot decide (key set or revocation list unavailable or stale) it throws
 * UNAVAILABLE rather than answer either way.
 */
export class TokenIntrospector {
  readonly #deps: TokenIntrospectorDeps;

  constructor(deps: TokenIntrospectorDeps) {
    this.#deps = deps;
  }

  /**
   * Introspects `token`. `tokenTypeHint` (`access_token`, `refresh_token`, anything else
   * ignored) does not change the answer: the token's shape says which kind it is (RFC 7662
   * §2.1: the server "MAY ignore this parameter").
   *
   * @throws {ServiceError} INVALID_ARGUMENT for an empty token; UNAVAILABLE when the edge
   *   cannot decide.
   */
  async introspect(token: string, _tokenTypeHint = ""): Promise<IntrospectionResult> {
    if (token === "") throw new ServiceError("INVALID_ARGUMENT", "token is required");
    if (token.length > MAX_TOKEN_LENGTH || !token.includes(".")) return INACTIVE;
    const result = await this.#deps.validator.validate(token);
    return result.valid ? { active: true, claims: result.claims } : INACTIVE;
  }
}
