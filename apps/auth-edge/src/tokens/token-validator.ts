import { verify } from "node:crypto";
import { performance } from "node:perf_hooks";
import { ServiceError } from "@authplat/errors";
import type { JwksCache, VerificationKey } from "../jwks/jwks-cache.ts";
import { VerificationCache } from "./verification-cache.ts";

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
  | "INSUFFICIENT_SCOPE"
  | "REVOKED";

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
  /** `roles` (RFC 9068 §2.2.3.1); empty when the token has none. */
  readonly roles: readonly string[];
  /** `tenant`, when the token names one. */
  readonly tenant: string | undefined;
  /** `acr` (OpenID Connect Core §2), when present. */
  readonly acr: string | undefined;
  /** `amr` (RFC 8176), in token order; empty when absent. */
  readonly amr: readonly string[];
  /** `auth_time`, seconds since the epoch, when present. */
  readonly authTime: number | undefined;
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
  /**
   * How many verified tokens to remember, least recently used first out, so that a repeated
   * token skips decoding and the signature check; 0 turns the cache off. Default
   * {@link DEFAULT_VERIFICATION_CACHE_SIZE}.
   */
  readonly verificationCacheSize?: number;
  /**
   * Whether a token whose signature and claims check out has been revoked (REVOKED when true).
   * Called on every such validation, answered from the cache or not, so it must answer from
   * memory. Default: nothing is revoked.
   */
  readonly isRevoked?: (claims: ValidatedClaims) => boolean;
  /**
   * Where signatures are checked: `event-loop` (synchronously, the least CPU and latency per
   * check), `thread-pool` (libuv's pool, so the loop goes on serving meanwhile), or `auto`
   * (the default): the event loop while its utilisation is at most 50%, the pool above that.
   */
  readonly signaturePlacement?: SignaturePlacement;
}

/** Default of {@link TokenValidatorDeps.verificationCacheSize}. */
export const DEFAULT_VERIFICATION_CACHE_SIZE = 10_000;
/** Compact JWS tokens longer than this (in characters) are rejected unparsed. */
export const MAX_TOKEN_LENGTH = 16 * 1024;
/**
 * Longer tokens are validated in full every time, never cached: with the token itself as the
 * cache key, this bounds the cache at about `verificationCacheSize` × 2 × 4 KiB of strings.
 */
export const MAX_CACHED_TOKEN_LENGTH = 4 * 1024;
/** The most required scopes one validation takes; more is INVALID_ARGUMENT. */
export const MAX_REQUIRED_SCOPES = 64;
/** The longest required scope one validation takes, in characters; longer is INVALID_ARGUMENT. */
export const MAX_SCOPE_LENGTH = 128;
/**
 * The latest NumericDate accepted: 9999-12-31T23:59:59Z, the end of the protobuf Timestamp
 * range the claims are returned in (and far below Number.MAX_SAFE_INTEGER / 1000).
 */
const MAX_NUMERIC_DATE = 253_402_300_799;
const TIME_CLAIMS = ["exp", "iat", "nbf", "auth_time"] as const;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
// RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat and jti are REQUIRED.
const REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"] as const;
const BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
// RFC 7518 §3.4: an ES256 signature is R and S, 32 octets each; RFC 8032 §5.1.6: an Ed25519
// signature is 64 octets too.
const SIGNATURE_CHARACTERS = Math.ceil((64 * 4) / 3); // 86, unpadded
// RFC 7515 §5.2 step 4: the header "MUST be ... a completely valid JSON object" of UTF-8 octets.
const utf8 = new TextDecoder("utf-8", { fatal: true });

type Json = Record<string, unknown>;

function reject(reason: RejectionReason, message: string): ValidationResult {
  return { valid: false, reason, message };
}

const NOT_COMPACT = Object.freeze(reject("MALFORMED", "the token is not a compact JWS"));

/**
 * Whether `segment` (already known to use only the base64url alphabet) is the one unpadded
 * encoding of its octets (RFC 7515 §2, RFC 4648 §3.5): no impossible length, and the unused
 * low bits of the last character are zero. A token has exactly one spelling.
 */
function isCanonicalBase64url(segment: string): boolean {
  const tail = segment.length % 4;
  if (tail === 0) return true;
  if (tail === 1) return false;
  const last = BASE64URL_ALPHABET.indexOf(segment[segment.length - 1]!);
  return (last & (tail === 2 ? 0b1111 : 0b11)) === 0;
}

