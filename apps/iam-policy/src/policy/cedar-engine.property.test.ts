import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createMemoryAuditSink } from "@authplat/audit";
import { CedarEngine } from "./cedar-engine.ts";
import { DecisionCache } from "./decision-cache.ts";
import { DecisionService } from "./decision-service.ts";
import type { CompiledPolicies } from "./policy-engine.ts";
import {
  bundleOf,
  FORBID_IDS,
  referenceDecision,
  requestArb,
  worldArb,
} from "./reference-model.ts";

const engine = new CedarEngine();

function withPolicies<T>(
  world: Parameters<typeof bundleOf>[0],
  use: (p: CompiledPolicies) => T,
): T {
  const policies = engine.compile(bundleOf(world));
  try {
    return use(policies);
  } finally {
    policies.dispose();
  }
}

function service(policies: CompiledPolicies, cache: boolean): DecisionService {
  let n = 0;
  return new DecisionService({
    policies: { current: policies },
    cache: cache
      ? new DecisionCache({ maxEntries: 1000, ttlMs: 60_000, nowMs: () => 0 })
      : undefined,
    audit: createMemoryAuditSink(),
    nowMs: () => 1_700_000_000_000,
    newDecisionId: () => `d-${n++}`,
    allowSampleRate: 1,
    random: () => 0,
  });
}

const caller = { callerSpiffeId: "spiffe://auth.local/ns/auth/sa/auth-edge", correlationId: "c" };

describe("Property 16: policy evaluation consistency", () => {
  it("Property 16: decisions equal the reference model's (role closure plus attribute rules); a forbid wins", () => {
    fc.assert(
      fc.property(
        worldArb,
        fc.array(requestArb, { minLength: 1, maxLength: 25 }),
        (world, requests) =>
          withPolicies(world, (policies) => {
            for (const request of requests) {
              const decision = policies.decide(policies.prepare(request, 0));
              const expected = referenceDecision(world, request);
              expect(decision.allowed).toBe(expected.allowed);
              if (decision.allowed) {
                expect(decision.policyIds.length).toBeGreaterThan(0);
                expect(decision.policyIds.some((id) => FORBID_IDS.has(id))).toBe(false);
              } else if (expected.forbidden) {
                expect(decision.policyIds.length).toBeGreaterThan(0);
                expect(decision.policyIds.every((id) => FORBID_IDS.has(id))).toBe(true);
              } else {
                expect(decision.policyIds).toEqual([]);
              }
            }
          }),
      ),
      { numRuns: 40 },
    );
  });

  it("Property 16: a batch equals the individual decisions, whatever the item order", () => {
    fc.assert(
      fc.property(
        worldArb,
        fc.array(requestArb, { minLength: 1, maxLength: 20 }).chain((requests) =>
          fc.tuple(
            fc.constant(requests),
            fc.shuffledSubarray(
              requests.map((_, i) => i),
              { minLength: requests.length },
            ),
          ),
        ),
        (world, [requests, order]) =>
          withPolicies(world, (policies) => {
            const single = service(policies, false);
            const individual = requests.map((request) => single.authorize(request, caller));
            const batch = service(policies, false).batchAuthorize(
              order.map((i) => ({ id: `item-${i}`, request: requests[i]! })),
              caller,
            );
            expect(batch.results.map((r) => r.id)).toEqual(order.map((i) => `item-${i}`));
            for (const result of batch.results) {
              const alone = individual[Number(result.id.slice(5))]!;
              expect({
                allowed: result.allowed,
                policyIds: result.policyIds,
                reason: result.reason,
              }).toEqual({
                allowed: alone.allowed,
                policyIds: alone.policyIds,
                reason: alone.reason,
              });
              expect(result.policyVersion).toBe(policies.version);
            }
          }),
      ),
      { numRuns: 25 },
    );
  });

  it("Property 16: the same input always gets the same decision, evaluated or cached", () => {
    fc.assert(
      fc.property(worldArb, requestArb, fc.integer({ min: 2, max: 5 }), (world, request, times) =>
        withPolicies(world, (policies) => {
          const decisions = service(policies, true);
          const answers = Array.from({ length: times }, () => decisions.authorize(request, caller));
          expect(answers.map((a) => a.cached)).toEqual([
            false,
            ...Array<boolean>(times - 1).fill(true),
          ]);
          for (const answer of answers) {
            expect([answer.allowed, answer.policyIds, answer.reason]).toEqual([
              answers[0]!.allowed,
              answers[0]!.policyIds,
              answers[0]!.reason,
            ]);
          }
          expect(new Set(answers.map((a) => a.decisionId)).size).toBe(times);
          expect(policies.decide(policies.prepare(request, 0))).toEqual(
            policies.decide(policies.prepare(request, 0)),
          );
        }),
      ),
      { numRuns: 30 },
    );
  });
});
