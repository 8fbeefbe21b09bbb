import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { ServiceError } from "@authplat/errors";
import type {
  ActiveRefreshToken,
  FamilyRecord,
  FamilyRevocation,
  FamilySelector,
  FeedCursor,
  FeedEvent,
  NewFamily,
  RevocationEntry,
  RotateRefusal,
  RotateRequest,
  RotateResult,
  TokenStore,
} from "./refresh-token-store.ts";

/** Options of {@link RedisTokenStore}. */
export interface RedisTokenStoreOptions {
  /** A connected client. The store does not own it unless `ownsClient` is set. */
  readonly client: Redis;
  /** Prefix of every key and channel, e.g. `token:`. */
  readonly prefix: string;
  /** Approximate number of feed events kept for readers resuming from a cursor; default 10,000. */
  readonly feedLength?: number;
  /** Whether {@link RedisTokenStore.close} quits the client. */
  readonly ownsClient?: boolean;
  /** How often listeners are called even without a notification (missed pub/sub); ms. */
  readonly feedPollIntervalMs?: number;
}

// Keys, all under the prefix:
//   rt:<hash>        hash  f family, g generation, i issued at, e usable until, u used (0/1)
//   fam:<id>         hash  j family record (JSON), c client, r revoked (0/1), e end of family
//   fam:<id>:at      hash  jti → expiry of each access token issued from the family
//   sub:<subject>    set   family IDs of a subject; sid:<session> likewise
//   rev              zset  revoked jti, scored by its expiry
//   log              stream of revocations (the feed; IDs are the cursors)
//   events           pub/sub channel: "the log has grown" (a wake-up, never the data)
// Every key that a record lives in expires when the family ends; expiry decisions are made
// against the caller's clock (ARGV), never Redis's.
const COMMON = `
local p = ARGV[1]
local feedLength = ARGV[2]
local function addRevocation(id, expText, now)
  local exp = tonumber(expText)
  if exp <= now then return false end
  local current = redis.call('ZSCORE', p .. 'rev', id)
  if current and tonumber(current) >= exp then return false end
  redis.call('ZADD', p .. 'rev', expText, id)
  redis.call('XADD', p .. 'log', 'MAXLEN', '~', feedLength, '*', 'id', id, 'exp', expText)
  return true
end
local function revokeFamily(familyId, now, out)
  local key = p .. 'fam:' .. familyId
  local state = redis.call('HMGET', key, 'r', 'e')
  if state[1] ~= '0' or tonumber(state[2]) <= now then return false end
  redis.call('HSET', key, 'r', '1')
  local issued = redis.call('HGETALL', key .. ':at')
  for i = 1, #issued, 2 do
    if addRevocation(issued[i], issued[i + 1], now) then
      out[#out + 1] = issued[i]
      out[#out + 1] = issued[i + 1]
    end
  end
  return true
end
local function notify(out)
  if #out > 0 then redis.call('PUBLISH', p .. 'events', '1') end
end
local function keepUntil(key, ttl)
  local current = redis.call('PTTL', key)
  if current >= 0 and current < ttl then redis.call('PEXPIRE', key, ttl) end
end
`;

