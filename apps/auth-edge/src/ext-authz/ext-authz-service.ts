import { ServiceError } from "@authplat/errors";
import type { TokenValidator, ValidatedClaims } from "../tokens/token-validator.ts";
import type { AuthorizationDecision, Authorizer } from "./authorizer.ts";
import { parseBearerCredentials } from "./bearer-credentials.ts";

/**
 * The keys of Envoy's per-route `context_extensions` that auth-edge reads. `action` and
 * `resource` come together (a route with one of them is misconfigured); `scopes` is a
 * space-separated list the token must grant.
 */
export const CONTEXT_KEYS = Object.freeze({
  action: "authplat.action",
  resource: "authplat.resource",
  scopes: "authplat.scopes",
});

const OWN_PREFIX = "authplat.";

/** What one ext_authz check is about, decoded from Envoy's CheckRequest. */
export interface CheckInput {
  /** The request's `authorization` header, when it has one. */
  readonly authorization: string | undefined;
  /** The route's `context_extensions`. */
  readonly contextExtensions: Readonly<Record<string, string>>;
  readonly method: string;
  readonly path: string;
  readonly host: string;
  /** SPIFFE ID of the proxy that sent the Check, from its mTLS certificate; empty if unknown. */
  readonly caller?: string;
}

/** Why a request is refused as unauthenticated: no bearer token, or one that does not hold. */
export type UnauthenticatedProblem = "missing" | "invalid" | "expired";

/** The decision of one check. */
export type CheckOutcome =
  | {
      readonly kind: "allowed";
      readonly claims: ValidatedClaims;
      /** Empty when the route asked for validation only. */
      readonly policyIds: readonly string[];
    }
  | {
      readonly kind: "unauthenticated";
      readonly problem: UnauthenticatedProblem;
      /** For logs: the validator's reason, e.g. `BAD_SIGNATURE`. */
      readonly reason: string;
    }
  | {
      readonly kind: "forbidden";
      /** Scopes that would grant the request, when the lack of them is the cause; else empty. */
      readonly scope: readonly string[];
      readonly policyIds: readonly string[];
      /** For logs only. */
      readonly reason: string;
    };

/** What a route asks for, read from its context extensions. */
interface RouteRequirements {
  readonly scopes: readonly string[];
  readonly authorization: { readonly action: string; readonly resource: string } | undefined;
}

function routeRequirements(extensions: Readonly<Record<string, string>>): RouteRequirements {
  const scopes = (extensions[CONTEXT_KEYS.scopes] ?? "").split(" ").filter((s) => s !== "");
  const action = extensions[CONTEXT_KEYS.action] ?? "";
  const resource = extensions[CONTEXT_KEYS.resource] ?? "";
  if ((action === "") !== (resource === "")) {
    // A half-configured route must not silently become validation-only.
    throw new ServiceError(
      "INVALID_ARGUMENT",
      `the route's context extensions must set both ${CONTEXT_KEYS.action} and ${CONTEXT_KEYS.resource}, or neither`,
    );
  }
  return { scopes, authorization: action === "" ? undefined : { action, resource } };
}

/** Dependencies of {@link ExtAuthzService}. */
export interface ExtAuthzServiceDeps {
  readonly validator: Pick<TokenValidator, "validate">;
  readonly authorizer: Authorizer;
}

/**
 * Decides Envoy external authorization checks: a bearer token (RFC 6750 §2.1) that
 * `TokenValidator` accepts with the route's required scopes, then, when the route names an
 * action and a resource, the authorizer's permission. Fails closed: an authorizer that cannot
 * answer makes the check fail with UNAVAILABLE, never allow.
 */
export class ExtAuthzService {
  readonly #deps: ExtAuthzServiceDeps;

  constructor(deps: ExtAuthzServiceDeps) {
    this.#deps = deps;
  }

  /**
   * The decision for one request.
   *
   * @throws {ServiceError} INVALID_ARGUMENT for a misconfigured route (half of action/resource,
   *   too many or too long required scopes, a question the authorizer refuses); UNAVAILABLE
   *   when the token validator's keys are unusable or the authorizer cannot answer.
   */
  async check(input: CheckInput, signal?: AbortSignal): Promise<CheckOutcome> {
    const route = routeRequirements(input.contextExtensions);
    const credentials = parseBearerCredentials(input.authorization);
    if (credentials.kind === "absent") {
      return { kind: "unauthenticated", problem: "missing", reason: "NO_BEARER_TOKEN" };
    }
    if (credentials.kind === "malformed") {
      return { kind: "unauthenticated", problem: "invalid", reason: "MALFORMED_CREDENTIALS" };
    }
    const result = await this.#deps.validator.validate(credentials.token, route.scopes);
    if (!result.valid) {
      if (result.reason === "INSUFFICIENT_SCOPE") {
        return { kind: "forbidden", scope: route.scopes, policyIds: [], reason: result.reason };
      }
      const problem = result.reason === "EXPIRED" ? "expired" : "invalid";
      return { kind: "unauthenticated", problem, reason: result.reason };
    }
    if (route.authorization === undefined) {
      return { kind: "allowed", claims: result.claims, policyIds: [] };
    }
    const decision = await this.#authorize(
      result.claims,
      route.authorization.action,
      route.authorization.resource,
      input,
      signal,
    );
    if (decision.allowed) {
      return { kind: "allowed", claims: result.claims, policyIds: [...decision.policyIds] };
    }
    return {
      kind: "forbidden",
      scope: [...(decision.missingScopes ?? [])],
      policyIds: [...decision.policyIds],
      reason: decision.reason,
    };
  }

  async #authorize(
    claims: ValidatedClaims,
    action: string,
    resource: string,
    input: CheckInput,
    signal: AbortSignal | undefined,
  ): Promise<AuthorizationDecision> {
    const context: Record<string, string> = {};
    for (const [key, value] of Object.entries(input.contextExtensions)) {
      if (!key.startsWith(OWN_PREFIX)) context[key] = value;
    }
    context["http.method"] = input.method;
    context["http.path"] = input.path;
    context["http.host"] = input.host;
    try {
      return await this.#deps.authorizer.authorize(
        { claims, action, resource, context, caller: input.caller ?? "" },
        signal,
      );
    } catch (error) {
      // A question the decision point refuses (an attribute its schema requires is missing from
      // the route's extensions, an unknown action) is the route's misconfiguration: say so, as
      // for a half-set route. Envoy refuses the request either way.
      if (error instanceof ServiceError && error.code === "INVALID_ARGUMENT") throw error;
      // Envoy's failure_mode_allow: false: no answer is never an allow.
      const retryAfterMs = error instanceof ServiceError ? error.retryAfterMs : undefined;
      throw new ServiceError("UNAVAILABLE", "the authorization service is unavailable", {
        cause: error,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }
  }
}
