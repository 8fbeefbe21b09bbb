import type { ValidatedClaims } from "./token-validator.ts";

/**
 * Test support: the verified claims of a plain user token (user-1 of client web, session s-1,
 * scope `a`, no authorization claims), with `overrides` on top.
 *
 * @internal
 */
export function validatedClaims(overrides: Partial<ValidatedClaims> = {}): ValidatedClaims {
  return {
    issuer: "https://auth.local",
    subject: "user-1",
    audience: ["https://api.auth.local"],
    expiresAt: 2_000_000_000,
    issuedAt: 1_000_000_000,
    notBefore: undefined,
    tokenId: "j-1",
    clientId: "web",
    scopes: ["a"],
    sessionId: "s-1",
    keyId: "k1",
    algorithm: "ES256",
    roles: [],
    tenant: undefined,
    acr: undefined,
    amr: [],
    authTime: undefined,
    ...overrides,
  };
}
