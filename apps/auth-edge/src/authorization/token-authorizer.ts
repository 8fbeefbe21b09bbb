import { ServiceError } from "@authplat/errors";
import type {
  RejectionReason,
  TokenValidator,
  ValidatedClaims,
} from "../tokens/token-validator.ts";
import { questionFor } from "./iam-policy-authorizer.ts";
import type { PolicyAnswer, PolicyAttributes, PolicyDecider } from "./policy-decider.ts";

/** One AuthorizeToken question, in domain terms. */
export interface TokenAuthorizationRequest {
  readonly token: string;
  readonly requiredScopes: readonly string[];
  readonly action: string;
  readonly resource: {
    readonly type: string;
    readonly id: string;
    /** As received (a protobuf Struct); checked by {@link TokenAuthorizer}. */
    readonly attributes: Readonly<Record<string, unknown>>;
  };
  /** The end user's IP address; empty when unknown. */
  readonly ipAddress: string;
  /** As received (a protobuf Struct); checked by {@link TokenAuthorizer}. */
  readonly contextAttributes: Readonly<Record<string, unknown>>;
  /** SPIFFE ID of the workload asking. */
  readonly caller: string;
}

/** The token was refused (nothing was asked), or it was valid and the decision point answered. */
export type TokenAuthorizationResult =
  | { readonly valid: false; readonly reason: RejectionReason; readonly message: string }
  | { readonly valid: true; readonly claims: ValidatedClaims; readonly decision: PolicyAnswer };

/** Dependencies of {@link TokenAuthorizer}. */
export interface TokenAuthorizerDeps {
  readonly validator: Pick<TokenValidator, "validate">;
  readonly decider: PolicyDecider;
  /** Milliseconds since the epoch: the request time policies see. */
  readonly nowMs: () => number;
}

/** The most attributes one resource or context may carry. */
export const MAX_ATTRIBUTES = 32;
/** The longest string attribute value, in characters. */
export const MAX_ATTRIBUTE_LENGTH = 1024;
// Printable ASCII without spaces: names end up in policies, logs and cache keys.
const NAME = /^[\x21-\x7E]{1,128}$/;
const RESOURCE_ID = /^[\x21-\x7E]{0,255}$/;
// Lower snake case, as iam-policy's contract asks of attribute keys.
const ATTRIBUTE_KEY = /^[a-z][a-z0-9_]{0,63}$/;
const IP_ADDRESS = /^[0-9A-Fa-f.:/%]{0,64}$/;

function invalid(message: string): ServiceError {
  return new ServiceError("INVALID_ARGUMENT", message);
}

/** `attributes` as policy attributes: bounded, lower-snake-case keys, scalar values. */
function policyAttributes(attributes: Readonly<Record<string, unknown>>, field: string) {
  const entries = Object.entries(attributes);
  if (entries.length > MAX_ATTRIBUTES) {
    throw invalid(`${field} holds at most ${MAX_ATTRIBUTES} attributes`);
  }
  const checked: Record<string, string | number | boolean> = {};
  for (const [key, value] of entries) {
    if (!ATTRIBUTE_KEY.test(key)) {
      throw invalid(`${field}: attribute names are lower snake case of 1-64 characters`);
    }
    if (typeof value === "string" && value.length <= MAX_ATTRIBUTE_LENGTH) checked[key] = value;
    else if (typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value))) {
      checked[key] = value;
    } else {
      throw invalid(
        `${field}.${key}: must be a string of at most ${MAX_ATTRIBUTE_LENGTH} characters, a number or a boolean`,
      );
    }
  }
  return checked as PolicyAttributes;
}

/**
 * AuthorizeToken's logic (requirement 1.4): checks the question's shape, validates the token
 * exactly as ValidateToken does, and only for a valid token asks the decision point, with a
 * principal built from the verified claims alone. A refused token is an answer (nothing is
 * asked); a deny is an answer.
 *
 * @throws {ServiceError} INVALID_ARGUMENT for a malformed question or one the decision point
 *   refuses; UNAVAILABLE when the token cannot be checked or the decision point cannot decide
 *   (never an allow).
 */
export class TokenAuthorizer {
  readonly #deps: TokenAuthorizerDeps;

  constructor(deps: TokenAuthorizerDeps) {
    this.#deps = deps;
  }

  /** Validates `request.token` and, when it is valid, asks for a decision. */
  async authorize(
    request: TokenAuthorizationRequest,
    signal?: AbortSignal,
  ): Promise<TokenAuthorizationResult> {
    if (request.token === "") throw invalid("token is required");
    if (!NAME.test(request.action)) throw invalid("action must be 1-128 printable characters");
    if (!NAME.test(request.resource.type)) {
      throw invalid("resource.type must be 1-128 printable characters");
    }
    if (!RESOURCE_ID.test(request.resource.id)) {
      throw invalid("resource.id must be at most 255 printable characters");
    }
    if (!IP_ADDRESS.test(request.ipAddress)) throw invalid("ip_address is not an IP address");
    const resourceAttributes = policyAttributes(request.resource.attributes, "resource.attributes");
    const contextAttributes = policyAttributes(request.contextAttributes, "context_attributes");
    const result = await this.#deps.validator.validate(request.token, request.requiredScopes);
    if (!result.valid) return result;
    const decision = await this.#deps.decider.decide(
      questionFor(
        result.claims,
        {
          action: request.action,
          resource: {
            type: request.resource.type,
            id: request.resource.id,
            attributes: resourceAttributes,
          },
          ipAddress: request.ipAddress,
          attributes: contextAttributes,
          caller: request.caller,
        },
        this.#deps.nowMs(),
      ),
      signal,
    );
    return { valid: true, claims: result.claims, decision };
  }
}
