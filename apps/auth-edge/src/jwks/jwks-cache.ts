import { KeyObject } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { importJWK, type CryptoKey, type JWK } from "jose";
import { ServiceError } from "@authplat/errors";

/**
 * A verification key from the JWKS, ready for use. A refresh that brings the same key again
 * (same kid, alg and public key) keeps the same object, so object identity says "this exact
 * key is still in the set".
 */
export interface VerificationKey {
  readonly kid: string;
  /** The only algorithm this key may verify (RFC 8725 §3.1: never trust the token's alg). */
  readonly alg: string;
  /** The key for WebCrypto (and jose). */
  readonly key: CryptoKey;
  /** The same key for `node:crypto`, converted once when the key set is loaded. */
  readonly keyObject: KeyObject;
}

/** A public JWK as the key source returns it. */
export interface SourceJwk extends JWK {
  readonly kid: string;
  readonly alg: string;
}

/** A fetched key set together with how long its source allows it to be cached. */
export interface FetchedKeySet {
  readonly keys: readonly SourceJwk[];
  /**
   * The source's cache lifetime for this set (the JWKS `max_age`), in milliseconds. Absent,
   * negative or not finite: the source sets no limit and the refresh interval alone applies.
   */
  readonly maxAgeMs?: number | undefined;
}

/** Default of {@link JwksCacheDeps.refreshIntervalMs}: five minutes. */
export const DEFAULT_JWKS_REFRESH_INTERVAL_MS = 300_000;

/** Default of {@link JwksCacheDeps.maxStalenessMs}: one hour. */
export const DEFAULT_JWKS_MAX_STALENESS_MS = 3_600_000;

/** Dependencies of {@link JwksCache}. */
export interface JwksCacheDeps {
  /** Fetches the current key set (from the token service), with or without a max-age. */
  readonly fetchKeys: () => Promise<readonly SourceJwk[] | FetchedKeySet>;
  /** Algorithms this verifier accepts; keys for other algorithms are skipped. */
  readonly algorithms: readonly string[];
  /** Milliseconds since the epoch. */
  readonly nowMs: () => number;
  /** Least time between two fetches that lookups cause (protects the key source). */
  readonly minRefetchIntervalMs: number;
  /**
   * How long a loaded set is used before it is fetched again; a shorter max-age from the
   * source wins. Default {@link DEFAULT_JWKS_REFRESH_INTERVAL_MS}.
   */
  readonly refreshIntervalMs?: number;
  /**
   * How old (since the fetch that produced it) a key set may grow while refreshes fail. Past
   * it, lookups fail closed with UNAVAILABLE. Default {@link DEFAULT_JWKS_MAX_STALENESS_MS}.
   */
  readonly maxStalenessMs?: number;
  /** Called when a fetch fails; the old snapshot stays in use until it is too stale. */
  readonly onFetchError?: (error: unknown) => void;
  /**
   * Called for each key of a fetched set that is not used, with its kid (possibly empty) and
   * the reason. Neither argument carries key material.
   */
  readonly onKeySkipped?: (kid: string, reason: string) => void;
}

/** One loaded key set; replaced as a whole, never changed. */
interface Snapshot {
  readonly keys: ReadonlyMap<string, VerificationKey>;
  /** Per kid, the {@link fingerprintOf} the key was loaded from. */
  readonly fingerprints: ReadonlyMap<string, string>;
  /** When the fetch that produced this set started (its age is measured from here). */
  readonly fetchedAtMs: number;
  /** When this set should be replaced: fetch time + min(refresh interval, max-age). */
  readonly refreshDueMs: number;
}

/** The key type and curve each supported algorithm needs (an allowlist). */
const KEY_SHAPE: Readonly<Record<string, { readonly kty: string; readonly crv: string }>> = {
  ES256: { kty: "EC", crv: "P-256" },
  EdDSA: { kty: "OKP", crv: "Ed25519" },
};

// RFC 7518 §6.2.2, §6.3.2 and §6.4.1: members that only private or symmetric keys have.
const SECRET_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/** A short printable rendering of a value that comes from the key source (never key material). */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** Why `jwk` cannot be used as a verification key, or undefined when it can be imported. */
function problemWith(jwk: SourceJwk, algorithms: readonly string[]): string | undefined {
  if (typeof jwk.kid !== "string" || jwk.kid === "") return "it has no kid";
  if (typeof jwk.alg !== "string" || !algorithms.includes(jwk.alg)) {
    return `its alg ${shown(jwk.alg)} is not allowed`;
  }
  const shape = KEY_SHAPE[jwk.alg];
  if (shape === undefined) return `its alg ${shown(jwk.alg)} is not supported`;
  // RFC 8725 §3.1: "each key MUST be used with exactly one algorithm". The key's type and
  // curve must be the ones its alg is made for, so an `oct` secret labelled ES256 (or any
  // other mislabelled key) never becomes a verification key.
  if (jwk.kty !== shape.kty || jwk.crv !== shape.crv) {
    return `${jwk.alg} needs a ${shape.kty} ${shape.crv} key, not ${shown(jwk.kty)} ${shown(jwk.crv)}`;
  }
  if (jwk.use !== undefined && jwk.use !== "" && jwk.use !== "sig") {
    return `its use ${shown(jwk.use)} is not "sig"`;
  }
  if (SECRET_MEMBERS.some((member) => Object.hasOwn(jwk, member))) {
    return "it carries private key members";
  }
  return undefined;
}

