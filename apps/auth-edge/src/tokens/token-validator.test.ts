import {
  CompactSign,
  exportJWK,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWTPayload,
} from "jose";
import { createHmac } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { JwksCache, type SourceJwk } from "../jwks/jwks-cache.ts";
import {
  MAX_CACHED_TOKEN_LENGTH,
  MAX_REQUIRED_SCOPES,
  MAX_SCOPE_LENGTH,
  MAX_TOKEN_LENGTH,
  TokenValidator,
  type RejectionReason,
  type SignaturePlacement,
} from "./token-validator.ts";

const NOW_S = 1_790_000_000;
const ISSUER = "https://auth.local";
const AUDIENCE = "https://api.auth.local";

interface TestKey {
  kid: string;
  alg: "ES256" | "EdDSA";
  privateKey: CryptoKey;
  jwk: SourceJwk;
}

let es256: TestKey;
let eddsa: TestKey;
let stranger: TestKey;
let validator: TokenValidator;

async function makeKey(kid: string, alg: "ES256" | "EdDSA"): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

function claims(overrides: Record<string, unknown> = {}): JWTPayload {
  const base: JWTPayload = {
    iss: ISSUER,
    sub: "user-1",
    aud: [AUDIENCE],
    exp: NOW_S + 600,
    iat: NOW_S - 10,
    jti: "jti-1",
    client_id: "web",
    scope: "orders:read profile",
  };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete base[name];
    else base[name] = value;
  }
  return base;
}

function sign(
  payload: JWTPayload,
  key: TestKey = es256,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, typ: "at+jwt", kid: key.kid, ...header })
    .sign(key.privateKey);
}

function segments(token: string): [string, string, string] {
  return token.split(".") as [string, string, string];
}

