import { createHmac, webcrypto } from "node:crypto";
import fc from "fast-check";
import { exportJWK, exportSPKI, generateKeyPair, type CryptoKey } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { JwksCache, type SourceJwk } from "../jwks/jwks-cache.ts";
import {
  TokenValidator,
  type RejectionReason,
  type ValidatedClaims,
  type ValidationResult,
} from "./token-validator.ts";

// The reference below is written from the specification (RFC 7515, RFC 8725, RFC 9068 and the
// documented check order of TokenValidator), not from the implementation: it names, for each
// kind of corruption of a valid token, the reason a correct validator gives.

const NOW = 1_790_000_000;
const TOLERANCE = 5;
const ISSUER = "https://auth.local";
const AUDIENCES = ["https://api.auth.local", "https://orders.auth.local"];
const MAX_NUMERIC_DATE = 253_402_300_799;
const REQUIRED = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"];

type Alg = "ES256" | "EdDSA";

interface Signer {
  readonly kid: string;
  readonly alg: Alg;
  readonly privateKey: CryptoKey;
  readonly jwk: SourceJwk;
  readonly spkiPem: string;
}

/** Keys in the JWKS, and keys of the same types that are not (an attacker's). */
const keys = {} as Record<"es256" | "eddsa" | "foreignEs256" | "foreignEddsa", Signer>;

async function makeSigner(kid: string, alg: Alg): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    kid,
    alg,
    privateKey,
    jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" },
    spkiPem: await exportSPKI(publicKey),
  };
}

function keyIn(kid: unknown): Signer | undefined {
  return [keys.es256, keys.eddsa].find((key) => key.kid === kid);
}

function foreignTwin(key: Signer): Signer {
  return key.alg === "ES256" ? keys.foreignEs256 : keys.foreignEddsa;
}

const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString("base64url");

/** Signs with WebCrypto (the validator verifies with node:crypto): ES256 gives R || S. */
async function signSegments(key: Signer, header: string, payload: string): Promise<string> {
  const algorithm = key.alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "Ed25519" };
  const signature = await webcrypto.subtle.sign(
    algorithm,
    key.privateKey,
    Buffer.from(`${header}.${payload}`),
  );
  return b64url(new Uint8Array(signature));
}

// ---------------------------------------------------------------------------------------------
// Valid tokens

interface Base {
  readonly signer: "es256" | "eddsa";
  readonly header: Record<string, unknown>;
  readonly payload: Record<string, unknown>;
  readonly requiredScopes: string[];
}

const scopeToken = fc.stringMatching(/^[a-z][a-z:._-]{0,9}$/);
const registered = new Set([
  ...REQUIRED,
  "nbf",
  "scope",
  "sid",
  "roles",
  "tenant",
  "acr",
  "amr",
  "auth_time",
  "alg",
  "typ",
  "kid",
  "crit",
  "__proto__",
]);

