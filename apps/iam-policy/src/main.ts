import { randomUUID } from "node:crypto";
import { createLogAuditSink } from "@authplat/audit";
import { loadConfigOrExit } from "@authplat/config";
import { IamPolicyService } from "@authplat/contracts/auth/iam_policy/v1";
import { createLogger } from "@authplat/observability";
import { loadServiceAccessRules, runService, startServiceTelemetry } from "@authplat/rpc";
import accessRulesFile from "./access-rules.json" with { type: "json" };
import { loadIamPolicyConfig } from "./config.ts";
import { iamPolicyRegistration } from "./handlers.ts";
import { CedarEngine } from "./policy/cedar-engine.ts";
import { DecisionCache } from "./policy/decision-cache.ts";
import { DecisionService } from "./policy/decision-service.ts";
import { readPolicyBundle } from "./policy/policy-bundle.ts";
import { BundleError } from "./policy/policy-engine.ts";
import { PolicyStore, type ReloadOutcome } from "./policy/policy-store.ts";
import { createPolicyMetrics, type PolicyMetrics } from "./policy-metrics.ts";

const config = loadConfigOrExit("iam-policy", () => loadIamPolicyConfig(process.env));
const logger = createLogger({ service: "iam-policy", level: config.LOG_LEVEL });
// Set once the first bundle is loaded (the metrics carry its version).
let metrics: PolicyMetrics | undefined;

function logReload(outcome: ReloadOutcome): void {
  metrics?.recordReload(outcome);
  if (!outcome.ok) {
    const problems = outcome.error instanceof BundleError ? outcome.error.problems : undefined;
    logger.error(
      { err: problems ? undefined : outcome.error, problems, policyVersion: outcome.version },
      "policy bundle refused; the version in force keeps deciding",
    );
  } else if (outcome.changed) {
    logger.info(
      { policyVersion: outcome.version, previousPolicyVersion: outcome.previousVersion },
      "policy bundle reloaded",
    );
  }
}

try {
  const telemetry = await startServiceTelemetry({ name: "iam-policy", settings: config, logger });
  const store = await PolicyStore.open({
    engine: new CedarEngine(),
    read: () => readPolicyBundle(config.POLICY_DIR),
    onReload: logReload,
  });
  logger.info(
    {
      policyVersion: store.current.version,
      policyDir: config.POLICY_DIR,
      warnings: store.current.warnings,
    },
    "policy bundle loaded",
  );
  metrics = createPolicyMetrics(telemetry.metrics, store.current.version);
  const policyMetrics = metrics;
  const stopWatching = config.POLICY_WATCH
    ? store.watch(config.POLICY_DIR, {
        debounceMs: config.POLICY_RELOAD_DEBOUNCE_MS,
        pollIntervalMs: config.POLICY_POLL_INTERVAL_MS,
      })
    : () => undefined;
  // Operators may also ask for a reload with SIGHUP (or the ReloadPolicies RPC).
  process.on("SIGHUP", () => void store.reload());
  const decisions = new DecisionService({
    policies: store,
    cache:
      config.DECISION_CACHE_MAX_ENTRIES === 0
        ? undefined
        : new DecisionCache({
            maxEntries: config.DECISION_CACHE_MAX_ENTRIES,
            ttlMs: config.DECISION_CACHE_TTL_MS,
            nowMs: Date.now,
          }),
    audit: createLogAuditSink(logger),
    nowMs: Date.now,
    newDecisionId: randomUUID,
    allowSampleRate: config.AUDIT_ALLOW_SAMPLE_RATE,
    random: Math.random,
    onDecision: (outcome) => policyMetrics.recordDecision(outcome),
  });
  await runService({
    name: "iam-policy",
    settings: config,
    logger,
    telemetry,
    accessRules: loadServiceAccessRules(config, {
      rules: { file: "apps/iam-policy/src/access-rules.json", content: accessRulesFile },
      services: [IamPolicyService],
    }),
    services: [iamPolicyRegistration({ decisions, reload: () => store.reload() })],
    onStopped: stopWatching,
  });
} catch (error) {
  logger.fatal({ err: error }, "iam-policy failed to start");
  process.exit(1);
}
