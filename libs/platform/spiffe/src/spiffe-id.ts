import { Buffer } from "node:buffer";
import { SpiffeError } from "./spiffe-error.ts";

const SCHEME_PREFIX = "spiffe://";
// SPIFFE-ID §2.3: "the maximum length of a SPIFFE ID is 2048 bytes."
const MAX_SPIFFE_ID_BYTES = 2048;
// SPIFFE-ID §2.3: "a maximum length of a trust domain name is 255 bytes."
const MAX_TRUST_DOMAIN_BYTES = 255;
// SPIFFE-ID §2.1: "The `host` part of the authority MUST contain only letters, numbers, dots,
// dashes, and underscores ([a-z0-9.-_])" and "MUST be lowercase".
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
// SPIFFE-ID §2.2: "Individual path segments MUST contain only letters, numbers, dots, dashes,
// and underscores ([a-zA-Z0-9.-_])."
const PATH_SEGMENT_CHARS = /^[a-zA-Z0-9._-]+$/;
const HOST_WITH_PORT = /^[a-z0-9._-]*:[0-9]*$/;

let construct: (trustDomain: string, path: string) => SpiffeId;

/**
 * A syntactically valid SPIFFE ID (SPIFFE-ID §2). Instances are frozen and can only be obtained
 * from {@link parseSpiffeId}, {@link spiffeIdForService} or SVID validation, so holding one
 * proves the string was validated. The class is nominal: a look-alike object literal does not
 * type-check as a `SpiffeId`.
 *
 * Compare identities with {@link SpiffeId.equals} or by `toString()`; both are exact,
 * case-sensitive comparisons of the canonical form (valid IDs have exactly one spelling because
 * upper case is rejected in the scheme and trust domain).
 */
export class SpiffeId {
  /** Trust domain name: lowercase, `[a-z0-9._-]`, 1 to 255 bytes. */
  readonly trustDomain: string;
  /** Path, `""` for a trust domain ID, otherwise `/seg(/seg)*` without a trailing slash. */
  readonly path: string;
  readonly #uri: string;

  static {
    construct = (trustDomain, path) => new SpiffeId(trustDomain, path);
  }

  private constructor(trustDomain: string, path: string) {
    this.trustDomain = trustDomain;
    this.path = path;
    this.#uri = `${SCHEME_PREFIX}${trustDomain}${path}`;
    Object.freeze(this);
  }

  /** The canonical URI, e.g. `spiffe://auth.local/ns/auth/sa/token`. */
  toString(): string {
    return this.#uri;
  }

  /** Serialises as the canonical URI string. */
  toJSON(): string {
    return this.#uri;
  }

  /** True when `other` is the same SPIFFE ID (exact match of the canonical URI). */
  equals(other: SpiffeId): boolean {
    return other instanceof SpiffeId && other.#uri === this.#uri;
  }
}

function invalid(reason: string, message: string): never {
  throw new SpiffeError("SPIFFE_ID_INVALID", reason, message);
}

function checkTrustDomain(td: string): void {
  // SPIFFE-ID §2.1: "The `host` part of the authority MUST NOT be empty."
  if (td.length === 0)
    invalid("trust-domain-empty", "SPIFFE-ID §2.1: the trust domain must not be empty");
  // SPIFFE-ID §2.1: "The `userinfo` and `port` parts of the authority component MUST be empty."
  if (td.includes("@"))
    invalid("trust-domain-userinfo", "SPIFFE-ID §2.1: the trust domain must not include userinfo");
  // The ":" delimiter "MUST NOT be present" either, so "td:" counts as a port too.
  if (HOST_WITH_PORT.test(td))
    invalid("trust-domain-port", "SPIFFE-ID §2.1: the trust domain must not include a port");
  if (Buffer.byteLength(td, "utf8") > MAX_TRUST_DOMAIN_BYTES) {
    invalid(
      "trust-domain-too-long",
      `SPIFFE-ID §2.3: the trust domain must be at most ${MAX_TRUST_DOMAIN_BYTES} bytes`,
    );
  }
  if (!TRUST_DOMAIN_CHARS.test(td)) {
    invalid(
      "trust-domain-chars",
      "SPIFFE-ID §2.1: the trust domain must contain only lowercase [a-z0-9.-_]",
    );
  }
}

function checkPathSegment(segment: string): void {
  // SPIFFE-ID §2.2: "The path component MUST NOT include segments that are empty or are relative
  // path modifiers (i.e. `.`, `..`)"
  if (segment.length === 0)
    invalid("path-empty-segment", "SPIFFE-ID §2.2: path segments must not be empty");
  if (segment === "." || segment === "..") {
    invalid("path-dot-segment", 'SPIFFE-ID §2.2: path segments must not be "." or ".."');
  }
  if (!PATH_SEGMENT_CHARS.test(segment)) {
    invalid("path-chars", "SPIFFE-ID §2.2: path segments must contain only [a-zA-Z0-9.-_]");
  }
}

