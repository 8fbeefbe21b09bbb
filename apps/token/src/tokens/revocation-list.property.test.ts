import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisBackend, type RedisBackend } from "@authplat/testing";
import { MemoryRefreshTokenStore } from "./memory-refresh-token-store.ts";
import { RedisTokenStore } from "./redis-token-store.ts";
import { newFamily } from "./refresh-token-store.contract.ts";
import type { TokenStore } from "./refresh-token-store.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const IDS = ["j0", "j1", "j2", "j3"];

type Command =
  | { kind: "revoke"; id: number; ttl: number }
  | { kind: "issue"; id: number; ttl: number }
  | { kind: "revokeFamily"; which: number }
  | { kind: "check"; id: number }
  | { kind: "advance"; ms: number };

const id = fc.integer({ min: 0, max: IDS.length - 1 });
// Coarse steps make checks land exactly on expiry instants; fine ones cover the rest.
const ttl = fc.oneof(
  fc.integer({ min: -2, max: 12 }).map((n) => n * 250),
  fc.integer({ min: -1_000, max: 5_000 }),
);
const advance = fc.oneof(
  fc.integer({ min: 0, max: 8 }).map((n) => n * 250),
  fc.integer({ min: 0, max: 3_000 }),
);
const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ kind: fc.constant("revoke" as const), id, ttl }),
  fc.record({ kind: fc.constant("issue" as const), id, ttl }),
  fc.record({ kind: fc.constant("revokeFamily" as const), which: fc.nat() }),
  fc.record({ kind: fc.constant("check" as const), id }),
  fc.record({ kind: fc.constant("advance" as const), ms: advance }),
);

let redis: RedisBackend | undefined;

beforeAll(async () => {
  redis = await redisBackend();
});

afterAll(async () => {
  await redis?.cleanup();
});

const backends: [string, () => TokenStore | undefined, number][] = [
  ["memory", () => new MemoryRefreshTokenStore(), 200],
  [
    "redis",
    () =>
      redis &&
      new RedisTokenStore({ client: redis.client, prefix: `${redis.prefix}${randomUUID()}:` }),
    60,
  ],
];

describe.each(backends)("revocation list on the %s store", (name, storeOf, numRuns) => {
  it("Property 24: token revocation list consistency — for any interleaving of revocations (direct and by family), checks and clock steps, an ID is reported revoked if and only if it was revoked and its lifetime has not passed", async () => {
    if (storeOf() === undefined) return void console.warn(`[${name}] skipped: no backend`);
    await fc.assert(
      fc.asyncProperty(fc.array(command, { maxLength: 40 }), async (commands) => {
        const store = storeOf()!;
        const model = new Map<string, number>();
        const families: { familyId: string; jti: string; exp: number; revoked: boolean }[] = [];
        let now = NOW;
        const revokedInModel = (jti: string, exp: number) => {
          if (exp > now) model.set(jti, Math.max(model.get(jti) ?? 0, exp));
        };
        for (const step of commands) {
          switch (step.kind) {
            case "revoke":
              await store.revoke([{ id: IDS[step.id]!, expiresAtMs: now + step.ttl }], now);
              revokedInModel(IDS[step.id]!, now + step.ttl);
              break;
            case "issue": {
              const entry = newFamily({}, now);
              const exp = now + step.ttl;
              await store.createFamily(
                { ...entry, accessToken: { jti: IDS[step.id]!, expiresAtMs: exp } },
                now,
              );
              families.push({
                familyId: entry.family.familyId,
                jti: IDS[step.id]!,
                exp,
                revoked: false,
              });
              break;
            }
            case "revokeFamily": {
              const family = families[step.which % Math.max(1, families.length)];
              if (family === undefined) break;
              await store.revokeFamilies({ familyId: family.familyId }, now);
              if (!family.revoked) revokedInModel(family.jti, family.exp);
              family.revoked = true;
              break;
            }
            case "check": {
              const jti = IDS[step.id]!;
              expect(await store.isRevoked(jti, now), `${jti} at +${now - NOW}`).toBe(
                (model.get(jti) ?? 0) > now,
              );
              break;
            }
            case "advance":
              now += step.ms;
              break;
          }
        }
        for (const jti of IDS) {
          expect(await store.isRevoked(jti, now)).toBe((model.get(jti) ?? 0) > now);
        }
        const snapshot = await store.snapshot(now);
        expect(new Map(snapshot.entries.map((e) => [e.id, e.expiresAtMs]))).toEqual(
          new Map([...model].filter(([, exp]) => exp > now)),
        );
      }),
      { numRuns },
    );
  });
});
