import { createHash } from "node:crypto";
import { ServiceError } from "@authplat/errors";
import type { KeyRing } from "../keys/key-ring.ts";
import type { SigningAlgorithm } from "../keys/signer.ts";

/** What an OpenID Connect ID token says (OIDC Core 1.0 §2). */
export interface IdTokenRequest {
  readonly subject: string;
  /** The relying party: `aud` and `azp`. */
  readonly clientId: string;
  /** From the authentication request, copied verbatim; empty omits `nonce`. */
  readonly nonce: string;
  /** When the user authenticated, ms since the epoch. */
  readonly authTimeMs: number;
  /** RFC 8176 `amr` values; empty omits `amr`. */
  readonly amr: readonly string[];
  /** Authentication context class; empty omits `acr`. */
  readonly acr: string;
  /** Session; empty omits `sid`. */
  readonly sessionId: string;
  /** The access token issued alongside, for `at_hash`; empty omits it. */
  readonly accessToken: string;
  /** The authorization code issued alongside, for `c_hash`; empty omits it. */
  readonly code: string;
}

/** The claims of an ID token as signed. */
export interface IdTokenClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string;
  readonly exp: number;
  readonly iat: number;
  readonly auth_time: number;
  readonly azp: string;
  readonly nonce?: string;
  readonly acr?: string;
  readonly amr?: readonly string[];
  readonly sid?: string;
  readonly at_hash?: string;
  readonly c_hash?: string;
}

/** Dependencies of {@link IdTokenIssuer}. */
export interface IdTokenIssuerDeps {
  readonly keys: KeyRing;
  readonly nowMs: () => number;
  readonly issuer: string;
  readonly ttlSeconds: number;
}

const IDENTIFIER = /^[\x21-\x7E]{1,255}$/;
// Nonces and acr are opaque strings echoed into a JSON claim: printable ASCII, bounded.
const PRINTABLE = /^[\x20-\x7E]{1,512}$/;
const AMR = /^[a-z0-9_-]{1,32}$/;

function invalid(message: string): ServiceError {
  return new ServiceError("INVALID_ARGUMENT", message);
}

/**
 * OIDC Core §3.1.3.6: "hash the octets of the ASCII representation of the access_token with
 * the hash algorithm used in the alg Header Parameter ... take the left-most half ... base64url
 * encode". EdDSA with Ed25519 hashes with SHA-512, as OpenID Foundation implementations do.
 */
export function leftHalfHash(value: string, algorithm: SigningAlgorithm): string {
  const digest = createHash(algorithm === "ES256" ? "sha256" : "sha512")
    .update(value, "ascii")
    .digest();
  return digest.subarray(0, digest.length / 2).toString("base64url");
}

function encode(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

/** Signs OpenID Connect ID tokens with the active key (requirement 4.6). */
export class IdTokenIssuer {
  readonly #deps: IdTokenIssuerDeps;

  constructor(deps: IdTokenIssuerDeps) {
    this.#deps = deps;
  }

  /** Signs an ID token; INVALID_ARGUMENT for a bad request. */
  async issue(request: IdTokenRequest): Promise<{ idToken: string; expiresAtMs: number }> {
    if (!IDENTIFIER.test(request.subject))
      throw invalid("subject must be 1-255 printable characters");
    if (!IDENTIFIER.test(request.clientId)) {
      throw invalid("client_id must be 1-255 printable characters");
    }
    if (request.nonce !== "" && !PRINTABLE.test(request.nonce)) {
      throw invalid("nonce must be 1-512 printable characters");
    }
    if (request.acr !== "" && !PRINTABLE.test(request.acr)) {
      throw invalid("acr must be 1-512 printable characters");
    }
    if (request.sessionId !== "" && !IDENTIFIER.test(request.sessionId)) {
      throw invalid("session_id must be 1-255 printable characters");
    }
    if (request.amr.length > 8 || !request.amr.every((value) => AMR.test(value))) {
      throw invalid("amr must list at most 8 RFC 8176 values");
    }
    const nowMs = this.#deps.nowMs();
    if (!Number.isFinite(request.authTimeMs) || request.authTimeMs <= 0) {
      throw invalid("auth_time is required");
    }
    if (request.authTimeMs > nowMs + 60_000) throw invalid("auth_time must not be in the future");
    const signer = this.#deps.keys.active;
    const iat = Math.floor(nowMs / 1000);
    const claims: IdTokenClaims = {
      iss: this.#deps.issuer,
      sub: request.subject,
      aud: request.clientId,
      exp: iat + this.#deps.ttlSeconds,
      iat,
      auth_time: Math.floor(request.authTimeMs / 1000),
      // OIDC Core §2: azp "MAY be included even when the authorized party is the same as the
      // sole audience"; the platform always includes it.
      azp: request.clientId,
      ...(request.nonce !== "" ? { nonce: request.nonce } : {}),
      ...(request.acr !== "" ? { acr: request.acr } : {}),
      ...(request.amr.length > 0 ? { amr: [...new Set(request.amr)] } : {}),
      ...(request.sessionId !== "" ? { sid: request.sessionId } : {}),
      ...(request.accessToken !== ""
        ? { at_hash: leftHalfHash(request.accessToken, signer.algorithm) }
        : {}),
      ...(request.code !== "" ? { c_hash: leftHalfHash(request.code, signer.algorithm) } : {}),
    };
    const input = `${encode({ alg: signer.algorithm, typ: "JWT", kid: signer.keyId })}.${encode(claims)}`;
    const signature = await signer.sign(Buffer.from(input, "ascii"));
    return {
      idToken: `${input}.${Buffer.from(signature).toString("base64url")}`,
      expiresAtMs: claims.exp * 1000,
    };
  }
}
