import { createHash, randomBytes, randomUUID } from "node:crypto";
import { ServiceError } from "@authplat/errors";
import type { KeyRing } from "../keys/key-ring.ts";
import { signAccessToken, type AccessTokenClaims } from "./access-token.ts";
import type { FamilyRecord, RefreshTokenStore, RotateRefusal } from "./refresh-token-store.ts";

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

/** A refresh token presented for rotation (RFC 6749 §6). */
export interface RefreshRequest {
  readonly refreshToken: string;
  readonly clientId: string;
  /** Narrower scopes for the new access token; empty keeps the family's. */
  readonly scopes: readonly string[];
  /** SPIFFE ID of the calling workload, for the security log. */
  readonly caller: string;
}

/** The rotated pair plus what the caller needs to know about the family. */
export interface RefreshedPair extends TokenPair {
  readonly subject: string;
  readonly sessionId: string | undefined;
}

/** Where security events go: a structured log line now; the audit pipeline reads them later. */
export interface SecurityLog {
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

/** Dependencies of {@link TokenIssuer}. */
export interface TokenIssuerDeps {
  readonly keys: KeyRing;
  readonly refreshTokens: RefreshTokenStore;
  /** Milliseconds since the epoch. */
  readonly nowMs: () => number;
  readonly issuer: string;
  readonly accessTokenTtlSeconds: number;
  /** Absolute lifetime of a refresh-token family. */
  readonly refreshTokenTtlSeconds: number;
  /** How long a refresh token stays usable unused; default: the family's lifetime. */
  readonly refreshIdleTimeoutSeconds?: number;
  /** Security events and refused refreshes; default: nowhere. */
  readonly log?: SecurityLog;
}

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/;
// Identifiers end up in JWT claims and logs: printable ASCII without spaces, bounded.
const IDENTIFIER = /^[\x21-\x7E]{1,255}$/;
// 32 bytes, base64url without padding: the only shape this service issues.
const REFRESH_TOKEN = /^[A-Za-z0-9_-]{43}$/;
const MAX_SCOPES = 64;
const MAX_AUDIENCES = 16;

/** The message of every refresh-token failure: callers cannot tell which check failed. */
export const INVALID_REFRESH_TOKEN = "the refresh token is invalid";

function invalid(message: string): ServiceError {
  return new ServiceError("INVALID_ARGUMENT", message);
}

function checkScopes(scopes: readonly string[]): void {
  if (scopes.length > MAX_SCOPES || !scopes.every((scope) => SCOPE_TOKEN.test(scope))) {
    throw invalid(`scopes must be at most ${MAX_SCOPES} RFC 6749 scope tokens of 1-128 characters`);
  }
}

function checkIdentifier(value: string, name: string): void {
  if (!IDENTIFIER.test(value)) throw invalid(`${name} must be 1-255 printable characters`);
}

function checkRequest(request: TokenPairRequest): void {
  checkIdentifier(request.subject, "subject");
  checkIdentifier(request.clientId, "client_id");
  if (request.audience.length === 0 || request.audience.length > MAX_AUDIENCES) {
    throw invalid(`audience must list 1-${MAX_AUDIENCES} values`);
  }
  if (!request.audience.every((value) => IDENTIFIER.test(value))) {
    throw invalid("each audience must be 1-255 printable characters");
  }
  checkScopes(request.scopes);
  if (request.sessionId !== "") checkIdentifier(request.sessionId, "session_id");
}

/** SHA-256 of an opaque token, base64url: what stores keep instead of the token. */
export function hashOpaqueToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("base64url");
}

// Refresh tokens are cut from a pool filled by the CSPRNG 4 KiB at a time (as Node's
// randomUUID does), instead of one randomBytes call each: profiled at 5% of the service's CPU.
const POOL_TOKENS = 128;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/** A new opaque refresh token: 256 bits from the CSPRNG (RFC 6749 §10.10), base64url. */
export function newRefreshToken(): string {
  if (poolOffset >= pool.length) {
    pool = randomBytes(32 * POOL_TOKENS);
    poolOffset = 0;
  }
  const token = pool.toString("base64url", poolOffset, poolOffset + 32);
  // Never reuse bytes: each slice is handed out once.
  poolOffset += 32;
  return token;
}

/**
 * Issues access-token/refresh-token pairs and rotates refresh tokens (requirements 2.1-2.4).
 * Each pair starts a family; each refresh uses its token once and continues the family; a used
 * token presented again revokes the family (RFC 9700 §4.14.2).
 */
export class TokenIssuer {
  readonly #deps: TokenIssuerDeps;
  readonly #idleTimeoutMs: number;

  constructor(deps: TokenIssuerDeps) {
    this.#deps = deps;
    this.#idleTimeoutMs =
      Math.min(deps.refreshIdleTimeoutSeconds ?? Infinity, deps.refreshTokenTtlSeconds) * 1000;
  }

