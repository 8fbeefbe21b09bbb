import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createMemoryAuditSink } from "@authplat/audit";
import type { AuthorizationRequest, DecisionOutcome } from "./authorization.ts";
import { CedarEngine } from "./cedar-engine.ts";
import { DecisionCache } from "./decision-cache.ts";
import { DecisionService } from "./decision-service.ts";
import { bundleVersion } from "./policy-bundle.ts";
import type { PolicyBundleSource } from "./policy-engine.ts";
import { PolicyStore } from "./policy-store.ts";
import {
  bundleOf,
  referenceDecision,
  requestArb,
  worldArb,
  type World,
} from "./reference-model.ts";

/** A step of a generated script: decide, batch, or reload to a world (or a broken bundle). */
type Step =
  | { readonly kind: "decide"; readonly request: number }
  | { readonly kind: "batch"; readonly requests: readonly number[] }
  | {
      readonly kind: "reload";
      readonly target: number | "broken";
      readonly inFlight: readonly number[];
    };

const BROKEN: PolicyBundleSource = {
  files: [
    { name: "roles.json", text: '{"roles": {}}' },
    {
      name: "rules.cedar",
      text: "permit (principal, action, resource) when { resource.tenant == };",
    },
    { name: "schema.cedarschema", text: "entity Role in [Role];\nentity User in [Role];\n" },
  ],
};

const scenarioArb = fc
  .record({
    worlds: fc.array(worldArb, { minLength: 2, maxLength: 3 }),
    requests: fc.array(requestArb, { minLength: 2, maxLength: 6 }),
  })
  .chain(({ worlds, requests }) => {
    const index = fc.nat(requests.length - 1);
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant("decide" as const), request: index }),
      fc.record({
        kind: fc.constant("batch" as const),
        requests: fc.array(index, { minLength: 1, maxLength: 8 }),
      }),
      fc.record({
        kind: fc.constant("reload" as const),
        target: fc.oneof(
          { arbitrary: fc.nat(worlds.length - 1), weight: 4 },
          fc.constant("broken" as const),
        ),
        inFlight: fc.array(index, { maxLength: 4 }),
      }),
    );
    return fc.record({
      worlds: fc.constant(worlds),
      requests: fc.constant(requests),
      steps: fc.array(step, { minLength: 1, maxLength: 20 }),
    });
  });

describe("Property 17: policy hot reload effectiveness", () => {
  it("Property 17: after a reload completes every decision uses the new version; none, and no batch, mixes two", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ worlds, requests, steps }) => {
        const byVersion = new Map<string, World>(
          worlds.map((w) => [bundleVersion(bundleOf(w)), w]),
        );
        let target: PolicyBundleSource = bundleOf(worlds[0]!);
        let gate: Promise<void> = Promise.resolve();
        const store = await PolicyStore.open({
          engine: new CedarEngine(),
          read: async () => {
            await gate;
            return target;
          },
        });
        let n = 0;
        const decisions = new DecisionService({
          policies: store,
          cache: new DecisionCache({ maxEntries: 1_000, ttlMs: 3_600_000, nowMs: () => 0 }),
          audit: createMemoryAuditSink(),
          nowMs: () => 1_700_000_000_000,
          newDecisionId: () => `d-${n++}`,
          allowSampleRate: 1,
          random: () => 0,
        });
        const caller = {
          callerSpiffeId: "spiffe://auth.local/ns/auth/sa/operator",
          correlationId: "c",
        };
        let active = store.current.version;

        const check = (
          outcome: DecisionOutcome,
          request: AuthorizationRequest,
          version: string,
        ) => {
          expect(outcome.policyVersion).toBe(version);
          expect(outcome.allowed).toBe(referenceDecision(byVersion.get(version)!, request).allowed);
        };
        const decide = (i: number) =>
          check(decisions.authorize(requests[i]!, caller), requests[i]!, active);

        try {
          for (const step of steps) {
            if (step.kind === "decide") {
              decide(step.request);
            } else if (step.kind === "batch") {
              const batch = decisions.batchAuthorize(
                step.requests.map((i, k) => ({ id: `k${k}`, request: requests[i]! })),
                caller,
              );
              expect(batch.policyVersion).toBe(active);
              batch.results.forEach((result, k) =>
                check(result, requests[step.requests[k]!]!, batch.policyVersion),
              );
            } else {
              let release!: () => void;
              gate = new Promise((resolve) => (release = resolve));
              target = step.target === "broken" ? BROKEN : bundleOf(worlds[step.target]!);
              const reloading = store.reload();
              // While the new bundle is read and compiled, the old set keeps deciding.
              for (const i of step.inFlight) {
                decide(i);
                await Promise.resolve();
              }
              release();
              const outcome = await reloading;
              if (step.target === "broken") {
                expect(outcome.ok).toBe(false);
                expect(store.current.version).toBe(active);
              } else {
                expect(outcome).toMatchObject({ ok: true, version: bundleVersion(target) });
                active = bundleVersion(target);
              }
              for (const i of step.inFlight) decide(i);
            }
          }
        } finally {
          store.current.dispose();
        }
      }),
      { numRuns: 30 },
    );
  });
});