// ARGV: prefix, feedLength, hash, familyId, familyJson, clientId, familyEnd, tokenEnd,
//       createdAt, jti, jtiExp, subject, sessionId, now
const CREATE_FAMILY = `${COMMON}
local tokenKey = p .. 'rt:' .. ARGV[3]
if redis.call('EXISTS', tokenKey) == 1 then return redis.error_reply('duplicate refresh token hash') end
local now = tonumber(ARGV[14])
local ttl = math.max(1, tonumber(ARGV[7]) - now)
local familyKey = p .. 'fam:' .. ARGV[4]
redis.call('HSET', familyKey, 'j', ARGV[5], 'c', ARGV[6], 'r', '0', 'e', ARGV[7])
redis.call('PEXPIRE', familyKey, ttl)
redis.call('HSET', familyKey .. ':at', ARGV[10], ARGV[11])
redis.call('PEXPIRE', familyKey .. ':at', ttl)
redis.call('HSET', tokenKey, 'f', ARGV[4], 'g', '0', 'i', ARGV[9], 'e', ARGV[8], 'u', '0')
redis.call('PEXPIRE', tokenKey, ttl)
local indexes = { p .. 'sub:' .. ARGV[12] }
if ARGV[13] ~= '' then indexes[2] = p .. 'sid:' .. ARGV[13] end
for _, key in ipairs(indexes) do
  redis.call('SADD', key, ARGV[4])
  if redis.call('PTTL', key) == -1 then redis.call('PEXPIRE', key, ttl) else keepUntil(key, ttl) end
end
return 'OK'
`;

// ARGV: prefix, feedLength, hash, clientId, scopesJson, now, successorHash, idleMs, jti, jtiExp
const ROTATE = `${COMMON}
local now = tonumber(ARGV[6])
local tokenKey = p .. 'rt:' .. ARGV[3]
local token = redis.call('HMGET', tokenKey, 'f', 'g', 'e', 'u')
if not token[1] then return { 'refused', 'unknown' } end
local familyKey = p .. 'fam:' .. token[1]
local family = redis.call('HMGET', familyKey, 'j', 'c', 'r', 'e')
if not family[1] then return { 'refused', 'unknown' } end
if family[2] ~= ARGV[4] then return { 'refused', 'wrong_client', family[1] } end
if family[3] ~= '0' then return { 'refused', 'family_revoked', family[1] } end
local familyEnd = tonumber(family[4])
if familyEnd <= now then return { 'refused', 'expired', family[1] } end
if token[4] == '1' then
  local out = {}
  revokeFamily(token[1], now, out)
  notify(out)
  return { 'reused', family[1], token[2], out }
end
if tonumber(token[3]) <= now then return { 'refused', 'expired', family[1] } end
local asked = cjson.decode(ARGV[5])
if #asked > 0 then
  local granted = {}
  for _, scope in ipairs(cjson.decode(family[1]).scopes) do granted[scope] = true end
  for _, scope in ipairs(asked) do
    if not granted[scope] then return { 'refused', 'scope_not_granted', family[1] } end
  end
end
local successorKey = p .. 'rt:' .. ARGV[7]
if redis.call('EXISTS', successorKey) == 1 then return redis.error_reply('duplicate refresh token hash') end
redis.call('HSET', tokenKey, 'u', '1')
local generation = tonumber(token[2]) + 1
local expires = math.min(now + tonumber(ARGV[8]), familyEnd)
redis.call('HSET', successorKey, 'f', token[1], 'g', tostring(generation), 'i', ARGV[6], 'e', tostring(expires), 'u', '0')
redis.call('PEXPIRE', successorKey, math.max(1, familyEnd - now))
redis.call('HSET', familyKey .. ':at', ARGV[9], ARGV[10])
return { 'rotated', family[1], tostring(generation), tostring(expires) }
`;

// ARGV: prefix, feedLength, hash, now
const FAMILY_OF_TOKEN = `${COMMON}
local familyId = redis.call('HGET', p .. 'rt:' .. ARGV[3], 'f')
if not familyId then return false end
local family = redis.call('HMGET', p .. 'fam:' .. familyId, 'j', 'e')
if not family[1] or tonumber(family[2]) <= tonumber(ARGV[4]) then return false end
return family[1]
`;

// ARGV: prefix, feedLength, hash, now. Reads only: an active token's {family JSON, generation,
// issued at, usable until}, else false.
const INSPECT = `${COMMON}
local now = tonumber(ARGV[4])
local token = redis.call('HMGET', p .. 'rt:' .. ARGV[3], 'f', 'g', 'i', 'e', 'u')
if not token[1] or token[5] ~= '0' or tonumber(token[4]) <= now then return false end
local family = redis.call('HMGET', p .. 'fam:' .. token[1], 'j', 'r', 'e')
if not family[1] or family[2] ~= '0' or tonumber(family[3]) <= now then return false end
return { family[1], token[2], token[3], token[4] }
`;

