import { setTimeout as sleep } from "node:timers/promises";
import { ServiceError } from "@authplat/errors";
import type { EdgeRevocation, RevocableClaims, RevocationSet } from "./revocation-set.ts";

/** One message of the revocation feed, in the edge's terms. */
export interface RevocationFeedMessage {
  /** True: `entries` is the whole live list and replaces the set's contents. */
  readonly snapshot: boolean;
  /** Additions (or the whole list, for a snapshot); empty for a heartbeat. */
  readonly entries: readonly EdgeRevocation[];
  /** Where to resume after a reconnect; empty when the message moves no position. */
  readonly cursor: string;
}

/**
 * Opens the feed at `cursor` (empty: start with a snapshot). The iterable ends when the stream
 * ends and throws when it breaks; aborting `signal` cancels the call.
 */
export type OpenRevocationFeed = (
  cursor: string,
  signal: AbortSignal,
) => AsyncIterable<RevocationFeedMessage>;

/** Options of {@link RevocationFeed}. */
export interface RevocationFeedOptions {
  readonly set: RevocationSet;
  readonly open: OpenRevocationFeed;
  /**
   * How long the edge goes on answering from its set without hearing from the feed (a message
   * or a heartbeat). Past it every revocation check fails closed with UNAVAILABLE.
   */
  readonly maxStalenessMs: number;
  /** First reconnect delay; doubles per failed attempt up to `maxBackoffMs`. Default 100. */
  readonly initialBackoffMs?: number;
  /** Longest reconnect delay. Default 5000. */
  readonly maxBackoffMs?: number;
  /** Monotonic milliseconds; default `performance.now`. Tests inject their own. */
  readonly nowMs?: () => number;
  /**
   * Called when the stream breaks or ends, before the reconnect delay. `attempt` counts the
   * failures since the feed last delivered a message: 1 when it has just been lost, more while
   * the token service stays away (so a caller can log the loss once and the retries quietly).
   */
  readonly onDisconnect?: (error: unknown, reconnectInMs: number, attempt: number) => void;
  /** Called when a message arrives after one or more failures, with how long the feed was down. */
  readonly onReconnect?: (downForMs: number) => void;
  /** Called after each message is applied (metrics, benchmarks, tests). */
  readonly onMessage?: (message: RevocationFeedMessage) => void;
}

/**
 * Keeps a {@link RevocationSet} in step with the token service's WatchRevocations feed: a
 * snapshot first, then additions; on a broken or ended stream it reconnects after a backoff
 * (exponential with jitter, at least the retry pushback a circuit breaker sends) and resumes from
 * the last cursor, so nothing in between is missed (the token service sends a fresh snapshot
 * when the cursor is too old).
 *
 * Freshness: the feed counts as fresh while its last message (heartbeats included) is at most
 * `maxStalenessMs` old. A stale or never-loaded feed makes {@link isRevoked} throw UNAVAILABLE
 * with retry pushback: the edge cannot tell whether a token was revoked, so it does not say
 * that it was not (fail closed; docs/architecture.md, "Failure behaviour").
 */
export class RevocationFeed {
  readonly #options: RevocationFeedOptions;
  readonly #now: () => number;
  #lastMessageAtMs: number | undefined;
  #lostAtMs: number | undefined;
  #connected = false;
  readonly #loaded: Promise<void>;
  #markLoaded: () => void = () => undefined;

  constructor(options: RevocationFeedOptions) {
    this.#options = options;
    this.#now = options.nowMs ?? (() => performance.now());
    this.#loaded = new Promise((resolve) => {
      this.#markLoaded = resolve;
    });
  }

  /** Milliseconds since the last message; `Infinity` before the first. */
  get stalenessMs(): number {
    return this.#lastMessageAtMs === undefined ? Infinity : this.#now() - this.#lastMessageAtMs;
  }

  /** Whether a stream is open now (it may still be stale if the token service went quiet). */
  get connected(): boolean {
    return this.#connected;
  }

  /** Resolves once the first snapshot has been applied. */
  get loaded(): Promise<void> {
    return this.#loaded;
  }

  /**
   * Throws UNAVAILABLE (with retry pushback) when the set cannot be trusted: no snapshot yet, or
   * no message for longer than `maxStalenessMs`. Used as a readiness check too.
   */
  check(): void {
    const { set, maxStalenessMs } = this.#options;
    if (!set.loaded) {
      throw new ServiceError("UNAVAILABLE", "the revocation list has not been loaded yet", {
        retryAfterMs: 1_000,
      });
    }
    if (this.stalenessMs > maxStalenessMs) {
      throw new ServiceError("UNAVAILABLE", "the revocation list is out of date", {
        retryAfterMs: 1_000,
      });
    }
  }

  /**
   * Whether a token is revoked, for `TokenValidator`'s `isRevoked`.
   *
   * @throws {ServiceError} UNAVAILABLE when the set is stale, not loaded or overflowed.
   */
  isRevoked(claims: RevocableClaims): boolean {
    this.check();
    return this.#options.set.isRevoked(claims);
  }

  /** Follows the feed until `signal` aborts; never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    const { set, open } = this.#options;
    const initial = this.#options.initialBackoffMs ?? 100;
    const max = this.#options.maxBackoffMs ?? 5_000;
    let attempt = 0;
    while (!signal.aborted) {
      let failure: unknown = new Error("the revocation feed ended");
      try {
        // An overflowed set only recovers through a snapshot that fits: ask for one.
        for await (const message of open(set.overflowed ? "" : set.cursor, signal)) {
          this.#connected = true;
          if (message.snapshot) set.replace(message.entries, message.cursor);
          else set.add(message.entries, message.cursor);
          this.#lastMessageAtMs = this.#now();
          if (this.#lostAtMs !== undefined) {
            this.#options.onReconnect?.(this.#lastMessageAtMs - this.#lostAtMs);
            this.#lostAtMs = undefined;
          }
          attempt = 0;
          if (message.snapshot) this.#markLoaded();
          this.#options.onMessage?.(message);
          if (set.overflowed) {
            failure = new Error("the revocation list overflowed this edge's bound");
            break;
          }
        }
      } catch (error) {
        failure = error;
      }
      this.#connected = false;
      if (signal.aborted) return;
      const backoff = Math.min(max, initial * 2 ** attempt);
      attempt += 1;
      const pushback = (failure as { retryAfterMs?: unknown }).retryAfterMs;
      // Full jitter in [backoff/2, backoff], so edges that lost the feed together do not all
      // come back in the same millisecond; never sooner than a breaker's pushback.
      const delay = Math.max(
        Math.round(backoff / 2 + (Math.random() * backoff) / 2),
        typeof pushback === "number" ? pushback : 0,
      );
      this.#lostAtMs ??= this.#now();
      this.#options.onDisconnect?.(failure, delay, attempt);
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        return;
      }
    }
  }
}
