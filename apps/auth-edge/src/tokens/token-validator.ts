import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from "jose";
import { ServiceError } from "@authplat/errors";
import type { JwksCache } from "../jwks/jwks-cache.ts";

/** Why a token was rejected; stable, mirrored one-to-one by the protobuf RejectionReason. */
export type RejectionReason =
  | "MALFORMED"
  | "ALGORITHM_NOT_ALLOWED"
  | "UNKNOWN_KEY"
  | "BAD_SIGNATURE"
  | "EXPIRED"
  | "NOT_YET_VALID"
  | "WRONG_ISSUER"
  | "WRONG_AUDIENCE"
  | "WRONG_TYPE"
  | "MISSING_CLAIM"
  | "INSUFFICIENT_SCOPE";

/** The verified claims of an access token. */
export interface ValidatedClaims {
  readonly issuer: string;
  readonly subject: string;
  readonly audience: readonly string[];
  /** Seconds since the epoch. */
  readonly expiresAt: number;
  readonly issuedAt: number;
  readonly notBefore: number | undefined;
  readonly tokenId: string;
  readonly clientId: string;
  readonly scopes: readonly string[];
  readonly sessionId: string | undefined;
  readonly keyId: string;
  readonly algorithm: string;
}

/** The outcome of validating a token. */
export type ValidationResult =
  | { readonly valid: true; readonly claims: ValidatedClaims }
  | { readonly valid: false; readonly reason: RejectionReason; readonly message: string };

/** Settings and dependencies of {@link TokenValidator}. */
export interface TokenValidatorDeps {
  readonly keys: JwksCache;
  /** Accepted `iss` value. */
  readonly issuer: string;
  /** The token must name at least one of these in `aud`. */
  readonly audiences: readonly string[];
  /** Accepted JWS algorithms; anything else is rejected before any key is looked up. */
  readonly algorithms: readonly string[];
  readonly clockToleranceSeconds: number;
  /** Milliseconds since the epoch. */
  readonly nowMs: () => number;
}

/** Compact JWS tokens longer than this (in characters) are rejected unparsed. */
export const MAX_TOKEN_LENGTH = 16 * 1024;
/** The most required scopes one validation takes; more is INVALID_ARGUMENT. */
export const MAX_REQUIRED_SCOPES = 64;
/** The longest required scope one validation takes, in characters; longer is INVALID_ARGUMENT. */
export const MAX_SCOPE_LENGTH = 128;
/**
 * The latest NumericDate accepted: 9999-12-31T23:59:59Z, the end of the protobuf Timestamp
 * range the claims are returned in (and far below Number.MAX_SAFE_INTEGER / 1000).
 */
const MAX_NUMERIC_DATE = 253_402_300_799;
const TIME_CLAIMS = ["exp", "iat", "nbf"] as const;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
// RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat and jti are REQUIRED.
const REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"];

function reject(reason: RejectionReason, message: string): ValidationResult {
  return { valid: false, reason, message };
}

function rejectionFor(error: unknown): ValidationResult {
  if (error instanceof errors.JWTExpired) return reject("EXPIRED", "the token has expired");
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return reject("BAD_SIGNATURE", "the token signature does not verify");
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return reject("ALGORITHM_NOT_ALLOWED", "the token algorithm is not allowed");
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === "missing") {
      return reject("MISSING_CLAIM", `the token has no "${error.claim}" claim`);
    }
    switch (error.claim) {
      case "iss":
        return reject("WRONG_ISSUER", "the token was issued by an untrusted issuer");
      case "aud":
        return reject("WRONG_AUDIENCE", "the token is not meant for this audience");
      case "typ":
        return reject("WRONG_TYPE", 'the token type is not "at+jwt"');
      case "nbf":
        return reject("NOT_YET_VALID", "the token is not valid yet");
      default:
        return reject("MALFORMED", `the token's "${error.claim}" claim is invalid`);
    }
  }
  return reject("MALFORMED", "the token is not a well-formed JWT");
}

/**
 * The first time claim that is present but not a whole number of seconds between the epoch and
 * {@link MAX_NUMERIC_DATE}. RFC 7519 §2 allows fractional NumericDates, but the platform issues
 * whole seconds, and fractions or out-of-range values cannot become protobuf Timestamps: they
 * are rejected rather than rounded.
 */
function invalidTimeClaim(payload: JWTPayload | undefined): string | undefined {
  if (payload === undefined) return undefined;
  return TIME_CLAIMS.find(
    (claim) => payload[claim] !== undefined && !isNumericDate(payload[claim]),
  );
}

function isNumericDate(value: unknown): boolean {
  return (
    Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= MAX_NUMERIC_DATE
  );
}