function encode(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/** A validator of the es256 and eddsa keys at NOW_S, with `options` on top. */
async function newValidator(
  options: Partial<ConstructorParameters<typeof TokenValidator>[0]> = {},
): Promise<TokenValidator> {
  const keys = new JwksCache({
    fetchKeys: async () => [es256.jwk, eddsa.jwk],
    algorithms: ["ES256", "EdDSA"],
    nowMs: () => NOW_S * 1000,
    minRefetchIntervalMs: 0,
  });
  await keys.refresh();
  return new TokenValidator({
    keys,
    issuer: ISSUER,
    audiences: [AUDIENCE],
    algorithms: ["ES256", "EdDSA"],
    clockToleranceSeconds: 5,
    nowMs: () => NOW_S * 1000,
    ...options,
  });
}

beforeAll(async () => {
  es256 = await makeKey("k-es", "ES256");
  eddsa = await makeKey("k-ed", "EdDSA");
  stranger = await makeKey("k-stranger", "ES256");
  validator = await newValidator();
});

async function expectRejected(token: string, reason: RejectionReason, message: string | RegExp) {
  const result = await validator.validate(token);
  expect(result).toMatchObject({ valid: false, reason });
  if (!result.valid) expect(result.message).toMatch(message);
}

describe("TokenValidator accepts", () => {
  it.each(["ES256", "EdDSA"] as const)(
    "a well-formed %s at+jwt and returns its claims",
    async (alg) => {
      const key = alg === "ES256" ? es256 : eddsa;
      const result = await validator.validate(
        await sign(
          claims({
            sid: "s-1",
            nbf: NOW_S - 10,
            roles: ["editor", "viewer"],
            tenant: "acme",
            acr: "phr",
            amr: ["pwd", "hwk"],
            auth_time: NOW_S - 60,
          }),
          key,
        ),
        ["profile"],
      );
      expect(result).toEqual({
        valid: true,
        claims: {
          issuer: ISSUER,
          subject: "user-1",
          audience: [AUDIENCE],
          expiresAt: NOW_S + 600,
          issuedAt: NOW_S - 10,
          notBefore: NOW_S - 10,
          tokenId: "jti-1",
          clientId: "web",
          scopes: ["orders:read", "profile"],
          sessionId: "s-1",
          keyId: key.kid,
          algorithm: alg,
          roles: ["editor", "viewer"],
          tenant: "acme",
          acr: "phr",
          amr: ["pwd", "hwk"],
          authTime: NOW_S - 60,
        },
      });
    },
  );

  it("a token without authorization claims, with empty roles and amr", async () => {
    const result = await validator.validate(await sign(claims(), es256));
    expect(result).toMatchObject({
      valid: true,
      claims: { roles: [], amr: [], tenant: undefined, acr: undefined, authTime: undefined },
    });
  });

  it("the application/at+jwt spelling of typ and a string aud", async () => {
    const token = await sign(claims({ aud: AUDIENCE }), es256, { typ: "application/at+jwt" });
    expect(await validator.validate(token)).toMatchObject({
      valid: true,
      claims: { audience: [AUDIENCE] },
    });
  });
});

describe("TokenValidator rejects, each with its own reason", () => {
  it.each([
    ["roles", "editor", "roles must be strings"],
    ["roles", ["editor", 7], "roles must be strings"],
    ["tenant", ["acme"], "tenant must be a string"],
    ["acr", 2, "acr must be a string"],
    ["amr", "pwd", "amr must be strings"],
    ["auth_time", "yesterday", 'the token\'s "auth_time" claim is not a valid NumericDate'],
    ["auth_time", 1.5, 'the token\'s "auth_time" claim is not a valid NumericDate'],
  ])("an authorization claim %s of the wrong type (%j)", async (claim, value, message) => {
    await expectRejected(await sign(claims({ [claim]: value }), es256), "MALFORMED", message);
  });

  it("a string that is not a compact JWS", async () => {
    await expectRejected("not-a-token", "MALFORMED", "the token is not a compact JWS");
    await expectRejected("a.b", "MALFORMED", "the token is not a compact JWS");
    await expectRejected("x".repeat(20_000), "MALFORMED", "the token is not a compact JWS");
    await expectRejected("e30.e30.e30", "ALGORITHM_NOT_ALLOWED", "not allowed");
    await expectRejected("%%%.e30.e30", "MALFORMED", "the token is not a compact JWS");
    await expectRejected("bm90anNvbg.e30.e30", "MALFORMED", "the token header cannot be decoded");
  });

  it.each([
    ["an array", "[1]"],
    ["a string", '"claims"'],
    ["null", "null"],
    ["not JSON", "{"],
    ["not UTF-8", "\u00ff"],
  ])("a correctly signed payload that is %s", async (_, text) => {
    const bytes = text === "\u00ff" ? Uint8Array.of(0xff) : new TextEncoder().encode(text);
    const token = await new CompactSign(bytes)
      .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: es256.kid })
      .sign(es256.privateKey);
    await expectRejected(token, "MALFORMED", "the token payload is not a JSON object");
  });

  it("a header naming critical extensions, even ones it signs", async () => {
    // jose refuses to sign it, so the token is put together by hand.
    const header = encode({ alg: "ES256", typ: "at+jwt", kid: es256.kid, crit: ["exp"], exp: 1 });
    const payload = encode(claims());
    const signature = await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      es256.privateKey,
      new TextEncoder().encode(`${header}.${payload}`),
    );
    await expectRejected(
      `${header}.${payload}.${Buffer.from(signature).toString("base64url")}`,
      "MALFORMED",
      "the token header names critical extensions",
    );
  });

  it("a second spelling of the same header (unused low bits set)", async () => {
    const [header, payload, signature] = segments(await sign(claims()));
    expect(header.length % 4).not.toBe(0);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(header.at(-1)!);
    const respelled = `${header.slice(0, -1)}${alphabet[last | 1]}`;
    expect(Buffer.from(respelled, "base64url")).toEqual(Buffer.from(header, "base64url"));
    await expectRejected(
      `${respelled}.${payload}.${signature}`,
      "MALFORMED",
      "the token is not a compact JWS",
    );
  });

  it("a tampered payload (bad signature)", async () => {
    const [header, , signature] = segments(await sign(claims()));
    await expectRejected(
      `${header}.${encode(claims({ sub: "admin" }))}.${signature}`,
      "BAD_SIGNATURE",
      "does not verify",
    );
  });

  it("a token signed by a key that is not in the JWKS but reuses a known kid", async () => {
    await expectRejected(
      await sign(claims(), { ...stranger, kid: es256.kid }),
      "BAD_SIGNATURE",
      "does not verify",
    );
  });

  it("alg none, whatever the rest says", async () => {
    const [, payload] = segments(await sign(claims()));
    await expectRejected(
      `${encode({ alg: "none", typ: "at+jwt", kid: es256.kid })}.${payload}.`,
      "MALFORMED",
      /compact JWS/,
    );
    await expectRejected(
      `${encode({ alg: "none", typ: "at+jwt", kid: es256.kid })}.${payload}.AAAA`,
      "ALGORITHM_NOT_ALLOWED",
      "not allowed",
    );
  });

  it("HS256 keyed with the public key (algorithm confusion)", async () => {
    const header = encode({ alg: "HS256", typ: "at+jwt", kid: es256.kid });
    const payload = encode(claims());
    const mac = createHmac("sha256", JSON.stringify(es256.jwk))
      .update(`${header}.${payload}`)
      .digest("base64url");
    await expectRejected(
      `${header}.${payload}.${mac}`,
      "ALGORITHM_NOT_ALLOWED",
      "the token algorithm is not allowed",
    );
  });

  it("an allowed alg that is not the key's alg", async () => {
    const token = await sign(claims(), eddsa, { kid: es256.kid });
    await expectRejected(token, "ALGORITHM_NOT_ALLOWED", "does not match its key");
  });

  it("a token whose kid is not in the key set", async () => {
    await expectRejected(
      await sign(claims(), stranger),
      "UNKNOWN_KEY",
      "the token's signing key is unknown",
    );
    await expectRejected(
      await sign(claims(), es256, { kid: undefined }),
      "UNKNOWN_KEY",
      "names no signing key",
    );
  });

  it("an expired token, beyond the clock tolerance", async () => {
    await expectRejected(
      await sign(claims({ exp: NOW_S - 6 })),
      "EXPIRED",
      "the token has expired",
    );
    expect(await validator.validate(await sign(claims({ exp: NOW_S - 4 })))).toMatchObject({
      valid: true,
    });
  });

  it("a token not valid yet, by nbf or by an iat in the future", async () => {
    await expectRejected(await sign(claims({ nbf: NOW_S + 60 })), "NOT_YET_VALID", "not valid yet");
    await expectRejected(
      await sign(claims({ iat: NOW_S + 60 })),
      "NOT_YET_VALID",
      "issued in the future",
    );
  });

  it("a token from another issuer", async () => {
    await expectRejected(
      await sign(claims({ iss: "https://evil.example" })),
      "WRONG_ISSUER",
      "untrusted issuer",
    );
  });

  it("a token for another audience", async () => {
    await expectRejected(
      await sign(claims({ aud: ["https://other"] })),
      "WRONG_AUDIENCE",
      "not meant for this audience",
    );
  });

  it("a token whose typ is not at+jwt (an ID token, a plain JWT, or none)", async () => {
    await expectRejected(await sign(claims(), es256, { typ: "JWT" }), "WRONG_TYPE", 'not "at+jwt"');
    await expectRejected(
      await sign(claims(), es256, { typ: undefined }),
      "WRONG_TYPE",
      'not "at+jwt"',
    );
  });

  it.each(["iss", "sub", "aud", "exp", "iat", "jti", "client_id"])(
    "a token without %s",
    async (claim) => {
      await expectRejected(
        await sign(claims({ [claim]: undefined })),
        "MISSING_CLAIM",
        `no "${claim}" claim`,
      );
    },
  );

  it("claims of the wrong type", async () => {
    await expectRejected(
      await sign(claims({ client_id: 7 })),
      "MALFORMED",
      "client_id must be a string",
    );
    await expectRejected(
      await sign(claims({ scope: ["a"] })),
      "MALFORMED",
      "scope must be a string",
    );
  });

  it("a token without a required scope", async () => {
    const result = await validator.validate(await sign(claims()), ["orders:read", "orders:write"]);
    expect(result).toEqual({
      valid: false,
      reason: "INSUFFICIENT_SCOPE",
      message: "the token lacks the scopes: orders:write",
    });
  });
});

