import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { ServiceError } from "@authplat/errors";
import type {
  ActiveRefreshToken,
  FamilyRecord,
  FamilyRevocation,
  FamilySelector,
  FeedCursor,
  FeedEvent,
  NewFamily,
  RefreshTokenRecord,
  RevocationEntry,
  RotateRequest,
  RotateResult,
  TokenStore,
} from "./refresh-token-store.ts";

/** Options of {@link MemoryRefreshTokenStore}. */
export interface MemoryStoreOptions {
  /**
   * Journal file that keeps families, used tokens and revocations across a restart (every change
   * is appended before the call returns). Unset: nothing survives the process.
   */
  readonly file?: string;
  /** Most records (families, tokens, access tokens, revocations) held; default 200,000. */
  readonly maxEntries?: number;
  /** Most feed events kept for readers resuming from a cursor; default 10,000. */
  readonly feedLength?: number;
}

interface FamilyState {
  readonly record: FamilyRecord;
  revoked: boolean;
  readonly tokens: Set<string>;
  /** jti → expiry (ms) of the access tokens issued from the family. */
  readonly accessTokens: Map<string, number>;
}

interface TokenState {
  readonly record: RefreshTokenRecord;
  used: boolean;
}

/** One journal line: a change, replayed in order at start. */
type JournalOp =
  | { readonly op: "family"; readonly entry: NewFamily; readonly nowMs: number }
  | { readonly op: "rotate"; readonly request: RotateRequest }
  | { readonly op: "revokeFamilies"; readonly selector: FamilySelector; readonly nowMs: number }
  | { readonly op: "revoke"; readonly entries: readonly RevocationEntry[]; readonly nowMs: number }
  | { readonly op: "snapshot"; readonly state: Snapshot };

interface Snapshot {
  readonly families: readonly {
    record: FamilyRecord;
    revoked: boolean;
    accessTokens: [string, number][];
  }[];
  readonly tokens: readonly { record: RefreshTokenRecord; used: boolean }[];
  readonly revoked: readonly [string, number][];
}

function isSubset(asked: readonly string[], granted: readonly string[]): boolean {
  return asked.every((scope) => granted.includes(scope));
}

/**
 * The embedded token store: everything in this process, bounded, and (with `file`) kept across
 * restarts in an append-only journal that is compacted at start and when it grows. A call is
 * atomic because it runs without awaiting between its check and its change.
 *
 * When the store is full after dropping expired records it refuses new records with UNAVAILABLE:
 * it never evicts a live record, since forgetting a used token or a revocation would fail open.
 */
export class MemoryRefreshTokenStore implements TokenStore {
  readonly #families = new Map<string, FamilyState>();
  readonly #tokens = new Map<string, TokenState>();
  readonly #bySubject = new Map<string, Set<string>>();
  readonly #bySession = new Map<string, Set<string>>();
  readonly #revoked = new Map<string, number>();
  #accessTokenCount = 0;
  readonly #maxEntries: number;
  readonly #feedLength: number;
  // Cursors name this process's epoch: a cursor from before a restart reads as "gone".
  readonly #epoch = randomBytes(6).toString("base64url");
  #feed: FeedEvent[] = [];
  #firstSeq = 1;
  #seq = 0;
  readonly #listeners = new Set<() => void>();
  #notifyQueued = false;
  readonly #file: string | undefined;
  #fd: number | undefined;
  #journalLines = 0;
  #replaying = false;