/**
 * What makes a usable JWK the key it is: its alg and its public members (RFC 7518 §6.2.1,
 * RFC 8037 §2). Two JWKs with the same fingerprint verify exactly the same signatures.
 */
function fingerprintOf(jwk: SourceJwk): string {
  return JSON.stringify([jwk.alg, jwk.kty, jwk.crv, jwk.x, jwk.y]);
}

function isJwkList(value: readonly SourceJwk[] | FetchedKeySet): value is readonly SourceJwk[] {
  return Array.isArray(value);
}

/** Least wait between two scheduled refreshes, whatever the clock says. */
const MIN_SCHEDULE_DELAY_MS = 1_000;
/** Bounds of the retry guidance given with UNAVAILABLE. */
const MIN_RETRY_AFTER_MS = 1_000;
const MAX_RETRY_AFTER_MS = 60_000;

/**
 * A cache of verification keys with atomic refresh (requirement 1.5): a refresh builds a
 * complete new snapshot and swaps it in with one assignment, so readers see the old set or
 * the new set, never a mix.
 *
 * - A key the set cannot use (wrong type for its alg, malformed, private) is skipped and
 *   reported; the rest of the set still loads.
 * - A set is due for refresh after the refresh interval or the source's max-age, whichever is
 *   shorter; a lookup after that starts a background refresh and still answers from the set.
 * - A failed refresh keeps the old set, but only until it is `maxStalenessMs` old: after that
 *   lookups fail closed with UNAVAILABLE and retry guidance.
 * - An unknown `kid` triggers at most one fetch per `minRefetchIntervalMs`, and concurrent
 *   misses share one fetch.
 */
export class JwksCache {
  readonly #deps: JwksCacheDeps;
  readonly #refreshIntervalMs: number;
  readonly #maxStalenessMs: number;
  #snapshot: Snapshot | undefined;
  #inFlight: Promise<void> | undefined;
  #lastFetchStartedMs = Number.NEGATIVE_INFINITY;

  constructor(deps: JwksCacheDeps) {
    this.#deps = deps;
    this.#refreshIntervalMs = deps.refreshIntervalMs ?? DEFAULT_JWKS_REFRESH_INTERVAL_MS;
    this.#maxStalenessMs = deps.maxStalenessMs ?? DEFAULT_JWKS_MAX_STALENESS_MS;
  }

  /** Whether a key set has been loaded at least once. */
  get loaded(): boolean {
    return this.#snapshot !== undefined;
  }

