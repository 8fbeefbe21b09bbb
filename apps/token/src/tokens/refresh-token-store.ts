/**
 * A refresh-token family: one per grant (login, client credentials). Every refresh token
 * obtained by rotating a token of the family shares it, and so do the access tokens issued with
 * them. The family carries what the tokens were granted; rotation never changes it.
 */
export interface FamilyRecord {
  readonly familyId: string;
  readonly subject: string;
  readonly clientId: string;
  readonly audience: readonly string[];
  /** Scopes granted at issue; a refresh may narrow the access token's scopes, never widen. */
  readonly scopes: readonly string[];
  readonly sessionId: string | undefined;
  /** Milliseconds since the epoch. */
  readonly createdAtMs: number;
  /** Absolute end of the family: no token of it is usable from then on. */
  readonly expiresAtMs: number;
  // Authorization facts of the grant, copied into every access token of the family. Each is
  // absent when the grant had none, and in records written before the fields existed.
  /** Role names (access-token `roles`), distinct, in the order granted. */
  readonly roles?: readonly string[];
  /** Tenant of the subject (`tenant`). */
  readonly tenant?: string;
  /** Authentication context class of the login (`acr`). */
  readonly acr?: string;
  /** RFC 8176 authentication method references of the login (`amr`), distinct. */
  readonly amr?: readonly string[];
  /** When the subject authenticated, ms since the epoch (`auth_time`). */
  readonly authTimeMs?: number;
}

/** What the store keeps about one refresh token. Never the token itself, only its hash. */
export interface RefreshTokenRecord {
  /** SHA-256 of the token, base64url; the lookup key. */
  readonly tokenHash: string;
  readonly familyId: string;
  /** 0 for the token issued with the family, +1 per rotation. */
  readonly generation: number;
  readonly issuedAtMs: number;
  /**
   * Last instant (exclusive) the token may be used: the earlier of its idle deadline and the
   * family's end. A used token's record is kept until the family ends, for replay detection.
   */
  readonly expiresAtMs: number;
}

/** An active refresh token: its record and its family's, as {@link RefreshTokenStore.inspect} finds them. */
export interface ActiveRefreshToken {
  readonly family: FamilyRecord;
  readonly token: RefreshTokenRecord;
}

/** An access token issued from a family; revoking the family puts its `jti` on the list. */
export interface IssuedAccessToken {
  readonly jti: string;
  /** The token's `exp`, in milliseconds. */
  readonly expiresAtMs: number;
}

/** One entry of the revocation list: the `jti` of an access token, until it expires. */
export interface RevocationEntry {
  readonly id: string;
  /** The revoked token's expiry; the entry means nothing after it. */
  readonly expiresAtMs: number;
}

/** A new family with its first refresh token and the access token issued with it. */
export interface NewFamily {
  readonly family: FamilyRecord;
  readonly tokenHash: string;
  /** The first token's expiry (the earlier of its idle deadline and the family's end). */
  readonly tokenExpiresAtMs: number;
  readonly accessToken: IssuedAccessToken;
}

/** One rotation attempt, checked and applied atomically by {@link RefreshTokenStore.rotate}. */
export interface RotateRequest {
  /** Hash of the presented refresh token. */
  readonly tokenHash: string;
  /** The client presenting it; must be the family's client. */
  readonly clientId: string;
  /** Scopes asked for; each must be one of the family's. Empty keeps the family's scopes. */
  readonly scopes: readonly string[];
  /** The store judges every expiry against this instant, never its own clock. */
  readonly nowMs: number;
  /** Hash of the successor refresh token. */
  readonly successorHash: string;
  /** How long the successor stays usable without being used (capped by the family's end). */
  readonly idleTimeoutMs: number;
  /** The access token issued with the successor. */
  readonly accessToken: IssuedAccessToken;
}

/** Why a rotation was refused without changing anything. */
export type RotateRefusal =
  "unknown" | "expired" | "wrong_client" | "family_revoked" | "scope_not_granted";

