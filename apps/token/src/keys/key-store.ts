import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { ServiceError } from "@authplat/errors";
import type { SigningAlgorithm } from "./signer.ts";

/** A private key as stored: PKCS#8 DER, either sealed with the key-encryption key or plain. */
export type StoredPrivateKey =
  | { readonly format: "plain"; readonly pkcs8: string }
  | {
      readonly format: "aes-256-gcm";
      readonly iv: string;
      readonly tag: string;
      readonly ciphertext: string;
    };

/** A signing key and its place on the rotation schedule, as persisted. */
export interface KeyRecord {
  readonly kid: string;
  readonly algorithm: SigningAlgorithm;
  /** Published from this instant (ms since the epoch). */
  readonly publishedAtMs: number;
  /** Signs from this instant. */
  readonly activatesAtMs: number;
  readonly privateKey: StoredPrivateKey;
}

/**
 * Where signing keys persist, shared by replicas when the backend is. Every backend keeps
 * records as given; sealing is the caller's business ({@link sealPrivateKey}).
 */
export interface KeyStore {
  /** Every stored key. */
  list(): Promise<KeyRecord[]>;
  /**
   * Adds `record` unless a stored key activates after `unlessActivatingAfterMs`; returns the
   * key that was added or the first such key (so replicas rotating at once agree on one).
   */
  addUnless(record: KeyRecord, unlessActivatingAfterMs: number): Promise<KeyRecord>;
  /** Deletes keys by ID. */
  remove(kids: readonly string[]): Promise<void>;
}

/** Seals a PKCS#8 DER private key with AES-256-GCM under `kek`, bound to its key ID. */
export function sealPrivateKey(
  pkcs8: Buffer,
  kid: string,
  kek: Buffer | undefined,
): StoredPrivateKey {
  if (kek === undefined) return { format: "plain", pkcs8: pkcs8.toString("base64") };
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", kek, iv);
  cipher.setAAD(Buffer.from(kid, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
  return {
    format: "aes-256-gcm",
    iv: iv.toString("base64"),
    tag: cipher.getAuthTag().toString("base64"),
    ciphertext: ciphertext.toString("base64"),
  };
}

/**
 * Opens a stored private key. Throws when it is sealed and `kek` is missing or wrong, or when it
 * is plain and a `kek` is configured (a key-encryption key means every key must be sealed).
 */
export function openPrivateKey(
  stored: StoredPrivateKey,
  kid: string,
  kek: Buffer | undefined,
): Buffer {
  if (stored.format === "plain") {
    if (kek !== undefined) throw new Error(`signing key ${kid} is stored unencrypted`);
    return Buffer.from(stored.pkcs8, "base64");
  }
  if (kek === undefined)
    throw new Error(`signing key ${kid} is encrypted and no key-encryption key is set`);
  const decipher = createDecipheriv("aes-256-gcm", kek, Buffer.from(stored.iv, "base64"));
  decipher.setAAD(Buffer.from(kid, "utf8"));
  decipher.setAuthTag(Buffer.from(stored.tag, "base64"));
  try {
    return Buffer.concat([
      decipher.update(Buffer.from(stored.ciphertext, "base64")),
      decipher.final(),
    ]);
  } catch (error) {
    throw new Error(`signing key ${kid} does not open with the configured key-encryption key`, {
      cause: error,
    });
  }
}

/**
 * Keys in one JSON file in a directory (the embedded default `.dev/token/`, or a volume shared
 * by replicas on one host). Writes go to a temporary file renamed into place, mode 0600.
 */
export class FileKeyStore implements KeyStore {
  readonly #file: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(directory: string) {
    this.#file = join(directory, "signing-keys.json");
  }

  async list(): Promise<KeyRecord[]> {
    try {
      return JSON.parse(await readFile(this.#file, "utf8")) as KeyRecord[];
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
  }

  addUnless(record: KeyRecord, unlessActivatingAfterMs: number): Promise<KeyRecord> {
    return this.#serially(async () => {
      const records = await this.list();
      const pending = records.find((key) => key.activatesAtMs > unlessActivatingAfterMs);
      if (pending !== undefined) return pending;
      await this.#write([...records, record]);
      return record;
    });
  }

  remove(kids: readonly string[]): Promise<void> {
    return this.#serially(async () => {
      const records = await this.list();
      await this.#write(records.filter((key) => !kids.includes(key.kid)));
    });
  }

  #serially<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(operation);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async #write(records: readonly KeyRecord[]): Promise<void> {
    await mkdir(join(this.#file, ".."), { recursive: true, mode: 0o700 });
    const temporary = `${this.#file}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify(records, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, this.#file);
  }
}

// KEYS[1]: the hash of keys. ARGV: kid, record JSON, unlessActivatingAfterMs.
const ADD_UNLESS = `
local values = redis.call('HVALS', KEYS[1])
for _, value in ipairs(values) do
  if tonumber(cjson.decode(value).activatesAtMs) > tonumber(ARGV[3]) then return value end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return ARGV[2]
`;

/** Keys in a Redis hash shared by every replica; private keys must be sealed. */
export class RedisKeyStore implements KeyStore {
  readonly #client: Redis;
  readonly #key: string;

  constructor(client: Redis, prefix: string) {
    this.#client = client;
    this.#key = `${prefix}signing-keys`;
  }

  async list(): Promise<KeyRecord[]> {
    const values = await this.#call(() => this.#client.hvals(this.#key));
    return values.map((value) => JSON.parse(value) as KeyRecord);
  }

  async addUnless(record: KeyRecord, unlessActivatingAfterMs: number): Promise<KeyRecord> {
    const reply = await this.#call(() =>
      this.#client.eval(
        ADD_UNLESS,
        1,
        this.#key,
        record.kid,
        JSON.stringify(record),
        String(unlessActivatingAfterMs),
      ),
    );
    return JSON.parse(reply as string) as KeyRecord;
  }

  async remove(kids: readonly string[]): Promise<void> {
    if (kids.length > 0) await this.#call(() => this.#client.hdel(this.#key, ...kids));
  }

  async #call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw new ServiceError("UNAVAILABLE", "the key store is unavailable", {
        cause: error,
        retryAfterMs: 1_000,
      });
    }
  }
}

/** Keys in this process only: for tests and single-process tools. */
export class MemoryKeyStore implements KeyStore {
  #records: KeyRecord[] = [];

  async list(): Promise<KeyRecord[]> {
    return [...this.#records];
  }

  async addUnless(record: KeyRecord, unlessActivatingAfterMs: number): Promise<KeyRecord> {
    const pending = this.#records.find((key) => key.activatesAtMs > unlessActivatingAfterMs);
    if (pending !== undefined) return pending;
    this.#records.push(record);
    return record;
  }

  async remove(kids: readonly string[]): Promise<void> {
    this.#records = this.#records.filter((key) => !kids.includes(key.kid));
  }
}
