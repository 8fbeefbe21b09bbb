/**
 * What an HTTP `Authorization` header says about a bearer token:
 * - `absent`: no header, or one for another scheme or none (the request lacks bearer credentials);
 * - `malformed`: the Bearer scheme with anything but exactly one token;
 * - `token`: exactly one syntactically valid token.
 */
export type BearerCredentials =
  | { readonly kind: "absent" }
  | { readonly kind: "malformed" }
  | { readonly kind: "token"; readonly token: string };

// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token;
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
// RFC 9110 §11.1: the authentication scheme is a case-insensitive token.
const SCHEME = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?:([ \t]+)(.*))?$/s;

const ABSENT: BearerCredentials = Object.freeze({ kind: "absent" });
const MALFORMED: BearerCredentials = Object.freeze({ kind: "malformed" });

/**
 * Reads the bearer token from the value of an `Authorization` header (as Envoy passes it: one
 * string, duplicate headers joined with commas). Surrounding whitespace is ignored. Never
 * throws; the token is returned, never logged here.
 */
export function parseBearerCredentials(header: string | undefined): BearerCredentials {
  if (header === undefined) return ABSENT;
  const trimmed = header.trim();
  if (trimmed === "") return ABSENT;
  const match = SCHEME.exec(trimmed);
  // Not the Bearer scheme (or no scheme at all): no bearer credentials to judge.
  if (match === null || match[1]!.toLowerCase() !== "bearer") return ABSENT;
  // RFC 6750 §2.1 separates scheme and token with spaces only (1*SP), not tabs.
  if (match[2]?.includes("\t")) return MALFORMED;
  const token = match[3]?.trim() ?? "";
  // Exactly one token: a second one (after a space or a comma) fails the b64token syntax.
  return B64TOKEN.test(token) ? { kind: "token", token } : MALFORMED;
}
