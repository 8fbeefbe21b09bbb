import { ServiceError } from "@authplat/errors";

/**
 * What a revocation names. The token service's feed emits `jti` entries only: revoking a
 * refresh-token family, a session or a subject there puts the `jti` of every unexpired access
 * token issued from them on the list (apps/token/src/tokens/revocation-service.ts). `sid` and
 * `sub` are here so that a feed carrying them needs no change at the edge.
 */
export type RevocationKind = "jti" | "sid" | "sub";

/** One revocation the edge enforces. */
export interface EdgeRevocation {
  readonly kind: RevocationKind;
  readonly value: string;
  /** When the entry means nothing any more (the revoked token's `exp`), ms since the epoch. */
  readonly expiresAtMs: number;
  /**
   * `sub` entries only: tokens of the subject issued (`iat`) before this instant are revoked,
   * later ones are not. Ms since the epoch; ignored for other kinds.
   */
  readonly revokedAtMs?: number;
}

/** The claims the set judges a token by. */
export interface RevocableClaims {
  readonly tokenId: string;
  readonly sessionId: string | undefined;
  readonly subject: string;
  /** `iat`, seconds since the epoch. */
  readonly issuedAt: number;
}

/** Options of {@link RevocationSet}. */
export interface RevocationSetOptions {
  /**
   * The most live entries the set holds. A snapshot or an addition that would exceed it puts
   * the set in the overflowed state, where {@link RevocationSet.isRevoked} fails closed, until a
   * snapshot fits again.
   */
  readonly maxEntries: number;
  /** Milliseconds since the epoch. */
  readonly nowMs: () => number;
}

interface Entry {
  expiresAtMs: number;
  revokedAtMs: number;
}

function keyOf(kind: RevocationKind, value: string): string {
  return `${kind}\u0000${value}`;
}

/**
 * The revocation list as one edge holds it, in memory, so that `isRevoked` answers
 * synchronously on every validation (requirement 9.3 at the edge).
 *
 * - Entries live until their `expiresAtMs`: an expired token is rejected as EXPIRED anyway, so
 *   its entry is dropped (lazily on lookup, and by {@link prune}).
 * - The set is bounded by `maxEntries`. When the bound is hit the set does not drop live
 *   entries (that would let a revoked token through): it **overflows**, and every lookup throws
 *   UNAVAILABLE until a snapshot that fits replaces the contents.
 * - It remembers the feed cursor of the last message applied, so a reconnect resumes there.
 */
export class RevocationSet {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #nowMs: () => number;
  #cursor = "";
  #overflowed = false;
  #snapshots = 0;

  constructor(options: RevocationSetOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError("maxEntries must be an integer ≥ 1");
    }
    this.#maxEntries = options.maxEntries;
    this.#nowMs = options.nowMs;
  }

  /** The feed position of the last message applied; empty before the first snapshot. */
  get cursor(): string {
    return this.#cursor;
  }

  /** How many entries are held (expired ones not yet pruned included). */
  get size(): number {
    return this.#entries.size;
  }

  /** Whether a snapshot has been applied since construction. */
  get loaded(): boolean {
    return this.#snapshots > 0;
  }

  /** Whether the bound was hit; lookups fail closed until a snapshot fits. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** Replaces the contents with a snapshot of the live list, taken at feed position `cursor`. */
  replace(entries: readonly EdgeRevocation[], cursor: string): void {
    this.#entries.clear();
    this.#overflowed = false;
    this.#snapshots += 1;
    this.add(entries, cursor);
  }

  /**
   * Adds entries that arrived after the last message (an entry already held keeps the later
   * expiry and the later `revokedAtMs`), and moves the cursor to `cursor` when it is not empty.
   */
  add(entries: readonly EdgeRevocation[], cursor: string): void {
    const now = this.#nowMs();
    for (const entry of entries) {
      if (entry.expiresAtMs <= now) continue;
      const key = keyOf(entry.kind, entry.value);
      const revokedAtMs = entry.kind === "sub" ? (entry.revokedAtMs ?? now) : 0;
      const held = this.#entries.get(key);
      if (held !== undefined) {
        held.expiresAtMs = Math.max(held.expiresAtMs, entry.expiresAtMs);
        held.revokedAtMs = Math.max(held.revokedAtMs, revokedAtMs);
        continue;
      }
      if (this.#entries.size >= this.#maxEntries) this.prune();
      if (this.#entries.size >= this.#maxEntries) {
        this.#overflowed = true;
        continue;
      }
      this.#entries.set(key, { expiresAtMs: entry.expiresAtMs, revokedAtMs });
    }
    if (cursor !== "") this.#cursor = cursor;
  }

  /** Drops every entry whose lifetime has passed; returns how many. */
  prune(): number {
    const now = this.#nowMs();
    let dropped = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAtMs <= now) {
        this.#entries.delete(key);
        dropped += 1;
      }
    }
    return dropped;
  }

  /**
   * Whether a token with these claims is revoked: its `jti` or its session is on the list, or
   * its subject is with a revocation instant after the token's `iat`.
   *
   * @throws {ServiceError} UNAVAILABLE while the set has overflowed (it cannot tell).
   */
  isRevoked(claims: RevocableClaims): boolean {
    if (this.#overflowed) {
      throw new ServiceError(
        "UNAVAILABLE",
        "the revocation list is larger than this edge holds; try again later",
        { retryAfterMs: 1_000 },
      );
    }
    if (this.#live(keyOf("jti", claims.tokenId)) !== undefined) return true;
    if (
      claims.sessionId !== undefined &&
      this.#live(keyOf("sid", claims.sessionId)) !== undefined
    ) {
      return true;
    }
    const subject = this.#live(keyOf("sub", claims.subject));
    return subject !== undefined && claims.issuedAt * 1000 < subject.revokedAtMs;
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs > this.#nowMs()) return entry;
    this.#entries.delete(key);
    return undefined;
  }
}
