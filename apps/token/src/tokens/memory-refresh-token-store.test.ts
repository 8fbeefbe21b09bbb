import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryRefreshTokenStore } from "./memory-refresh-token-store.ts";
import {
  CONTRACT_NOW as NOW,
  describeTokenStoreContract,
  newFamily,
  rotation,
} from "./refresh-token-store.contract.ts";

describeTokenStoreContract("memory", async () => ({ store: new MemoryRefreshTokenStore() }));

let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), "token-store-"));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

describeTokenStoreContract("memory, journalled", async () => ({
  store: new MemoryRefreshTokenStore({ file: join(directory, "contract.jsonl") }),
}));

describe("MemoryRefreshTokenStore bounds", () => {
  it("drops expired records to make room and refuses with UNAVAILABLE when only live ones remain", async () => {
    const store = new MemoryRefreshTokenStore({ maxEntries: 9 });
    // Each family holds three records: the family, its token and its access token.
    const shortLived = newFamily({ expiresAtMs: NOW + 1_000 });
    await store.createFamily(shortLived, NOW);
    await store.createFamily(newFamily(), NOW);
    await store.createFamily(newFamily(), NOW);
    expect(store.size).toBe(9);
    await expect(store.createFamily(newFamily(), NOW + 999)).rejects.toMatchObject({
      code: "UNAVAILABLE",
      message: "the token store is full",
    });
    await store.createFamily(newFamily(), NOW + 1_000);
    expect(store.size).toBe(9);
    expect(await store.familyOfToken(shortLived.tokenHash, NOW)).toBeUndefined();
  });

  it("forgets expired revocations and access tokens in a sweep, never live ones", async () => {
    const store = new MemoryRefreshTokenStore();
    await store.revoke(
      [
        { id: "short", expiresAtMs: NOW + 10 },
        { id: "long", expiresAtMs: NOW + 10_000_000 },
      ],
      NOW,
    );
    const family = newFamily();
    await store.createFamily(family, NOW);
    expect(store.size).toBe(5);
    store.sweep(family.accessToken.expiresAtMs);
    expect(store.size).toBe(3);
    expect(await store.isRevoked("long", family.accessToken.expiresAtMs)).toBe(true);
    expect(await store.familyOfToken(family.tokenHash, family.accessToken.expiresAtMs)).toEqual(
      family.family,
    );
  });

  it("keeps at most the configured feed length for resuming readers", async () => {
    const store = new MemoryRefreshTokenStore({ feedLength: 2 });
    const { cursor } = await store.snapshot(NOW);
    for (let i = 0; i < 5; i++)
      await store.revoke([{ id: `j${i}`, expiresAtMs: NOW + 1_000 }], NOW);
    expect(await store.eventsAfter(cursor, 10)).toBe("gone");
  });
});

describe("MemoryRefreshTokenStore journal", () => {
  it("never makes a used token usable or a revoked token valid again after a restart", async () => {
    const file = join(directory, "token", "store.jsonl");
    const before = new MemoryRefreshTokenStore({ file });
    const used = newFamily();
    const revoked = newFamily({ subject: "bob" });
    await before.createFamily(used, NOW);
    await before.createFamily(revoked, NOW);
    const first = rotation(used.tokenHash);
    await before.rotate(first);
    await before.revokeFamilies({ subject: "bob" }, NOW);
    await before.revoke([{ id: "jti-x", expiresAtMs: NOW + 60_000 }], NOW);
    // No close(): a crash leaves only what was appended.

    const after = new MemoryRefreshTokenStore({ file });
    expect(await after.isRevoked("jti-x", NOW)).toBe(true);
    expect(await after.isRevoked(revoked.accessToken.jti, NOW)).toBe(true);
    expect(await after.rotate(rotation(revoked.tokenHash))).toMatchObject({
      reason: "family_revoked",
    });
    expect(await after.rotate(rotation(used.tokenHash))).toMatchObject({ outcome: "reused" });
    expect(await after.isRevoked(first.accessToken.jti, NOW)).toBe(true);
    await after.close();

    const third = new MemoryRefreshTokenStore({ file });
    expect(await third.rotate(rotation(first.successorHash))).toMatchObject({
      reason: "family_revoked",
    });
    await third.close();
    await before.close();
  });

  it("keeps a family's authorization facts across restarts, in the journal and in its snapshot", async () => {
    const file = join(directory, "store.jsonl");
    const first = new MemoryRefreshTokenStore({ file });
    const created = newFamily({
      roles: ["admin", "orders:viewer"],
      tenant: "acme",
      acr: "phr",
      amr: ["pwd", "hwk"],
      authTimeMs: NOW - 60_000,
    });
    await first.createFamily(created, NOW);
    const request = rotation(created.tokenHash);
    await first.rotate(request);
    await first.close();
    // Replayed from the appended lines, then compacted into a snapshot line...
    const second = new MemoryRefreshTokenStore({ file });
    expect((await second.inspect(request.successorHash, NOW))?.family).toEqual(created.family);
    await second.close();
    expect((await readFile(file, "utf8")).trim().split("\n")).toHaveLength(1);
    // ...which restores them too.
    const third = new MemoryRefreshTokenStore({ file });
    expect((await third.inspect(request.successorHash, NOW))?.family).toEqual(created.family);
    expect(await third.familyOfToken(created.tokenHash, NOW)).toEqual(created.family);
    await third.close();
  });

  it("loads a journal written before families had authorization facts", async () => {
    const file = join(directory, "old.jsonl");
    const family = {
      familyId: "fam-old",
      subject: "user-1",
      clientId: "client-1",
      audience: ["https://api.auth.local"],
      scopes: ["a"],
      sessionId: "s-1",
      createdAtMs: NOW,
      expiresAtMs: NOW + 3_600_000,
    };
    const token = {
      tokenHash: "h-old",
      familyId: "fam-old",
      generation: 0,
      issuedAtMs: NOW,
      expiresAtMs: NOW + 600_000,
    };
    const snapshot = {
      op: "snapshot",
      state: {
        families: [{ record: family, revoked: false, accessTokens: [["at-old", NOW + 900_000]] }],
        tokens: [{ record: token, used: false }],
        revoked: [],
      },
    };
    const appended = {
      op: "family",
      entry: {
        family: { ...family, familyId: "fam-old-2" },
        tokenHash: "h-old-2",
        tokenExpiresAtMs: NOW + 600_000,
        accessToken: { jti: "at-old-2", expiresAtMs: NOW + 900_000 },
      },
      nowMs: NOW,
    };
    await writeFile(file, `${JSON.stringify(snapshot)}\n${JSON.stringify(appended)}\n`);
    const store = new MemoryRefreshTokenStore({ file });
    expect(await store.inspect("h-old", NOW)).toEqual({ family, token });
    expect(await store.familyOfToken("h-old-2", NOW)).toEqual({ ...family, familyId: "fam-old-2" });
    expect(await store.rotate(rotation("h-old"))).toMatchObject({ outcome: "rotated", family });
    await store.close();
  });

  it("stores hashes only, and the journal is compacted to one snapshot line at start", async () => {
    const file = join(directory, "store.jsonl");
    const store = new MemoryRefreshTokenStore({ file });
    await store.createFamily(newFamily(), NOW);
    await store.createFamily(newFamily(), NOW);
    await store.close();
    expect((await readFile(file, "utf8")).trim().split("\n")).toHaveLength(3);
    await new MemoryRefreshTokenStore({ file }).close();
    const lines = (await readFile(file, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!).state.families).toHaveLength(2);
  });
});