  /**
   * Issues an RFC 9068 access token signed by the active key and a new opaque refresh token
   * starting a new rotation family. Throws INVALID_ARGUMENT for a bad request and UNAVAILABLE
   * when the family cannot be recorded (nothing is issued then).
   */
  async issuePair(request: TokenPairRequest): Promise<TokenPair> {
    checkRequest(request);
    const deps = this.#deps;
    const nowMs = deps.nowMs();
    const scopes = [...new Set(request.scopes)];
    const family: FamilyRecord = {
      familyId: randomUUID(),
      subject: request.subject,
      clientId: request.clientId,
      audience: [...new Set(request.audience)],
      scopes,
      sessionId: request.sessionId === "" ? undefined : request.sessionId,
      createdAtMs: nowMs,
      expiresAtMs: nowMs + deps.refreshTokenTtlSeconds * 1000,
    };
    const refreshToken = newRefreshToken();
    const claims = this.#claims(family, scopes, nowMs);
    const refreshTokenExpiresAtMs = Math.min(nowMs + this.#idleTimeoutMs, family.expiresAtMs);
    // Recorded before it is signed: a token the store does not know is never handed out.
    await deps.refreshTokens.createFamily(
      {
        family,
        tokenHash: hashOpaqueToken(refreshToken),
        tokenExpiresAtMs: refreshTokenExpiresAtMs,
        accessToken: { jti: claims.jti, expiresAtMs: claims.exp * 1000 },
      },
      nowMs,
    );
    return {
      accessToken: await signAccessToken(deps.keys.active, claims),
      accessTokenExpiresAtMs: claims.exp * 1000,
      refreshToken,
      refreshTokenExpiresAtMs,
      tokenId: claims.jti,
      familyId: family.familyId,
      scopes,
    };
  }

  /**
   * Rotates a refresh token: returns a new pair and makes the presented token used. Every
   * credential failure (unknown, expired, another client's, revoked, already used) throws
   * INVALID_CREDENTIALS with one message; the log says which. A used token also revokes its
   * family and logs a security event. Asking for a scope the family lacks is INVALID_ARGUMENT
   * (RFC 6749 §5.2 `invalid_scope`) and rotates nothing.
   */
  async refresh(request: RefreshRequest): Promise<RefreshedPair> {
    checkIdentifier(request.clientId, "client_id");
    checkScopes(request.scopes);
    const deps = this.#deps;
    if (!REFRESH_TOKEN.test(request.refreshToken)) this.#refuse(request, "malformed");
    const nowMs = deps.nowMs();
    const refreshToken = newRefreshToken();
    const jti = randomUUID();
    const accessExpiresAtMs = (Math.floor(nowMs / 1000) + deps.accessTokenTtlSeconds) * 1000;
    const result = await deps.refreshTokens.rotate({
      tokenHash: hashOpaqueToken(request.refreshToken),
      clientId: request.clientId,
      scopes: request.scopes,
      nowMs,
      successorHash: hashOpaqueToken(refreshToken),
      idleTimeoutMs: this.#idleTimeoutMs,
      accessToken: { jti, expiresAtMs: accessExpiresAtMs },
    });
    if (result.outcome === "reused") {
      deps.log?.warn(
        {
          event: "refresh_token_reuse",
          familyId: result.family.familyId,
          clientId: result.family.clientId,
          subject: result.family.subject,
          generation: result.generation,
          caller: request.caller,
          revokedAccessTokens: result.revoked.length,
        },
        "a used refresh token was presented again: its family is revoked",
      );
      throw new ServiceError("INVALID_CREDENTIALS", INVALID_REFRESH_TOKEN);
    }
    if (result.outcome === "refused") {
      if (result.reason === "scope_not_granted") {
        throw invalid("scopes must be among those granted to the refresh token");
      }
      this.#refuse(request, result.reason, result.family);
    }
    const { family, successor } = result;
    const scopes = request.scopes.length > 0 ? [...new Set(request.scopes)] : family.scopes;
    const claims = { ...this.#claims(family, scopes, nowMs), jti };
    return {
      accessToken: await signAccessToken(deps.keys.active, claims),
      accessTokenExpiresAtMs: accessExpiresAtMs,
      refreshToken,
      refreshTokenExpiresAtMs: successor.expiresAtMs,
      tokenId: jti,
      familyId: family.familyId,
      scopes,
      subject: family.subject,
      sessionId: family.sessionId,
    };
  }

  #claims(family: FamilyRecord, scopes: readonly string[], nowMs: number): AccessTokenClaims {
    const iat = Math.floor(nowMs / 1000);
    return {
      iss: this.#deps.issuer,
      sub: family.subject,
      aud: family.audience,
      exp: iat + this.#deps.accessTokenTtlSeconds,
      iat,
      jti: randomUUID(),
      client_id: family.clientId,
      ...(scopes.length > 0 ? { scope: scopes.join(" ") } : {}),
      ...(family.sessionId !== undefined ? { sid: family.sessionId } : {}),
    };
  }

  #refuse(
    request: RefreshRequest,
    reason: Exclude<RotateRefusal, "scope_not_granted"> | "malformed",
    family?: FamilyRecord,
  ): never {
    this.#deps.log?.info(
      {
        event: "refresh_refused",
        reason,
        clientId: request.clientId,
        caller: request.caller,
        ...(family === undefined ? {} : { familyId: family.familyId, subject: family.subject }),
      },
      "refresh token refused",
    );
    throw new ServiceError("INVALID_CREDENTIALS", INVALID_REFRESH_TOKEN);
  }
}
