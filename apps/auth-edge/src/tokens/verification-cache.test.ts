import { describe, expect, it } from "vitest";
import { VerificationCache } from "./verification-cache.ts";

describe("VerificationCache", () => {
  it("holds at most maxEntries, evicting the least recently used first", () => {
    const cache = new VerificationCache<number>({ maxEntries: 3, maxKeyLength: 100 });
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("c", 3);
    expect(cache.get("a")).toBe(1); // a is now the most recently used; b the least
    cache.set("d", 4);
    expect(cache.size).toBe(3);
    expect(cache.get("b")).toBeUndefined();
    expect([cache.get("a"), cache.get("c"), cache.get("d")]).toEqual([1, 3, 4]);
  });

  it("replaces the value of a key it holds without growing", () => {
    const cache = new VerificationCache<number>({ maxEntries: 2, maxKeyLength: 100 });
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("a", 10);
    expect(cache.size).toBe(2);
    cache.set("c", 3); // b is now the least recently used
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe(10);
  });

  it("never stores a key longer than maxKeyLength", () => {
    const cache = new VerificationCache<number>({ maxEntries: 10, maxKeyLength: 4 });
    cache.set("abcd", 1);
    cache.set("abcde", 2);
    expect(cache.size).toBe(1);
    expect(cache.get("abcde")).toBeUndefined();
    expect(cache.get("abcd")).toBe(1);
  });

  it("forgets a deleted key", () => {
    const cache = new VerificationCache<number>({ maxEntries: 10, maxKeyLength: 10 });
    cache.set("a", 1);
    cache.delete("a");
    expect(cache.get("a")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it.each([0, -1, 1.5, Number.NaN])("refuses maxEntries %d", (maxEntries) => {
    expect(() => new VerificationCache<number>({ maxEntries, maxKeyLength: 10 })).toThrow(
      "maxEntries must be a whole number of at least 1",
    );
  });
});