describe("TokenValidator rejects time claims that are not NumericDates as MALFORMED, naming the claim", () => {
  it.each([
    ["exp", 1e300],
    ["exp", NOW_S + 600.5],
    ["exp", NOW_S + 600.0001],
    ["exp", -1],
    ["exp", 1.5],
    ["iat", Math.floor(Number.MAX_SAFE_INTEGER / 1000) + 1],
    ["iat", NOW_S - 0.25],
    ["iat", -NOW_S],
    ["nbf", 1e300],
    ["nbf", NOW_S - 10.5],
    ["nbf", -1],
  ])("%s = %d", async (claim, value) => {
    await expectRejected(
      await sign(claims({ [claim]: value })),
      "MALFORMED",
      `the token's "${claim}" claim is not a valid NumericDate`,
    );
  });

  it("but accepts the latest date a protobuf Timestamp holds (9999-12-31T23:59:59Z)", async () => {
    expect(await validator.validate(await sign(claims({ exp: 253_402_300_799 })))).toMatchObject({
      valid: true,
      claims: { expiresAt: 253_402_300_799 },
    });
    await expectRejected(
      await sign(claims({ exp: 253_402_300_800 })),
      "MALFORMED",
      'the token\'s "exp" claim is not a valid NumericDate',
    );
  });
});

