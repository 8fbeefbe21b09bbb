import type { PolicyDecision } from "./authorization.ts";

/** Settings of a {@link DecisionCache}. */
export interface DecisionCacheOptions {
  /** Most entries kept; the least recently used goes first. */
  readonly maxEntries: number;
  /** How long an entry is served, in milliseconds. */
  readonly ttlMs: number;
  /** The clock, in epoch milliseconds. */
  readonly nowMs: () => number;
}

interface Entry {
  readonly decision: PolicyDecision;
  readonly expiresAtMs: number;
}

/**
 * A bounded LRU cache of decisions with a TTL (requirement 5.4). The key is the policy version
 * plus the engine's cache key of the request, which covers every input a decision can depend
 * on; a reload changes the version, so entries of the old set are never served again (they age
 * out of the LRU).
 */
export class DecisionCache {
  readonly #options: DecisionCacheOptions;
  readonly #entries = new Map<string, Entry>();

  constructor(options: DecisionCacheOptions) {
    this.#options = options;
  }

  /** The decision cached for `key` under `version`, if fresh. */
  get(version: string, key: string): PolicyDecision | undefined {
    const fullKey = `${version}\n${key}`;
    const entry = this.#entries.get(fullKey);
    if (entry === undefined) return undefined;
    this.#entries.delete(fullKey);
    if (entry.expiresAtMs <= this.#options.nowMs()) return undefined;
    this.#entries.set(fullKey, entry);
    return entry.decision;
  }

  /** Caches `decision` for `key` under `version`. */
  set(version: string, key: string, decision: PolicyDecision): void {
    const fullKey = `${version}\n${key}`;
    this.#entries.delete(fullKey);
    this.#entries.set(fullKey, {
      decision,
      expiresAtMs: this.#options.nowMs() + this.#options.ttlMs,
    });
    while (this.#entries.size > this.#options.maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  /** Number of entries held (fresh or not yet evicted). */
  get size(): number {
    return this.#entries.size;
  }
}
