import { describe, expect, it } from "vitest";
import { ConfigError } from "@authplat/config";
import { loadIamPolicyConfig } from "./config.ts";

describe("loadIamPolicyConfig", () => {
  it("defaults to the shipped bundle, watching, a 10000-entry cache and full audit", () => {
    expect(loadIamPolicyConfig({})).toMatchObject({
      GRPC_PORT: 50054,
      POLICY_DIR: "apps/iam-policy/policies",
      POLICY_WATCH: true,
      POLICY_RELOAD_DEBOUNCE_MS: 100,
      POLICY_POLL_INTERVAL_MS: 5_000,
      DECISION_CACHE_MAX_ENTRIES: 10_000,
      DECISION_CACHE_TTL_MS: 30_000,
      AUDIT_ALLOW_SAMPLE_RATE: 1,
    });
  });

  it("parses the switches and numbers", () => {
    const config = loadIamPolicyConfig({
      POLICY_WATCH: "false",
      AUDIT_ALLOW_SAMPLE_RATE: "0.25",
      DECISION_CACHE_MAX_ENTRIES: "0",
    });
    expect(config).toMatchObject({
      POLICY_WATCH: false,
      AUDIT_ALLOW_SAMPLE_RATE: 0.25,
      DECISION_CACHE_MAX_ENTRIES: 0,
    });
  });

  it.each([
    ["POLICY_WATCH", "yes", "POLICY_WATCH: must be true or false"],
    ["AUDIT_ALLOW_SAMPLE_RATE", "2", "AUDIT_ALLOW_SAMPLE_RATE: must be 0-1"],
    ["DECISION_CACHE_TTL_MS", "0", "DECISION_CACHE_TTL_MS: must be at least 1"],
    ["POLICY_POLL_INTERVAL_MS", "soon", "POLICY_POLL_INTERVAL_MS: must be a number"],
  ])("rejects a bad %s, naming it", (variable, value, message) => {
    expect(() => loadIamPolicyConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadIamPolicyConfig({ [variable]: value })).toThrow(message);
  });
});
