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
});
