import { createPrivateKey, generateKeyPair } from "node:crypto";
import { promisify } from "node:util";
import { KeyRing, type StagedKey } from "./key-ring.ts";
import { openPrivateKey, sealPrivateKey, type KeyRecord, type KeyStore } from "./key-store.ts";
import { localSigner, newKeyId, type SigningAlgorithm } from "./signer.ts";

const generate = promisify(generateKeyPair);

/** Blocks an add when any stored key exists at all (first start of several replicas). */
const ANY_KEY = -Number.MAX_SAFE_INTEGER;

/** Settings of a {@link KeyManager}. */
export interface KeyManagerDeps {
  readonly store: KeyStore;
  readonly algorithm: SigningAlgorithm;
  readonly nowMs: () => number;
  /** Key-encryption key (32 bytes) sealing private keys at rest; undefined stores them plain. */
  readonly kek: Buffer | undefined;
  /**
   * How long a new key is published before it signs: at least the longest time a verifier
   * caches the JWKS, so every cache holds the key before any token it signs arrives.
   */
  readonly publishLeadMs: number;
  /** How long a key signs before the next one is staged; the schedule's period. */
  readonly rotationIntervalMs: number;
  /** How long a key stays published after it stopped signing (longest token life + leeway). */
  readonly retainMs: number;
}

/** A rotation that was asked for: the key that will sign, and when. */
export interface StagedRotation {
  readonly kid: string;
  readonly publishedAtMs: number;
  readonly activatesAtMs: number;
}

/**
 * Persists signing keys and rotates them on a schedule and on demand, without a restart
 * (requirements 2.5, 2.6). A rotation stages a new key: published at once, signing after
 * `publishLeadMs`; the old key stays published for `retainMs` after it stops signing. Replicas
 * sharing the store converge on the same keys: each `tick` reloads the store, and at most one
 * key is pending at a time.
 */
export class KeyManager {
  readonly #deps: KeyManagerDeps;
  readonly #signers = new Map<string, StagedKey>();
  #ring: KeyRing | undefined;

  constructor(deps: KeyManagerDeps) {
    this.#deps = deps;
  }

  /** The ring issuers sign with; valid after {@link start}. */
  get ring(): KeyRing {
    if (this.#ring === undefined) throw new Error("KeyManager.start() has not run");
    return this.#ring;
  }

  /** Loads the stored keys, creating the first (signing at once) when there are none. */
  async start(): Promise<void> {
    const nowMs = this.#deps.nowMs();
    let records = await this.#deps.store.list();
    if (records.length === 0) {
      // Nobody can hold an older JWKS than "no keys", so the very first key may sign at once.
      await this.#deps.store.addUnless(await this.#newRecord(nowMs, nowMs), ANY_KEY);
      records = await this.#deps.store.list();
    }
    this.#load(records);
  }

  /**
   * Stages a new key unless one is pending already, in which case that one is returned. The
   * operator RPC and the schedule both come here.
   */
  async rotate(): Promise<StagedRotation> {
    const nowMs = this.#deps.nowMs();
    const record = await this.#deps.store.addUnless(
      await this.#newRecord(nowMs, nowMs + this.#deps.publishLeadMs),
      nowMs,
    );
    this.#load(await this.#deps.store.list());
    return {
      kid: record.kid,
      publishedAtMs: record.publishedAtMs,
      activatesAtMs: record.activatesAtMs,
    };
  }

  /**
   * The periodic step: reload what replicas stored, stage a rotation when the newest key has
   * signed for a whole interval, and forget keys no token can need any more.
   */
  async tick(): Promise<void> {
    const nowMs = this.#deps.nowMs();
    const records = await this.#deps.store.list();
    this.#load(records);
    const newest = Math.max(...records.map((record) => record.activatesAtMs));
    if (newest <= nowMs && nowMs - newest >= this.#deps.rotationIntervalMs) await this.rotate();
    const schedule = this.ring.schedule;
    const expired = schedule
      .slice(0, -1)
      .filter((key, i) => schedule[i + 1]!.activatesAtMs + this.#deps.retainMs <= nowMs)
      .map((key) => key.signer.keyId);
    if (expired.length > 0) {
      await this.#deps.store.remove(expired);
      this.#load(await this.#deps.store.list());
    }
  }

  async #newRecord(publishedAtMs: number, activatesAtMs: number): Promise<KeyRecord> {
    const { privateKey } =
      this.#deps.algorithm === "ES256"
        ? await generate("ec", { namedCurve: "P-256" })
        : await generate("ed25519");
    const kid = newKeyId();
    const pkcs8 = privateKey.export({ format: "der", type: "pkcs8" });
    return {
      kid,
      algorithm: this.#deps.algorithm,
      publishedAtMs,
      activatesAtMs,
      privateKey: sealPrivateKey(pkcs8, kid, this.#deps.kek),
    };
  }

  #load(records: readonly KeyRecord[]): void {
    const keys = records.map((record) => {
      const known = this.#signers.get(record.kid);
      if (known !== undefined) return known;
      const der = openPrivateKey(record.privateKey, record.kid, this.#deps.kek);
      const key = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
      const staged: StagedKey = {
        signer: localSigner(key, record.algorithm, record.kid),
        publishedAtMs: record.publishedAtMs,
        activatesAtMs: record.activatesAtMs,
      };
      this.#signers.set(record.kid, staged);
      return staged;
    });
    if (this.#ring === undefined) {
      this.#ring = KeyRing.staged({ keys, nowMs: this.#deps.nowMs, retainMs: this.#deps.retainMs });
    } else {
      this.#ring.replace(keys);
    }
  }
}