/** The outcome of {@link RefreshTokenStore.rotate}. */
export type RotateResult =
  | {
      readonly outcome: "rotated";
      readonly family: FamilyRecord;
      /** The successor's record. */
      readonly successor: RefreshTokenRecord;
    }
  | {
      /** The token had been used before: the family is now revoked. */
      readonly outcome: "reused";
      readonly family: FamilyRecord;
      readonly generation: number;
      /** Access tokens put on the revocation list by this call. */
      readonly revoked: readonly RevocationEntry[];
    }
  | {
      readonly outcome: "refused";
      readonly reason: RotateRefusal;
      /** The family, when the token was known (for the log). */
      readonly family?: FamilyRecord;
    };

/** The outcome of revoking one or more families. */
export interface FamilyRevocation {
  /** How many live families were revoked by this call (0: unknown or already revoked). */
  readonly families: number;
  /** Access tokens put on the revocation list by this call. */
  readonly revoked: readonly RevocationEntry[];
}

/** Which families to revoke. */
export type FamilySelector =
  { readonly familyId: string } | { readonly subject: string } | { readonly sessionId: string };

/**
 * Refresh-token families, rotation and revocation (requirements 2.2-2.4, 9.3). Every expiry is
 * judged against the `nowMs` the caller passes; backend TTLs only collect garbage. Every backend
 * runs `describeTokenStoreContract`, concurrency cases included.
 */
export interface RefreshTokenStore {
  /** Saves a new family and its first token; rejects a token hash that exists already. */
  createFamily(entry: NewFamily, nowMs: number): Promise<void>;
  /**
   * Uses a refresh token, atomically: on success the token is used, the successor and the
   * access token are recorded; a used token revokes its family; anything else changes nothing.
   * Of concurrent calls with one token at most one is `rotated`.
   */
  rotate(request: RotateRequest): Promise<RotateResult>;
  /** The unexpired family of a refresh token, used or not, or undefined. Changes nothing. */
  familyOfToken(tokenHash: string, nowMs: number): Promise<FamilyRecord | undefined>;
  /**
   * The records of a refresh token when it is active at `nowMs`: known, never used, before its
   * own expiry and its family's end, family not revoked; otherwise undefined. Changes nothing:
   * no use, no replay detection, no revocation. One atomic read.
   */
  inspect(tokenHash: string, nowMs: number): Promise<ActiveRefreshToken | undefined>;
  /** Revokes the selected live families and their unexpired access tokens. Idempotent. */
  revokeFamilies(selector: FamilySelector, nowMs: number): Promise<FamilyRevocation>;
}

/** A position in the revocation feed; opaque to callers. */
export type FeedCursor = string;

/** A revocation as the feed reports it. */
export interface FeedEvent {
  readonly cursor: FeedCursor;
  readonly entry: RevocationEntry;
}

/**
 * The revocation list (requirement 9.3) and its feed: a snapshot of live entries plus an ordered
 * log of additions that replicas sharing the backend all read.
 */
export interface RevocationStore {
  /**
   * Adds entries (an entry already present keeps the later expiry); entries already expired at
   * `nowMs` are ignored. Returns the entries that were added or extended.
   */
  revoke(entries: readonly RevocationEntry[], nowMs: number): Promise<readonly RevocationEntry[]>;
  /** Whether `id` is revoked and its lifetime has not passed at `nowMs`. */
  isRevoked(id: string, nowMs: number): Promise<boolean>;
  /** The live entries and the feed position they reflect. */
  snapshot(nowMs: number): Promise<{ entries: readonly RevocationEntry[]; cursor: FeedCursor }>;
  /**
   * Feed events after `cursor`, oldest first, at most `limit`; `"gone"` when the cursor is no
   * longer in the log (trimmed, or from another store), so the reader must take a snapshot.
   */
  eventsAfter(cursor: FeedCursor, limit: number): Promise<readonly FeedEvent[] | "gone">;
  /**
   * Calls `listener` (with no argument) whenever events may have been added, by this process or
   * another replica. Returns the function that stops the calls.
   */
  onEvents(listener: () => void): () => void;
}

/** The complete storage of the token service; one backend implements both halves. */
export interface TokenStore extends RefreshTokenStore, RevocationStore {
  /** Throws a `ServiceError` UNAVAILABLE when the backend cannot be reached. */
  ping(): Promise<void>;
  /** Releases connections and files. */
  close(): Promise<void>;
}