const base: fc.Arbitrary<Base> = fc
  .record({
    signer: fc.constantFrom("es256" as const, "eddsa" as const),
    typ: fc.constantFrom("at+jwt", "application/at+jwt"),
    // Members a validator must ignore; it never fetches `jku` or trusts an embedded `jwk`.
    headerExtras: fc.dictionary(
      fc.constantFrom("jku", "x5u", "cty", "x-trace"),
      fc.constantFrom("https://evil.example/jwks", "JWT", "t-1"),
      { maxKeys: 2 },
    ),
    sub: fc.string({ minLength: 1, maxLength: 12 }),
    aud: fc.oneof(
      fc.constantFrom(...AUDIENCES),
      fc
        .tuple(fc.subarray(AUDIENCES, { minLength: 1 }), fc.array(fc.webUrl(), { maxLength: 2 }))
        .chain(([ours, others]) =>
          fc.shuffledSubarray([...ours, ...others], { minLength: ours.length + others.length }),
        ),
    ),
    // With the tolerated clock skew: exp up to TOLERANCE - 1 s in the past, nbf and iat up to
    // TOLERANCE s in the future.
    exp: fc.integer({ min: NOW - TOLERANCE + 1, max: NOW + 7_200 }),
    iat: fc.integer({ min: NOW - 7_200, max: NOW + TOLERANCE }),
    nbf: fc.option(fc.integer({ min: NOW - 7_200, max: NOW + TOLERANCE }), { nil: undefined }),
    jti: fc.string({ minLength: 1, maxLength: 16 }),
    clientId: fc.string({ minLength: 1, maxLength: 12 }),
    scopes: fc.uniqueArray(scopeToken, { maxLength: 5 }),
    sid: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
    roles: fc.option(fc.uniqueArray(fc.string({ maxLength: 8 }), { maxLength: 3 }), {
      nil: undefined,
    }),
    tenant: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
    acr: fc.option(fc.constantFrom("", "1", "phr", "urn:example:mfa"), { nil: undefined }),
    amr: fc.option(fc.subarray(["pwd", "otp", "hwk", "mca", "mfa"]), { nil: undefined }),
    authTime: fc.option(fc.integer({ min: NOW - 86_400, max: NOW }), { nil: undefined }),
    extras: fc.dictionary(
      fc.string({ minLength: 1, maxLength: 6 }).filter((name) => !registered.has(name)),
      fc.jsonValue({ maxDepth: 2 }),
      { maxKeys: 3 },
    ),
  })
  .chain((spec) =>
    fc.subarray(spec.scopes).map((requiredScopes) => {
      const payload: Record<string, unknown> = {
        ...spec.extras,
        iss: ISSUER,
        sub: spec.sub,
        aud: spec.aud,
        exp: spec.exp,
        iat: spec.iat,
        jti: spec.jti,
        client_id: spec.clientId,
        scope: spec.scopes.join(" "),
      };
      if (spec.nbf !== undefined) payload["nbf"] = spec.nbf;
      if (spec.sid !== undefined) payload["sid"] = spec.sid;
      if (spec.roles !== undefined) payload["roles"] = spec.roles;
      if (spec.tenant !== undefined) payload["tenant"] = spec.tenant;
      if (spec.acr !== undefined) payload["acr"] = spec.acr;
      if (spec.amr !== undefined) payload["amr"] = spec.amr;
      if (spec.authTime !== undefined) payload["auth_time"] = spec.authTime;
      const key = keys[spec.signer];
      return {
        signer: spec.signer,
        header: { ...spec.headerExtras, alg: key.alg, typ: spec.typ, kid: key.kid },
        payload,
        requiredScopes,
      };
    }),
  );

// ---------------------------------------------------------------------------------------------
// Corruptions

const REMOVE = Symbol("remove");
type Value = unknown;

/** Values to put in a claim or a header member: right and wrong types, times in and out of range. */
const anyValue: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(REMOVE),
  fc.integer({ min: NOW - 3_600, max: NOW + 3_600 }),
  fc.constantFrom(
    NOW - TOLERANCE - 1,
    NOW - TOLERANCE,
    NOW - TOLERANCE + 1,
    NOW,
    NOW + TOLERANCE,
    NOW + TOLERANCE + 1,
  ),
  fc.constantFrom(
    -1,
    -NOW,
    0,
    1e300,
    MAX_NUMERIC_DATE,
    MAX_NUMERIC_DATE + 1,
    Number.MAX_SAFE_INTEGER,
  ),
  fc.double({ min: NOW - 100, max: NOW + 100, noNaN: true }).filter((v) => !Number.isInteger(v)),
  fc.constantFrom(`${NOW + 600}`, "", "now"),
  fc.string({ maxLength: 8 }),
  fc.constantFrom(ISSUER, `${ISSUER}/`, ...AUDIENCES, "https://other.example"),
  fc.array(fc.constantFrom(...AUDIENCES, "https://other.example"), { maxLength: 3 }),
  fc.constantFrom(null, true, false, [], {}, [1], { aud: AUDIENCES[0] }, [null]),
);

