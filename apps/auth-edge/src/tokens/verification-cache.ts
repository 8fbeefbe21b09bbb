/** Settings of {@link VerificationCache}. */
export interface VerificationCacheOptions {
  /** The most entries held; past it the least recently used goes. At least 1. */
  readonly maxEntries: number;
  /** Keys longer than this (in characters) are never stored, which bounds the memory held. */
  readonly maxKeyLength: number;
}

/**
 * A bounded least-recently-used map from a token to what verifying it established. It only
 * stores and forgets: what an entry means, and when it may be used, is its caller's business
 * (`TokenValidator` re-checks the key, revocation, time and scopes on every hit).
 *
 * The token string itself is the key: a `Map` lookup hashes it once (under a microsecond for
 * a typical token) where a SHA-256 digest costs several, and keys are capped at
 * `maxKeyLength`, so the memory stays bounded by `maxEntries` × `maxKeyLength`.
 *
 * @internal
 */
export class VerificationCache<V> {
  readonly #maxEntries: number;
  readonly #maxKeyLength: number;
  // A Map iterates in insertion order: re-inserting on every hit keeps the least recently
  // used entry first.
  readonly #entries = new Map<string, V>();

  constructor(options: VerificationCacheOptions) {
    if (!Number.isSafeInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError("maxEntries must be a whole number of at least 1");
    }
    this.#maxEntries = options.maxEntries;
    this.#maxKeyLength = options.maxKeyLength;
  }

  /** How many entries are held. */
  get size(): number {
    return this.#entries.size;
  }

  /** The entry for `key`, now the most recently used, or undefined. */
  get(key: string): V | undefined {
    const entries = this.#entries;
    const value = entries.get(key);
    if (value !== undefined) {
      entries.delete(key);
      entries.set(key, value);
    }
    return value;
  }

  /** Stores `value` for `key` (unless the key is too long), evicting the least recently used. */
  set(key: string, value: V): void {
    if (key.length > this.#maxKeyLength) return;
    const entries = this.#entries;
    entries.delete(key);
    entries.set(key, value);
    if (entries.size > this.#maxEntries) {
      const oldest = entries.keys().next();
      if (oldest.done !== true) entries.delete(oldest.value);
    }
  }

  /** Forgets `key`. */
  delete(key: string): void {
    this.#entries.delete(key);
  }
}