/**
 * Parses a SPIFFE ID, accepting exactly the strings SPIFFE-ID §2 allows and nothing else:
 * `spiffe://` (lowercase), a non-empty lowercase trust domain of `[a-z0-9.-_]` (at most 255
 * bytes, no userinfo or port), then an optional path of non-empty `[a-zA-Z0-9.-_]` segments that
 * are not `.` or `..`, without a trailing `/`; no query, fragment or percent-encoding; at most
 * 2048 bytes in total. Nothing is normalised: an input is either already canonical or rejected.
 *
 * @throws {SpiffeError} code `SPIFFE_ID_INVALID`, `reason` naming the rule that failed
 *   (`not-a-string`, `too-long`, `scheme`, `query`, `fragment`, `percent-encoding`,
 *   `trust-domain-empty`, `trust-domain-userinfo`, `trust-domain-port`, `trust-domain-too-long`,
 *   `trust-domain-chars`, `path-trailing-slash`, `path-empty-segment`, `path-dot-segment`,
 *   `path-chars`).
 */
export function parseSpiffeId(input: string): SpiffeId {
  if (typeof input !== "string") invalid("not-a-string", "a SPIFFE ID must be a string");
  // SPIFFE-ID §2.3: "the maximum length of a SPIFFE ID is 2048 bytes."
  if (Buffer.byteLength(input, "utf8") > MAX_SPIFFE_ID_BYTES) {
    invalid("too-long", `SPIFFE-ID §2.3: a SPIFFE ID must be at most ${MAX_SPIFFE_ID_BYTES} bytes`);
  }
  // SPIFFE-ID §2: "Valid SPIFFE IDs MUST have the scheme set to `spiffe`". Upper case is refused
  // rather than folded so every ID has a single spelling for exact-match allowlists.
  if (!input.startsWith(SCHEME_PREFIX)) {
    invalid("scheme", 'SPIFFE-ID §2: a SPIFFE ID must start with "spiffe://" (lowercase)');
  }
  const rest = input.slice(SCHEME_PREFIX.length);
  // SPIFFE-ID §2: "MUST NOT include a query or fragment component."
  if (rest.includes("?")) invalid("query", "SPIFFE-ID §2: a SPIFFE ID must not include a query");
  if (rest.includes("#"))
    invalid("fragment", "SPIFFE-ID §2: a SPIFFE ID must not include a fragment");
  // SPIFFE-ID §2.1 and §2.2: the host and the path "MUST NOT include percent-encoded characters."
  if (rest.includes("%")) {
    invalid(
      "percent-encoding",
      "SPIFFE-ID §2.1/§2.2: a SPIFFE ID must not contain percent-encoded characters",
    );
  }
  const slash = rest.indexOf("/");
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? "" : rest.slice(slash);
  checkTrustDomain(trustDomain);
  if (path !== "") {
    // SPIFFE-ID §2.2: "The path component MUST NOT include a trailing `/`."
    if (path.endsWith("/"))
      invalid("path-trailing-slash", "SPIFFE-ID §2.2: the path must not end with /");
    for (const segment of path.slice(1).split("/")) checkPathSegment(segment);
  }
  return construct(trustDomain, path);
}

/**
 * Validates a bare trust domain name such as `auth.local` (SPIFFE-ID §2.1) and returns it
 * unchanged.
 *
 * @throws {SpiffeError} code `SPIFFE_ID_INVALID` with a `trust-domain-*` reason (or
 *   `not-a-string`).
 */
export function parseTrustDomain(input: string): string {
  if (typeof input !== "string") invalid("not-a-string", "a trust domain must be a string");
  checkTrustDomain(input);
  return input;
}

/**
 * Returns the platform's SPIFFE ID for a service account:
 * `spiffe://<trustDomain>/ns/auth/sa/<serviceAccount>`.
 *
 * @throws {SpiffeError} code `SPIFFE_ID_INVALID` when the trust domain is invalid or the service
 *   account is not a single valid path segment (so `a/b` cannot smuggle in extra segments).
 */
export function spiffeIdForService(trustDomain: string, serviceAccount: string): SpiffeId {
  parseTrustDomain(trustDomain);
  if (typeof serviceAccount !== "string")
    invalid("not-a-string", "a service account must be a string");
  checkPathSegment(serviceAccount);
  return parseSpiffeId(`${SCHEME_PREFIX}${trustDomain}/ns/auth/sa/${serviceAccount}`);
}

/**
 * True when `id` belongs to `trustDomain` (exact comparison of trust domain names). An invalid
 * trust domain name never matches, because a `SpiffeId` only ever holds a valid one.
 */
export function isMemberOf(id: SpiffeId, trustDomain: string): boolean {
  return id instanceof SpiffeId && id.trustDomain === trustDomain;
}
