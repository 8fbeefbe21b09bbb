import { exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { JwksCache, type SourceJwk } from "./jwks-cache.ts";

async function jwk(kid: string, alg: "ES256" | "EdDSA" = "ES256"): Promise<SourceJwk> {
  const { publicKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
}

function source(initial: SourceJwk[]) {
  const state = {
    keys: initial,
    fetches: 0,
    fail: false as boolean,
    gate: undefined as Promise<void> | undefined,
  };
  const fetchKeys = async () => {
    state.fetches += 1;
    if (state.gate) await state.gate;
    if (state.fail) throw new Error("token service unreachable");
    return state.keys;
  };
  return { state, fetchKeys };
}

describe("JwksCache", () => {
  it("fails closed with UNAVAILABLE while no key set was ever loaded", async () => {
    const { state, fetchKeys } = source([]);
    state.fail = true;
    const errors: unknown[] = [];
    const cache = new JwksCache({
      fetchKeys,
      algorithms: ["ES256"],
      nowMs: () => 0,
      minRefetchIntervalMs: 0,
      onFetchError: (e) => errors.push(e),
    });
    await expect(cache.keyFor("any")).rejects.toMatchObject({
      code: "UNAVAILABLE",
      retryAfterMs: 1_000,
    });
    expect(errors).toHaveLength(1);
  });

  it("refetches on an unknown kid, at most once per interval", async () => {
    const first = await jwk("k1");
    const second = await jwk("k2");
    const { state, fetchKeys } = source([first]);
    let now = 0;
    const cache = new JwksCache({
      fetchKeys,
      algorithms: ["ES256"],
      nowMs: () => now,
      minRefetchIntervalMs: 5_000,
    });
    await cache.refresh();
    state.keys = [first, second];
    now = 1_000;
    expect(await cache.keyFor("k2")).toBeUndefined();
    expect(state.fetches).toBe(1);
    now = 5_000;
    expect((await cache.keyFor("k2"))?.kid).toBe("k2");
    expect(state.fetches).toBe(2);
    expect(await cache.keyFor("k1")).toMatchObject({ kid: "k1", alg: "ES256" });
    expect(state.fetches).toBe(2);
  });

  it("keeps the same key object across refreshes while a kid's key is unchanged, and a new one when it changes", async () => {
    const original = await jwk("k1");
    const { state, fetchKeys } = source([original, await jwk("k2", "EdDSA")]);
    const cache = new JwksCache({
      fetchKeys,
      algorithms: ["ES256", "EdDSA"],
      nowMs: () => 0,
      minRefetchIntervalMs: 0,
    });
    await cache.refresh();
    const before = await cache.keyFor("k1");
    expect(before?.keyObject).toMatchObject({ type: "public", asymmetricKeyType: "ec" });
    expect((await cache.keyFor("k2"))?.keyObject.asymmetricKeyType).toBe("ed25519");

    // The same key material again (a new object from the source, members in another order).
    state.keys = [{ use: "sig", ...original, kid: "k1", alg: "ES256" }];
    await cache.refresh();
    expect(await cache.keyFor("k1")).toBe(before);

    // The kid now names other key material: a different key object.
    state.keys = [await jwk("k1")];
    await cache.refresh();
    const after = await cache.keyFor("k1");
    expect(after?.kid).toBe("k1");
    expect(after).not.toBe(before);
    expect(after?.keyObject.equals(before!.keyObject)).toBe(false);
  });

  it("shares one fetch between concurrent misses", async () => {
    const { state, fetchKeys } = source([await jwk("k1")]);
    let open!: () => void;
    state.gate = new Promise<void>((resolve) => (open = resolve));
    const cache = new JwksCache({
      fetchKeys,
      algorithms: ["ES256"],
      nowMs: () => 0,
      minRefetchIntervalMs: 0,
    });
    const lookups = Promise.all([cache.keyFor("k1"), cache.keyFor("k1"), cache.keyFor("k1")]);
    open();
    const keys = await lookups;
    expect(keys.map((key) => key?.kid)).toEqual(["k1", "k1", "k1"]);
    expect(state.fetches).toBe(1);
  });

  it("keeps the old snapshot when a refresh fails, and swaps in a whole new one when it succeeds", async () => {
    const k1 = await jwk("k1");
    const k2 = await jwk("k2");
    const { state, fetchKeys } = source([k1]);
    const cache = new JwksCache({
      fetchKeys,
      algorithms: ["ES256"],
      nowMs: () => 0,
      minRefetchIntervalMs: 60_000,
    });
    await cache.refresh();
    state.fail = true;
    await expect(cache.refresh()).rejects.toThrow("token service unreachable");
    expect(cache.keyIds).toEqual(["k1"]);
    state.fail = false;
    state.keys = [k2];
    await cache.refresh();
    expect(cache.keyIds).toEqual(["k2"]);
  });

  it("ignores keys for algorithms outside the allowlist and keys not meant for signatures", async () => {
    const { fetchKeys } = source([
      await jwk("ed", "EdDSA"),
      { ...(await jwk("enc")), use: "enc" },
      { kty: "oct", k: "c2VjcmV0", kid: "hmac", alg: "HS256" },
      await jwk("es"),
    ]);
    const cache = new JwksCache({
      fetchKeys,
      algorithms: ["ES256"],
      nowMs: () => 0,
      minRefetchIntervalMs: 0,
    });
    await cache.refresh();
    expect(cache.keyIds).toEqual(["es"]);
  });

  it("retries the first load with backoff until it succeeds", async () => {
    const { state, fetchKeys } = source([await jwk("k1")]);
    state.fail = true;
    const failures: unknown[] = [];
    const cache = new JwksCache({
      fetchKeys: async () => {
        if (state.fetches === 2) state.fail = false;
        return fetchKeys();
      },
      algorithms: ["ES256"],
      nowMs: () => 0,
      minRefetchIntervalMs: 0,
      onFetchError: (error) => failures.push(error),
    });
    await cache.refreshUntilLoaded(AbortSignal.timeout(10_000));
    expect(cache.keyIds).toEqual(["k1"]);
    expect(failures).toHaveLength(2);
  });
  it("fails closed with UNAVAILABLE and a retry pushback once its key set is older than the maximum staleness", async () => {
    const { state, fetchKeys } = source([await jwk("k1")]);
    let now = 0;
    const errors: unknown[] = [];
    const cache = new JwksCache({
      fetchKeys,
      algorithms: ["ES256"],
      nowMs: () => now,
      minRefetchIntervalMs: 5_000,
      refreshIntervalMs: 10_000,
      maxStalenessMs: 60_000,
      onFetchError: (error) => errors.push(error),
    });
    await cache.refresh();
    state.fail = true;
    now = 59_999;
    expect((await cache.keyFor("k1"))?.kid).toBe("k1");
    now = 60_000;
    await expect(cache.keyFor("k1")).rejects.toMatchObject({
      code: "UNAVAILABLE",
      message: "signing keys are out of date",
      // The lookup at 59 999 ms started a (failed) background refresh: the next is allowed
      // 5 s after it.
      retryAfterMs: 4_999,
    });
    expect(errors.length).toBeGreaterThan(0);
    // Once the source answers again, the next lookup after the refetch interval recovers.
    state.fail = false;
    now = 70_000;
    expect((await cache.keyFor("k1"))?.kid).toBe("k1");
  });

  it("refreshes in the background once a known key set is due, while still answering from it", async () => {
    const k1 = await jwk("k1");
    const { state, fetchKeys } = source([k1]);
    let now = 0;
    const cache = new JwksCache({
      fetchKeys,
      algorithms: ["ES256"],
      nowMs: () => now,
      minRefetchIntervalMs: 1_000,
      refreshIntervalMs: 10_000,
    });
    await cache.refresh();
    now = 9_999;
    await cache.keyFor("k1");
    expect(state.fetches).toBe(1);
    now = 10_000;
    expect((await cache.keyFor("k1"))?.kid).toBe("k1");
    expect(state.fetches).toBe(2);
  });

  it("honours the source's max-age when it is shorter than the refresh interval", async () => {
    const k1 = await jwk("k1");
    const maxAgeMs = 30_000;
    let fetches = 0;
    let now = 0;
    const cache = new JwksCache({
      fetchKeys: async () => {
        fetches += 1;
        return { keys: [k1], maxAgeMs };
      },
      algorithms: ["ES256"],
      nowMs: () => now,
      minRefetchIntervalMs: 1_000,
      refreshIntervalMs: 300_000,
    });
    await cache.refresh();
    expect(cache.keyIds).toEqual(["k1"]);
    now = 10_000;
    expect(cache.nextRefreshInMs()).toBe(20_000);
    now = 30_000;
    await cache.keyFor("k1");
    expect(fetches).toBe(2);
  });

  it.each([
    ["longer than the refresh interval", 3_600_000],
    ["absent", undefined],
    ["negative", -1],
  ])("keeps the refresh interval when the source's max-age is %s", async (_name, maxAgeMs) => {
    const k1 = await jwk("k1");
    const cache = new JwksCache({
      fetchKeys: async () => ({ keys: [k1], maxAgeMs }),
      algorithms: ["ES256"],
      nowMs: () => 0,
      minRefetchIntervalMs: 1_000,
      refreshIntervalMs: 300_000,
    });
    await cache.refresh();
    expect(cache.nextRefreshInMs()).toBe(300_000);
  });

  it("waits at least the refetch interval after a failed fetch before the next scheduled one", async () => {
    const { state, fetchKeys } = source([await jwk("k1")]);
    let now = 0;
    const cache = new JwksCache({
      fetchKeys,
      algorithms: ["ES256"],
      nowMs: () => now,
      minRefetchIntervalMs: 5_000,
      refreshIntervalMs: 10_000,
    });
    expect(cache.nextRefreshInMs()).toBe(0);
    await cache.refresh();
    state.fail = true;
    now = 12_000;
    expect(cache.nextRefreshInMs()).toBe(0);
    await expect(cache.refresh()).rejects.toThrow("token service unreachable");
    expect(cache.nextRefreshInMs()).toBe(5_000);
  });

  it("skips a malformed key, reporting its kid and why without key material, and keeps the others", async () => {
    const good = await jwk("good");
    const broken = { ...(await jwk("broken")), x: "AAAA" };
    const skipped: { kid: string; reason: string }[] = [];
    const cache = new JwksCache({
      fetchKeys: async () => [broken, good, { ...good, kid: "" }],
      algorithms: ["ES256"],
      nowMs: () => 0,
      minRefetchIntervalMs: 0,
      onKeySkipped: (kid, reason) => skipped.push({ kid, reason }),
    });
    await cache.refresh();
    expect(cache.keyIds).toEqual(["good"]);
    expect(skipped).toEqual([
      { kid: "broken", reason: "the key does not import" },
      { kid: "", reason: "it has no kid" },
    ]);
    expect(JSON.stringify(skipped)).not.toContain(good.x);
  });

  it.each([
    ["an oct key labelled ES256", { kty: "oct", k: "c2VjcmV0", kid: "mac", alg: "ES256" }],
    ["an oct key labelled HS256", { kty: "oct", k: "c2VjcmV0", kid: "mac", alg: "HS256" }],
    [
      "an OKP key labelled ES256",
      { kty: "OKP", crv: "Ed25519", x: "AAAA", kid: "mac", alg: "ES256" },
    ],
  ])("never uses %s, even when its alg is allowed", async (_name, bad) => {
    const skipped: string[] = [];
    const cache = new JwksCache({
      fetchKeys: async () => [bad, await jwk("es")],
      algorithms: ["ES256", "HS256"],
      nowMs: () => 0,
      minRefetchIntervalMs: 0,
      onKeySkipped: (kid, reason) => skipped.push(`${kid}: ${reason}`),
    });
    await cache.refresh();
    expect(cache.keyIds).toEqual(["es"]);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatch(/^mac: /);
    expect(skipped[0]).not.toContain("c2VjcmV0");
  });

  it("skips a key that carries private members", async () => {
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const skipped: string[] = [];
    const cache = new JwksCache({
      fetchKeys: async () => [{ ...(await exportJWK(privateKey)), kid: "p", alg: "ES256" }],
      algorithms: ["ES256"],
      nowMs: () => 0,
      minRefetchIntervalMs: 0,
      onKeySkipped: (kid, reason) => skipped.push(`${kid}: ${reason}`),
    });
    await cache.refresh();
    expect(cache.keyIds).toEqual([]);
    expect(skipped).toEqual(["p: it carries private key members"]);
  });
  it("refreshes on schedule until its signal aborts", async () => {
    const k1 = await jwk("k1");
    let fetches = 0;
    let secondFetch!: () => void;
    const fetchedTwice = new Promise<void>((resolve) => (secondFetch = resolve));
    const cache = new JwksCache({
      fetchKeys: async () => {
        fetches += 1;
        if (fetches === 2) secondFetch();
        return { keys: [k1], maxAgeMs: 0 };
      },
      algorithms: ["ES256"],
      nowMs: () => Date.now(),
      minRefetchIntervalMs: 1_000,
    });
    await cache.refresh();
    const stop = new AbortController();
    const loop = cache.refreshPeriodically(stop.signal);
    await fetchedTwice;
    stop.abort();
    await loop;
    expect(cache.keyIds).toEqual(["k1"]);
  });
  it("bounds its retry guidance to a minute however long the refetch interval", async () => {
    const { state, fetchKeys } = source([]);
    state.fail = true;
    const cache = new JwksCache({
      fetchKeys,
      algorithms: ["ES256"],
      nowMs: () => 0,
      minRefetchIntervalMs: 3_600_000,
    });
    await expect(cache.keyFor("any")).rejects.toMatchObject({
      code: "UNAVAILABLE",
      message: "signing keys are not available yet",
      retryAfterMs: 60_000,
    });
  });
});