// ARGV: prefix, feedLength, kind (fam|sub|sid), value, now
const REVOKE_FAMILIES = `${COMMON}
local now = tonumber(ARGV[5])
local ids
if ARGV[3] == 'fam' then ids = { ARGV[4] } else ids = redis.call('SMEMBERS', p .. ARGV[3] .. ':' .. ARGV[4]) end
local out = {}
local count = 0
for _, familyId in ipairs(ids) do
  if revokeFamily(familyId, now, out) then count = count + 1 end
end
notify(out)
return { tostring(count), out }
`;

// ARGV: prefix, feedLength, now, id1, exp1, id2, exp2, ...
const REVOKE = `${COMMON}
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', p .. 'rev', '-inf', ARGV[3])
local out = {}
for i = 4, #ARGV, 2 do
  if addRevocation(ARGV[i], ARGV[i + 1], now) then
    out[#out + 1] = ARGV[i]
    out[#out + 1] = ARGV[i + 1]
  end
end
notify(out)
return out
`;

interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

const SCRIPTS = {
  createFamily: script(CREATE_FAMILY),
  rotate: script(ROTATE),
  familyOfToken: script(FAMILY_OF_TOKEN),
  inspect: script(INSPECT),
  revokeFamilies: script(REVOKE_FAMILIES),
  revoke: script(REVOKE),
} as const;

function parseFamily(json: string): FamilyRecord {
  const parsed = JSON.parse(json) as FamilyRecord;
  return { ...parsed, sessionId: parsed.sessionId ?? undefined };
}

function pairsToEntries(flat: readonly string[]): RevocationEntry[] {
  const entries: RevocationEntry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    entries.push({ id: flat[i]!, expiresAtMs: Number(flat[i + 1]) });
  }
  return entries;
}

/** Compares two Redis stream IDs (`ms-seq`). */
function compareStreamIds(a: string, b: string): number {
  const [aMs = 0n, aSeq = 0n] = a.split("-").map(BigInt);
  const [bMs = 0n, bSeq = 0n] = b.split("-").map(BigInt);
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  return aSeq === bSeq ? 0 : aSeq < bSeq ? -1 : 1;
}

const CURSOR_PREFIX = "r:";
const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

/**
 * The token store on Redis, shared by every replica. Each change is one Lua script, so a check
 * and the change it guards are atomic (one of N concurrent rotations of a token wins). Only
 * hashes of refresh tokens are stored. The revocation list is a sorted set scored by expiry;
 * the feed is a Redis Stream, whose IDs are cursors a reader can resume from on any replica,
 * plus a pub/sub channel that only wakes readers up (a missed wake-up costs one poll interval,
 * a missed event costs nothing because readers always read the stream).
 *
 * Every Redis failure becomes a `ServiceError` UNAVAILABLE: nothing is issued that was not
 * recorded.
 */
export class RedisTokenStore implements TokenStore {
  readonly #client: Redis;
  readonly #prefix: string;
  readonly #feedLength: string;
  readonly #ownsClient: boolean;
  readonly #pollIntervalMs: number;
  readonly #listeners = new Set<() => void>();
  #subscriber: Redis | undefined;
  #poll: NodeJS.Timeout | undefined;

  constructor(options: RedisTokenStoreOptions) {
    this.#client = options.client;
    this.#prefix = options.prefix;
    this.#feedLength = String(options.feedLength ?? 10_000);
    this.#ownsClient = options.ownsClient ?? false;
    this.#pollIntervalMs = options.feedPollIntervalMs ?? 1_000;
  }