  /**
   * @param options store options; a function (the clock this store took before every call
   *   carried its instant) is accepted and ignored, for existing callers.
   */
  constructor(options: MemoryStoreOptions | (() => number) = {}) {
    const settings = typeof options === "function" ? {} : options;
    this.#maxEntries = settings.maxEntries ?? 200_000;
    this.#feedLength = settings.feedLength ?? 10_000;
    this.#file = settings.file;
    if (this.#file !== undefined) this.#openJournal(this.#file);
  }

  /** Records held now (families, refresh tokens, access tokens, revocations). */
  get size(): number {
    return this.#families.size + this.#tokens.size + this.#accessTokenCount + this.#revoked.size;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  async createFamily(entry: NewFamily, nowMs: number): Promise<void> {
    if (this.#tokens.has(entry.tokenHash)) throw new Error("duplicate refresh token hash");
    this.#reserve(3, nowMs);
    this.#applyCreateFamily(entry);
    this.#append({ op: "family", entry, nowMs });
  }

  async rotate(request: RotateRequest): Promise<RotateResult> {
    const token = this.#tokens.get(request.tokenHash);
    const family = token && this.#families.get(token.record.familyId);
    if (token === undefined || family === undefined)
      return { outcome: "refused", reason: "unknown" };
    const record = family.record;
    const refused = (reason: "expired" | "wrong_client" | "family_revoked" | "scope_not_granted") =>
      ({ outcome: "refused", reason, family: record }) as const;
    if (record.clientId !== request.clientId) return refused("wrong_client");
    if (family.revoked) return refused("family_revoked");
    if (record.expiresAtMs <= request.nowMs) return refused("expired");
    if (token.used) {
      const revoked = this.#revokeFamily(family, request.nowMs);
      this.#append({ op: "rotate", request });
      return { outcome: "reused", family: record, generation: token.record.generation, revoked };
    }
    if (token.record.expiresAtMs <= request.nowMs) return refused("expired");
    if (!isSubset(request.scopes, record.scopes)) return refused("scope_not_granted");
    if (this.#tokens.has(request.successorHash)) throw new Error("duplicate refresh token hash");
    this.#reserve(2, request.nowMs);
    const successor = this.#applyRotation(token, family, request);
    this.#append({ op: "rotate", request });
    return { outcome: "rotated", family: record, successor };
  }

  async familyOfToken(tokenHash: string, nowMs: number): Promise<FamilyRecord | undefined> {
    const token = this.#tokens.get(tokenHash);
    const family = token && this.#families.get(token.record.familyId);
    return family !== undefined && family.record.expiresAtMs > nowMs ? family.record : undefined;
  }

  async inspect(tokenHash: string, nowMs: number): Promise<ActiveRefreshToken | undefined> {
    const token = this.#tokens.get(tokenHash);
    const family = token && this.#families.get(token.record.familyId);
    if (token === undefined || family === undefined) return undefined;
    const active =
      !token.used &&
      token.record.expiresAtMs > nowMs &&
      !family.revoked &&
      family.record.expiresAtMs > nowMs;
    return active ? { family: family.record, token: token.record } : undefined;
  }

  async revokeFamilies(selector: FamilySelector, nowMs: number): Promise<FamilyRevocation> {
    const ids =
      "familyId" in selector
        ? [selector.familyId]
        : [
            ...(("subject" in selector
              ? this.#bySubject.get(selector.subject)
              : this.#bySession.get(selector.sessionId)) ?? []),
          ];
    let families = 0;
    const revoked: RevocationEntry[] = [];
    for (const id of ids) {
      const family = this.#families.get(id);
      if (family === undefined || family.revoked || family.record.expiresAtMs <= nowMs) continue;
      families += 1;
      revoked.push(...this.#revokeFamily(family, nowMs));
    }
    if (families > 0) this.#append({ op: "revokeFamilies", selector, nowMs });
    return { families, revoked };
  }

  async revoke(
    entries: readonly RevocationEntry[],
    nowMs: number,
  ): Promise<readonly RevocationEntry[]> {
    this.#reserve(entries.length, nowMs);
    const added = entries.filter((entry) => this.#addRevocation(entry, nowMs));
    if (added.length > 0) this.#append({ op: "revoke", entries: added, nowMs });
    return added;
  }

  async isRevoked(id: string, nowMs: number): Promise<boolean> {
    const expiresAtMs = this.#revoked.get(id);
    return expiresAtMs !== undefined && expiresAtMs > nowMs;
  }

  async snapshot(nowMs: number): Promise<{ entries: RevocationEntry[]; cursor: FeedCursor }> {
    const entries: RevocationEntry[] = [];
    for (const [id, expiresAtMs] of this.#revoked) {
      if (expiresAtMs > nowMs) entries.push({ id, expiresAtMs });
    }
    return { entries, cursor: `${this.#epoch}.${this.#seq}` };
  }

  async eventsAfter(cursor: FeedCursor, limit: number): Promise<readonly FeedEvent[] | "gone"> {
    const [epoch, seqText] = cursor.split(".");
    const seq = Number(seqText);
    if (epoch !== this.#epoch || !Number.isSafeInteger(seq) || seq > this.#seq) return "gone";
    if (seq < this.#firstSeq - 1) return "gone";
    const start = seq - this.#firstSeq + 1;
    return this.#feed.slice(start, start + limit);
  }

  onEvents(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Drops every record whose lifetime has passed at `nowMs`; the service calls it periodically
   * and the store calls it itself before refusing a write for lack of room.
   */
  sweep(nowMs: number): void {
    for (const [id, family] of this.#families) {
      if (family.record.expiresAtMs > nowMs) {
        for (const [jti, expiresAtMs] of family.accessTokens) {
          if (expiresAtMs <= nowMs) {
            family.accessTokens.delete(jti);
            this.#accessTokenCount -= 1;
          }
        }
        continue;
      }
      for (const hash of family.tokens) this.#tokens.delete(hash);
      this.#accessTokenCount -= family.accessTokens.size;
      this.#families.delete(id);
      this.#unindex(this.#bySubject, family.record.subject, id);
      if (family.record.sessionId !== undefined) {
        this.#unindex(this.#bySession, family.record.sessionId, id);
      }
    }
    for (const [id, expiresAtMs] of this.#revoked) {
      if (expiresAtMs <= nowMs) this.#revoked.delete(id);
    }
    if (this.#fd !== undefined && this.#journalLines > 2 * this.size + 10_000) this.#compact();
  }

  #reserve(count: number, nowMs: number): void {
    if (this.#replaying || this.size + count <= this.#maxEntries) return;
    this.sweep(nowMs);
    if (this.size + count > this.#maxEntries) {
      throw new ServiceError("UNAVAILABLE", "the token store is full", {
        cause: new Error(`memory token store holds ${this.size} of ${this.#maxEntries} records`),
        retryAfterMs: 1_000,
      });
    }
  }

  #applyCreateFamily(entry: NewFamily): void {
    const record = Object.freeze({ ...entry.family });
    const family: FamilyState = {
      record,
      revoked: false,
      tokens: new Set([entry.tokenHash]),
      accessTokens: new Map([[entry.accessToken.jti, entry.accessToken.expiresAtMs]]),
    };
    this.#families.set(record.familyId, family);
    this.#accessTokenCount += 1;
    this.#tokens.set(entry.tokenHash, {
      record: Object.freeze({
        tokenHash: entry.tokenHash,
        familyId: record.familyId,
        generation: 0,
        issuedAtMs: record.createdAtMs,
        expiresAtMs: entry.tokenExpiresAtMs,
      }),
      used: false,
    });
    this.#index(this.#bySubject, record.subject, record.familyId);
    if (record.sessionId !== undefined) {
      this.#index(this.#bySession, record.sessionId, record.familyId);
    }
  }

  #applyRotation(token: TokenState, family: FamilyState, request: RotateRequest) {
    token.used = true;
    const successor: RefreshTokenRecord = Object.freeze({
      tokenHash: request.successorHash,
      familyId: family.record.familyId,
      generation: token.record.generation + 1,
      issuedAtMs: request.nowMs,
      expiresAtMs: Math.min(request.nowMs + request.idleTimeoutMs, family.record.expiresAtMs),
    });
    this.#tokens.set(successor.tokenHash, { record: successor, used: false });
    family.tokens.add(successor.tokenHash);
    if (!family.accessTokens.has(request.accessToken.jti)) this.#accessTokenCount += 1;
    family.accessTokens.set(request.accessToken.jti, request.accessToken.expiresAtMs);
    return successor;
  }

  #revokeFamily(family: FamilyState, nowMs: number): RevocationEntry[] {
    family.revoked = true;
    const revoked: RevocationEntry[] = [];
    for (const [id, expiresAtMs] of family.accessTokens) {
      const entry = { id, expiresAtMs };
      if (this.#addRevocation(entry, nowMs)) revoked.push(entry);
    }
    return revoked;
  }

  #addRevocation(entry: RevocationEntry, nowMs: number): boolean {
    if (entry.expiresAtMs <= nowMs) return false;
    const current = this.#revoked.get(entry.id);
    if (current !== undefined && current >= entry.expiresAtMs) return false;
    this.#revoked.set(entry.id, entry.expiresAtMs);
    if (this.#replaying) return true;
    this.#seq += 1;
    this.#feed.push({ cursor: `${this.#epoch}.${this.#seq}`, entry: { ...entry } });
    if (this.#feed.length > this.#feedLength * 2) {
      const drop = this.#feed.length - this.#feedLength;
      this.#feed = this.#feed.slice(drop);
      this.#firstSeq += drop;
    }
    if (!this.#notifyQueued) {
      this.#notifyQueued = true;
      queueMicrotask(() => {
        this.#notifyQueued = false;
        for (const listener of this.#listeners) listener();
      });
    }
    return true;
  }

  #index(index: Map<string, Set<string>>, key: string, familyId: string): void {
    const ids = index.get(key);
    if (ids === undefined) index.set(key, new Set([familyId]));
    else ids.add(familyId);
  }

  #unindex(index: Map<string, Set<string>>, key: string, familyId: string): void {
    const ids = index.get(key);
    ids?.delete(familyId);
    if (ids?.size === 0) index.delete(key);
  }

  #append(op: JournalOp): void {
    if (this.#fd === undefined || this.#replaying) return;
    writeSync(this.#fd, `${JSON.stringify(op)}\n`);
    this.#journalLines += 1;
  }

  #openJournal(file: string): void {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    if (existsSync(file)) {
      this.#replaying = true;
      try {
        for (const line of readFileSync(file, "utf8").split("\n")) {
          if (line === "") continue;
          let op: JournalOp;
          try {
            op = JSON.parse(line) as JournalOp;
          } catch {
            // A line torn by a crash mid-write is the last one; its call never returned.
            continue;
          }
          this.#replay(op);
        }
      } finally {
        this.#replaying = false;
      }
    }
    this.#compact();
  }

  #replay(op: JournalOp): void {
    switch (op.op) {
      case "family":
        this.#applyCreateFamily(op.entry);
        return;
      case "rotate": {
        const token = this.#tokens.get(op.request.tokenHash);
        const family = token && this.#families.get(token.record.familyId);
        if (token === undefined || family === undefined) return;
        if (token.used) this.#revokeFamily(family, op.request.nowMs);
        else this.#applyRotation(token, family, op.request);
        return;
      }
      case "revokeFamilies":
        void this.revokeFamilies(op.selector, op.nowMs);
        return;
      case "revoke":
        for (const entry of op.entries) this.#addRevocation(entry, op.nowMs);
        return;
      case "snapshot":
        this.#restore(op.state);
        return;
    }
  }

  #restore(state: Snapshot): void {
    for (const { record, revoked, accessTokens } of state.families) {
      this.#families.set(record.familyId, {
        record: Object.freeze(record),
        revoked,
        tokens: new Set(),
        accessTokens: new Map(accessTokens),
      });
      this.#accessTokenCount += accessTokens.length;
      this.#index(this.#bySubject, record.subject, record.familyId);
      if (record.sessionId !== undefined) {
        this.#index(this.#bySession, record.sessionId, record.familyId);
      }
    }
    for (const { record, used } of state.tokens) {
      const family = this.#families.get(record.familyId);
      if (family === undefined) continue;
      family.tokens.add(record.tokenHash);
      this.#tokens.set(record.tokenHash, { record: Object.freeze(record), used });
    }
    for (const [id, expiresAtMs] of state.revoked) this.#revoked.set(id, expiresAtMs);
  }

  /** Rewrites the journal as one snapshot line (write, fsync, rename), then appends to it. */
  #compact(): void {
    const file = this.#file!;
    const state: Snapshot = {
      families: [...this.#families.values()].map((family) => ({
        record: family.record,
        revoked: family.revoked,
        accessTokens: [...family.accessTokens],
      })),
      tokens: [...this.#tokens.values()],
      revoked: [...this.#revoked],
    };
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify({ op: "snapshot", state })}\n`, { mode: 0o600 });
    const fd = openSync(temporary, "r+");
    fsyncSync(fd);
    closeSync(fd);
    if (this.#fd !== undefined) closeSync(this.#fd);
    renameSync(temporary, file);
    this.#fd = openSync(file, "a", 0o600);
    this.#journalLines = 1;
  }
}
