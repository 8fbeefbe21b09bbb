import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { FamilyRecord, NewFamily, RotateRequest, TokenStore } from "./refresh-token-store.ts";

/** A store under test; every expiry is judged against the instants the suite passes. */
export interface StoreUnderTest {
  readonly store: TokenStore;
  /** Releases what the store holds. */
  cleanup?(): Promise<void>;
}

/** A fixed instant the contract's records are relative to. */
export const CONTRACT_NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const NOW = CONTRACT_NOW;
const HOUR = 3_600_000;

/** A new family with fresh IDs; `overrides` change the family record. */
export function newFamily(overrides: Partial<FamilyRecord> = {}, nowMs = NOW): NewFamily {
  return {
    family: {
      familyId: randomUUID(),
      subject: "user-1",
      clientId: "client-1",
      audience: ["https://api.auth.local"],
      scopes: ["a", "b"],
      sessionId: "s-1",
      createdAtMs: nowMs,
      expiresAtMs: nowMs + 24 * HOUR,
      ...overrides,
    },
    tokenHash: `h-${randomUUID()}`,
    tokenExpiresAtMs: nowMs + HOUR,
    accessToken: { jti: `at-${randomUUID()}`, expiresAtMs: nowMs + 900_000 },
  };
}

/** A rotation of `tokenHash` by client-1 with a fresh successor and access token. */
export function rotation(tokenHash: string, overrides: Partial<RotateRequest> = {}): RotateRequest {
  return {
    tokenHash,
    clientId: "client-1",
    scopes: [],
    nowMs: NOW,
    successorHash: `h-${randomUUID()}`,
    idleTimeoutMs: HOUR,
    accessToken: { jti: `at-${randomUUID()}`, expiresAtMs: NOW + 900_000 },
    ...overrides,
  };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * The behaviour every {@link TokenStore} backend must have, concurrency included. Call it from
 * the backend's test file with a factory that makes a fresh, empty store.
 */
export function describeTokenStoreContract(
  name: string,
  makeStore: () => Promise<StoreUnderTest | undefined>,
): void {
  describe(`TokenStore contract: ${name}`, () => {
    async function withStore(body: (store: TokenStore) => Promise<void>): Promise<void> {
      const subject = await makeStore();
      if (subject === undefined) return;
      try {
        await body(subject.store);
      } finally {
        await subject.cleanup?.();
      }
    }

    it("rotates a fresh token once: the successor is the next generation of the family", () =>
      withStore(async (store) => {
        const created = newFamily();
        await store.createFamily(created, NOW);
        const request = rotation(created.tokenHash, { nowMs: NOW + 1_000 });
        const result = await store.rotate(request);
        expect(result).toEqual({
          outcome: "rotated",
          family: created.family,
          successor: {
            tokenHash: request.successorHash,
            familyId: created.family.familyId,
            generation: 1,
            issuedAtMs: NOW + 1_000,
            expiresAtMs: NOW + 1_000 + HOUR,
          },
        });
        const next = await store.rotate(rotation(request.successorHash, { nowMs: NOW + 2_000 }));
        expect(next).toMatchObject({ outcome: "rotated", successor: { generation: 2 } });
      }));

    it("caps a successor's idle deadline at the family's end", () =>
      withStore(async (store) => {
        const created = newFamily({ expiresAtMs: NOW + 10_000 });
        await store.createFamily(created, NOW);
        const result = await store.rotate(rotation(created.tokenHash));
        expect(result).toMatchObject({ successor: { expiresAtMs: NOW + 10_000 } });
      }));

    it("refuses a second family with a token hash that exists already", () =>
      withStore(async (store) => {
        const first = newFamily();
        await store.createFamily(first, NOW);
        await expect(
          store.createFamily({ ...newFamily(), tokenHash: first.tokenHash }, NOW),
        ).rejects.toThrow("duplicate refresh token hash");
        expect(await store.familyOfToken(first.tokenHash, NOW)).toEqual(first.family);
      }));

    it("refuses an unknown token without inventing a family", () =>
      withStore(async (store) => {
        expect(await store.rotate(rotation("h-never-issued"))).toEqual({
          outcome: "refused",
          reason: "unknown",
        });
        expect(await store.familyOfToken("h-never-issued", NOW)).toBeUndefined();
      }));

    it("refuses another client and rotates nothing, so the right client still can", () =>
      withStore(async (store) => {
        const created = newFamily();
        await store.createFamily(created, NOW);
        expect(await store.rotate(rotation(created.tokenHash, { clientId: "thief" }))).toEqual({
          outcome: "refused",
          reason: "wrong_client",
          family: created.family,
        });
        expect(await store.rotate(rotation(created.tokenHash))).toMatchObject({
          outcome: "rotated",
        });
      }));

    it("lets a refresh narrow the scopes but refuses, changing nothing, one that widens them", () =>
      withStore(async (store) => {
        const created = newFamily();
        await store.createFamily(created, NOW);
        expect(
          await store.rotate(rotation(created.tokenHash, { scopes: ["a", "c"] })),
        ).toMatchObject({ outcome: "refused", reason: "scope_not_granted" });
        expect(await store.rotate(rotation(created.tokenHash, { scopes: ["b"] }))).toMatchObject({
          outcome: "rotated",
        });
      }));

    it("judges the token's idle deadline and the family's end by the caller's clock", () =>
      withStore(async (store) => {
        const idle = newFamily();
        await store.createFamily(idle, NOW);
        expect(
          await store.rotate(rotation(idle.tokenHash, { nowMs: idle.tokenExpiresAtMs })),
        ).toMatchObject({ outcome: "refused", reason: "expired" });
        expect(
          await store.rotate(rotation(idle.tokenHash, { nowMs: idle.tokenExpiresAtMs - 1 })),
        ).toMatchObject({ outcome: "rotated" });

        const ended = newFamily({ expiresAtMs: NOW + 5_000 });
        await store.createFamily({ ...ended, tokenExpiresAtMs: NOW + 5_000 }, NOW);
        expect(await store.rotate(rotation(ended.tokenHash, { nowMs: NOW + 5_000 }))).toMatchObject(
          { outcome: "refused", reason: "expired" },
        );
        expect(await store.familyOfToken(ended.tokenHash, NOW + 4_999)).toEqual(ended.family);
        expect(await store.familyOfToken(ended.tokenHash, NOW + 5_000)).toBeUndefined();
      }));

    it("treats a used token as replay: the family is revoked with every access token it issued", () =>
      withStore(async (store) => {
        const created = newFamily();
        await store.createFamily(created, NOW);
        const first = rotation(created.tokenHash);
        await store.rotate(first);
        const replay = await store.rotate(rotation(created.tokenHash, { nowMs: NOW + 10 }));
        expect(replay).toMatchObject({ outcome: "reused", generation: 0, family: created.family });
        const revoked = replay.outcome === "reused" ? replay.revoked : [];
        expect([...revoked].sort((a, b) => a.id.localeCompare(b.id))).toEqual(
          [created.accessToken, first.accessToken]
            .map(({ jti, expiresAtMs }) => ({ id: jti, expiresAtMs }))
            .sort((a, b) => a.id.localeCompare(b.id)),
        );
        expect(await store.isRevoked(created.accessToken.jti, NOW + 10)).toBe(true);
        expect(await store.isRevoked(first.accessToken.jti, NOW + 10)).toBe(true);
        expect(await store.rotate(rotation(first.successorHash))).toMatchObject({
          outcome: "refused",
          reason: "family_revoked",
        });
        // A second replay finds the family already revoked and revokes nothing more.
        expect(await store.rotate(rotation(created.tokenHash))).toMatchObject({
          outcome: "refused",
          reason: "family_revoked",
        });
      }));

    it("lets exactly one of 50 concurrent rotations of one token win; the rest are replay", () =>
      withStore(async (store) => {
        const created = newFamily();
        await store.createFamily(created, NOW);
        const requests = Array.from({ length: 50 }, () => rotation(created.tokenHash));
        const results = await Promise.all(requests.map((request) => store.rotate(request)));
        const outcomes = results.map((result) =>
          result.outcome === "refused" ? result.reason : result.outcome,
        );
        expect(outcomes.filter((outcome) => outcome === "rotated")).toHaveLength(1);
        expect(outcomes.filter((outcome) => outcome === "reused").length).toBeGreaterThan(0);
        expect(
          outcomes.every((o) => o === "rotated" || o === "reused" || o === "family_revoked"),
        ).toBe(true);
        const winner = requests[outcomes.indexOf("rotated")]!;
        expect(await store.rotate(rotation(winner.successorHash))).toMatchObject({
          outcome: "refused",
          reason: "family_revoked",
        });
        expect(await store.isRevoked(winner.accessToken.jti, NOW)).toBe(true);
      }));

    it("revokes families by ID, subject and session, once, skipping expired access tokens", () =>
      withStore(async (store) => {
        const a = newFamily({ subject: "alice", sessionId: "s-a" });
        const b = newFamily({ subject: "alice", sessionId: "s-b" });
        const c = newFamily({ subject: "carol", sessionId: "s-a2" });
        const short = { ...a, accessToken: { jti: "at-short", expiresAtMs: NOW + 10 } };
        for (const entry of [short, b, c]) await store.createFamily(entry, NOW);

        const bySession = await store.revokeFamilies({ sessionId: "s-a" }, NOW + 10);
        expect(bySession).toEqual({ families: 1, revoked: [] });
        const bySubject = await store.revokeFamilies({ subject: "alice" }, NOW + 10);
        expect(bySubject).toEqual({
          families: 1,
          revoked: [{ id: b.accessToken.jti, expiresAtMs: b.accessToken.expiresAtMs }],
        });
        expect(await store.revokeFamilies({ subject: "alice" }, NOW + 10)).toEqual({
          families: 0,
          revoked: [],
        });
        expect(await store.revokeFamilies({ familyId: "no-such-family" }, NOW)).toEqual({
          families: 0,
          revoked: [],
        });
        expect(await store.revokeFamilies({ familyId: c.family.familyId }, NOW)).toMatchObject({
          families: 1,
        });
        expect(await store.rotate(rotation(c.tokenHash))).toMatchObject({
          reason: "family_revoked",
        });
        expect(await store.isRevoked("at-short", NOW + 10)).toBe(false);
      }));

    it("keeps a family's authorization facts through every read, and reads a family without them", () =>
      withStore(async (store) => {
        const authorized = newFamily({
          roles: ["admin", "orders:viewer"],
          tenant: "acme",
          acr: "phr",
          amr: ["pwd", "otp"],
          authTimeMs: NOW - 60_000,
        });
        const plain = newFamily();
        await store.createFamily(authorized, NOW);
        await store.createFamily(plain, NOW);
        expect(await store.familyOfToken(authorized.tokenHash, NOW)).toEqual(authorized.family);
        expect(await store.familyOfToken(plain.tokenHash, NOW)).toEqual(plain.family);
        expect((await store.inspect(authorized.tokenHash, NOW))?.family).toEqual(authorized.family);
        const request = rotation(authorized.tokenHash);
        expect(await store.rotate(request)).toMatchObject({ family: authorized.family });
        expect((await store.inspect(request.successorHash, NOW))?.family).toEqual(
          authorized.family,
        );
        const old = await store.familyOfToken(plain.tokenHash, NOW);
        for (const field of ["roles", "tenant", "acr", "amr", "authTimeMs"]) {
          expect(old).not.toHaveProperty(field);
        }
      }));

    it("inspects an active token: its family and its own record, changing nothing", () =>
      withStore(async (store) => {
        const created = newFamily();
        await store.createFamily(created, NOW);
        const active = {
          family: created.family,
          token: {
            tokenHash: created.tokenHash,
            familyId: created.family.familyId,
            generation: 0,
            issuedAtMs: NOW,
            expiresAtMs: created.tokenExpiresAtMs,
          },
        };
        expect(await store.inspect(created.tokenHash, NOW + 1_000)).toEqual(active);
        expect(await store.inspect(created.tokenHash, NOW + 1_000)).toEqual(active);
        // Inspecting did not use the token: it still rotates, once.
        expect(await store.rotate(rotation(created.tokenHash))).toMatchObject({
          outcome: "rotated",
        });
      }));

    it("inspects the successor after a rotation as active and the rotated token as not", () =>
      withStore(async (store) => {
        const created = newFamily();
        await store.createFamily(created, NOW);
        const request = rotation(created.tokenHash, { nowMs: NOW + 1_000 });
        await store.rotate(request);
        expect(await store.inspect(created.tokenHash, NOW + 2_000)).toBeUndefined();
        expect(await store.inspect(request.successorHash, NOW + 2_000)).toEqual({
          family: created.family,
          token: {
            tokenHash: request.successorHash,
            familyId: created.family.familyId,
            generation: 1,
            issuedAtMs: NOW + 1_000,
            expiresAtMs: NOW + 1_000 + HOUR,
          },
        });
      }));

    it("inspecting a used token revokes nothing: the successor still rotates", () =>
      withStore(async (store) => {
        const created = newFamily();
        await store.createFamily(created, NOW);
        const request = rotation(created.tokenHash);
        await store.rotate(request);
        expect(await store.inspect(created.tokenHash, NOW)).toBeUndefined();
        expect(await store.isRevoked(created.accessToken.jti, NOW)).toBe(false);
        expect(await store.rotate(rotation(request.successorHash))).toMatchObject({
          outcome: "rotated",
        });
      }));

    it("inspects no token of a family revoked by replay or by revokeFamilies", () =>
      withStore(async (store) => {
        const replayed = newFamily();
        await store.createFamily(replayed, NOW);
        const request = rotation(replayed.tokenHash);
        await store.rotate(request);
        expect(await store.rotate(rotation(replayed.tokenHash))).toMatchObject({
          outcome: "reused",
        });
        expect(await store.inspect(request.successorHash, NOW)).toBeUndefined();
        expect(await store.inspect(replayed.tokenHash, NOW)).toBeUndefined();

        const revoked = newFamily();
        await store.createFamily(revoked, NOW);
        await store.revokeFamilies({ familyId: revoked.family.familyId }, NOW);
        expect(await store.inspect(revoked.tokenHash, NOW)).toBeUndefined();
      }));

    it("inspects by the caller's clock: no token past its idle deadline or its family's end, and no unknown one", () =>
      withStore(async (store) => {
        const idle = newFamily();
        await store.createFamily(idle, NOW);
        expect(await store.inspect(idle.tokenHash, idle.tokenExpiresAtMs - 1)).toBeDefined();
        expect(await store.inspect(idle.tokenHash, idle.tokenExpiresAtMs)).toBeUndefined();

        // A token whose own deadline outlives its family (never issued so, but the end rules).
        const ended = newFamily({ expiresAtMs: NOW + 5_000 });
        await store.createFamily(ended, NOW);
        expect(await store.inspect(ended.tokenHash, NOW + 4_999)).toBeDefined();
        expect(await store.inspect(ended.tokenHash, NOW + 5_000)).toBeUndefined();

        expect(await store.inspect("h-never-issued", NOW)).toBeUndefined();
      }));

    it("reports an entry revoked until its expiry, keeping the later expiry", () =>
      withStore(async (store) => {
        expect(
          await store.revoke(
            [
              { id: "j1", expiresAtMs: NOW + 1_000 },
              { id: "j2", expiresAtMs: NOW },
            ],
            NOW,
          ),
        ).toEqual([{ id: "j1", expiresAtMs: NOW + 1_000 }]);
        expect(await store.isRevoked("j1", NOW + 999)).toBe(true);
        expect(await store.isRevoked("j1", NOW + 1_000)).toBe(false);
        expect(await store.isRevoked("j2", NOW - 1)).toBe(false);
        expect(await store.revoke([{ id: "j1", expiresAtMs: NOW + 500 }], NOW)).toEqual([]);
        expect(await store.isRevoked("j1", NOW + 999)).toBe(true);
        await store.revoke([{ id: "j1", expiresAtMs: NOW + 5_000 }], NOW);
        expect(await store.isRevoked("j1", NOW + 4_999)).toBe(true);
      }));

    it("serves a snapshot of live entries and then every later entry from its cursor", () =>
      withStore(async (store) => {
        await store.revoke([{ id: "old", expiresAtMs: NOW + 1_000 }], NOW);
        await store.revoke([{ id: "dead", expiresAtMs: NOW + 10 }], NOW);
        const snapshot = await store.snapshot(NOW + 10);
        expect(snapshot.entries).toEqual([{ id: "old", expiresAtMs: NOW + 1_000 }]);
        expect(await store.eventsAfter(snapshot.cursor, 100)).toEqual([]);

        let wakeUps = 0;
        const stop = store.onEvents(() => (wakeUps += 1));
        try {
          await store.revoke([{ id: "new-1", expiresAtMs: NOW + 2_000 }], NOW + 10);
          await store.revoke([{ id: "new-2", expiresAtMs: NOW + 2_000 }], NOW + 10);
          await until(() => wakeUps > 0, "a feed wake-up");
        } finally {
          stop();
        }
        const events = await store.eventsAfter(snapshot.cursor, 100);
        expect(events).not.toBe("gone");
        const list = events === "gone" ? [] : events;
        expect(list.map((event) => event.entry)).toEqual([
          { id: "new-1", expiresAtMs: NOW + 2_000 },
          { id: "new-2", expiresAtMs: NOW + 2_000 },
        ]);
        expect(await store.eventsAfter(list[0]!.cursor, 100)).toEqual([list[1]]);
        expect(await store.eventsAfter(list[1]!.cursor, 100)).toEqual([]);
        expect(await store.eventsAfter(snapshot.cursor, 1)).toEqual([list[0]]);
      }));

    it("starts an empty feed with an empty snapshot whose cursor reads no events", () =>
      withStore(async (store) => {
        const snapshot = await store.snapshot(NOW);
        expect(snapshot.entries).toEqual([]);
        expect(await store.eventsAfter(snapshot.cursor, 10)).toEqual([]);
        await store.revoke([{ id: "first", expiresAtMs: NOW + 1_000 }], NOW);
        const events = await store.eventsAfter(snapshot.cursor, 10);
        expect(events === "gone" ? events : events.map((e) => e.entry.id)).toEqual(["first"]);
      }));

    it("answers a cursor it never issued with gone, so the reader takes a snapshot", () =>
      withStore(async (store) => {
        await store.revoke([{ id: "j", expiresAtMs: NOW + 1_000 }], NOW);
        expect(await store.eventsAfter("not-a-cursor", 10)).toBe("gone");
        expect(await store.eventsAfter("r:99999999999999-0", 10)).toBe("gone");
      }));
  });
}
