import type { Signer } from "../keys/signer.ts";

/** The claims of an RFC 9068 access token. */
export interface AccessTokenClaims {
  /** RFC 9068 §2.2: "iss" REQUIRED. */
  readonly iss: string;
  /** RFC 9068 §2.2: "sub" REQUIRED. */
  readonly sub: string;
  /** RFC 9068 §2.2: "aud" REQUIRED; always emitted as an array. */
  readonly aud: readonly string[];
  /** Seconds since the epoch. RFC 9068 §2.2: "exp" REQUIRED. */
  readonly exp: number;
  /** RFC 9068 §2.2: "iat" REQUIRED. */
  readonly iat: number;
  /** RFC 9068 §2.2: "jti" REQUIRED. */
  readonly jti: string;
  /** RFC 9068 §2.2: "client_id" REQUIRED. */
  readonly client_id: string;
  /** RFC 9068 §2.2.3: space-separated scopes; omitted when no scope was granted. */
  readonly scope?: string;
  /** Session the token belongs to, when there is one. */
  readonly sid?: string;
  /** RFC 9068 §2.2.3.1: role names granted to the subject; omitted when there are none. */
  readonly roles?: readonly string[];
  /** Tenant the subject belongs to, for tenant-isolation policies; omitted when none. */
  readonly tenant?: string;
  /** OIDC Core §2: authentication context class of the login that started the family. */
  readonly acr?: string;
  /** RFC 8176 authentication method references of that login; omitted when there are none. */
  readonly amr?: readonly string[];
  /** OIDC Core §2: when the subject authenticated, seconds since the epoch (an integer). */
  readonly auth_time?: number;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64url");
}

/**
 * Signs `claims` as a compact JWS with header `{alg, typ: "at+jwt", kid}`.
 * RFC 9068 §2.1: "Resource servers MUST verify that the 'typ' header value is 'at+jwt'".
 */
export async function signAccessToken(signer: Signer, claims: AccessTokenClaims): Promise<string> {
  const header = { alg: signer.algorithm, typ: "at+jwt", kid: signer.keyId };
  const signingInput = `${base64url(header)}.${base64url(claims)}`;
  const signature = await signer.sign(Buffer.from(signingInput, "ascii"));
  return `${signingInput}.${Buffer.from(signature).toString("base64url")}`;
}
