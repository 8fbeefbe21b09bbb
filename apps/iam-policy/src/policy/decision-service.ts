import type { AuditSink } from "@authplat/audit";
import { ServiceError } from "@authplat/errors";
import type {
  AuthorizationRequest,
  DecisionOutcome,
  PolicyDecision,
  UserPermissions,
} from "./authorization.ts";
import type { DecisionCache } from "./decision-cache.ts";
import type { CompiledPolicies, PreparedRequest } from "./policy-engine.ts";

/** Most items one BatchAuthorize call may carry (the contract says 100). */
export const MAX_BATCH_ITEMS = 100;

/** Who made the call, for the audit record. */
export interface CallerInfo {
  /** SPIFFE ID of the calling workload. */
  readonly callerSpiffeId: string;
  readonly correlationId: string;
}

/** One item of a batch. */
export interface BatchItem {
  /** Caller-chosen key, unique within the batch. */
  readonly id: string;
  readonly request: AuthorizationRequest;
}

/** The answer to a batch: one result per item, in order, all from one policy version. */
export interface BatchOutcome {
  readonly policyVersion: string;
  readonly results: readonly (DecisionOutcome & { readonly id: string })[];
}

/** Dependencies of a {@link DecisionService}. */
export interface DecisionServiceDeps {
  /** Where the policy set in force is read from (a `PolicyStore`). */
  readonly policies: { readonly current: CompiledPolicies };
  /** The decision cache; undefined turns caching off. */
  readonly cache: DecisionCache | undefined;
  readonly audit: AuditSink;
  readonly nowMs: () => number;
  readonly newDecisionId: () => string;
  /** Fraction (0-1) of allow decisions recorded for audit; denies are always recorded. */
  readonly allowSampleRate: number;
  /** Uniform in [0, 1), for sampling. */
  readonly random: () => number;
  /** Told about every decision (metrics). */
  readonly onDecision?: (outcome: DecisionOutcome) => void;
}

function invalid(message: string): ServiceError {
  return new ServiceError("INVALID_ARGUMENT", message);
}

/**
 * Decides authorization requests (requirements 5.1-5.5): takes the policy set in force once per
 * call, checks and translates the request, answers from the cache or the engine, and records
 * the decision for audit. Everything between taking the set and answering is synchronous, so a
 * reload can never land in the middle of a decision or a batch.
 */
export class DecisionService {
  readonly #deps: DecisionServiceDeps;

  constructor(deps: DecisionServiceDeps) {
    this.#deps = deps;
  }

  /** Decides one request; bad input throws `INVALID_ARGUMENT` saying what is wrong. */
  authorize(request: AuthorizationRequest, caller: CallerInfo): DecisionOutcome {
    const policies = this.#deps.policies.current;
    const prepared = policies.prepare(request, this.#deps.nowMs());
    return this.#decide(policies, prepared, request, caller);
  }

  /**
   * Decides 1 to {@link MAX_BATCH_ITEMS} items with unique IDs against one policy set, one result
   * per item in order. Any bad item fails the whole call before anything is decided.
   */
  batchAuthorize(items: readonly BatchItem[], caller: CallerInfo): BatchOutcome {
    if (items.length === 0 || items.length > MAX_BATCH_ITEMS) {
      throw invalid(`items: a batch holds 1 to ${MAX_BATCH_ITEMS} items, got ${items.length}`);
    }
    const ids = new Set<string>();
    items.forEach((item, index) => {
      if (item.id === "") throw invalid(`items[${index}].id is required`);
      if (ids.has(item.id))
        throw invalid(`items[${index}].id: "${item.id}" is used by an earlier item`);
      ids.add(item.id);
    });
    const policies = this.#deps.policies.current;
    const nowMs = this.#deps.nowMs();
    const prepared = items.map((item, index) => {
      try {
        return policies.prepare(item.request, nowMs);
      } catch (error) {
        if (error instanceof ServiceError) {
          throw new ServiceError(error.code, `items[${index}] (id "${item.id}"): ${error.message}`);
        }
        throw error;
      }
    });
    return {
      policyVersion: policies.version,
      results: items.map((item, index) => ({
        id: item.id,
        ...this.#decide(policies, prepared[index]!, item.request, caller),
      })),
    };
  }

  /** The effective roles of `roles` and what they permit, under the policy set in force. */
  permissionsOf(
    userId: string,
    roles: readonly string[],
  ): UserPermissions & { readonly policyVersion: string } {
    if (userId === "") throw invalid("user_id is required");
    const policies = this.#deps.policies.current;
    return { ...policies.permissionsOf(roles), policyVersion: policies.version };
  }

  #decide(
    policies: CompiledPolicies,
    prepared: PreparedRequest,
    request: AuthorizationRequest,
    caller: CallerInfo,
  ): DecisionOutcome {
    const { cache } = this.#deps;
    let decision: PolicyDecision | undefined = cache?.get(policies.version, prepared.cacheKey);
    const cached = decision !== undefined;
    if (decision === undefined) {
      decision = policies.decide(prepared);
      cache?.set(policies.version, prepared.cacheKey, decision);
    }
    const outcome: DecisionOutcome = {
      ...decision,
      decisionId: this.#deps.newDecisionId(),
      cached,
      policyVersion: policies.version,
    };
    this.#deps.onDecision?.(outcome);
    if (!outcome.allowed || this.#deps.random() < this.#deps.allowSampleRate) {
      this.#deps.audit.record({
        timestamp: new Date(this.#deps.nowMs()).toISOString(),
        type: "authz.decision",
        actor: `${request.principal.kind}:${request.principal.id}`,
        action: request.action,
        resource: `${request.resource.type}:${request.resource.id}`,
        result: outcome.allowed ? "allow" : "deny",
        correlationId: caller.correlationId,
        callerSpiffeId: caller.callerSpiffeId,
        details: {
          decisionId: outcome.decisionId,
          policyIds: outcome.policyIds,
          reason: outcome.reason,
          policyVersion: outcome.policyVersion,
          cached,
        },
      });
    }
    return outcome;
  }
}
