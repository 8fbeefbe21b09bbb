import { describe, expect, it } from "vitest";
import { createMetricsRegistry } from "@authplat/observability";
import { createPolicyMetrics } from "./policy-metrics.ts";

describe("createPolicyMetrics", () => {
  it("counts reloads by result and exposes the version in force", async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const metrics = createPolicyMetrics(registry, "v1");
    metrics.recordReload({ ok: false, error: new Error("bad"), version: "v1" });
    metrics.recordReload({ ok: true, changed: false, version: "v1", previousVersion: "v1" });
    metrics.recordReload({ ok: true, changed: true, version: "v2", previousVersion: "v1" });
    metrics.recordDecision({
      allowed: false,
      policyIds: [],
      reason: "",
      decisionId: "d",
      cached: true,
      policyVersion: "v2",
    });
    const text = await registry.expose();
    expect(text).toContain('iam_policy_reloads_total{result="refused"} 1');
    expect(text).toContain('iam_policy_reloads_total{result="unchanged"} 1');
    expect(text).toContain('iam_policy_reloads_total{result="swapped"} 1');
    expect(text).toContain('iam_policy_version_info{version="v2"} 1');
    expect(text).not.toContain('version="v1"');
    expect(text).toContain('iam_policy_decisions_total{decision="deny",cached="true"} 1');
  });
});