describe("TokenValidator bounds its input", () => {
  /** A valid token padded (through a claim and a header member) to exactly `length` characters. */
  async function tokenOfLength(length: number): Promise<string> {
    for (let headerPad = 0; headerPad < 4; headerPad += 1) {
      const header = headerPad === 0 ? {} : { pad: "h".repeat(headerPad) };
      const base = await sign(claims({ pad: "" }), es256, header);
      // Each payload byte adds 4/3 of a character; start a little short and walk up.
      for (let pad = Math.floor(((length - base.length) * 3) / 4) - 4; pad >= 0; pad += 1) {
        const token = await sign(claims({ pad: "p".repeat(pad) }), es256, header);
        if (token.length === length) return token;
        if (token.length > length) break;
      }
    }
    throw new Error(`cannot build a token of ${length} characters`);
  }

  it(`accepts a token of exactly ${MAX_TOKEN_LENGTH} characters and rejects one a character longer`, async () => {
    const atCap = await tokenOfLength(MAX_TOKEN_LENGTH);
    expect(await validator.validate(atCap)).toMatchObject({ valid: true });
    const overCap = await tokenOfLength(MAX_TOKEN_LENGTH + 1);
    await expectRejected(overCap, "MALFORMED", "the token is not a compact JWS");
  });

  it(`takes at most ${MAX_REQUIRED_SCOPES} required scopes`, async () => {
    const token = await sign(claims());
    const many = Array.from({ length: MAX_REQUIRED_SCOPES + 1 }, (_, i) => `s${i}`);
    await expect(validator.validate(token, many)).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: `required_scopes holds at most ${MAX_REQUIRED_SCOPES} entries`,
    });
    expect(await validator.validate(token, many.slice(1))).toMatchObject({
      valid: false,
      reason: "INSUFFICIENT_SCOPE",
    });
  });

  it(`takes required scopes of at most ${MAX_SCOPE_LENGTH} characters`, async () => {
    const token = await sign(claims({ scope: `profile ${"s".repeat(MAX_SCOPE_LENGTH)}` }));
    await expect(
      validator.validate(token, ["profile", "s".repeat(MAX_SCOPE_LENGTH + 1)]),
    ).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: `each entry of required_scopes is at most ${MAX_SCOPE_LENGTH} characters`,
    });
    expect(
      await validator.validate(token, ["profile", "s".repeat(MAX_SCOPE_LENGTH)]),
    ).toMatchObject({ valid: true });
  });

  it("checks a full set of required scopes against the token's scopes", async () => {
    const granted = Array.from({ length: MAX_REQUIRED_SCOPES }, (_, i) => `scope-${i}`);
    const token = await sign(claims({ scope: granted.join(" ") }));
    expect(await validator.validate(token, [...granted].reverse())).toMatchObject({
      valid: true,
    });
    expect(await validator.validate(token, [...granted.slice(1), "scope-x"])).toEqual({
      valid: false,
      reason: "INSUFFICIENT_SCOPE",
      message: "the token lacks the scopes: scope-x",
    });
  });
});

describe("TokenValidator with a symmetric key in the JWKS", () => {
  const secret = Buffer.from("an-hmac-secret-published-by-mistake");

  async function validatorWith(alg: string): Promise<TokenValidator> {
    const keys = new JwksCache({
      fetchKeys: async () => [
        es256.jwk,
        { kty: "oct", k: secret.toString("base64url"), kid: "mac", alg, use: "sig" },
      ],
      algorithms: ["ES256", "HS256"],
      nowMs: () => NOW_S * 1000,
      minRefetchIntervalMs: 60_000,
    });
    await keys.refresh();
    return new TokenValidator({
      keys,
      issuer: ISSUER,
      audiences: [AUDIENCE],
      algorithms: ["ES256", "HS256"],
      clockToleranceSeconds: 5,
      nowMs: () => NOW_S * 1000,
    });
  }

  function macToken(alg: string): string {
    const header = encode({ alg, typ: "at+jwt", kid: "mac" });
    const payload = encode(claims());
    const mac = createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url");
    return `${header}.${payload}.${mac}`;
  }

  it.each([
    ["HS256", "HS256"],
    ["ES256", "ES256"],
    ["ES256", "HS256"],
  ])("never verifies with it (key labelled %s, token header alg %s)", async (keyAlg, headerAlg) => {
    const strict = await validatorWith(keyAlg);
    expect(await strict.validate(macToken(headerAlg))).toEqual({
      valid: false,
      reason: "UNKNOWN_KEY",
      message: "the token's signing key is unknown",
    });
    // The other keys of the set still work.
    expect(await strict.validate(await sign(claims()))).toMatchObject({ valid: true });
  });
});