/** The JSON object `segment` encodes, or undefined when it is not one. */
function decodeObject(segment: string): Json | undefined {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(Buffer.from(segment, "base64url")));
  } catch {
    return undefined;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Json)
    : undefined;
}

/**
 * Whether `signature` is `key`'s signature of `signingInput`. The algorithm is the key's own,
 * bound when the key set was loaded (RFC 8725 §3.1), never read from the token.
 *
 * node:crypto's one-shot `verify` with a KeyObject converted once per key set, not WebCrypto
 * (through jose): for ES256 it costs about 90 µs of CPU against about 140 µs, and the
 * synchronous form less CPU than the callback form (bench/verify-primitives.bench.ts). It holds
 * the event loop for that long: the right trade while the loop has time to spare; a busy loop
 * sends checks to {@link signatureVerifiesInPool} instead (see `signaturePlacement`).
 */
function signatureVerifies(key: VerificationKey, signingInput: string, signature: Buffer): boolean {
  // The signing input is ASCII (checked against COMPACT_JWS), so latin1 is its exact octets.
  const data = Buffer.from(signingInput, "latin1");
  try {
    switch (key.alg) {
      case "ES256":
        // RFC 7518 §3.4: the signature is R || S, not DER.
        return verify("sha256", data, { key: key.keyObject, dsaEncoding: "ieee-p1363" }, signature);
      case "EdDSA":
        return verify(null, data, key.keyObject, signature);
      default:
        return false; // the key set admits no other algorithm; fail closed if one slips in
    }
  } catch {
    return false;
  }
}

/**
 * {@link signatureVerifies} on libuv's thread pool (node:crypto's callback form): the event
 * loop goes on serving calls while another core checks the signature.
 */
function signatureVerifiesInPool(
  key: VerificationKey,
  signingInput: string,
  signature: Buffer,
): Promise<boolean> {
  const data = Buffer.from(signingInput, "latin1");
  return new Promise((resolve) => {
    const done = (error: Error | null, valid: boolean) => resolve(error === null && valid);
    try {
      switch (key.alg) {
        case "ES256":
          verify(
            "sha256",
            data,
            { key: key.keyObject, dsaEncoding: "ieee-p1363" },
            signature,
            done,
          );
          return;
        case "EdDSA":
          verify(null, data, key.keyObject, signature, done);
          return;
        default:
          resolve(false);
      }
    } catch {
      resolve(false);
    }
  });
}

/** Where signatures are checked; see {@link TokenValidatorDeps.signaturePlacement}. */
export type SignaturePlacement = "auto" | "event-loop" | "thread-pool";

/** Event-loop utilisation above which `auto` sends signature checks to the thread pool. */
const BUSY_UTILISATION = 0.5;
/** How often `auto` looks at the event loop's utilisation again. */
const PLACEMENT_SAMPLE_MS = 50;

/**
 * `auto` placement: on the event loop while it has time to spare (lowest latency: no thread
 * hop), on the thread pool while it is busy (the loop keeps serving, another core verifies).
 * Utilisation is sampled at most every {@link PLACEMENT_SAMPLE_MS} ms, when a check asks.
 */
class BusyLoopDetector {
  #last = performance.eventLoopUtilization();
  #sampledAt = performance.now();
  #busy = false;