const headerValue: fc.Arbitrary<Value> = fc.oneof(
  fc.constant(REMOVE),
  fc.constantFrom("none", "None", "HS256", "RS256", "ES384", "es256", "EDDSA", "Ed25519", ""),
  fc.constantFrom("ES256", "EdDSA"),
  fc.constantFrom(
    "JWT",
    "jwt",
    "AT+JWT",
    "at+JWT",
    "application/jwt",
    "at+jwt ",
    "application/at+jwt",
  ),
  fc.constantFrom("at+jwt", "k-es", "k-ed", "k-unknown", "k-es "),
  fc.constantFrom(null, 7, true, ["ES256"], { alg: "ES256" }, ["k-es"], ["b64"]),
);

type Corruption =
  | { readonly kind: "unchanged" }
  | {
      readonly kind: "header";
      readonly member: "alg" | "typ" | "kid" | "crit";
      readonly value: Value;
    }
  | { readonly kind: "claim"; readonly claim: string; readonly value: Value }
  | { readonly kind: "json-whitespace"; readonly indent: string }
  | { readonly kind: "tampered-payload"; readonly claim: "sub" | "scope" | "exp" | "aud" }
  | { readonly kind: "foreign-key" }
  | { readonly kind: "alg-none"; readonly signature: string }
  | { readonly kind: "hmac-with-public-key"; readonly secret: "jwk" | "pem" | "x" }
  | { readonly kind: "truncated"; readonly at: number }
  | { readonly kind: "segments"; readonly order: readonly number[] }
  | { readonly kind: "padding"; readonly segment: number; readonly pad: string }
  | { readonly kind: "standard-alphabet"; readonly segment: number }
  | { readonly kind: "whitespace"; readonly at: number; readonly char: string }
  | { readonly kind: "signature-char"; readonly at: number; readonly char: string }
  | { readonly kind: "non-canonical"; readonly segment: number; readonly bits: number };

const HEADER = ["alg", "typ", "kid", "crit"] as const;
const CLAIMS = [...REQUIRED, "nbf", "scope", "sid", "roles", "tenant", "acr", "amr", "auth_time"];
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const corruption: fc.Arbitrary<Corruption> = fc.oneof(
  fc.constant({ kind: "unchanged" as const }),
  fc.record({
    kind: fc.constant("header" as const),
    member: fc.constantFrom(...HEADER),
    value: headerValue,
  }),
  // Whole-second times around now for the time claims: with 15 claims to pick from, the
  // general case alone reaches EXPIRED and NOT_YET_VALID only a few times in 1,500 runs.
  fc.record({
    kind: fc.constant("claim" as const),
    claim: fc.constantFrom("exp", "nbf", "iat"),
    value: fc.integer({ min: NOW - 3_600, max: NOW + 3_600 }),
  }),
  // Well-typed but wrong issuer, audience and scope, which the general case reaches rarely too.
  fc.oneof(
    fc.record({
      kind: fc.constant("claim" as const),
      claim: fc.constant("iss"),
      value: fc.constantFrom(`${ISSUER}/`, "https://other.example"),
    }),
    fc.record({
      kind: fc.constant("claim" as const),
      claim: fc.constant("aud"),
      value: fc.constantFrom("https://other.example", ["https://other.example"]),
    }),
    fc.record({
      kind: fc.constant("claim" as const),
      claim: fc.constant("scope"),
      value: fc.constantFrom("", "other"),
    }),
  ),
  {
    arbitrary: fc.record({
      kind: fc.constant("claim" as const),
      claim: fc.constantFrom(...CLAIMS),
      value: anyValue,
    }),
    weight: 4,
  },
  fc.record({
    kind: fc.constant("json-whitespace" as const),
    indent: fc.constantFrom(" ", "\t", "  ", "\n"),
  }),
  fc.record({
    kind: fc.constant("tampered-payload" as const),
    claim: fc.constantFrom("sub" as const, "scope" as const, "exp" as const, "aud" as const),
  }),
  fc.constant({ kind: "foreign-key" as const }),
  fc.record({
    kind: fc.constant("alg-none" as const),
    signature: fc.constantFrom("", "AAAA", "c2ln"),
  }),
  fc.record({
    kind: fc.constant("hmac-with-public-key" as const),
    secret: fc.constantFrom("jwk" as const, "pem" as const, "x" as const),
  }),
  fc.record({
    kind: fc.constant("truncated" as const),
    at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
  }),
  fc.record({
    kind: fc.constant("segments" as const),
    order: fc
      .array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 4 })
      .filter((order) => order.join() !== "0,1,2"),
  }),
  fc.record({
    kind: fc.constant("padding" as const),
    segment: fc.integer({ min: 0, max: 2 }),
    pad: fc.constantFrom("=", "=="),
  }),
  fc.record({
    kind: fc.constant("standard-alphabet" as const),
    segment: fc.integer({ min: 0, max: 2 }),
  }),
  fc.record({
    kind: fc.constant("whitespace" as const),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    char: fc.constantFrom(" ", "\n", "\t", "\r", "\u00a0"),
  }),
  fc.record({
    kind: fc.constant("signature-char" as const),
    at: fc.nat({ max: 85 }),
    char: fc.constantFrom(...B64URL),
  }),
  fc.record({
    kind: fc.constant("non-canonical" as const),
    segment: fc.integer({ min: 0, max: 2 }),
    bits: fc.integer({ min: 1, max: 15 }),
  }),
);

