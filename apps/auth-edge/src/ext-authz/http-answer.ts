import type { ValidatedClaims } from "../tokens/token-validator.ts";
import type { CheckOutcome } from "./ext-authz-service.ts";

/**
 * The request headers that carry the verified identity upstream. Only auth-edge sets them: on
 * every allowed request each is either overwritten with the verified value or removed, so a
 * value the client sent never reaches the upstream.
 */
export const IDENTITY_HEADERS = Object.freeze({
  subject: "x-authplat-subject",
  clientId: "x-authplat-client-id",
  scopes: "x-authplat-scopes",
  sessionId: "x-authplat-session-id",
});

/** An HTTP header. */
export interface HttpHeader {
  readonly key: string;
  readonly value: string;
}

/** How allowed and denied requests are answered. */
export interface HttpAnswerOptions {
  /** The `realm` of `WWW-Authenticate` challenges. */
  readonly realm: string;
  /** Whether the `authorization` header goes on to the upstream (else Envoy removes it). */
  readonly forwardAuthorization: boolean;
}

/** What Envoy is told to do with the HTTP request. */
export type HttpAnswer =
  | {
      readonly allowed: true;
      /** Set on the upstream request, replacing any value of the same name. */
      readonly headersToSet: readonly HttpHeader[];
      /** Removed from the upstream request after `headersToSet` are applied. */
      readonly headersToRemove: readonly string[];
    }
  | {
      readonly allowed: false;
      /** google.rpc.Code of the CheckResponse: UNAUTHENTICATED (16) or PERMISSION_DENIED (7). */
      readonly rpcCode: 16 | 7;
      readonly httpStatus: 401 | 403;
      /** Headers of the local reply Envoy sends to the client. */
      readonly headers: readonly HttpHeader[];
    };

const DESCRIPTIONS = {
  invalid: "the access token is invalid",
  expired: "the access token expired",
  insufficient_scope: "the access token lacks a required scope",
} as const;

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), so no quote or backslash.
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

// U+FFFD REPLACEMENT CHARACTER, in UTF-8, for a lone surrogate (which has no UTF-8 form).
const REPLACEMENT = "%EF%BF%BD";

function percentEncode(c: string): string {
  try {
    return encodeURIComponent(c);
  } catch {
    return REPLACEMENT;
  }
}

/**
 * Encodes a claim for an HTTP header value: characters outside printable ASCII, and `%`
 * itself, are percent-encoded (UTF-8), so typical values pass unchanged, no value can hold a
 * control character, and every value decodes with `decodeURIComponent`.
 */
export function headerValueOf(claim: string): string {
  return claim.replace(/[^\x20-\x24\x26-\x7e]/gu, percentEncode);
}

function identityHeaders(claims: ValidatedClaims): {
  set: HttpHeader[];
  remove: string[];
} {
  const set: HttpHeader[] = [];
  const remove: string[] = [];
  const put = (key: string, value: string | undefined) => {
    if (value === undefined || value === "") remove.push(key);
    else set.push({ key, value: headerValueOf(value) });
  };
  put(IDENTITY_HEADERS.subject, claims.subject);
  put(IDENTITY_HEADERS.clientId, claims.clientId);
  put(IDENTITY_HEADERS.scopes, claims.scopes.join(" "));
  put(IDENTITY_HEADERS.sessionId, claims.sessionId);
  return { set, remove };
}

function challenge(realm: string, attributes: readonly [string, string][]): HttpHeader {
  // RFC 6750 §3: the scheme, then auth-params as quoted strings; the realm is checked at
  // configuration time and the other values are fixed here, so none holds a quote.
  const params = [["realm", realm] as const, ...attributes].map(([k, v]) => `${k}="${v}"`);
  return { key: "www-authenticate", value: `Bearer ${params.join(", ")}` };
}

/** Turns a check's decision into Envoy's instructions for the HTTP request. */
export function httpAnswerFor(outcome: CheckOutcome, options: HttpAnswerOptions): HttpAnswer {
  switch (outcome.kind) {
    case "allowed": {
      const { set, remove } = identityHeaders(outcome.claims);
      // Envoy applies headers_to_remove after the headers it sets (ext_authz.cc, onComplete),
      // so only the identity headers not set here are listed: listing a set one would drop it.
      if (!options.forwardAuthorization) remove.push("authorization");
      return { allowed: true, headersToSet: set, headersToRemove: remove };
    }
    case "unauthenticated":
      return {
        allowed: false,
        rpcCode: 16,
        httpStatus: 401,
        headers: [
          // RFC 6750 §3.1: "If the request lacks any authentication information ..., the
          // resource server SHOULD NOT include an error code or other error information."
          outcome.problem === "missing"
            ? challenge(options.realm, [])
            : challenge(options.realm, [
                ["error", "invalid_token"],
                ["error_description", DESCRIPTIONS[outcome.problem]],
              ]),
        ],
      };
    case "forbidden": {
      if (outcome.scope.length === 0) {
        return { allowed: false, rpcCode: 7, httpStatus: 403, headers: [] };
      }
      const attributes: [string, string][] = [
        ["error", "insufficient_scope"],
        ["error_description", DESCRIPTIONS.insufficient_scope],
      ];
      // RFC 6750 §3: the scope attribute lists the scopes necessary to access the resource.
      if (outcome.scope.every((s) => SCOPE_TOKEN.test(s))) {
        attributes.push(["scope", outcome.scope.join(" ")]);
      }
      return {
        allowed: false,
        rpcCode: 7,
        httpStatus: 403,
        headers: [challenge(options.realm, attributes)],
      };
    }
  }
}
