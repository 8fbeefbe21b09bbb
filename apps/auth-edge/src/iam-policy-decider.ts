import { MfaLevel } from "@authplat/contracts/auth/common/v1/authentication";
import {
  Decision,
  PrincipalType,
  type IamPolicyService,
} from "@authplat/contracts/auth/iam_policy/v1";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ServiceError } from "@authplat/errors";
import { RemoteCallError, type RpcClient } from "@authplat/rpc";
import type {
  MfaStrength,
  PolicyAnswer,
  PolicyDecider,
  PolicyQuestion,
} from "./authorization/policy-decider.ts";

const MFA_LEVELS: Record<MfaStrength, MfaLevel> = {
  unknown: MfaLevel.UNSPECIFIED,
  "one-factor": MfaLevel.NONE,
  "multi-factor": MfaLevel.MULTI_FACTOR,
  "phishing-resistant": MfaLevel.PHISHING_RESISTANT,
};

/**
 * The error a failed `Authorize` call becomes: iam-policy refusing the question (its
 * INVALID_ARGUMENT, with its message, which names the field) stays INVALID_ARGUMENT, since the
 * caller can fix it; anything else (unreachable, deadline, the breaker's CIRCUIT_OPEN, an
 * internal error) is UNAVAILABLE, with the retry pushback when there is one.
 */
export function decisionFailure(error: unknown): ServiceError {
  if (error instanceof RemoteCallError && error.remoteCode === "INVALID_ARGUMENT") {
    return new ServiceError(
      "INVALID_ARGUMENT",
      `iam-policy refused the question: ${error.remoteMessage}`,
      { cause: error },
    );
  }
  const retryAfterMs = error instanceof ServiceError ? error.retryAfterMs : undefined;
  return new ServiceError("UNAVAILABLE", "iam-policy cannot decide now", {
    cause: error,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

/**
 * The {@link PolicyDecider} over iam-policy's `Authorize`: domain question in, protobuf over the
 * wire, domain answer out. A failed call rejects with {@link decisionFailure}'s error, so the
 * caller fails closed. An answer that is neither ALLOW nor DENY is treated as a deny.
 */
export function iamPolicyDecider(
  client: Pick<RpcClient<typeof IamPolicyService>, "authorize">,
): PolicyDecider {
  return {
    async decide(question: PolicyQuestion, signal?: AbortSignal): Promise<PolicyAnswer> {
      const { principal, resource, context } = question;
      let response;
      try {
        response = await client.authorize(
          {
            principal: {
              subjectId: principal.subject,
              type: principal.kind === "user" ? PrincipalType.USER : PrincipalType.SERVICE,
              roles: [...principal.roles],
              attributes: { ...principal.attributes },
            },
            action: question.action,
            resource: {
              type: resource.type,
              id: resource.id,
              attributes: { ...resource.attributes },
            },
            context: {
              ipAddress: context.ipAddress,
              requestTime: timestampFromMs(context.requestTimeMs),
              mfaLevel: MFA_LEVELS[context.mfa],
              sessionId: context.sessionId,
              clientId: context.clientId,
              callerSpiffeId: context.caller,
              attributes: { ...context.attributes },
            },
          },
          signal === undefined ? undefined : { signal },
        );
      } catch (error) {
        throw decisionFailure(error);
      }
      return {
        allowed: response.decision === Decision.ALLOW,
        policyIds: [...response.policyIds],
        reason: response.reason,
        decisionId: response.decisionId,
      };
    },
  };
}