function withMember(object: Record<string, unknown>, name: string, value: Value) {
  const copy = { ...object };
  if (value === REMOVE) delete copy[name];
  else copy[name] = value;
  return copy;
}

interface Built {
  readonly token: string;
  /** Reason expected, or "VALID". */
  readonly expected: RejectionReason | "VALID";
  /** The payload as the validator will see it (after JSON), for checking accepted claims. */
  readonly payload: Record<string, unknown>;
  readonly signer: Signer;
}

// ---------------------------------------------------------------------------------------------
// The reference

/** What a correctly signed token with this header and payload deserves (RFC 7515/8725/9068). */
function referenceFor(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  signedBy: Signer,
  requiredScopes: readonly string[],
): RejectionReason | "VALID" {
  if ("crit" in header) return "MALFORMED"; // no extension is understood
  if (header["alg"] !== "ES256" && header["alg"] !== "EdDSA") return "ALGORITHM_NOT_ALLOWED";
  if (header["typ"] !== "at+jwt" && header["typ"] !== "application/at+jwt") return "WRONG_TYPE";
  const named = keyIn(header["kid"]);
  if (named === undefined) return "UNKNOWN_KEY";
  if (named.alg !== header["alg"]) return "ALGORITHM_NOT_ALLOWED";
  if (named !== signedBy) return "BAD_SIGNATURE";
  for (const claim of REQUIRED) if (!(claim in payload)) return "MISSING_CLAIM";
  const wholeSecond = (value: unknown) =>
    typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_NUMERIC_DATE;
  for (const claim of ["exp", "iat", "nbf", "auth_time"]) {
    if (claim in payload && !wholeSecond(payload[claim])) return "MALFORMED";
  }
  for (const claim of ["iss", "sub", "jti", "client_id"]) {
    if (typeof payload[claim] !== "string") return "MALFORMED";
  }
  for (const claim of ["scope", "sid", "tenant", "acr"]) {
    if (claim in payload && typeof payload[claim] !== "string") return "MALFORMED";
  }
  for (const claim of ["roles", "amr"]) {
    const value = payload[claim];
    if (claim in payload && !(Array.isArray(value) && value.every((v) => typeof v === "string"))) {
      return "MALFORMED";
    }
  }
  const aud = payload["aud"];
  const audList = typeof aud === "string" ? [aud] : aud;
  if (!Array.isArray(audList) || audList.some((entry) => typeof entry !== "string")) {
    return "MALFORMED";
  }
  if (payload["iss"] !== ISSUER) return "WRONG_ISSUER";
  if (!audList.some((entry) => AUDIENCES.includes(entry as string))) return "WRONG_AUDIENCE";
  if ("nbf" in payload && (payload["nbf"] as number) - TOLERANCE > NOW) return "NOT_YET_VALID";
  if ((payload["exp"] as number) + TOLERANCE <= NOW) return "EXPIRED";
  if ((payload["iat"] as number) - TOLERANCE > NOW) return "NOT_YET_VALID";
  const granted = ((payload["scope"] as string | undefined) ?? "").split(" ");
  if (requiredScopes.some((scope) => !granted.includes(scope))) return "INSUFFICIENT_SCOPE";
  return "VALID";
}

