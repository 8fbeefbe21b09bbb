import { createPublicKey, verify } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KeyManager } from "./key-manager.ts";
import { MemoryKeyStore } from "./key-store.ts";
import type { PublicJwk } from "./signer.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const MINUTE = 60_000;
const TOKEN_TTL = 15 * MINUTE;
const LEAD = 10 * MINUTE;
const INTERVAL = 60 * MINUTE;
const RETAIN = TOKEN_TTL + MINUTE;

type Step =
  { kind: "advance"; ms: number } | { kind: "tick" } | { kind: "rotate" } | { kind: "sign" };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.integer({ min: 0, max: 2 * INTERVAL }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.constantFrom(LEAD, LEAD - 1, RETAIN, TOKEN_TTL, TOKEN_TTL - 1, INTERVAL, 1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.integer({ min: 0, max: 5 * MINUTE }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: "tick" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "rotate" as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: "sign" as const }) },
);

function verifies(jwk: PublicJwk, data: Buffer, signature: Uint8Array): boolean {
  const key = createPublicKey({ key: { ...jwk }, format: "jwk" });
  return jwk.alg === "ES256"
    ? verify("sha256", data, { key, dsaEncoding: "ieee-p1363" }, signature)
    : verify(null, data, key, signature);
}

describe("staged key rotation", () => {
  it("Property 6: JWKS contains rotation keys — at every instant of any schedule of rotations, ticks and clock steps, every unexpired token verifies against the published JWKS, and no key signs before it has been published for the lead time", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
        const clock = { ms: NOW };
        const manager = new KeyManager({
          store: new MemoryKeyStore(),
          algorithm: "ES256",
          nowMs: () => clock.ms,
          kek: undefined,
          publishLeadMs: LEAD,
          rotationIntervalMs: INTERVAL,
          retainMs: RETAIN,
        });
        await manager.start();
        const firstKid = manager.ring.active.keyId;
        const tokens: { kid: string; data: Buffer; signature: Uint8Array; expMs: number }[] = [];
        for (const action of steps) {
          if (action.kind === "advance") clock.ms += action.ms;
          if (action.kind === "tick") await manager.tick();
          if (action.kind === "rotate") await manager.rotate();
          if (action.kind === "sign") {
            const signer = manager.ring.active;
            const data = Buffer.from(`token ${tokens.length}`);
            tokens.push({
              kid: signer.keyId,
              data,
              signature: await signer.sign(data),
              expMs: clock.ms + TOKEN_TTL,
            });
            if (signer.keyId !== firstKid) {
              const signedAt = clock.ms;
              clock.ms = signedAt - LEAD;
              const earlier = manager.ring.published.map((key) => key.jwk.kid);
              clock.ms = signedAt;
              expect(earlier, `key ${signer.keyId} published ${LEAD} ms before signing`).toContain(
                signer.keyId,
              );
            }
          }
          // The schedule of the keys stored so far is fixed, so the JWKS of any later instant
          // (before the next step) is known now: check the instants where it changes too.
          const instants = new Set([clock.ms]);
          for (const key of manager.ring.schedule) {
            for (const t of [key.activatesAtMs, key.activatesAtMs + RETAIN - 1]) {
              if (t > clock.ms) instants.add(t);
            }
          }
          for (const token of tokens) if (token.expMs > clock.ms) instants.add(token.expMs - 1);
          const now = clock.ms;
          for (const instant of instants) {
            clock.ms = instant;
            const published = manager.ring.published;
            expect(published.filter((key) => key.status === "active")).toHaveLength(1);
            expect(published[0]!.jwk.kid).toBe(manager.ring.active.keyId);
            for (const token of tokens) {
              if (token.expMs <= instant) continue;
              const jwk = published.find((key) => key.jwk.kid === token.kid)?.jwk;
              expect(
                jwk,
                `key of a token valid until +${token.expMs - NOW}, at +${instant - NOW}`,
              ).toBeDefined();
              expect(verifies(jwk!, token.data, token.signature)).toBe(true);
            }
          }
          clock.ms = now;
        }
      }),
      { numRuns: 200 },
    );
  });
});
