/** What the token service remembers about an issued refresh token. Never the token itself. */
export interface RefreshTokenRecord {
  /** SHA-256 of the token, base64url; the lookup key. */
  readonly tokenHash: string;
  /** Rotation family: every token obtained by refreshing this one shares it. */
  readonly familyId: string;
  readonly subject: string;
  readonly clientId: string;
  readonly audience: readonly string[];
  readonly scopes: readonly string[];
  readonly sessionId: string | undefined;
  /** Milliseconds since the epoch. */
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
}

/**
 * Storage of refresh-token records. Every backend runs `describeRefreshTokenStoreContract`.
 */
export interface RefreshTokenStore {
  /** Saves a new record; rejects if a record with the same hash exists already. */
  insert(record: RefreshTokenRecord): Promise<void>;
  /** The unexpired record with this hash, or undefined (an expired record reads as absent). */
  findByHash(tokenHash: string): Promise<RefreshTokenRecord | undefined>;
}