  /** The key IDs of the current snapshot. */
  get keyIds(): readonly string[] {
    return [...(this.#snapshot?.keys.keys() ?? [])];
  }

  /**
   * Milliseconds until the next refresh is due: when the current set reaches its refresh time,
   * but never sooner than the refetch interval after the last fetch began. 0 when nothing has
   * been loaded and no fetch is being held back.
   */
  nextRefreshInMs(): number {
    const now = this.#deps.nowMs();
    const due = this.#snapshot?.refreshDueMs ?? now;
    const allowed = this.#lastFetchStartedMs + this.#deps.minRefetchIntervalMs;
    return Math.max(0, due - now, allowed - now);
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

  /**
   * Refreshes whenever {@link nextRefreshInMs} says so (at least a second apart), reporting
   * failures to `onFetchError`, until `signal` aborts; then resolves. Its timers do not keep
   * the process alive.
   */
  async refreshPeriodically(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await delay(Math.max(MIN_SCHEDULE_DELAY_MS, this.nextRefreshInMs()), undefined, {
          signal,
          ref: false,
        });
      } catch {
        return; // aborted
      }
      // A lookup may have refreshed the set while this loop slept.
      if (this.nextRefreshInMs() > 0) continue;
      await this.refresh().catch((error: unknown) => this.#deps.onFetchError?.(error));
    }
  }

  async #load(): Promise<void> {
    const startedMs = this.#deps.nowMs();
    this.#lastFetchStartedMs = startedMs;
    const fetched = await this.#deps.fetchKeys();
    const { keys: jwks, maxAgeMs } = isJwkList(fetched) ? { keys: fetched } : fetched;
    const next = new Map<string, VerificationKey>();
    const fingerprints = new Map<string, string>();
    const previous = this.#snapshot;
    for (const jwk of jwks) {
      const problem = next.has(jwk.kid)
        ? "its kid repeats an earlier key"
        : problemWith(jwk, this.#deps.algorithms);
      if (problem !== undefined) {
        this.#skip(jwk.kid, problem);
        continue;
      }
      const fingerprint = fingerprintOf(jwk);
      const same = previous?.keys.get(jwk.kid);
      if (same !== undefined && previous?.fingerprints.get(jwk.kid) === fingerprint) {
        next.set(jwk.kid, same);
        fingerprints.set(jwk.kid, fingerprint);
        continue;
      }
      let key: CryptoKey | Uint8Array;
      try {
        key = await importJWK({ ...jwk, ext: false }, jwk.alg);
      } catch {
        // The library's message may quote the offending member, so it is not passed on.
        this.#skip(jwk.kid, "the key does not import");
        continue;
      }
      if (key instanceof Uint8Array) {
        this.#skip(jwk.kid, "symmetric keys are never accepted");
        continue;
      }
      let keyObject: KeyObject;
      try {
        keyObject = KeyObject.from(key);
      } catch {
        this.#skip(jwk.kid, "the key does not import");
        continue;
      }
      next.set(jwk.kid, Object.freeze({ kid: jwk.kid, alg: jwk.alg, key, keyObject }));
      fingerprints.set(jwk.kid, fingerprint);
    }
    const lifetime =
      maxAgeMs !== undefined && Number.isFinite(maxAgeMs) && maxAgeMs >= 0
        ? Math.min(this.#refreshIntervalMs, maxAgeMs)
        : this.#refreshIntervalMs;
    this.#snapshot = {
      keys: next,
      fingerprints,
      fetchedAtMs: startedMs,
      refreshDueMs: startedMs + lifetime,
    };
  }

  #skip(kid: unknown, reason: string): void {
    this.#deps.onKeySkipped?.(typeof kid === "string" ? kid.slice(0, 128) : "", reason);
  }

  /** Starts a background refresh unless one runs or the refetch interval forbids it. */
  #refreshInBackground(now: number): void {
    if (this.#inFlight !== undefined) return;
    if (now - this.#lastFetchStartedMs < this.#deps.minRefetchIntervalMs) return;
    this.refresh().catch((error: unknown) => this.#deps.onFetchError?.(error));
  }

  #usable(snapshot: Snapshot | undefined, now: number): snapshot is Snapshot {
    return snapshot !== undefined && now - snapshot.fetchedAtMs < this.#maxStalenessMs;
  }

  /** Retry guidance: when the next fetch a lookup may cause is allowed, within 1-60 s. */
  #retryAfterMs(): number {
    const allowed = this.#lastFetchStartedMs + this.#deps.minRefetchIntervalMs;
    const wait = Math.ceil(allowed - this.#deps.nowMs());
    return Math.min(MAX_RETRY_AFTER_MS, Math.max(MIN_RETRY_AFTER_MS, wait));
  }

  /**
   * The key for `kid`. A known kid answers at once (starting a background refresh when the set
   * is due). An unknown kid, or a set too stale to trust, first refreshes when the refetch
   * interval allows. Returns undefined when the key is not in the (refreshed) set. Throws
   * UNAVAILABLE with retry guidance when no key set was ever loaded or the only one is older
   * than the maximum staleness (fail closed).
   */
  async keyFor(kid: string): Promise<VerificationKey | undefined> {
    const now = this.#deps.nowMs();
    const current = this.#snapshot;
    if (this.#usable(current, now)) {
      if (now >= current.refreshDueMs) this.#refreshInBackground(now);
      const known = current.keys.get(kid);
      if (known !== undefined) return known;
    }
    const mayFetch = now - this.#lastFetchStartedMs >= this.#deps.minRefetchIntervalMs;
    if (mayFetch || this.#inFlight !== undefined) {
      try {
        await this.refresh();
      } catch (error) {
        this.#deps.onFetchError?.(error);
      }
    }
    const snapshot = this.#snapshot;
    if (snapshot === undefined) {
      throw new ServiceError("UNAVAILABLE", "signing keys are not available yet", {
        retryAfterMs: this.#retryAfterMs(),
      });
    }
    if (!this.#usable(snapshot, this.#deps.nowMs())) {
      throw new ServiceError("UNAVAILABLE", "signing keys are out of date", {
        retryAfterMs: this.#retryAfterMs(),
      });
    }
    return snapshot.keys.get(kid);
  }
}
