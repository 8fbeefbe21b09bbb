import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from "jose";
import { createHmac } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { JwksCache, type SourceJwk } from "../jwks/jwks-cache.ts";
import { TokenValidator, type RejectionReason } from "./token-validator.ts";

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

beforeAll(async () => {
  es256 = await makeKey("k-es", "ES256");
  eddsa = await makeKey("k-ed", "EdDSA");
  stranger = await makeKey("k-stranger", "ES256");
  const keys = new JwksCache({
    fetchKeys: async () => [es256.jwk, eddsa.jwk],
    algorithms: ["ES256", "EdDSA"],
    nowMs: () => NOW_S * 1000,
    minRefetchIntervalMs: 0,
  });
  await keys.refresh();
  validator = new TokenValidator({
    keys,
    issuer: ISSUER,
    audiences: [AUDIENCE],
    algorithms: ["ES256", "EdDSA"],
    clockToleranceSeconds: 5,
    nowMs: () => NOW_S * 1000,
  });
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
        await sign(claims({ sid: "s-1", nbf: NOW_S - 10 }), key),
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
        },
      });
    },
  );

  it("the application/at+jwt spelling of typ and a string aud", async () => {
    const token = await sign(claims({ aud: AUDIENCE }), es256, { typ: "application/at+jwt" });
    expect(await validator.validate(token)).toMatchObject({
      valid: true,
      claims: { audience: [AUDIENCE] },
    });
  });
});

describe("TokenValidator rejects, each with its own reason", () => {
  it("a string that is not a compact JWS", async () => {
    await expectRejected("not-a-token", "MALFORMED", "the token is not a compact JWS");
    await expectRejected("a.b", "MALFORMED", "the token is not a compact JWS");
    await expectRejected("x".repeat(20_000), "MALFORMED", "the token is not a compact JWS");
    await expectRejected("e30.e30.e30", "ALGORITHM_NOT_ALLOWED", "not allowed");
    await expectRejected("%%%.e30.e30", "MALFORMED", "the token is not a compact JWS");
    await expectRejected("bm90anNvbg.e30.e30", "MALFORMED", "the token header cannot be decoded");
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