function malformedTime(claim: string): ValidationResult {
  return reject("MALFORMED", `the token's "${claim}" claim is not a valid NumericDate`);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

function claimsOf(payload: JWTPayload, kid: string, alg: string): ValidatedClaims | string {
  const { iss, sub, aud, exp, iat, nbf, jti } = payload;
  const clientId = payload["client_id"];
  const scope = payload["scope"];
  const sid = payload["sid"];
  if (typeof iss !== "string" || typeof sub !== "string" || typeof jti !== "string") {
    return "iss, sub and jti must be strings";
  }
  if (typeof clientId !== "string") return "client_id must be a string";
  if (typeof exp !== "number" || typeof iat !== "number") return "exp and iat must be numbers";
  if (scope !== undefined && typeof scope !== "string") return "scope must be a string";
  if (sid !== undefined && typeof sid !== "string") return "sid must be a string";
  const audience = typeof aud === "string" ? [aud] : aud;
  if (!isStringArray(audience)) return "aud must be a string or an array of strings";
  return {
    issuer: iss,
    subject: sub,
    audience,
    expiresAt: exp,
    issuedAt: iat,
    notBefore: nbf,
    tokenId: jti,
    clientId,
    scopes: scope === undefined || scope === "" ? [] : scope.split(" "),
    sessionId: sid,
    keyId: kid,
    algorithm: alg,
  };
}

/**
 * Validates RFC 9068 access tokens locally: structure, algorithm allowlist, `typ`, key, signature,
 * issuer, audience, time claims, required claims and scopes, in that order, and says why a token
 * fails with a stable {@link RejectionReason}. Never throws to reject a token; throws
 * INVALID_ARGUMENT when `requiredScopes` exceeds {@link MAX_REQUIRED_SCOPES} entries or
 * {@link MAX_SCOPE_LENGTH} characters per entry, and UNAVAILABLE when it cannot decide (no key
 * set loaded, or the last one too stale).
 */
export class TokenValidator {
  readonly #deps: TokenValidatorDeps;

  constructor(deps: TokenValidatorDeps) {
    this.#deps = deps;
  }

  async validate(token: string, requiredScopes: readonly string[] = []): Promise<ValidationResult> {
    const deps = this.#deps;
    if (requiredScopes.length > MAX_REQUIRED_SCOPES) {
      throw new ServiceError(
        "INVALID_ARGUMENT",
        `required_scopes holds at most ${MAX_REQUIRED_SCOPES} entries`,
      );
    }
    if (requiredScopes.some((scope) => scope.length > MAX_SCOPE_LENGTH)) {
      throw new ServiceError(
        "INVALID_ARGUMENT",
        `each entry of required_scopes is at most ${MAX_SCOPE_LENGTH} characters`,
      );
    }
    if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) {
      return reject("MALFORMED", "the token is not a compact JWS");
    }
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return reject("MALFORMED", "the token header cannot be decoded");
    }
    // RFC 8725 §3.1: "libraries MUST enable the caller to specify a supported set of algorithms
    // and MUST NOT use any other algorithms when performing cryptographic operations".
    if (typeof header.alg !== "string" || !deps.algorithms.includes(header.alg)) {
      return reject("ALGORITHM_NOT_ALLOWED", "the token algorithm is not allowed");
    }
    // RFC 9068 §4: resource servers "MUST verify that the typ header value is at+jwt or
    // application/at+jwt and reject tokens carrying any other value".
    if (header.typ !== "at+jwt" && header.typ !== "application/at+jwt") {
      return reject("WRONG_TYPE", 'the token type is not "at+jwt"');
    }
    if (typeof header.kid !== "string" || header.kid === "") {
      return reject("UNKNOWN_KEY", "the token names no signing key");
    }
    const key = await deps.keys.keyFor(header.kid);
    if (key === undefined) return reject("UNKNOWN_KEY", "the token's signing key is unknown");
    if (key.alg !== header.alg) {
      return reject("ALGORITHM_NOT_ALLOWED", "the token algorithm does not match its key");
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key.key, {
        algorithms: [key.alg],
        issuer: deps.issuer,
        audience: [...deps.audiences],
        typ: "at+jwt",
        requiredClaims: REQUIRED_CLAIMS,
        clockTolerance: deps.clockToleranceSeconds,
        currentDate: new Date(deps.nowMs()),
      }));
    } catch (error) {
      // Claim errors come after the signature verified; a broken time claim is the root cause.
      const badTime =
        error instanceof errors.JWTClaimValidationFailed || error instanceof errors.JWTExpired
          ? invalidTimeClaim(error.payload)
          : undefined;
      return badTime === undefined ? rejectionFor(error) : malformedTime(badTime);
    }
    const badTime = invalidTimeClaim(payload);
    if (badTime !== undefined) return malformedTime(badTime);
    if (
      typeof payload.iat === "number" &&
      payload.iat > deps.nowMs() / 1000 + deps.clockToleranceSeconds
    ) {
      return reject("NOT_YET_VALID", "the token was issued in the future");
    }
    const claims = claimsOf(payload, key.kid, key.alg);
    if (typeof claims === "string")
      return reject("MALFORMED", `the token's claims are invalid: ${claims}`);
    const granted = new Set(claims.scopes);
    const missing = requiredScopes.filter((scope) => !granted.has(scope));
    if (missing.length > 0) {
      return reject("INSUFFICIENT_SCOPE", `the token lacks the scopes: ${missing.join(" ")}`);
    }
    return { valid: true, claims };
  }
}
