/**
 * The domain of a policy decision, free of protobuf: the handlers translate messages into these
 * shapes and back.
 *
 * @module
 */

/** A JSON value, as attributes arrive (from a `google.protobuf.Struct`). */
export type JsonValue =
  null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** A JSON object of attributes. */
export type JsonObject = { readonly [key: string]: JsonValue };

/** What kind of actor a principal is. */
export type PrincipalKind = "user" | "service";

/** MFA level of the principal's session, weakest first. */
export type MfaLevel = "none" | "multi_factor" | "phishing_resistant";

/** Who asks. */
export interface PrincipalInput {
  /** The token's `sub`; required. */
  readonly id: string;
  readonly kind: PrincipalKind;
  /** Roles assigned directly; the hierarchy adds the inherited ones; unknown names grant nothing. */
  readonly roles: readonly string[];
  readonly attributes: JsonObject;
}

/** What the action is on. */
export interface ResourceInput {
  /** Lower snake case type, such as `document`; required. */
  readonly type: string;
  /** The resource's ID; empty for an action on the type as a whole. */
  readonly id: string;
  readonly attributes: JsonObject;
}

/** The environment of the request. */
export interface ContextInput {
  /** Client IP address in textual form; empty when unknown. */
  readonly ipAddress: string;
  /** Time of the request in epoch milliseconds; undefined means the service's current time. */
  readonly requestTimeMs: number | undefined;
  readonly mfaLevel: MfaLevel;
  /** 0-100; 0 when unknown. */
  readonly riskScore: number;
  /** Empty when none. */
  readonly sessionId: string;
  /** Empty when none. */
  readonly clientId: string;
  /** SPIFFE ID of the workload asking on the principal's behalf; empty when not known. */
  readonly callerSpiffeId: string;
  readonly attributes: JsonObject;
}

/** One authorization question. */
export interface AuthorizationRequest {
  readonly principal: PrincipalInput;
  /** A lower-case verb such as `read`; required. */
  readonly action: string;
  readonly resource: ResourceInput;
  readonly context: ContextInput;
}

/** What a policy set decided, before caching and audit. */
export interface PolicyDecision {
  readonly allowed: boolean;
  /** The permitting policies for an allow; the forbidding (or failing forbid) ones for a deny. */
  readonly policyIds: readonly string[];
  /** Short English explanation for logs and audit, such as `no policy permits`. */
  readonly reason: string;
}

/** A decision as the service answers it. */
export interface DecisionOutcome extends PolicyDecision {
  /** Unique ID of this decision in the audit trail; a cached answer gets its own. */
  readonly decisionId: string;
  /** Whether the decision came from the decision cache. */
  readonly cached: boolean;
  /** Version of the policy set that decided. */
  readonly policyVersion: string;
}

/** An action on a resource type that a set of roles permits. */
export interface Permission {
  readonly action: string;
  /** Lower snake case, as in requests. */
  readonly resourceType: string;
  /** True when every permitting policy has conditions on attributes or context. */
  readonly conditional: boolean;
}

/** What a user's roles permit. */
export interface UserPermissions {
  /** Effective roles: the assigned known ones and all they inherit, sorted. */
  readonly roles: readonly string[];
  /** Sorted by resource type, then action. */
  readonly permissions: readonly Permission[];
}