  async ping(): Promise<void> {
    await this.#call(() => this.#client.ping());
  }

  async close(): Promise<void> {
    this.#stopFeed();
    if (this.#ownsClient) await this.#client.quit().catch(() => undefined);
  }

  async createFamily(entry: NewFamily, nowMs: number): Promise<void> {
    const { family } = entry;
    await this.#run(SCRIPTS.createFamily, [
      entry.tokenHash,
      family.familyId,
      JSON.stringify(family),
      family.clientId,
      String(family.expiresAtMs),
      String(entry.tokenExpiresAtMs),
      String(family.createdAtMs),
      entry.accessToken.jti,
      String(entry.accessToken.expiresAtMs),
      family.subject,
      family.sessionId ?? "",
      String(nowMs),
    ]);
  }

  async rotate(request: RotateRequest): Promise<RotateResult> {
    const reply = (await this.#run(SCRIPTS.rotate, [
      request.tokenHash,
      request.clientId,
      JSON.stringify(request.scopes),
      String(request.nowMs),
      request.successorHash,
      String(request.idleTimeoutMs),
      request.accessToken.jti,
      String(request.accessToken.expiresAtMs),
    ])) as [string, ...unknown[]];
    switch (reply[0]) {
      case "rotated": {
        const family = parseFamily(reply[1] as string);
        return {
          outcome: "rotated",
          family,
          successor: {
            tokenHash: request.successorHash,
            familyId: family.familyId,
            generation: Number(reply[2]),
            issuedAtMs: request.nowMs,
            expiresAtMs: Number(reply[3]),
          },
        };
      }
      case "reused":
        return {
          outcome: "reused",
          family: parseFamily(reply[1] as string),
          generation: Number(reply[2]),
          revoked: pairsToEntries(reply[3] as string[]),
        };
      default: {
        const reason = reply[1] as RotateRefusal;
        return reply[2] === undefined
          ? { outcome: "refused", reason }
          : { outcome: "refused", reason, family: parseFamily(reply[2] as string) };
      }
    }
  }

  async familyOfToken(tokenHash: string, nowMs: number): Promise<FamilyRecord | undefined> {
    const reply = await this.#run(SCRIPTS.familyOfToken, [tokenHash, String(nowMs)]);
    return typeof reply === "string" ? parseFamily(reply) : undefined;
  }

  async inspect(tokenHash: string, nowMs: number): Promise<ActiveRefreshToken | undefined> {
    const reply = await this.#run(SCRIPTS.inspect, [tokenHash, String(nowMs)]);
    if (!Array.isArray(reply)) return undefined;
    const [json, generation, issuedAt, expiresAt] = reply as [string, string, string, string];
    const family = parseFamily(json);
    return {
      family,
      token: {
        tokenHash,
        familyId: family.familyId,
        generation: Number(generation),
        issuedAtMs: Number(issuedAt),
        expiresAtMs: Number(expiresAt),
      },
    };
  }

  async revokeFamilies(selector: FamilySelector, nowMs: number): Promise<FamilyRevocation> {
    const [kind, value] =
      "familyId" in selector
        ? ["fam", selector.familyId]
        : "subject" in selector
          ? ["sub", selector.subject]
          : ["sid", selector.sessionId];
    const [count, flat] = (await this.#run(SCRIPTS.revokeFamilies, [
      kind,
      value,
      String(nowMs),
    ])) as [string, string[]];
    return { families: Number(count), revoked: pairsToEntries(flat) };
  }

  async revoke(
    entries: readonly RevocationEntry[],
    nowMs: number,
  ): Promise<readonly RevocationEntry[]> {
    const args = [String(nowMs)];
    for (const entry of entries) args.push(entry.id, String(entry.expiresAtMs));
    return pairsToEntries((await this.#run(SCRIPTS.revoke, args)) as string[]);
  }

  async isRevoked(id: string, nowMs: number): Promise<boolean> {
    const score = await this.#call(() => this.#client.zscore(`${this.#prefix}rev`, id));
    return score !== null && Number(score) > nowMs;
  }

  async snapshot(nowMs: number): Promise<{ entries: RevocationEntry[]; cursor: FeedCursor }> {
    const results = await this.#call(() =>
      this.#client
        .multi()
        .xrevrange(`${this.#prefix}log`, "+", "-", "COUNT", 1)
        .zrangebyscore(`${this.#prefix}rev`, `(${nowMs}`, "+inf", "WITHSCORES")
        .exec(),
    );
    const [[, last], [, flat]] = results as [[unknown, [string, string[]][]], [unknown, string[]]];
    return {
      entries: pairsToEntries(flat),
      cursor: `${CURSOR_PREFIX}${last[0]?.[0] ?? "0-0"}`,
    };
  }

  async eventsAfter(cursor: FeedCursor, limit: number): Promise<readonly FeedEvent[] | "gone"> {
    const id = cursor.slice(CURSOR_PREFIX.length);
    if (!cursor.startsWith(CURSOR_PREFIX) || !STREAM_ID.test(id)) return "gone";
    const key = `${this.#prefix}log`;
    const results = await this.#call(() =>
      this.#client.multi().xinfo("STREAM", key).xrange(key, `(${id}`, "+", "COUNT", limit).exec(),
    );
    const [[infoError, info], [, events]] = results as [
      [Error | null, unknown[]],
      [unknown, [string, string[]][]],
    ];
    if (infoError !== null) return id === "0-0" ? [] : "gone";
    const field = (name: string) => info[info.indexOf(name) + 1] as string;
    // Redis 7: the largest ID ever trimmed away; a cursor at or before it may have missed events.
    if (compareStreamIds(id, field("max-deleted-entry-id")) < 0) return "gone";
    if (compareStreamIds(id, field("last-generated-id")) > 0) return "gone";
    return events.map(([streamId, fields]) => {
      const values = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) values.set(fields[i]!, fields[i + 1]!);
      return {
        cursor: `${CURSOR_PREFIX}${streamId}`,
        entry: { id: values.get("id") ?? "", expiresAtMs: Number(values.get("exp")) },
      };
    });
  }

  onEvents(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (this.#listeners.size === 1) this.#startFeed();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stopFeed();
    };
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  #startFeed(): void {
    const subscriber = this.#client.duplicate({ lazyConnect: false });
    subscriber.on("error", () => undefined);
    subscriber.on("message", () => this.#notify());
    // Subscribe on every (re)connect: the client may refuse commands while disconnected
    // (enableOfflineQueue off). Events published while unsubscribed: wake readers to look.
    subscriber.on("ready", () => {
      subscriber.subscribe(`${this.#prefix}events`).then(
        () => this.#notify(),
        () => undefined,
      );
    });
    this.#subscriber = subscriber;
    this.#poll = setInterval(() => this.#notify(), this.#pollIntervalMs);
    this.#poll.unref();
  }

  #stopFeed(): void {
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
  }

  async #run(target: Script, args: readonly string[]): Promise<unknown> {
    const argv = [this.#prefix, this.#feedLength, ...args];
    return this.#call(async () => {
      try {
        return await this.#client.evalsha(target.sha, 0, ...argv);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
        return await this.#client.eval(target.source, 0, ...argv);
      }
    });
  }

  async #call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof Error && error.message.includes("duplicate refresh token hash")) {
        throw new Error("duplicate refresh token hash", { cause: error });
      }
      // A script or command error is a bug, not an outage: let it become INTERNAL.
      if (
        error instanceof Error &&
        error.name === "ReplyError" &&
        /^(ERR|WRONGTYPE)/.test(error.message)
      ) {
        throw error;
      }
      throw new ServiceError("UNAVAILABLE", "the token store is unavailable", {
        cause: error,
        retryAfterMs: 1_000,
      });
    }
  }
}
