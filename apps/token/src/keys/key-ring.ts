import type { PublicJwk, Signer } from "./signer.ts";

/**
 * Where a key is in its life (DESIGN §4, staged rotation): `next` keys are published before
 * they sign, the `active` key signs, `retired` keys stay published until every token they
 * signed has expired.
 */
export type KeyStatus = "next" | "active" | "retired";

/** A published key and its status. */
export interface PublishedKey {
  readonly jwk: PublicJwk;
  readonly status: KeyStatus;
}

/** A key on a rotation schedule. */
export interface StagedKey {
  readonly signer: Signer;
  /** Published in the JWKS from this instant (ms since the epoch). */
  readonly publishedAtMs: number;
  /** Signs from this instant on, until a key with a later `activatesAtMs` takes over. */
  readonly activatesAtMs: number;
}

/** Options of {@link KeyRing.staged}. */
export interface StagedKeyRingOptions {
  readonly keys: readonly StagedKey[];
  readonly nowMs: () => number;
  /**
   * How long a key stays published after it stopped signing: at least the longest lifetime of
   * a token it signed plus the verifiers' clock tolerance.
   */
  readonly retainMs: number;
}

/**
 * The signing keys of the token service at any instant: exactly one active signer plus
 * published-only keys. Either fixed (one key, optionally extra published keys) or on a rotation
 * schedule whose stages follow from each key's instants and the clock. A rotation replaces the
 * whole schedule at once, so readers never see a half-updated set.
 */
export class KeyRing {
  #keys: readonly StagedKey[];
  readonly #extra: readonly PublishedKey[];
  readonly #nowMs: () => number;
  readonly #retainMs: number;

  /** A fixed ring: `active` signs; `others` are published as given. */
  constructor(active: Signer, others: readonly PublishedKey[] = []) {
    if (others.some((key) => key.status === "active" || key.jwk.kid === active.keyId)) {
      throw new Error("a key ring has exactly one active key and unique key IDs");
    }
    this.#keys = [{ signer: active, publishedAtMs: -Infinity, activatesAtMs: -Infinity }];
    this.#extra = Object.freeze([...others]);
    this.#nowMs = () => 0;
    this.#retainMs = Infinity;
  }

  /** A ring on a rotation schedule; at least one key must be active at every instant it is read. */
  static staged(options: StagedKeyRingOptions): KeyRing {
    const ring = new KeyRing(options.keys[0]!.signer);
    ring.#staged = options;
    ring.replace(options.keys);
    return ring;
  }

  #staged: StagedKeyRingOptions | undefined;

  /** Replaces the schedule (after a rotation or a reload); takes effect for the next read. */
  replace(keys: readonly StagedKey[]): void {
    if (keys.length === 0) throw new Error("a key ring needs at least one key");
    if (new Set(keys.map((key) => key.signer.keyId)).size !== keys.length) {
      throw new Error("a key ring has unique key IDs");
    }
    if (keys.some((key) => key.activatesAtMs < key.publishedAtMs)) {
      throw new Error("a key must be published before it signs");
    }
    this.#keys = Object.freeze([...keys].sort((a, b) => a.activatesAtMs - b.activatesAtMs));
  }

  #now(): number {
    return this.#staged === undefined ? this.#nowMs() : this.#staged.nowMs();
  }

  #retain(): number {
    return this.#staged === undefined ? this.#retainMs : this.#staged.retainMs;
  }

  /** The index of the key that signs at `nowMs`: the latest activated. */
  #activeIndex(nowMs: number): number {
    let index = -1;
    for (let i = 0; i < this.#keys.length; i++) {
      if (this.#keys[i]!.activatesAtMs <= nowMs) index = i;
    }
    if (index < 0) throw new Error("no signing key is active yet");
    return index;
  }

  /** The signer new tokens are signed with now. */
  get active(): Signer {
    return this.#keys[this.#activeIndex(this.#now())]!.signer;
  }

  /** The keys on the schedule, oldest activation first (for persistence and tests). */
  get schedule(): readonly StagedKey[] {
    return this.#keys;
  }

  /** Every key verifiers must accept now: the active one first, then next, then retired. */
  get published(): readonly PublishedKey[] {
    const nowMs = this.#now();
    const activeIndex = this.#activeIndex(nowMs);
    const retainMs = this.#retain();
    const next: PublishedKey[] = [];
    const retired: PublishedKey[] = [];
    this.#keys.forEach((key, i) => {
      if (i === activeIndex || key.publishedAtMs > nowMs) return;
      if (i > activeIndex) {
        next.push({ jwk: key.signer.publicJwk, status: "next" });
        return;
      }
      // Key i stopped signing when key i + 1 activated; it stays while its tokens may live.
      const stoppedAtMs = this.#keys[i + 1]!.activatesAtMs;
      if (stoppedAtMs + retainMs > nowMs) {
        retired.push({ jwk: key.signer.publicJwk, status: "retired" });
      }
    });
    return [
      { jwk: this.#keys[activeIndex]!.signer.publicJwk, status: "active" },
      ...next,
      ...retired,
      ...this.#extra,
    ];
  }
}
