import { describe, expect, it } from "vitest";
import { DecisionCache } from "./decision-cache.ts";

const allow = { allowed: true, policyIds: ["p"], reason: "permitted by policy" };

describe("DecisionCache", () => {
  it("serves an entry until its TTL passes", () => {
    let now = 1_000;
    const cache = new DecisionCache({ maxEntries: 10, ttlMs: 100, nowMs: () => now });
    cache.set("v1", "k", allow);
    now = 1_099;
    expect(cache.get("v1", "k")).toEqual(allow);
    now = 1_100;
    expect(cache.get("v1", "k")).toBeUndefined();
  });

  it("keys entries by policy version, so another version never sees them", () => {
    const cache = new DecisionCache({ maxEntries: 10, ttlMs: 100, nowMs: () => 0 });
    cache.set("v1", "k", allow);
    expect(cache.get("v2", "k")).toBeUndefined();
  });

  it("evicts the least recently used entry beyond its bound", () => {
    const cache = new DecisionCache({ maxEntries: 2, ttlMs: 100, nowMs: () => 0 });
    cache.set("v", "a", allow);
    cache.set("v", "b", allow);
    cache.get("v", "a");
    cache.set("v", "c", allow);
    expect(cache.size).toBe(2);
    expect(cache.get("v", "b")).toBeUndefined();
    expect(cache.get("v", "a")).toEqual(allow);
    expect(cache.get("v", "c")).toEqual(allow);
  });
});