describe("TokenValidator's verification cache", () => {
  async function setup(options: { size?: number; isRevoked?: (jti: string) => boolean } = {}) {
    const clock = { nowS: NOW_S };
    const published = { keys: [es256.jwk, eddsa.jwk] };
    const keys = new JwksCache({
      fetchKeys: async () => published.keys,
      algorithms: ["ES256", "EdDSA"],
      nowMs: () => clock.nowS * 1000,
      minRefetchIntervalMs: 60_000,
    });
    await keys.refresh();
    const revocationChecks: string[] = [];
    const cached = new TokenValidator({
      keys,
      issuer: ISSUER,
      audiences: [AUDIENCE],
      algorithms: ["ES256", "EdDSA"],
      clockToleranceSeconds: 5,
      nowMs: () => clock.nowS * 1000,
      verificationCacheSize: options.size ?? 100,
      isRevoked: (verified) => {
        revocationChecks.push(verified.tokenId);
        return options.isRevoked?.(verified.tokenId) ?? false;
      },
    });
    return { clock, published, keys, cached, revocationChecks };
  }

  it("answers a repeated token from the cache with the same claims", async () => {
    const { cached } = await setup();
    const token = await sign(claims());
    const first = await cached.validate(token, ["profile"]);
    const second = await cached.validate(token, ["profile"]);
    expect(second).toEqual(first);
    expect(second).toMatchObject({ valid: true, claims: { subject: "user-1" } });
    expect(cached.cacheStats).toEqual({ hits: 1, misses: 1 });
  });

  it("re-checks the required scopes on every hit", async () => {
    const { cached } = await setup();
    const token = await sign(claims());
    expect(await cached.validate(token)).toMatchObject({ valid: true });
    expect(await cached.validate(token, ["orders:write"])).toEqual({
      valid: false,
      reason: "INSUFFICIENT_SCOPE",
      message: "the token lacks the scopes: orders:write",
    });
    expect(cached.cacheStats.hits).toBe(1);
  });

  it("re-checks time on every hit: not valid yet, then valid, then EXPIRED and forgotten", async () => {
    const { clock, cached } = await setup();
    const token = await sign(claims({ nbf: NOW_S + 60, exp: NOW_S + 120 }));
    expect(await cached.validate(token)).toMatchObject({ reason: "NOT_YET_VALID" });
    expect(cached.cachedTokens).toBe(1);
    clock.nowS = NOW_S + 60;
    expect(await cached.validate(token)).toMatchObject({ valid: true });
    clock.nowS = NOW_S + 124; // within the 5 s tolerance
    expect(await cached.validate(token)).toMatchObject({ valid: true });
    clock.nowS = NOW_S + 125;
    expect(await cached.validate(token)).toEqual({
      valid: false,
      reason: "EXPIRED",
      message: "the token has expired",
    });
    expect(cached.cachedTokens).toBe(0);
    expect(cached.cacheStats).toEqual({ hits: 3, misses: 1 });
  });

  it("stops answering for a token whose key left the key set", async () => {
    const { published, keys, cached } = await setup();
    const token = await sign(claims());
    expect(await cached.validate(token)).toMatchObject({ valid: true });
    published.keys = [eddsa.jwk];
    await keys.refresh();
    expect(await cached.validate(token)).toEqual({
      valid: false,
      reason: "UNKNOWN_KEY",
      message: "the token's signing key is unknown",
    });
    expect(cached.cachedTokens).toBe(0);
  });

  it("stops answering for a token whose kid now names another key", async () => {
    const { published, keys, cached } = await setup();
    const token = await sign(claims());
    expect(await cached.validate(token)).toMatchObject({ valid: true });
    published.keys = [{ ...stranger.jwk, kid: es256.kid }, eddsa.jwk];
    await keys.refresh();
    expect(await cached.validate(token)).toEqual({
      valid: false,
      reason: "BAD_SIGNATURE",
      message: "the token signature does not verify",
    });
  });

  it("keeps answering across a refresh that brings the same keys", async () => {
    const { keys, cached } = await setup();
    const token = await sign(claims());
    await cached.validate(token);
    await keys.refresh();
    expect(await cached.validate(token)).toMatchObject({ valid: true });
    expect(cached.cacheStats).toEqual({ hits: 1, misses: 1 });
  });

  it("asks isRevoked on every validation, from the cache or not, and answers REVOKED", async () => {
    const revoked = new Set<string>();
    const { cached, revocationChecks } = await setup({ isRevoked: (jti) => revoked.has(jti) });
    const token = await sign(claims({ jti: "jti-r" }));
    expect(await cached.validate(token)).toMatchObject({ valid: true });
    revoked.add("jti-r");
    expect(await cached.validate(token)).toEqual({
      valid: false,
      reason: "REVOKED",
      message: "the token has been revoked",
    });
    expect(revocationChecks).toEqual(["jti-r", "jti-r"]);
    expect(cached.cacheStats).toEqual({ hits: 1, misses: 1 });
  });

  it("holds at most verificationCacheSize tokens", async () => {
    const { cached } = await setup({ size: 3 });
    for (let i = 0; i < 5; i += 1) {
      expect(await cached.validate(await sign(claims({ jti: `j-${i}` })))).toMatchObject({
        valid: true,
      });
      expect(cached.cachedTokens).toBe(Math.min(i + 1, 3));
    }
  });

  it("caches no rejected token and no token longer than MAX_CACHED_TOKEN_LENGTH", async () => {
    const { cached } = await setup();
    const [header, , signature] = segments(await sign(claims()));
    const tampered = `${header}.${encode(claims({ sub: "admin" }))}.${signature}`;
    await cached.validate(tampered);
    await cached.validate(await sign(claims({ iss: "https://evil.example" })));
    await cached.validate(await sign(claims({ exp: NOW_S - 60 })));
    expect(cached.cachedTokens).toBe(0);
    const long = await sign(claims({ pad: "p".repeat(MAX_CACHED_TOKEN_LENGTH) }));
    expect(await cached.validate(long)).toMatchObject({ valid: true });
    expect(cached.cachedTokens).toBe(0);
  });

  it("is off with a size of 0", async () => {
    const { cached } = await setup({ size: 0 });
    const token = await sign(claims());
    await cached.validate(token);
    await cached.validate(token);
    expect(cached.cachedTokens).toBe(0);
    expect(cached.cacheStats).toEqual({ hits: 0, misses: 0 });
  });
});

