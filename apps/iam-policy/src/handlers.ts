import { timestampMs } from "@bufbuild/protobuf/wkt";
import { MfaLevel as ProtoMfaLevel } from "@authplat/contracts/auth/common/v1/authentication";
import {
  Decision,
  IamPolicyService,
  PrincipalType,
  type AuthorizationContext,
  type Principal,
  type Resource,
} from "@authplat/contracts/auth/iam_policy/v1";
import { ServiceError } from "@authplat/errors";
import { defineService, type ServiceRegistration } from "@authplat/rpc";
import type {
  AuthorizationRequest,
  ContextInput,
  DecisionOutcome,
  MfaLevel,
  PrincipalKind,
} from "./policy/authorization.ts";
import type { DecisionService } from "./policy/decision-service.ts";
import { BundleError } from "./policy/policy-engine.ts";
import type { ReloadOutcome } from "./policy/policy-store.ts";

const PRINCIPAL_KINDS: Readonly<Record<number, PrincipalKind>> = {
  [PrincipalType.UNSPECIFIED]: "user",
  [PrincipalType.USER]: "user",
  [PrincipalType.SERVICE]: "service",
};

const MFA_LEVELS: Readonly<Record<number, MfaLevel>> = {
  [ProtoMfaLevel.UNSPECIFIED]: "none",
  [ProtoMfaLevel.NONE]: "none",
  [ProtoMfaLevel.MULTI_FACTOR]: "multi_factor",
  [ProtoMfaLevel.PHISHING_RESISTANT]: "phishing_resistant",
};

function invalid(message: string): ServiceError {
  return new ServiceError("INVALID_ARGUMENT", message);
}

/** Translates the protobuf fields of one request into the domain's request. @internal */
export function toAuthorizationRequest(
  principal: Principal | undefined,
  action: string,
  resource: Resource | undefined,
  context: AuthorizationContext | undefined,
): AuthorizationRequest {
  if (principal === undefined) throw invalid("principal is required");
  if (resource === undefined) throw invalid("resource is required");
  const kind = PRINCIPAL_KINDS[principal.type];
  if (kind === undefined) throw invalid(`principal.type: unknown value ${principal.type}`);
  return {
    principal: {
      id: principal.subjectId,
      kind,
      roles: principal.roles,
      attributes: principal.attributes ?? {},
    },
    action,
    resource: { type: resource.type, id: resource.id, attributes: resource.attributes ?? {} },
    context: toContext(context),
  };
}

function toContext(context: AuthorizationContext | undefined): ContextInput {
  const mfaLevel = MFA_LEVELS[context?.mfaLevel ?? ProtoMfaLevel.UNSPECIFIED];
  if (mfaLevel === undefined)
    throw invalid(`context.mfa_level: unknown value ${context?.mfaLevel}`);
  return {
    ipAddress: context?.ipAddress ?? "",
    requestTimeMs: context?.requestTime ? timestampMs(context.requestTime) : undefined,
    mfaLevel,
    riskScore: context?.riskScore ?? 0,
    sessionId: context?.sessionId ?? "",
    clientId: context?.clientId ?? "",
    callerSpiffeId: context?.callerSpiffeId ?? "",
    attributes: context?.attributes ?? {},
  };
}

function decisionFields(outcome: DecisionOutcome) {
  return {
    decision: outcome.allowed ? Decision.ALLOW : Decision.DENY,
    policyIds: [...outcome.policyIds],
    reason: outcome.reason,
    decisionId: outcome.decisionId,
    cached: outcome.cached,
  };
}

/**
 * The IamPolicyService registration: protobuf in, one domain call, protobuf out. Who may call
 * each RPC is `apps/iam-policy/src/access-rules.json`, passed to the server as `accessRules`.
 */
export function iamPolicyRegistration(deps: {
  readonly decisions: DecisionService;
  /** Reloads the policy bundle now (`PolicyStore.reload`). */
  readonly reload: () => Promise<ReloadOutcome>;
}): ServiceRegistration {
  return defineService(IamPolicyService, {
    async authorize(request, context) {
      const outcome = deps.decisions.authorize(
        toAuthorizationRequest(
          request.principal,
          request.action,
          request.resource,
          request.context,
        ),
        { callerSpiffeId: context.caller.toString(), correlationId: context.correlationId },
      );
      return { ...decisionFields(outcome), policyVersion: outcome.policyVersion };
    },
    async batchAuthorize(request, context) {
      const items = request.items.map((item, index) => {
        try {
          return {
            id: item.id,
            request: toAuthorizationRequest(
              item.principal,
              item.action,
              item.resource,
              item.context,
            ),
          };
        } catch (error) {
          if (error instanceof ServiceError) {
            throw new ServiceError(
              error.code,
              `items[${index}] (id "${item.id}"): ${error.message}`,
            );
          }
          throw error;
        }
      });
      const batch = deps.decisions.batchAuthorize(items, {
        callerSpiffeId: context.caller.toString(),
        correlationId: context.correlationId,
      });
      return {
        policyVersion: batch.policyVersion,
        results: batch.results.map((result) => ({ id: result.id, ...decisionFields(result) })),
      };
    },
    async getUserPermissions(request) {
      const answer = deps.decisions.permissionsOf(request.userId, request.roles);
      return {
        roles: [...answer.roles],
        permissions: answer.permissions.map((p) => ({ ...p })),
        policyVersion: answer.policyVersion,
      };
    },
    async reloadPolicies() {
      const outcome = await deps.reload();
      if (!outcome.ok) {
        if (outcome.error instanceof BundleError) {
          throw new ServiceError(
            "FAILED_PRECONDITION",
            `${outcome.error.message}; still serving ${outcome.version}`,
          );
        }
        throw outcome.error;
      }
      return {
        policyVersion: outcome.version,
        previousPolicyVersion: outcome.previousVersion,
        changed: outcome.changed,
      };
    },
  });
}
