import type { RefreshTokenRecord, RefreshTokenStore } from "./refresh-token-store.ts";

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
