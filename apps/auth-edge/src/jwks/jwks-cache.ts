import { setTimeout as delay } from "node:timers/promises";
import { importJWK, type CryptoKey, type JWK } from "jose";
import { ServiceError } from "@authplat/errors";

/** A verification key from the JWKS, ready for use. */
export interface VerificationKey {
  readonly kid: string;
  /** The only algorithm this key may verify (RFC 8725 §3.1: never trust the token's alg). */
  readonly alg: string;
  readonly key: CryptoKey;
}

/** A public JWK as the key source returns it. */
export interface SourceJwk extends JWK {
  readonly kid: string;
  readonly alg: string;
}

/** Dependencies of {@link JwksCache}. */
export interface JwksCacheDeps {
  /** Fetches the current key set (from the token service). */
  readonly fetchKeys: () => Promise<readonly SourceJwk[]>;
  /** Algorithms this verifier accepts; keys for other algorithms are ignored. */
  readonly algorithms: readonly string[];
  /** Milliseconds since the epoch. */
  readonly nowMs: () => number;
  /** Least time between two fetches caused by unknown key IDs (protects the key source). */
  readonly minRefetchIntervalMs: number;
  /** Called when a fetch fails; the old snapshot stays in use. */
  readonly onFetchError?: (error: unknown) => void;
}

type Snapshot = ReadonlyMap<string, VerificationKey>;

/**
 * A cache of verification keys with atomic refresh (requirement 1.5): a refresh builds a
 * complete new snapshot and swaps it in with one assignment, so readers see the old set or
 * the new set, never a mix. A failed refresh keeps the old snapshot. An unknown `kid` triggers
 * at most one refresh per `minRefetchIntervalMs`, and concurrent misses share one fetch.
 */
export class JwksCache {
  readonly #deps: JwksCacheDeps;
  #snapshot: Snapshot | undefined;
  #inFlight: Promise<void> | undefined;
  #lastFetchStartedMs = Number.NEGATIVE_INFINITY;

  constructor(deps: JwksCacheDeps) {
    this.#deps = deps;
  }

  /** Whether a key set has been loaded at least once. */
  get loaded(): boolean {
    return this.#snapshot !== undefined;
  }

  /** The key IDs of the current snapshot. */
  get keyIds(): readonly string[] {
    return [...(this.#snapshot?.keys() ?? [])];
  }

  /**
   * Fetches the key set now and swaps it in. Concurrent callers share one fetch. Rejects with
   * the fetch error; the previous snapshot stays in place.
   */
  refresh(): Promise<void> {
    this.#inFlight ??= this.#load().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  /**
   * Fetches until a key set is loaded, backing off from 200 ms to 5 s between attempts and
   * reporting each failure to `onFetchError`. Rejects when `signal` aborts first.
   */
  async refreshUntilLoaded(signal: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.refresh();
        return;
      } catch (error) {
        this.#deps.onFetchError?.(error);
      }
      await delay(Math.min(200 * 2 ** attempt, 5_000), undefined, { signal });
    }
  }

  async #load(): Promise<void> {
    this.#lastFetchStartedMs = this.#deps.nowMs();
    const jwks = await this.#deps.fetchKeys();
    const next = new Map<string, VerificationKey>();
    for (const jwk of jwks) {
      if (!this.#deps.algorithms.includes(jwk.alg) || next.has(jwk.kid)) continue;
      if (jwk.use !== undefined && jwk.use !== "" && jwk.use !== "sig") continue;
      const key = await importJWK({ ...jwk, ext: false }, jwk.alg);
      if (key instanceof Uint8Array) continue; // symmetric keys are never accepted
      next.set(jwk.kid, Object.freeze({ kid: jwk.kid, alg: jwk.alg, key }));
    }
    this.#snapshot = next;
  }

  /**
   * The key for `kid`, refreshing the set first when the kid is unknown and the refetch
   * interval allows. Returns undefined when the key is not in the (refreshed) set. Throws
   * UNAVAILABLE when no key set has ever been loaded (fail closed).
   */
  async keyFor(kid: string): Promise<VerificationKey | undefined> {
    const known = this.#snapshot?.get(kid);
    if (known !== undefined) return known;
    const dueForRefetch =
      this.#deps.nowMs() - this.#lastFetchStartedMs >= this.#deps.minRefetchIntervalMs;
    if (dueForRefetch || this.#inFlight !== undefined) {
      try {
        await this.refresh();
      } catch (error) {
        this.#deps.onFetchError?.(error);
      }
    }
    if (this.#snapshot === undefined) {
      throw new ServiceError("UNAVAILABLE", "signing keys are not available yet", {
        retryAfterMs: 1_000,
      });
    }
    return this.#snapshot.get(kid);
  }
}