  busy(): boolean {
    const now = performance.now();
    if (now - this.#sampledAt >= PLACEMENT_SAMPLE_MS) {
      const current = performance.eventLoopUtilization();
      this.#busy =
        performance.eventLoopUtilization(current, this.#last).utilization > BUSY_UTILISATION;
      this.#last = current;
      this.#sampledAt = now;
    }
    return this.#busy;
  }
}

function isNumericDate(value: unknown): value is number {
  return (
    Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= MAX_NUMERIC_DATE
  );
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

function checkRequiredScopes(requiredScopes: readonly string[]): void {
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
}

/** The claims of a verified payload, or why their shape is not an access token's. */
function claimsOf(payload: Json, key: VerificationKey): ValidatedClaims | ValidationResult {
  for (const claim of REQUIRED_CLAIMS) {
    if (!Object.hasOwn(payload, claim)) {
      return reject("MISSING_CLAIM", `the token has no "${claim}" claim`);
    }
  }
  // RFC 7519 §2 allows fractional NumericDates, but the platform issues whole seconds, and
  // fractions or out-of-range values cannot become protobuf Timestamps: they are rejected
  // rather than rounded.
  for (const claim of TIME_CLAIMS) {
    if (Object.hasOwn(payload, claim) && !isNumericDate(payload[claim])) {
      return reject("MALFORMED", `the token's "${claim}" claim is not a valid NumericDate`);
    }
  }
  const { iss, sub, aud, exp, iat, nbf, jti, client_id: clientId, scope, sid } = payload;
  const { roles, tenant, acr, amr, auth_time: authTime } = payload;
  const invalid = (problem: string) =>
    reject("MALFORMED", `the token's claims are invalid: ${problem}`);
  if (typeof iss !== "string") return invalid("iss must be a string");
  if (typeof sub !== "string") return invalid("sub must be a string");
  if (typeof jti !== "string") return invalid("jti must be a string");
  if (typeof clientId !== "string") return invalid("client_id must be a string");
  if (scope !== undefined && typeof scope !== "string") return invalid("scope must be a string");
  if (sid !== undefined && typeof sid !== "string") return invalid("sid must be a string");
  // Claims authorization reads: a wrong type is refused rather than ignored, so that a policy
  // never sees a principal built from half a claim.
  if (roles !== undefined && !isStringArray(roles)) return invalid("roles must be strings");
  if (tenant !== undefined && typeof tenant !== "string") return invalid("tenant must be a string");
  if (acr !== undefined && typeof acr !== "string") return invalid("acr must be a string");
  if (amr !== undefined && !isStringArray(amr)) return invalid("amr must be strings");
  const audience = typeof aud === "string" ? [aud] : aud;
  if (!isStringArray(audience)) return invalid("aud must be a string or an array of strings");
  // Frozen: a cached token's claims are handed out again on every hit.
  return Object.freeze({
    issuer: iss,
    subject: sub,
    audience: Object.freeze(audience),
    expiresAt: exp as number,
    issuedAt: iat as number,
    notBefore: nbf as number | undefined,
    tokenId: jti,
    clientId,
    // RFC 6749 §3.3: scope-token *( SP scope-token ).
    scopes: Object.freeze(
      scope === undefined ? [] : scope.split(" ").filter((token) => token !== ""),
    ),
    sessionId: sid,
    keyId: key.kid,
    algorithm: key.alg,
    roles: Object.freeze((roles as string[] | undefined) ?? []),
    tenant: tenant as string | undefined,
    acr: acr as string | undefined,
    amr: Object.freeze((amr as string[] | undefined) ?? []),
    authTime: authTime as number | undefined,
  });
}

function isResult<T extends object>(value: T | ValidationResult): value is ValidationResult {
  return Object.hasOwn(value, "valid");
}

/** What the cache remembers of a verified token: its claims and the key that verified it. */
interface Verified {
  readonly claims: ValidatedClaims;
  readonly key: VerificationKey;
}

/**
 * Validates RFC 9068 access tokens locally and says why a token fails with a stable
 * {@link RejectionReason}. Checks, in this order (the first failure decides):
 *
 * 1. structure (MALFORMED): at most {@link MAX_TOKEN_LENGTH} characters, exactly three
 *    non-empty canonical base64url segments, a header that is a UTF-8 JSON object without
 *    `crit`;
 * 2. header: `alg` on the allowlist (ALGORITHM_NOT_ALLOWED), `typ` `at+jwt` or
 *    `application/at+jwt` (WRONG_TYPE), a `kid` (UNKNOWN_KEY), a key with that kid
 *    (UNKNOWN_KEY) whose own alg is the header's (ALGORITHM_NOT_ALLOWED);
 * 3. signature with that key, whose segment must be the one spelling of 64 octets
 *    (BAD_SIGNATURE); then the payload is a JSON object (MALFORMED);
 * 4. claims: required claims present (MISSING_CLAIM), exp/iat/nbf/auth_time whole seconds in
 *    range (MALFORMED), claim types, the authorization claims `roles`/`tenant`/`acr`/`amr`
 *    included (MALFORMED), `iss` (WRONG_ISSUER), `aud` (WRONG_AUDIENCE);
 * 5. `isRevoked` (REVOKED), then time with the clock tolerance: nbf and exp (NOT_YET_VALID,
 *    EXPIRED), iat not in the future (NOT_YET_VALID), then the required scopes
 *    (INSUFFICIENT_SCOPE).
 *
 * A token that passes 1-4 is remembered (verification cache, keyed by the token). A repeated
 * token looks its key up again exactly as step 2 does (so a stale key set still fails closed
 * and a removed or replaced key sends it through the full checks) and then runs step 5 only:
 * a cached answer is the answer a full validation gives at that moment. Rejections are not
 * cached: their input is chosen by whoever sends the token, so caching them would let anyone
 * without a valid token push valid ones out of the cache.
 *
 * Never throws to reject a token; throws INVALID_ARGUMENT when `requiredScopes` exceeds
 * {@link MAX_REQUIRED_SCOPES} entries or {@link MAX_SCOPE_LENGTH} characters per entry, and
 * UNAVAILABLE when it cannot decide (no key set loaded, or the last one too stale).
 */
export class TokenValidator {
  readonly #deps: TokenValidatorDeps;
  readonly #cache: VerificationCache<Verified> | undefined;
  readonly #offload: () => boolean;
  #checkedOnLoop = 0;
  #checkedInPool = 0;
  #hits = 0;
  #misses = 0;

  constructor(deps: TokenValidatorDeps) {
    this.#deps = deps;
    const placement = deps.signaturePlacement ?? "auto";
    if (placement === "auto") {
      const loop = new BusyLoopDetector();
      this.#offload = () => loop.busy();
    } else {
      this.#offload = placement === "thread-pool" ? () => true : () => false;
    }
    const size = deps.verificationCacheSize ?? DEFAULT_VERIFICATION_CACHE_SIZE;
    this.#cache =
      size > 0
        ? new VerificationCache<Verified>({
            maxEntries: size,
            maxKeyLength: MAX_CACHED_TOKEN_LENGTH,
          })
        : undefined;
  }

  /** How many verified tokens the cache holds now (0 without a cache). */
  get cachedTokens(): number {
    return this.#cache?.size ?? 0;
  }

  /**
   * Validations answered from the cache (`hits`) and not (`misses`) since construction; both
   * stay 0 without a cache.
   */
  get cacheStats(): { readonly hits: number; readonly misses: number } {
    return { hits: this.#hits, misses: this.#misses };
  }

  /** Signatures checked on the event loop and on the thread pool since construction. */
  get signatureChecks(): { readonly eventLoop: number; readonly threadPool: number } {
    return { eventLoop: this.#checkedOnLoop, threadPool: this.#checkedInPool };
  }

  /**
   * Validates `token` and checks that it grants every scope in `requiredScopes` (see the class
   * documentation for the checks and their order).
   */
  async validate(token: string, requiredScopes: readonly string[] = []): Promise<ValidationResult> {
    checkRequiredScopes(requiredScopes);
    const cached = this.#cache?.get(token);
    if (cached !== undefined) {
      // The lookup a full validation makes: it refreshes a due key set, fails closed on a
      // stale one, and says whether the very key that verified this token is still in the set.
      if ((await this.#deps.keys.keyFor(cached.key.kid)) === cached.key) {
        this.#hits += 1;
        return this.#judge(token, cached.claims, requiredScopes);
      }
      this.#cache?.delete(token);
    }
    if (this.#cache !== undefined) this.#misses += 1;
    const verified = await this.#verify(token);
    if (isResult(verified)) return verified;
    this.#cache?.set(token, verified);
    return this.#judge(token, verified.claims, requiredScopes);
  }

  /** Steps 1-4: the claims of a token whose structure, key, signature and claims hold. */
  async #verify(token: string): Promise<Verified | ValidationResult> {
    const deps = this.#deps;
    if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) return NOT_COMPACT;
    const firstDot = token.indexOf(".");
    const lastDot = token.lastIndexOf(".");
    const encodedHeader = token.slice(0, firstDot);
    const encodedPayload = token.slice(firstDot + 1, lastDot);
    const encodedSignature = token.slice(lastDot + 1);
    if (!isCanonicalBase64url(encodedHeader) || !isCanonicalBase64url(encodedPayload)) {
      return NOT_COMPACT;
    }
    const header = decodeObject(encodedHeader);
    if (header === undefined) return reject("MALFORMED", "the token header cannot be decoded");
    // RFC 7515 §4.1.11: a recipient that does not understand a listed extension "MUST" reject
    // the JWS; this edge understands none.
    if (Object.hasOwn(header, "crit")) {
      return reject("MALFORMED", "the token header names critical extensions");
    }
    const { alg, typ, kid } = header;
    // RFC 8725 §3.1: "libraries MUST enable the caller to specify a supported set of algorithms
    // and MUST NOT use any other algorithms when performing cryptographic operations".
    if (typeof alg !== "string" || !deps.algorithms.includes(alg)) {
      return reject("ALGORITHM_NOT_ALLOWED", "the token algorithm is not allowed");
    }
    // RFC 9068 §4: resource servers "MUST verify that the typ header value is at+jwt or
    // application/at+jwt and reject tokens carrying any other value".
    if (typ !== "at+jwt" && typ !== "application/at+jwt") {
      return reject("WRONG_TYPE", 'the token type is not "at+jwt"');
    }
    if (typeof kid !== "string" || kid === "") {
      return reject("UNKNOWN_KEY", "the token names no signing key");
    }
    const key = await deps.keys.keyFor(kid);
    if (key === undefined) return reject("UNKNOWN_KEY", "the token's signing key is unknown");
    if (key.alg !== alg) {
      return reject("ALGORITHM_NOT_ALLOWED", "the token algorithm does not match its key");
    }
    // Only the one spelling of a 64-octet signature can verify: a longer, shorter or
    // non-canonical signature segment is a signature that does not verify.
    if (
      encodedSignature.length !== SIGNATURE_CHARACTERS ||
      !isCanonicalBase64url(encodedSignature) ||
      !(await this.#signatureVerifies(key, token.slice(0, lastDot), encodedSignature))
    ) {
      return reject("BAD_SIGNATURE", "the token signature does not verify");
    }
    const payload = decodeObject(encodedPayload);
    if (payload === undefined) return reject("MALFORMED", "the token payload is not a JSON object");
    const claims = claimsOf(payload, key);
    if (isResult(claims)) return claims;
    if (claims.issuer !== deps.issuer) {
      return reject("WRONG_ISSUER", "the token was issued by an untrusted issuer");
    }
    if (!claims.audience.some((audience) => deps.audiences.includes(audience))) {
      return reject("WRONG_AUDIENCE", "the token is not meant for this audience");
    }
    return { claims, key };
  }

  /** Checks a signature where {@link TokenValidatorDeps.signaturePlacement} says. */
  #signatureVerifies(
    key: VerificationKey,
    signingInput: string,
    encodedSignature: string,
  ): boolean | Promise<boolean> {
    const signature = Buffer.from(encodedSignature, "base64url");
    if (this.#offload()) {
      this.#checkedInPool += 1;
      return signatureVerifiesInPool(key, signingInput, signature);
    }
    this.#checkedOnLoop += 1;
    return signatureVerifies(key, signingInput, signature);
  }

  /** Step 5: what a verified token's claims say now. */
  #judge(
    token: string,
    claims: ValidatedClaims,
    requiredScopes: readonly string[],
  ): ValidationResult {
    const deps = this.#deps;
    if (deps.isRevoked?.(claims) === true) return reject("REVOKED", "the token has been revoked");
    const now = Math.floor(deps.nowMs() / 1000);
    const tolerance = deps.clockToleranceSeconds;
    if (claims.notBefore !== undefined && claims.notBefore > now + tolerance) {
      return reject("NOT_YET_VALID", "the token is not valid yet");
    }
    if (claims.expiresAt <= now - tolerance) {
      // Never valid again (unless the clock goes back, when a full validation says so again).
      this.#cache?.delete(token);
      return reject("EXPIRED", "the token has expired");
    }
    if (claims.issuedAt > now + tolerance) {
      return reject("NOT_YET_VALID", "the token was issued in the future");
    }
    if (requiredScopes.length > 0) {
      const granted = new Set(claims.scopes);
      const missing = requiredScopes.filter((scope) => !granted.has(scope));
      if (missing.length > 0) {
        return reject("INSUFFICIENT_SCOPE", `the token lacks the scopes: ${missing.join(" ")}`);
      }
    }
    return { valid: true, claims };
  }
}
