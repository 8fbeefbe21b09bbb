import { createHash, randomBytes, randomUUID } from "node:crypto";
import { ServiceError } from "@authplat/errors";
import type { KeyRing } from "../keys/key-ring.ts";
import { signAccessToken, type AccessTokenClaims } from "./access-token.ts";
import type {
  ActiveRefreshToken,
  FamilyRecord,
  RefreshTokenStore,
  RotateRefusal,
} from "./refresh-token-store.ts";

/** What the caller asks tokens for. */
export interface TokenPairRequest {
  readonly subject: string;
  readonly clientId: string;
  readonly audience: readonly string[];
  readonly scopes: readonly string[];
  readonly sessionId: string;
  /** Role names for the `roles` claim; duplicates are dropped, order kept. Default: none. */
  readonly roles?: readonly string[];
  /** Tenant for the `tenant` claim; '' (the default) for none. */
  readonly tenant?: string;
  /** Authentication context class for the `acr` claim; '' (the default) omits it. */
  readonly acr?: string;
  /** RFC 8176 values for the `amr` claim; duplicates are dropped. Default: none. */
  readonly amr?: readonly string[];
  /** When the subject authenticated, ms since the epoch (`auth_time`); undefined omits it. */
  readonly authTimeMs?: number;
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
const ROLE = /^[A-Za-z0-9_.:-]{1,128}$/;
const MAX_ROLES = 64;
// RFC 8176 §2 values are short lowercase names; the handler maps enum values to them.
const AMR_VALUE = /^[a-z0-9_-]{1,32}$/;
const MAX_AMR = 8;
/** How far in the future `auth_time` may be, for clock skew between services. */
const AUTH_TIME_SKEW_MS = 60_000;

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

function checkRoles(roles: readonly string[]): void {
  if (roles.length > MAX_ROLES || !roles.every((role) => ROLE.test(role))) {
    throw invalid(
      `roles must be at most ${MAX_ROLES} names of 1-128 characters from A-Z a-z 0-9 _ . : -`,
    );
  }
}

function checkAmr(amr: readonly string[]): void {
  if (amr.length > MAX_AMR || !amr.every((value) => AMR_VALUE.test(value))) {
    throw invalid(`authentication_methods must list at most ${MAX_AMR} methods`);
  }
}

function checkAuthTime(authTimeMs: number | undefined, nowMs: number): void {
  if (authTimeMs === undefined) return;
  if (!Number.isFinite(authTimeMs) || authTimeMs < 0) {
    throw invalid("auth_time must not be before 1970");
  }
  if (authTimeMs > nowMs + AUTH_TIME_SKEW_MS) throw invalid("auth_time must not be in the future");
}

/** The authorization checks of a pair request; `auth_time` is judged against `nowMs`. */
function checkAuthorization(request: TokenPairRequest, nowMs: number): void {
  const { roles = [], tenant = "", acr = "", amr = [] } = request;
  checkRoles(roles);
  if (tenant !== "") checkIdentifier(tenant, "tenant");
  if (acr !== "") checkIdentifier(acr, "acr");
  checkAmr(amr);
  checkAuthTime(request.authTimeMs, nowMs);
}

function checkRequest(request: TokenPairRequest, nowMs: number): void {
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
  checkAuthorization(request, nowMs);
}

/** The family fields of the authorization facts asked for; an empty one is left out. */
function authorizationFields(request: TokenPairRequest): Partial<FamilyRecord> {
  const { tenant = "", acr = "" } = request;
  const roles = [...new Set(request.roles ?? [])];
  const amr = [...new Set(request.amr ?? [])];
  return {
    ...(roles.length > 0 ? { roles } : {}),
    ...(tenant !== "" ? { tenant } : {}),
    ...(acr !== "" ? { acr } : {}),
    ...(amr.length > 0 ? { amr } : {}),
    ...(request.authTimeMs !== undefined ? { authTimeMs: request.authTimeMs } : {}),
  };
}

/** The access-token claims of a family's authorization facts; absent or empty ones are omitted. */
function authorizationClaims(family: FamilyRecord): Partial<AccessTokenClaims> {
  return {
    ...(family.roles !== undefined && family.roles.length > 0 ? { roles: family.roles } : {}),
    ...(family.tenant !== undefined && family.tenant !== "" ? { tenant: family.tenant } : {}),
    ...(family.acr !== undefined && family.acr !== "" ? { acr: family.acr } : {}),
    ...(family.amr !== undefined && family.amr.length > 0 ? { amr: family.amr } : {}),
    ...(family.authTimeMs !== undefined ? { auth_time: Math.floor(family.authTimeMs / 1000) } : {}),
  };
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
    const deps = this.#deps;
    const nowMs = deps.nowMs();
    checkRequest(request, nowMs);
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
      ...authorizationFields(request),
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

  /**
   * The records of a refresh token when it is active now (issued here, never used, unexpired,
   * family not revoked), else undefined. A value that cannot be one of this service's refresh
   * tokens is inactive without asking the store. Changes nothing; throws UNAVAILABLE when the
   * store cannot be reached. The token is never logged.
   */
  async inspectRefreshToken(token: string): Promise<ActiveRefreshToken | undefined> {
    if (!REFRESH_TOKEN.test(token)) return undefined;
    const deps = this.#deps;
    return deps.refreshTokens.inspect(hashOpaqueToken(token), deps.nowMs());
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
      ...authorizationClaims(family),
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
