import { beforeAll, describe, expect, it } from "vitest";
import { createMemoryAuditSink } from "@authplat/audit";
import { CedarEngine } from "./cedar-engine.ts";
import { DecisionCache } from "./decision-cache.ts";
import { DecisionService, type DecisionServiceDeps } from "./decision-service.ts";
import type { CompiledPolicies } from "./policy-engine.ts";
import { defaultBundle, documentRequest } from "./test-bundles.ts";

let policies: CompiledPolicies;
const caller = { callerSpiffeId: "spiffe://auth.local/ns/auth/sa/auth-edge", correlationId: "c-1" };

beforeAll(async () => {
  policies = new CedarEngine().compile(await defaultBundle());
});

function service(overrides: Partial<DecisionServiceDeps> = {}) {
  const audit = createMemoryAuditSink();
  let n = 0;
  const decisions = new DecisionService({
    policies: { current: policies },
    cache: undefined,
    audit,
    nowMs: () => Date.parse("2026-03-02T10:00:00Z"),
    newDecisionId: () => `d-${n++}`,
    allowSampleRate: 1,
    random: () => 0.5,
    ...overrides,
  });
  return { decisions, audit };
}

describe("DecisionService", () => {
  it("records denies always and allows only as sampled", () => {
    const { decisions, audit } = service({ allowSampleRate: 0.4, random: () => 0.5 });
    decisions.authorize(documentRequest({ roles: ["viewer"] }), caller);
    decisions.authorize(documentRequest({ roles: [] }), caller);
    expect(audit.events.map((e) => e.result)).toEqual(["deny"]);
    const sampled = service({ allowSampleRate: 0.6, random: () => 0.5 });
    sampled.decisions.authorize(documentRequest({ roles: ["viewer"] }), caller);
    expect(sampled.audit.events.map((e) => e.result)).toEqual(["allow"]);
  });

  it("audits the decision's ID, policies, version, cache flag, caller and time", () => {
    const { decisions, audit } = service();
    const outcome = decisions.authorize(documentRequest({ roles: ["viewer"] }), caller);
    expect(audit.events).toEqual([
      {
        timestamp: "2026-03-02T10:00:00.000Z",
        type: "authz.decision",
        actor: "user:alice",
        action: "read",
        resource: "document:d-1",
        result: "allow",
        correlationId: "c-1",
        callerSpiffeId: caller.callerSpiffeId,
        details: {
          decisionId: outcome.decisionId,
          policyIds: ["role/viewer/document"],
          reason: "permitted by policy",
          policyVersion: policies.version,
          cached: false,
        },
      },
    ]);
  });

  it("never reports cached without a cache, and does with one", () => {
    const plain = service();
    plain.decisions.authorize(documentRequest(), caller);
    expect(plain.decisions.authorize(documentRequest(), caller).cached).toBe(false);
    const cached = service({
      cache: new DecisionCache({ maxEntries: 10, ttlMs: 1_000, nowMs: () => 0 }),
    });
    cached.decisions.authorize(documentRequest(), caller);
    expect(cached.decisions.authorize(documentRequest(), caller).cached).toBe(true);
    expect(cached.audit.events.map((e) => e.details["cached"])).toEqual([false, true]);
  });

  it("refuses an empty batch and records nothing for a batch with a bad item", () => {
    const { decisions, audit } = service();
    expect(() => decisions.batchAuthorize([], caller)).toThrow(
      "items: a batch holds 1 to 100 items, got 0",
    );
    expect(() =>
      decisions.batchAuthorize(
        [
          { id: "ok", request: documentRequest() },
          { id: "", request: documentRequest() },
        ],
        caller,
      ),
    ).toThrow("items[1].id is required");
    expect(() =>
      decisions.batchAuthorize(
        [
          { id: "ok", request: documentRequest() },
          { id: "bad", request: documentRequest({ resourceType: "planet" }) },
        ],
        caller,
      ),
    ).toThrow('items[1] (id "bad"): resource.type: unknown resource type "planet"');
    expect(audit.events).toEqual([]);
  });
});