describe("TokenValidator's signature placement", () => {
  const placed = (signaturePlacement: SignaturePlacement) =>
    newValidator({ verificationCacheSize: 0, signaturePlacement });

  it.each(["event-loop", "thread-pool"] as const)(
    "checks signatures on the %s with the same answers",
    async (placement) => {
      const placedValidator = await placed(placement);
      const [header, payload] = segments(await sign(claims(), es256));
      const foreign = segments(await sign(claims(), stranger));
      for (const alg of ["ES256", "EdDSA"] as const) {
        const token = await sign(claims(), alg === "ES256" ? es256 : eddsa);
        expect(await placedValidator.validate(token)).toMatchObject({ valid: true });
      }
      expect(await placedValidator.validate(`${header}.${payload}.${foreign[2]}`)).toMatchObject({
        valid: false,
        reason: "BAD_SIGNATURE",
      });
      const checks = placedValidator.signatureChecks;
      expect(placement === "event-loop" ? checks.eventLoop : checks.threadPool).toBe(3);
      expect(placement === "event-loop" ? checks.threadPool : checks.eventLoop).toBe(0);
    },
  );

  it("auto: on the event loop while it is idle, on the thread pool while it is busy", async () => {
    const auto = await placed("auto");
    const token = await sign(claims(), es256);
    await new Promise((resolve) => setTimeout(resolve, 80));
    await auto.validate(token);
    expect(auto.signatureChecks).toEqual({ eventLoop: 1, threadPool: 0 });
    // Hold the loop for 120 ms, as a flood of calls would.
    const until = performance.now() + 120;
    while (performance.now() < until);
    await auto.validate(token);
    expect(auto.signatureChecks).toEqual({ eventLoop: 1, threadPool: 1 });
    await new Promise((resolve) => setTimeout(resolve, 120));
    await auto.validate(token);
    expect(auto.signatureChecks).toEqual({ eventLoop: 2, threadPool: 1 });
  });
});
