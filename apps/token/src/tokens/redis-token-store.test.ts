import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { redisBackend } from "@authplat/testing";
import { RedisTokenStore } from "./redis-token-store.ts";
import {
  CONTRACT_NOW as NOW,
  describeTokenStoreContract,
  newFamily,
  rotation,
} from "./refresh-token-store.contract.ts";

describeTokenStoreContract("redis", async () => {
  const backend = await redisBackend();
  if (backend === undefined) return undefined;
  return {
    store: new RedisTokenStore({ client: backend.client, prefix: backend.prefix }),
    cleanup: () => backend.cleanup(),
  };
});

describe("RedisTokenStore", () => {
  it("keeps only hashes, and every record key expires when its family ends", async () => {
    const backend = await redisBackend();
    if (backend === undefined) return;
    try {
      const store = new RedisTokenStore({ client: backend.client, prefix: backend.prefix });
      const created = newFamily({ expiresAtMs: NOW + 60_000 });
      await store.createFamily(created, NOW);
      const request = rotation(created.tokenHash);
      await store.rotate(request);
      const keys = await backend.client.keys(`${backend.prefix}*`);
      expect(keys.sort()).toEqual(
        [
          `fam:${created.family.familyId}`,
          `fam:${created.family.familyId}:at`,
          `rt:${created.tokenHash}`,
          `rt:${request.successorHash}`,
          "sid:s-1",
          "sub:user-1",
        ]
          .map((key) => `${backend.prefix}${key}`)
          .sort(),
      );
      for (const key of keys) {
        const ttl = await backend.client.pttl(key);
        expect(ttl, key).toBeGreaterThan(0);
        expect(ttl, key).toBeLessThanOrEqual(60_000);
      }
    } finally {
      await backend.cleanup();
    }
  });

  it("serves one feed to replicas sharing Redis: a revocation through one wakes and reaches the other", async () => {
    const backend = await redisBackend();
    if (backend === undefined) return;
    // As main.ts configures it: commands fail at once while disconnected.
    const replica = backend.client.duplicate({ enableOfflineQueue: false, lazyConnect: true });
    await replica.connect();
    try {
      const a = new RedisTokenStore({ client: backend.client, prefix: backend.prefix });
      const b = new RedisTokenStore({
        client: replica,
        prefix: backend.prefix,
        feedPollIntervalMs: 3_600_000,
      });
      const { cursor } = await b.snapshot(NOW);
      let woken = false;
      const stop = b.onEvents(() => (woken = true));
      try {
        // The subscription is ready once a wake-up sent before it can no longer be missed.
        const deadline = Date.now() + 5_000;
        while (!woken && Date.now() < deadline) {
          await backend.client.publish(`${backend.prefix}events`, "1");
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        woken = false;
        await a.revoke([{ id: "jti-a", expiresAtMs: NOW + 60_000 }], NOW);
        while (!woken && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        expect(woken).toBe(true);
      } finally {
        stop();
      }
      const events = await b.eventsAfter(cursor, 10);
      expect(events === "gone" ? events : events.map((e) => e.entry)).toEqual([
        { id: "jti-a", expiresAtMs: NOW + 60_000 },
      ]);
      expect(await b.isRevoked("jti-a", NOW)).toBe(true);
    } finally {
      replica.disconnect();
      await backend.cleanup();
    }
  });

  it("answers UNAVAILABLE, never a result, when Redis cannot be reached", async () => {
    const client = new Redis({
      port: 1,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    const store = new RedisTokenStore({ client, prefix: "unreachable:" });
    await expect(store.ping()).rejects.toMatchObject({
      code: "UNAVAILABLE",
      message: "the token store is unavailable",
    });
    await expect(store.rotate(rotation("h-x"))).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await expect(store.isRevoked("j", NOW)).rejects.toMatchObject({ code: "UNAVAILABLE" });
    client.disconnect();
  });
});
