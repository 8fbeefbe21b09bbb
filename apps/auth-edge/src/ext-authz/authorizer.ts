import type { ValidatedClaims } from "../tokens/token-validator.ts";

/** One authorization question: may the holder of these verified claims do `action` on `resource`? */
export interface AuthorizationRequest {
  /** The verified claims of the caller's access token. */
  readonly claims: ValidatedClaims;
  /** The action the route names, e.g. `read`. */
  readonly action: string;
  /** The resource the route names, e.g. `document`. */
  readonly resource: string;
  /**
   * Attributes of the HTTP request (`http.method`, `http.path`, `http.host`) and the route's
   * context extensions other than `authplat.*`, for policy conditions.
   */
  readonly context: Readonly<Record<string, string>>;
  /** SPIFFE ID of the workload that asked the edge; empty when unknown. */
  readonly caller: string;
}

/** The answer to an {@link AuthorizationRequest}. */
export interface AuthorizationDecision {
  readonly allowed: boolean;
  /** The policies that decided, for logs and audit. */
  readonly policyIds: readonly string[];
  /** A short explanation for logs only; never sent to the HTTP client. */
  readonly reason: string;
  /**
   * On a denial caused by missing scopes: the scopes that would grant it. A non-empty list makes
   * the HTTP answer carry RFC 6750's `error="insufficient_scope"`.
   */
  readonly missingScopes?: readonly string[];
}

/**
 * Decides authorization questions (iam-policy's Authorize behind a client, in production).
 * Resolves with a decision; rejects when it cannot decide (service down, circuit open,
 * deadline), which the ext_authz check turns into UNAVAILABLE: it never allows on an error.
 */
export interface Authorizer {
  authorize(request: AuthorizationRequest, signal?: AbortSignal): Promise<AuthorizationDecision>;
}
