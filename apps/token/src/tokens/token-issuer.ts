import { createHash, randomBytes, randomUUID } from "node:crypto";
import { ServiceError } from "@authplat/errors";
import type { KeyRing } from "../keys/key-ring.ts";
import { signAccessToken, type AccessTokenClaims } from "./access-token.ts";
import type { RefreshTokenStore } from "./refresh-token-store.ts";

/** What the caller asks tokens for. */
export interface TokenPairRequest {
  readonly subject: string;
  readonly clientId: string;
  readonly audience: readonly string[];
  readonly scopes: readonly string[];
  readonly sessionId: string;
}

/** An issued access token and refresh token. */
export interface TokenPair {
  readonly accessToken: string;
  readonly accessTokenExpiresAtMs: number;
  readonly refreshToken: string;
  readonly refreshTokenExpiresAtMs: number;
  readonly tokenId: string;
  readonly familyId: string;
  readonly scopes: readonly string[];
}

/** Dependencies of {@link TokenIssuer}. */
export interface TokenIssuerDeps {
  readonly keys: KeyRing;
  readonly refreshTokens: RefreshTokenStore;
  /** Milliseconds since the epoch. */
  readonly nowMs: () => number;
  readonly issuer: string;
  readonly accessTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
}

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
// Identifiers end up in JWT claims and logs: printable ASCII without spaces, bounded.
const IDENTIFIER = /^[\x21-\x7E]{1,255}$/;
const MAX_SCOPES = 64;
const MAX_AUDIENCES = 16;

function invalid(message: string): ServiceError {
  return new ServiceError("INVALID_ARGUMENT", message);
}

function checkRequest(request: TokenPairRequest): void {
  if (!IDENTIFIER.test(request.subject))
    throw invalid("subject must be 1-255 printable characters");
  if (!IDENTIFIER.test(request.clientId))
    throw invalid("client_id must be 1-255 printable characters");
  if (request.audience.length === 0 || request.audience.length > MAX_AUDIENCES) {
    throw invalid(`audience must list 1-${MAX_AUDIENCES} values`);
  }
  if (!request.audience.every((value) => IDENTIFIER.test(value))) {
    throw invalid("each audience must be 1-255 printable characters");
  }
  if (request.scopes.length > MAX_SCOPES || !request.scopes.every((s) => SCOPE_TOKEN.test(s))) {
    throw invalid(`scopes must be at most ${MAX_SCOPES} RFC 6749 scope tokens`);
  }
  if (request.sessionId !== "" && !IDENTIFIER.test(request.sessionId)) {
    throw invalid("session_id must be 1-255 printable characters");
  }
}

/** SHA-256 of an opaque token, base64url: what stores keep instead of the token. */
export function hashOpaqueToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("base64url");
}

/** Issues access-token/refresh-token pairs. */
export class TokenIssuer {
  readonly #deps: TokenIssuerDeps;

  constructor(deps: TokenIssuerDeps) {
    this.#deps = deps;
  }

  /**
   * Issues an RFC 9068 access token signed by the active key and a new opaque refresh token
   * starting a new rotation family. Throws INVALID_ARGUMENT for a bad request.
   */
  async issuePair(request: TokenPairRequest): Promise<TokenPair> {
    checkRequest(request);
    const deps = this.#deps;
    const nowMs = deps.nowMs();
    const iat = Math.floor(nowMs / 1000);
    const scopes = [...new Set(request.scopes)];
    const claims: AccessTokenClaims = {
      iss: deps.issuer,
      sub: request.subject,
      aud: [...new Set(request.audience)],
      exp: iat + deps.accessTokenTtlSeconds,
      iat,
      jti: randomUUID(),
      client_id: request.clientId,
      ...(scopes.length > 0 ? { scope: scopes.join(" ") } : {}),
      ...(request.sessionId !== "" ? { sid: request.sessionId } : {}),
    };
    const accessToken = await signAccessToken(deps.keys.active, claims);
    // 256 bits from the CSPRNG: unguessable (RFC 6749 §10.10), opaque to the client.
    const refreshToken = randomBytes(32).toString("base64url");
    const familyId = randomUUID();
    const refreshTokenExpiresAtMs = nowMs + deps.refreshTokenTtlSeconds * 1000;
    await deps.refreshTokens.insert({
      tokenHash: hashOpaqueToken(refreshToken),
      familyId,
      subject: request.subject,
      clientId: request.clientId,
      audience: claims.aud,
      scopes,
      sessionId: request.sessionId === "" ? undefined : request.sessionId,
      issuedAtMs: nowMs,
      expiresAtMs: refreshTokenExpiresAtMs,
    });
    return {
      accessToken,
      accessTokenExpiresAtMs: claims.exp * 1000,
      refreshToken,
      refreshTokenExpiresAtMs,
      tokenId: claims.jti,
      familyId,
      scopes,
    };
  }
}