/** What a token whose text was damaged after signing deserves. */
function referenceForText(
  kind: Corruption["kind"],
  token: string,
  original: string,
): RejectionReason | "VALID" {
  if (token === original) return "VALID";
  const segments = token.split(".");
  if (segments.length !== 3 || segments.some((s) => !/^[A-Za-z0-9_-]+$/.test(s)))
    return "MALFORMED";
  // Still three base64url segments: the header and payload are intact unless said otherwise,
  // so only the signature no longer matches (or the segments moved).
  // A second spelling of the same header or payload octets is malformed; of the same
  // signature octets, it is a signature that does not verify.
  if (kind === "non-canonical") {
    return segments[2] === original.split(".")[2] ? "MALFORMED" : "BAD_SIGNATURE";
  }
  return "BAD_SIGNATURE";
}

/** Where the original segments ended up: the reference for rearranged segments. */
function referenceForOrder(order: readonly number[]): RejectionReason {
  if (order.length !== 3) return "MALFORMED";
  if (order[0] === 2) return "MALFORMED"; // a signature is not a JSON header
  if (order[0] === 1) return "ALGORITHM_NOT_ALLOWED"; // the claims object has no alg
  return "BAD_SIGNATURE"; // the real header, over a different signing input or signature
}

async function build(spec: Base, change: Corruption): Promise<Built> {
  const signer = keys[spec.signer];
  const encodeJson = (value: unknown, indent?: string) =>
    b64url(JSON.stringify(value, null, indent));
  const json = (value: Record<string, unknown>) =>
    JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  const signed = async (
    header: Record<string, unknown>,
    payload: Record<string, unknown>,
    key = signer,
    indent?: string,
  ) => {
    const h = encodeJson(header, indent);
    const p = encodeJson(payload, indent);
    return `${h}.${p}.${await signSegments(key, h, p)}`;
  };
  const original = await signed(spec.header, spec.payload);
  const [h, p, s] = original.split(".") as [string, string, string];
  const validFor = (
    header: Record<string, unknown>,
    payload: Record<string, unknown>,
    key = signer,
  ) => referenceFor(json(header), json(payload), key, spec.requiredScopes);
  const damaged = (token: string): Built => ({
    token,
    expected: referenceForText(change.kind, token, original),
    payload: spec.payload,
    signer,
  });
  switch (change.kind) {
    case "unchanged":
      return {
        token: original,
        expected: validFor(spec.header, spec.payload),
        payload: spec.payload,
        signer,
      };
    case "header": {
      const header = withMember(spec.header, change.member, change.value);
      return {
        token: await signed(header, spec.payload),
        expected: validFor(header, spec.payload),
        payload: spec.payload,
        signer,
      };
    }
    case "claim": {
      const payload = withMember(spec.payload, change.claim, change.value);
      return {
        token: await signed(spec.header, payload),
        expected: validFor(spec.header, payload),
        payload: json(payload),
        signer,
      };
    }
    case "json-whitespace":
      return {
        token: await signed(spec.header, spec.payload, signer, change.indent),
        expected: validFor(spec.header, spec.payload),
        payload: spec.payload,
        signer,
      };
    case "tampered-payload": {
      const value = {
        sub: `${String(spec.payload["sub"])}x`,
        scope: "admin",
        exp: NOW + 86_400,
        aud: AUDIENCES[1],
      }[change.claim];
      return damaged(`${h}.${encodeJson(withMember(spec.payload, change.claim, value))}.${s}`);
    }
    case "foreign-key":
      // The attacker's key of the same type, under the kid of ours.
      return {
        token: await signed(spec.header, spec.payload, foreignTwin(signer)),
        expected: validFor(spec.header, spec.payload, foreignTwin(signer)),
        payload: spec.payload,
        signer,
      };
    case "alg-none":
      return {
        token: `${encodeJson({ ...spec.header, alg: "none" })}.${p}.${change.signature}`,
        expected: change.signature === "" ? "MALFORMED" : "ALGORITHM_NOT_ALLOWED",
        payload: spec.payload,
        signer,
      };
    case "hmac-with-public-key": {
      const header = encodeJson({ ...spec.header, alg: "HS256" });
      const secret = {
        jwk: JSON.stringify(signer.jwk),
        pem: signer.spkiPem,
        x: Buffer.from(signer.jwk.x!, "base64url"),
      }[change.secret];
      const mac = createHmac("sha256", secret).update(`${header}.${p}`).digest("base64url");
      return {
        token: `${header}.${p}.${mac}`,
        expected: "ALGORITHM_NOT_ALLOWED",
        payload: spec.payload,
        signer,
      };
    }
    case "truncated":
      return damaged(original.slice(0, Math.floor(change.at * original.length)));
    case "segments": {
      const parts = [h, p, s];
      return {
        token: change.order.map((i) => parts[i]).join("."),
        expected: referenceForOrder(change.order),
        payload: spec.payload,
        signer,
      };
    }
    case "padding": {
      const parts = [h, p, s];
      parts[change.segment] += change.pad;
      return damaged(parts.join("."));
    }
    case "standard-alphabet": {
      const parts = [h, p, s];
      parts[change.segment] = parts[change.segment]!.replaceAll("-", "+").replaceAll("_", "/");
      return damaged(parts.join("."));
    }
    case "whitespace": {
      const at = Math.floor(change.at * original.length);
      return damaged(`${original.slice(0, at)}${change.char}${original.slice(at)}`);
    }
    case "signature-char": {
      const chars = [...s];
      chars[change.at] = change.char;
      return damaged(`${h}.${p}.${chars.join("")}`);
    }
    case "non-canonical": {
      // Set unused low bits of the last character (when the segment has any): the decoded
      // octets stay the same, a lax decoder would not notice.
      const parts = [h, p, s];
      const segment = parts[change.segment]!;
      const spare = { 0: 0, 2: 0b1111, 3: 0b11 }[segment.length % 4] ?? 0;
      const last = B64URL.indexOf(segment.at(-1)!);
      parts[change.segment] = segment.slice(0, -1) + B64URL[last | (spare & change.bits)];
      return damaged(parts.join("."));
    }
  }
}

