import { ServiceError } from "@authplat/errors";
import type { TokenValidator, ValidatedClaims } from "./token-validator.ts";

/** What the token service says about an active refresh token. */
export interface RefreshTokenDescription {
  readonly subject: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
  /** Undefined when the family has no session. */
  readonly sessionId: string | undefined;
  readonly familyId: string;
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
  readonly roles: readonly string[];
  /** Undefined when the family has no tenant. */
  readonly tenant: string | undefined;
}

/**
 * Asks the token service about an opaque refresh token without using it. Resolves undefined
 * when it is not active; rejects (UNAVAILABLE) when the token service cannot answer.
 */
export interface RefreshTokenInspector {
  inspect(refreshToken: string, signal?: AbortSignal): Promise<RefreshTokenDescription | undefined>;
}

/** The answer to an introspection (RFC 7662 §2.2). */
export type IntrospectionResult =
  | { readonly active: true; readonly tokenType: "access_token"; readonly claims: ValidatedClaims }
  | {
      readonly active: true;
      readonly tokenType: "refresh_token";
      readonly refreshToken: RefreshTokenDescription;
    }
  // RFC 7662 §2.2: "If the introspection call is properly authorized but the token is not
  // active, does not exist on this server, or the protected resource is not allowed to
  // introspect this particular token, then the authorization server MUST return an
  // introspection response with the "active" field set to "false"" (and nothing else).
  | { readonly active: false };

/** Dependencies of {@link TokenIntrospector}. */
export interface TokenIntrospectorDeps {
  readonly validator: Pick<TokenValidator, "validate">;
  /** Answers for opaque refresh tokens; without it they are never active. */
  readonly refreshTokens?: RefreshTokenInspector;
}

const INACTIVE: IntrospectionResult = Object.freeze({ active: false });
/** The longest token accepted; anything longer is no token of this platform. */
const MAX_TOKEN_LENGTH = 16 * 1024;
/** The longest opaque token passed on to the token service; refresh tokens are 43 characters. */
const MAX_OPAQUE_TOKEN_LENGTH = 512;
const OPAQUE_TOKEN = /^[A-Za-z0-9_-]+$/;

/**
 * RFC 7662 token introspection at the edge.
 *
 * - A compact JWS is an access token: active when a full validation accepts it (signature,
 *   issuer, audience, time and the revocation list), with its claims.
 * - An opaque base64url string of at most 512 characters may be a refresh token: the token
 *   service is asked (`InspectRefreshToken`), which uses nothing and says active only for a
 *   token that is unused, unexpired and of a live family.
 * - Anything else, or a token either check refuses, is `active: false` and nothing more.
 *
 * When the edge cannot decide (key set or revocation list stale, token service unreachable or
 * its circuit open) it throws UNAVAILABLE rather than answer either way.
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
  async introspect(
    token: string,
    _tokenTypeHint = "",
    signal?: AbortSignal,
  ): Promise<IntrospectionResult> {
    if (token === "") throw new ServiceError("INVALID_ARGUMENT", "token is required");
    if (token.length > MAX_TOKEN_LENGTH) return INACTIVE;
    if (token.includes(".")) {
      const result = await this.#deps.validator.validate(token);
      return result.valid
        ? { active: true, tokenType: "access_token", claims: result.claims }
        : INACTIVE;
    }
    const inspector = this.#deps.refreshTokens;
    if (
      inspector === undefined ||
      token.length > MAX_OPAQUE_TOKEN_LENGTH ||
      !OPAQUE_TOKEN.test(token)
    ) {
      return INACTIVE;
    }
    const description = await inspector.inspect(token, signal);
    return description === undefined
      ? INACTIVE
      : { active: true, tokenType: "refresh_token", refreshToken: description };
  }
}
