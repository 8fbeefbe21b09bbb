import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { redisBackend } from "@authplat/testing";
import { KeyManager, type KeyManagerDeps } from "./key-manager.ts";
import { FileKeyStore, openPrivateKey, RedisKeyStore, sealPrivateKey } from "./key-store.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const MINUTE = 60_000;
let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), "token-keys-"));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

function manager(
  overrides: Partial<KeyManagerDeps> & Pick<KeyManagerDeps, "store">,
  clock = { ms: NOW },
) {
  return new KeyManager({
    algorithm: "ES256",
    nowMs: () => clock.ms,
    kek: undefined,
    publishLeadMs: 10 * MINUTE,
    rotationIntervalMs: 60 * MINUTE,
    retainMs: 16 * MINUTE,
    ...overrides,
  });
}

describe("sealPrivateKey / openPrivateKey", () => {
  it("round-trips under the key-encryption key and refuses another key or another kid", () => {
    const kek = randomBytes(32);
    const secret = randomBytes(48);
    const sealed = sealPrivateKey(secret, "kid-1", kek);
    expect(sealed.format).toBe("aes-256-gcm");
    expect(JSON.stringify(sealed)).not.toContain(secret.toString("base64"));
    expect(openPrivateKey(sealed, "kid-1", kek)).toEqual(secret);
    expect(() => openPrivateKey(sealed, "kid-1", randomBytes(32))).toThrow(
      "signing key kid-1 does not open with the configured key-encryption key",
    );
    expect(() => openPrivateKey(sealed, "kid-2", kek)).toThrow("does not open");
    expect(() => openPrivateKey(sealed, "kid-1", undefined)).toThrow(
      "signing key kid-1 is encrypted and no key-encryption key is set",
    );
    expect(() => openPrivateKey(sealPrivateKey(secret, "k", undefined), "k", kek)).toThrow(
      "signing key k is stored unencrypted",
    );
  });
});

describe("KeyManager", () => {
  it("keeps its keys across a restart, so earlier tokens stay verifiable and the same key signs", async () => {
    const first = manager({ store: new FileKeyStore(directory) });
    await first.start();
    const kid = first.ring.active.keyId;
    const mode = (await stat(join(directory, "signing-keys.json"))).mode & 0o777;
    expect(mode).toBe(0o600);
    const second = manager({ store: new FileKeyStore(directory) });
    await second.start();
    expect(second.ring.active.keyId).toBe(kid);
    expect(second.ring.active.publicJwk).toEqual(first.ring.active.publicJwk);
  });

  it("stages an on-demand rotation: published at once, signing after the lead, one pending at a time", async () => {
    const clock = { ms: NOW };
    const keys = manager({ store: new FileKeyStore(directory) }, clock);
    await keys.start();
    const old = keys.ring.active.keyId;
    const staged = await keys.rotate();
    expect(staged).toMatchObject({ publishedAtMs: NOW, activatesAtMs: NOW + 10 * MINUTE });
    expect(await keys.rotate()).toEqual(staged);
    expect(keys.ring.published.map((k) => [k.jwk.kid, k.status])).toEqual([
      [old, "active"],
      [staged.kid, "next"],
    ]);
    clock.ms = NOW + 10 * MINUTE;
    expect(keys.ring.active.keyId).toBe(staged.kid);
    expect(keys.ring.published.map((k) => [k.jwk.kid, k.status])).toEqual([
      [staged.kid, "active"],
      [old, "retired"],
    ]);
    clock.ms = NOW + 26 * MINUTE;
    await keys.tick();
    expect(keys.ring.published.map((k) => k.jwk.kid)).toEqual([staged.kid]);
    expect(JSON.parse(await readFile(join(directory, "signing-keys.json"), "utf8"))).toHaveLength(
      1,
    );
  });

  it("rotates on its schedule when ticked", async () => {
    const clock = { ms: NOW };
    const keys = manager({ store: new FileKeyStore(directory) }, clock);
    await keys.start();
    clock.ms = NOW + 59 * MINUTE;
    await keys.tick();
    expect(keys.ring.published).toHaveLength(1);
    clock.ms = NOW + 60 * MINUTE;
    await keys.tick();
    expect(keys.ring.published.map((k) => k.status)).toEqual(["active", "next"]);
  });

  it("lets replicas sharing Redis agree on one first key and one staged key, sealed at rest", async () => {
    const backend = await redisBackend();
    if (backend === undefined) return;
    try {
      const kek = randomBytes(32);
      const replicas = [0, 1, 2].map(() =>
        manager({ store: new RedisKeyStore(backend.client, backend.prefix), kek }),
      );
      await Promise.all(replicas.map((replica) => replica.start()));
      expect(new Set(replicas.map((r) => r.ring.active.keyId)).size).toBe(1);
      const staged = await Promise.all(replicas.map((replica) => replica.rotate()));
      expect(new Set(staged.map((s) => s.kid)).size).toBe(1);
      const stored = await backend.client.hvals(`${backend.prefix}signing-keys`);
      expect(stored).toHaveLength(2);
      for (const value of stored) expect(JSON.parse(value).privateKey.format).toBe("aes-256-gcm");
      const stranger = manager({
        store: new RedisKeyStore(backend.client, backend.prefix),
        kek: randomBytes(32),
      });
      await expect(stranger.start()).rejects.toThrow(
        "does not open with the configured key-encryption key",
      );
    } finally {
      await backend.cleanup();
    }
  });
});