/** The claims a valid token's payload must come back as. */
function claimsFrom(payload: Record<string, unknown>, signer: Signer): ValidatedClaims {
  const scope = payload["scope"] as string | undefined;
  return {
    issuer: payload["iss"] as string,
    subject: payload["sub"] as string,
    audience: typeof payload["aud"] === "string" ? [payload["aud"]] : (payload["aud"] as string[]),
    expiresAt: payload["exp"] as number,
    issuedAt: payload["iat"] as number,
    notBefore: payload["nbf"] as number | undefined,
    tokenId: payload["jti"] as string,
    clientId: payload["client_id"] as string,
    scopes: scope === undefined ? [] : scope.split(" ").filter((entry) => entry !== ""),
    sessionId: payload["sid"] as string | undefined,
    keyId: signer.kid,
    algorithm: signer.alg,
    roles: (payload["roles"] as string[] | undefined) ?? [],
    tenant: payload["tenant"] as string | undefined,
    acr: payload["acr"] as string | undefined,
    amr: (payload["amr"] as string[] | undefined) ?? [],
    authTime: payload["auth_time"] as number | undefined,
  };
}

function describeResult(result: ValidationResult): string {
  return result.valid ? "VALID" : `${result.reason} (${result.message})`;
}

let validator: TokenValidator;
// The same validator with its signature checks on libuv's thread pool: both paths must agree.
let pooledValidator: TokenValidator;

