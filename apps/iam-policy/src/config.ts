import { envInt, loadConfig, serviceEnv, type Environment } from "@authplat/config";
import { z } from "zod";

/**
 * Settings of iam-policy: the common service variables plus
 * - `POLICY_DIR`: the policy bundle directory (default `apps/iam-policy/policies`);
 * - `POLICY_WATCH`: reload when a bundle file changes (`true`, default, or `false`);
 * - `POLICY_RELOAD_DEBOUNCE_MS`: quiet time after a change before reloading (default 100);
 * - `POLICY_POLL_INTERVAL_MS`: also re-read the bundle this often, 0 for never (default 5000);
 * - `DECISION_CACHE_MAX_ENTRIES`: decisions kept in the cache, 0 turns it off (default 10000);
 * - `DECISION_CACHE_TTL_MS`: how long a cached decision is served (default 30000);
 * - `AUDIT_ALLOW_SAMPLE_RATE`: fraction of allow decisions audited, 0-1 (default 1); denies
 *   are always audited.
 */
export const iamPolicyEnv = serviceEnv("iam-policy", 50054).extend({
  POLICY_DIR: z.string().default("apps/iam-policy/policies"),
  POLICY_WATCH: z
    .enum(["true", "false"], { error: "must be true or false" })
    .default("true")
    .transform((value) => value === "true"),
  POLICY_RELOAD_DEBOUNCE_MS: envInt(100, 0, 10_000),
  POLICY_POLL_INTERVAL_MS: envInt(5_000, 0, 3_600_000),
  DECISION_CACHE_MAX_ENTRIES: envInt(10_000, 0, 1_000_000),
  DECISION_CACHE_TTL_MS: envInt(30_000, 1, 86_400_000),
  AUDIT_ALLOW_SAMPLE_RATE: z.coerce
    .number({ error: "must be a number" })
    .min(0, "must be 0-1")
    .max(1, "must be 0-1")
    .default(1),
});

/** Parsed settings of iam-policy. */
export type IamPolicyConfig = z.output<typeof iamPolicyEnv>;

/** Reads iam-policy's settings from `env`, failing fast on a bad variable. */
export function loadIamPolicyConfig(env: Environment): IamPolicyConfig {
  return loadConfig(iamPolicyEnv, env);
}
