import { exportJWK, generateKeyPair, type JWK } from "jose";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { JwksCache, type SourceJwk } from "./jwks-cache.ts";

const ALLOWED = ["ES256", "EdDSA"];
/** Real public keys to build key sets from; the property only varies kids, algs and uses. */
const pool: { alg: "ES256" | "EdDSA"; jwk: JWK }[] = [];

beforeAll(async () => {
  for (const alg of ["ES256", "EdDSA", "ES256", "EdDSA", "ES256", "EdDSA"] as const) {
    const { publicKey } = await generateKeyPair(alg, { extractable: true });
    pool.push({ alg, jwk: await exportJWK(publicKey) });
  }
});

/** A generated key set entry: which pooled key, under which kid, claiming which alg. */
interface Entry {
  readonly kid: string;
  readonly key: number;
  readonly claimedAlg: "own" | "HS256";
}

const entries = fc.uniqueArray(
  fc.record({
    kid: fc.stringMatching(/^[a-z0-9]{1,6}$/),
    key: fc.nat({ max: 5 }),
    claimedAlg: fc.constantFrom("own", "own", "own", "HS256"),
  }),
  { selector: (entry) => entry.kid, maxLength: 6 },
) as fc.Arbitrary<Entry[]>;

function toJwks(set: readonly Entry[]): SourceJwk[] {
  return set.map((entry) => {
    const pooled = pool[entry.key]!;
    return {
      ...pooled.jwk,
      kid: entry.kid,
      alg: entry.claimedAlg === "own" ? pooled.alg : "HS256",
      use: "sig",
    };
  });
}

/** The kids a set should expose: only allowed algorithms, first occurrence of each kid. */
function expectedKids(set: readonly Entry[]): string[] {
  return set
    .filter((entry) => entry.claimedAlg === "own")
    .map((entry) => entry.kid)
    .sort();
}

describe("JwksCache", () => {
  it("Property 8: JWK cache atomic update — while a refresh runs, readers see the whole old key set or the whole new one, never a mix; a failed refresh keeps the old set", async () => {
    await fc.assert(
      fc.asyncProperty(entries, entries, fc.boolean(), async (oldSet, newSet, fails) => {
        let current = toJwks(oldSet);
        let failNext = false;
        const cache = new JwksCache({
          fetchKeys: async () => {
            if (failNext) throw new Error("token service unreachable");
            return current;
          },
          algorithms: ALLOWED,
          nowMs: () => 0,
          minRefetchIntervalMs: Number.POSITIVE_INFINITY,
        });
        await cache.refresh();
        const before = expectedKids(oldSet);
        expect([...cache.keyIds].sort()).toEqual(before);

        current = toJwks(newSet);
        failNext = fails;
        const after = fails ? before : expectedKids(newSet);
        // Observe the key set between microtasks while the refresh runs (key import resolves
        // in microtasks), yielding to the event loop now and then so I/O can complete.
        const observed: string[][] = [];
        let done = false;
        const refreshing = cache.refresh().then(
          () => (done = true),
          () => (done = true),
        );
        for (let turn = 1; !done; turn += 1) {
          observed.push([...cache.keyIds].sort());
          await (turn % 50 === 0
            ? new Promise((resolve) => setImmediate(resolve))
            : Promise.resolve());
        }
        // Lookups during another refresh answer from one snapshot: a kid in both sets is always
        // found, a kid in neither never is.
        failNext = fails;
        const again = cache.refresh().catch(() => undefined);
        const lookups = await Promise.all(
          [...oldSet, ...newSet].map(async (entry) => [
            entry.kid,
            (await cache.keyFor(entry.kid))?.kid,
          ]),
        );
        await again;
        for (const [kid, found] of lookups) {
          const inBefore = before.includes(kid!);
          const inAfter = after.includes(kid!);
          if (inBefore && inAfter) expect(found).toBe(kid);
          if (!inBefore && !inAfter) expect(found).toBeUndefined();
        }
        await refreshing;
        observed.push([...cache.keyIds].sort());
        for (const snapshot of observed) expect([before, after]).toContainEqual(snapshot);
        expect(observed.at(-1)).toEqual(after);
      }),
      { numRuns: 100 },
    );
  });
});
