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

/** Storage of refresh-token records. */
export interface RefreshTokenStore {
  /** Saves a new record; fails if its hash exists already. */
  insert(record: RefreshTokenRecord): Promise<void>;
  /** The record with this hash, or undefined. */
  findByHash(tokenHash: string): Promise<RefreshTokenRecord | undefined>;
}

/**
 * The embedded default store: a Map in this process. Expired records are dropped as they are
 * met. A later release adds the Redis store; both will run the same contract suite.
 */
export class MemoryRefreshTokenStore implements RefreshTokenStore {
  readonly #records = new Map<string, RefreshTokenRecord>();
  readonly #nowMs: () => number;

  constructor(nowMs: () => number) {
    this.#nowMs = nowMs;
  }

  async insert(record: RefreshTokenRecord): Promise<void> {
    if (this.#records.has(record.tokenHash)) throw new Error("duplicate refresh token hash");
    this.#records.set(record.tokenHash, Object.freeze({ ...record }));
  }

  async findByHash(tokenHash: string): Promise<RefreshTokenRecord | undefined> {
    const record = this.#records.get(tokenHash);
    if (record !== undefined && record.expiresAtMs <= this.#nowMs()) {
      this.#records.delete(tokenHash);
      return undefined;
    }
    return record;
  }
}
