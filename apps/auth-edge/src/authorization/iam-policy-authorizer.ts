import type {
  AuthorizationDecision,
  AuthorizationRequest,
  Authorizer,
} from "../ext-authz/authorizer.ts";
import type { ValidatedClaims } from "../tokens/token-validator.ts";
import type {
  MfaStrength,
  PolicyAttributes,
  PolicyDecider,
  PolicyPrincipal,
  PolicyQuestion,
} from "./policy-decider.ts";

/** A decision with the ID the decision point gave it, for correlating with its audit trail. */
export interface IamPolicyDecision extends AuthorizationDecision {
  readonly decisionId: string;
}

/** Dependencies of {@link IamPolicyAuthorizer}. */
export interface IamPolicyAuthorizerDeps {
  readonly decider: PolicyDecider;
  /** Milliseconds since the epoch: the request time policies see. */
  readonly nowMs: () => number;
}

// RFC 8176 §2 methods that are an authentication factor of their own; two different ones make
// multi-factor. `mca` (multiple-channel) is the platform's push approval.
const FACTOR_METHODS = new Set([
  "pwd",
  "pin",
  "otp",
  "sms",
  "tel",
  "swk",
  "hwk",
  "mca",
  "fpt",
  "face",
  "iris",
  "retina",
  "vbm",
  "kba",
  "sc",
]);
// OpenID EAP ACR values for phishing-resistant authentication.
const PHISHING_RESISTANT_ACR = new Set(["phr", "phrh"]);

/**
 * The MFA strength the claims prove: phishing-resistant for `amr` `hwk` or `acr` `phr`/`phrh`;
 * multi-factor for `amr` `mfa` or two different factor methods; one factor when `acr` or `amr`
 * is present otherwise; unknown without either (iam-policy treats unknown as one factor).
 */
export function mfaStrengthOf(claims: {
  readonly acr?: string | undefined;
  readonly amr?: readonly string[];
}): MfaStrength {
  const amr = claims.amr ?? [];
  const acr = claims.acr ?? "";
  if (amr.includes("hwk") || PHISHING_RESISTANT_ACR.has(acr)) return "phishing-resistant";
  if (amr.includes("mfa") || new Set(amr.filter((m) => FACTOR_METHODS.has(m))).size >= 2) {
    return "multi-factor";
  }
  return amr.length > 0 || acr !== "" ? "one-factor" : "unknown";
}

/**
 * The principal verified claims describe: the subject, a `service` when it is the client itself
 * (client credentials) and a `user` otherwise, the token's `roles`, and its `tenant` as the
 * `tenant` attribute when it has one. Nothing comes from the request: only what the issuer signed.
 */
export function principalOf(claims: ValidatedClaims): PolicyPrincipal {
  return {
    subject: claims.subject,
    kind: claims.subject === claims.clientId ? "service" : "user",
    roles: claims.roles,
    attributes: claims.tenant === undefined ? {} : { tenant: claims.tenant },
  };
}

/** What a question needs besides the claims. */
export interface QuestionParts {
  readonly action: string;
  readonly resource: {
    readonly type: string;
    readonly id: string;
    readonly attributes: PolicyAttributes;
  };
  /** The end user's IP address; empty when unknown. */
  readonly ipAddress: string;
  readonly attributes: PolicyAttributes;
  /** SPIFFE ID of the workload that asked the edge. */
  readonly caller: string;
}

/**
 * The policy question for verified `claims`: the principal from {@link principalOf}, the MFA
 * level from `acr`/`amr`, the session and client from `sid` and `client_id`, and the time now.
 */
export function questionFor(
  claims: ValidatedClaims,
  parts: QuestionParts,
  nowMs: number,
): PolicyQuestion {
  return {
    principal: principalOf(claims),
    action: parts.action,
    resource: parts.resource,
    context: {
      ipAddress: parts.ipAddress,
      requestTimeMs: nowMs,
      mfa: mfaStrengthOf(claims),
      sessionId: claims.sessionId ?? "",
      clientId: claims.clientId,
      caller: parts.caller,
      attributes: parts.attributes,
    },
  };
}

/**
 * Builds the policy question for an ext_authz `request` with {@link questionFor}; the resource
 * and context come from the route's context extensions:
 * - `resource.id` is the resource's ID, `resource.<name>` one of its attributes;
 * - `context.ip` is the caller's IP address, `context.<name>` a free-form context attribute;
 * - anything else (`http.method`, `http.path`, `http.host`, ...) is not sent, because a policy
 *   schema rejects undeclared attributes.
 * Values are strings.
 */
export function policyQuestionOf(request: AuthorizationRequest, nowMs: number): PolicyQuestion {
  const resourceAttributes: Record<string, string> = {};
  const contextAttributes: Record<string, string> = {};
  let resourceId = "";
  let ipAddress = "";
  for (const [key, value] of Object.entries(request.context)) {
    if (key === "resource.id") resourceId = value;
    else if (key === "context.ip") ipAddress = value;
    else if (key.startsWith("resource.")) resourceAttributes[key.slice(9)] = value;
    else if (key.startsWith("context.")) contextAttributes[key.slice(8)] = value;
  }
  return questionFor(
    request.claims,
    {
      action: request.action,
      resource: { type: request.resource, id: resourceId, attributes: resourceAttributes },
      ipAddress,
      attributes: contextAttributes,
      caller: request.caller,
    },
    nowMs,
  );
}

/**
 * The ext_authz {@link Authorizer} backed by a policy decision point (iam-policy in
 * production): builds the question with {@link policyQuestionOf}, asks, and returns the
 * decision with the deciding policy IDs and the decision ID. A deny resolves; a decider that
 * cannot answer rejects with its error, which the check turns into UNAVAILABLE (never an allow).
 */
export class IamPolicyAuthorizer implements Authorizer {
  readonly #deps: IamPolicyAuthorizerDeps;

  constructor(deps: IamPolicyAuthorizerDeps) {
    this.#deps = deps;
  }

  /** Decides `request`; rejects when the decision point cannot answer. */
  async authorize(request: AuthorizationRequest, signal?: AbortSignal): Promise<IamPolicyDecision> {
    const answer = await this.#deps.decider.decide(
      policyQuestionOf(request, this.#deps.nowMs()),
      signal,
    );
    return {
      allowed: answer.allowed,
      policyIds: answer.policyIds,
      reason: answer.reason,
      decisionId: answer.decisionId,
    };
  }
}