beforeAll(async () => {
  keys.es256 = await makeSigner("k-es", "ES256");
  keys.eddsa = await makeSigner("k-ed", "EdDSA");
  keys.foreignEs256 = await makeSigner("k-es", "ES256");
  keys.foreignEddsa = await makeSigner("k-ed", "EdDSA");
  const jwks = new JwksCache({
    fetchKeys: async () => [keys.es256.jwk, keys.eddsa.jwk],
    algorithms: ["ES256", "EdDSA"],
    nowMs: () => NOW * 1000,
    minRefetchIntervalMs: Number.POSITIVE_INFINITY,
  });
  await jwks.refresh();
  const uncached = (signaturePlacement: "event-loop" | "thread-pool") =>
    new TokenValidator({
      keys: jwks,
      issuer: ISSUER,
      audiences: AUDIENCES,
      algorithms: ["ES256", "EdDSA"],
      clockToleranceSeconds: TOLERANCE,
      nowMs: () => NOW * 1000,
      verificationCacheSize: 0,
      signaturePlacement,
    });
  validator = uncached("event-loop");
  pooledValidator = uncached("thread-pool");
});

describe("TokenValidator", () => {
  it("Property 1: JWT validation rejects invalid tokens — every corruption of a valid ES256 or EdDSA token (header and claim fields changed or removed, re-encodings, foreign keys, none and HS256, truncation, moved segments, wrong types, times out of range) is rejected with the reason the reference expects, and no valid token is rejected", async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(base, corruption, async (spec, change) => {
        const built = await build(spec, change);
        const result = await validator.validate(built.token, spec.requiredScopes);
        expect(await pooledValidator.validate(built.token, spec.requiredScopes)).toEqual(result);
        const outcome = result.valid ? "VALID" : result.reason;
        seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
        expect(outcome, `${describeResult(result)} for ${JSON.stringify(built.token)}`).toBe(
          built.expected,
        );
        if (result.valid) expect(result.claims).toEqual(claimsFrom(built.payload, built.signer));
        else if (built.token.length >= 16) {
          // Messages are fixed texts: they never echo the token.
          expect(result.message).not.toContain(built.token.slice(-16));
        }
      }),
      { numRuns: 1_500 },
    );
    // The generators reach every outcome, so the property is not passing by never trying.
    expect([...seen.keys()].sort()).toEqual(
      [
        "ALGORITHM_NOT_ALLOWED",
        "BAD_SIGNATURE",
        "EXPIRED",
        "INSUFFICIENT_SCOPE",
        "MALFORMED",
        "MISSING_CLAIM",
        "NOT_YET_VALID",
        "UNKNOWN_KEY",
        "VALID",
        "WRONG_AUDIENCE",
        "WRONG_ISSUER",
        "WRONG_TYPE",
      ].sort(),
    );
  });

  it("Property 1: JWT validation rejects invalid tokens — with the verification cache on, every answer (claims, reason, message or error) equals a validator's without it, over random sequences of tokens, clock steps (also backwards), key-set changes (keys removed, a kid's key replaced, the set growing stale) and revocations", async () => {
    // Tokens whose answers change with time, keys and revocation.
    const replacement = keys.foreignEs256; // kid k-es, other key material
    const spare = await makeSigner("k-es2", "ES256");
    const signers = [keys.es256, keys.eddsa, spare, replacement];
    const pool: string[] = [];
    for (const [index, signer] of signers.entries()) {
      for (const [variant, times] of [
        { exp: NOW + 60 },
        { exp: NOW + 900, nbf: NOW + 120 },
        { exp: NOW + 3_000, iat: NOW + 200 },
      ].entries()) {
        const header = b64url(JSON.stringify({ alg: signer.alg, typ: "at+jwt", kid: signer.kid }));
        const payload = b64url(
          JSON.stringify({
            iss: ISSUER,
            sub: "user",
            aud: AUDIENCES[variant % 2],
            iat: NOW - 10,
            jti: `jti-${index}-${variant}`,
            client_id: "web",
            scope: variant === 0 ? "a" : "a b",
            ...times,
          }),
        );
        pool.push(`${header}.${payload}.${await signSegments(signer, header, payload)}`);
      }
    }
    const [h, , sig] = pool[0]!.split(".");
    pool.push(`${h}.${b64url(JSON.stringify({ iss: ISSUER }))}.${sig}`); // tampered
    const published = { es: keys.es256, ed: keys.eddsa, es2: spare };

    const op = fc.oneof(
      {
        arbitrary: fc.record({
          op: fc.constant("validate" as const),
          // A few tokens repeat often, as in production; the rest of the pool now and then.
          token: fc.oneof(fc.nat({ max: 2 }), fc.nat({ max: pool.length - 1 })),
          scopes: fc.subarray(["a", "b"]),
        }),
        weight: 6,
      },
      fc.record({ op: fc.constant("tick" as const), seconds: fc.integer({ min: -60, max: 400 }) }),
      fc.record({
        op: fc.constant("publish" as const),
        // Which keys the next fetch returns: k-es as the original or its replacement.
        es: fc.constantFrom("original", "replacement", "absent"),
        ed: fc.boolean(),
        es2: fc.boolean(),
      }),
      fc.record({
        op: fc.constant("revoke" as const),
        jti: fc.constantFrom("jti-0-0", "jti-1-1", "jti-2-2"),
      }),
      fc.constant({ op: "unrevoke-all" as const }),
    );

    type Outcome =
      | { readonly result: ValidationResult }
      | { readonly error: { readonly code?: string; readonly message?: string } };
    const outcome = async (run: () => Promise<ValidationResult>): Promise<Outcome> => {
      try {
        return { result: await run() };
      } catch (error) {
        const { code, message } = error as { code?: string; message?: string };
        return { error: { code, message } };
      }
    };

    let hits = 0;
    const outcomes = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.array(op, { minLength: 5, maxLength: 40, size: "medium" }),
        async (size, ops) => {
          let nowS = NOW;
          let current: SourceJwk[] = [published.es.jwk, published.ed.jwk, published.es2.jwk];
          const revoked = new Set<string>();
          const jwks = new JwksCache({
            fetchKeys: async () => current,
            algorithms: ["ES256", "EdDSA"],
            nowMs: () => nowS * 1000,
            minRefetchIntervalMs: Number.POSITIVE_INFINITY,
            maxStalenessMs: 900_000,
          });
          await jwks.refresh();
          const common = {
            keys: jwks,
            issuer: ISSUER,
            audiences: AUDIENCES,
            algorithms: ["ES256", "EdDSA"],
            clockToleranceSeconds: TOLERANCE,
            nowMs: () => nowS * 1000,
            isRevoked: (claims: ValidatedClaims) => revoked.has(claims.tokenId),
          };
          const cached = new TokenValidator({ ...common, verificationCacheSize: size });
          const uncached = new TokenValidator({ ...common, verificationCacheSize: 0 });
          for (const step of ops) {
            switch (step.op) {
              case "validate": {
                const token = pool[step.token]!;
                const fromCache = await outcome(() => cached.validate(token, step.scopes));
                const fresh = await outcome(() => uncached.validate(token, step.scopes));
                expect(fromCache).toEqual(fresh);
                outcomes.add(
                  "error" in fresh
                    ? String(fresh.error.code)
                    : fresh.result.valid
                      ? "VALID"
                      : fresh.result.reason,
                );
                expect(cached.cachedTokens).toBeLessThanOrEqual(size);
                break;
              }
              case "tick":
                nowS += step.seconds;
                break;
              case "publish":
                current = [
                  ...(step.es === "original" ? [published.es.jwk] : []),
                  ...(step.es === "replacement" ? [replacement.jwk] : []),
                  ...(step.ed ? [published.ed.jwk] : []),
                  ...(step.es2 ? [published.es2.jwk] : []),
                ];
                await jwks.refresh();
                break;
              case "revoke":
                revoked.add(step.jti);
                break;
              case "unrevoke-all":
                revoked.clear();
                break;
            }
          }
          hits += cached.cacheStats.hits;
        },
      ),
      { numRuns: 300 },
    );
    // The cache answered often, so the comparison above is about cache hits.
    expect(hits).toBeGreaterThan(500);
    expect([...outcomes].sort()).toEqual([
      "BAD_SIGNATURE",
      "EXPIRED",
      "INSUFFICIENT_SCOPE",
      "NOT_YET_VALID",
      "REVOKED",
      "UNAVAILABLE",
      "UNKNOWN_KEY",
      "VALID",
    ]);
  });
});
