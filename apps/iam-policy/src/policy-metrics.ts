import type { MetricsRegistry } from "@authplat/observability";
import type { DecisionOutcome } from "./policy/authorization.ts";
import type { ReloadOutcome } from "./policy/policy-store.ts";

/** iam-policy's own metrics, next to the RPC metrics of the platform. */
export interface PolicyMetrics {
  /** Counts a reload: `result` is `swapped`, `unchanged` or `refused`. */
  recordReload(outcome: ReloadOutcome): void;
  /** Counts a decision by result and whether the cache answered. */
  recordDecision(outcome: DecisionOutcome): void;
}

/**
 * Registers `iam_policy_reloads_total{result}`, `iam_policy_decisions_total{decision,cached}`
 * and `iam_policy_version_info{version}` (1 for the version in force) on `metrics`.
 */
export function createPolicyMetrics(
  metrics: MetricsRegistry,
  initialVersion: string,
): PolicyMetrics {
  const reloads = metrics.counter({
    name: "iam_policy_reloads_total",
    help: "Policy bundle reloads by result: swapped (new version in force), unchanged, refused (invalid bundle, old version kept).",
    labelNames: ["result"],
  });
  const decisions = metrics.counter({
    name: "iam_policy_decisions_total",
    help: "Authorization decisions by decision and whether the decision cache answered.",
    labelNames: ["decision", "cached"],
  });
  const version = metrics.gauge({
    name: "iam_policy_version_info",
    help: "1 for the policy version in force.",
    labelNames: ["version"],
  });
  version.set({ version: initialVersion }, 1);
  return {
    recordReload(outcome) {
      if (!outcome.ok) {
        reloads.inc({ result: "refused" });
      } else if (!outcome.changed) {
        reloads.inc({ result: "unchanged" });
      } else {
        reloads.inc({ result: "swapped" });
        version.remove({ version: outcome.previousVersion });
        version.set({ version: outcome.version }, 1);
      }
    },
    recordDecision(outcome) {
      decisions.inc({
        decision: outcome.allowed ? "allow" : "deny",
        cached: String(outcome.cached),
      });
    },
  };
}
