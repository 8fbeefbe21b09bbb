import { createHash } from "node:crypto";
import fc from "fast-check";
import { decodeProtectedHeader, importJWK, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { KeyRing } from "../keys/key-ring.ts";
import { generateLocalSigner, SIGNING_ALGORITHMS } from "../keys/signer.ts";
import { IdTokenIssuer } from "./id-token.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const ISSUER = "https://auth.local";
const identifier = fc.stringMatching(/^[\x21-\x7E]{1,40}$/);
const printable = fc.stringMatching(/^[\x20-\x7E]{1,60}$/);
const amrValue = fc.constantFrom("pwd", "otp", "hwk", "swk", "mca", "mfa");

// OIDC Core §3.1.3.6 / §3.3.2.11, computed here independently of the issuer.
function expectedHalfHash(value: string, algorithm: string): string {
  const digest = createHash(algorithm === "ES256" ? "sha256" : "sha512")
    .update(value)
    .digest();
  return digest.subarray(0, digest.length / 2).toString("base64url");
}

describe("ID tokens", () => {
  it.each(SIGNING_ALGORITHMS)(
    "Property 15: OIDC token claims completeness — every %s ID token verifies against the published key and carries iss, sub, aud, exp, iat, auth_time, azp and exactly the optional claims that were given",
    async (algorithm) => {
      const signer = await generateLocalSigner(algorithm);
      const keys = new KeyRing(signer);
      const ids = new IdTokenIssuer({ keys, nowMs: () => NOW, issuer: ISSUER, ttlSeconds: 300 });
      const key = await importJWK({ ...keys.published[0]!.jwk }, algorithm);
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            subject: identifier,
            clientId: identifier,
            nonce: fc.option(printable, { nil: "" }),
            authTimeMs: fc.integer({ min: NOW - 86_400_000, max: NOW }),
            amr: fc.uniqueArray(amrValue, { maxLength: 3 }),
            acr: fc.option(printable, { nil: "" }),
            sessionId: fc.option(identifier, { nil: "" }),
            accessToken: fc.option(fc.stringMatching(/^[A-Za-z0-9._-]{10,200}$/), { nil: "" }),
            code: fc.option(fc.stringMatching(/^[A-Za-z0-9_-]{10,60}$/), { nil: "" }),
          }),
          async (request) => {
            const { idToken, expiresAtMs } = await ids.issue(request);
            expect(decodeProtectedHeader(idToken)).toEqual({
              alg: algorithm,
              typ: "JWT",
              kid: signer.keyId,
            });
            const { payload } = await jwtVerify(idToken, key, {
              issuer: ISSUER,
              audience: request.clientId,
              currentDate: new Date(NOW),
              algorithms: [algorithm],
            });
            expect(payload).toEqual({
              iss: ISSUER,
              sub: request.subject,
              aud: request.clientId,
              iat: NOW / 1000,
              exp: NOW / 1000 + 300,
              auth_time: Math.floor(request.authTimeMs / 1000),
              azp: request.clientId,
              ...(request.nonce !== "" ? { nonce: request.nonce } : {}),
              ...(request.acr !== "" ? { acr: request.acr } : {}),
              ...(request.amr.length > 0 ? { amr: request.amr } : {}),
              ...(request.sessionId !== "" ? { sid: request.sessionId } : {}),
              ...(request.accessToken !== ""
                ? { at_hash: expectedHalfHash(request.accessToken, algorithm) }
                : {}),
              ...(request.code !== "" ? { c_hash: expectedHalfHash(request.code, algorithm) } : {}),
            });
            expect(expiresAtMs).toBe(NOW + 300_000);
          },
        ),
        { numRuns: 100 },
      );
    },
  );
});
