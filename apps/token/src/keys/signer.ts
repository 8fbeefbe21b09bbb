import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  randomBytes,
  sign,
  type KeyObject,
} from "node:crypto";
import { promisify } from "node:util";

/** JWS algorithms the platform signs with (RFC 8725 §3.1: an explicit allowlist). */
export const SIGNING_ALGORITHMS = ["ES256", "EdDSA"] as const;

/** A JWS signing algorithm the platform supports. */
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/** The public half of a signing key as a JWK (RFC 7517), with its `kid`, `alg` and `use`. */
export interface PublicJwk {
  readonly kty: string;
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly use: "sig";
  readonly crv: string;
  readonly x: string;
  readonly y?: string;
}

/**
 * A KMS-style signer: it holds (or fronts) a private key that never leaves it, and signs the
 * bytes it is given. A cloud KMS, an HSM or a local key all fit behind this interface.
 */
export interface Signer {
  /** Key ID, published as `kid` in the JWKS and in each token header. */
  readonly keyId: string;
  readonly algorithm: SigningAlgorithm;
  /** The public key, for the JWKS. */
  readonly publicJwk: PublicJwk;
  /**
   * Signs a JWS signing input (RFC 7515 §5.1 step 5) and returns the JWS signature bytes: for
   * ES256 the 64-byte R||S form (RFC 7518 §3.4), for EdDSA the 64-byte Ed25519 signature.
   */
  sign(signingInput: Uint8Array): Promise<Uint8Array>;
}

const generate = promisify(generateKeyPair);

function jwkOf(privateKey: KeyObject, keyId: string, algorithm: SigningAlgorithm): PublicJwk {
  const jwk = createPublicKey(privateKey).export({ format: "jwk" });
  if (typeof jwk.kty !== "string" || typeof jwk.crv !== "string" || typeof jwk.x !== "string") {
    throw new Error("unexpected public key shape");
  }
  return Object.freeze({
    kty: jwk.kty,
    kid: keyId,
    alg: algorithm,
    use: "sig",
    crv: jwk.crv,
    x: jwk.x,
    ...(typeof jwk.y === "string" ? { y: jwk.y } : {}),
  });
}

function expectedKey(algorithm: SigningAlgorithm): { type: string; curve?: string } {
  return algorithm === "ES256" ? { type: "ec", curve: "prime256v1" } : { type: "ed25519" };
}

/**
 * A signer over a private key held in this process. Use it for development, tests and
 * deployments that load a key file; production deployments put a KMS behind {@link Signer}.
 */
export function localSigner(
  privateKey: KeyObject,
  algorithm: SigningAlgorithm,
  keyId: string,
): Signer {
  const expected = expectedKey(algorithm);
  if (
    privateKey.type !== "private" ||
    privateKey.asymmetricKeyType !== expected.type ||
    (expected.curve !== undefined && privateKey.asymmetricKeyDetails?.namedCurve !== expected.curve)
  ) {
    throw new Error(`the signing key does not fit ${algorithm}`);
  }
  const publicJwk = jwkOf(privateKey, keyId, algorithm);
  return {
    keyId,
    algorithm,
    publicJwk,
    sign: async (signingInput) =>
      algorithm === "ES256"
        ? sign("sha256", signingInput, { key: privateKey, dsaEncoding: "ieee-p1363" })
        : sign(null, signingInput, privateKey),
  };
}

/** A fresh random key ID: 16 random bytes, base64url. */
export function newKeyId(): string {
  return randomBytes(16).toString("base64url");
}

/** Generates a new in-memory key for `algorithm` and wraps it in a {@link localSigner}. */
export async function generateLocalSigner(algorithm: SigningAlgorithm): Promise<Signer> {
  const { privateKey } =
    algorithm === "ES256"
      ? await generate("ec", { namedCurve: "P-256" })
      : await generate("ed25519");
  return localSigner(privateKey, algorithm, newKeyId());
}

/**
 * Loads a PKCS#8 PEM private key. The key ID is derived from the public key (RFC 7638 JWK
 * thumbprint) so that every replica loading the same file publishes the same `kid`.
 */
export function loadLocalSigner(pem: string, algorithm: SigningAlgorithm): Signer {
  const privateKey = createPrivateKey({ key: pem, format: "pem" });
  const provisional = localSigner(privateKey, algorithm, "pending");
  const jwk = provisional.publicJwk;
  // RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
  const members =
    jwk.kty === "EC"
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  const thumbprint = createHash("sha256").update(JSON.stringify(members)).digest("base64url");
  return localSigner(privateKey, algorithm, thumbprint);
}
