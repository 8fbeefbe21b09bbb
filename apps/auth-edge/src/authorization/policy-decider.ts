/**
 * The edge's port to a policy decision point, in domain terms (no protobuf): one question, one
 * answer. The iam-policy adapter (`../iam-policy-decider.ts`) implements it over gRPC.
 */

/** How strongly the caller authenticated: 0 one factor, 1 multi-factor, 2 phishing-resistant. */
export type MfaStrength = "unknown" | "one-factor" | "multi-factor" | "phishing-resistant";

/** JSON-typed attributes (typed further by the policy bundle's schema). */
export type PolicyAttributes = Readonly<Record<string, string | number | boolean>>;

/** Who is asking. */
export interface PolicyPrincipal {
  readonly subject: string;
  /** `user` for a person; `service` for a client acting for itself (client credentials). */
  readonly kind: "user" | "service";
  readonly roles: readonly string[];
  readonly attributes: PolicyAttributes;
}

/** One authorization question for the decision point. */
export interface PolicyQuestion {
  readonly principal: PolicyPrincipal;
  readonly action: string;
  readonly resource: {
    readonly type: string;
    readonly id: string;
    readonly attributes: PolicyAttributes;
  };
  readonly context: {
    /** Empty when unknown. */
    readonly ipAddress: string;
    readonly requestTimeMs: number;
    readonly mfa: MfaStrength;
    readonly sessionId: string;
    readonly clientId: string;
    /** SPIFFE ID of the workload that asked the edge (from its mTLS certificate). */
    readonly caller: string;
    readonly attributes: PolicyAttributes;
  };
}

/** The decision point's answer. A deny is an answer, not an error. */
export interface PolicyAnswer {
  readonly allowed: boolean;
  readonly policyIds: readonly string[];
  readonly reason: string;
  readonly decisionId: string;
}

/**
 * Decides {@link PolicyQuestion}s. Rejects when it cannot decide; callers must never read that
 * as an allow. The rejection is a `ServiceError`: INVALID_ARGUMENT when the decision point
 * refuses the question itself (an unknown action or resource type, an attribute its schema does
 * not declare), UNAVAILABLE otherwise (unreachable, circuit open, deadline, an internal error).
 */
export interface PolicyDecider {
  decide(question: PolicyQuestion, signal?: AbortSignal): Promise<PolicyAnswer>;
}
