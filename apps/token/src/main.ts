import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Redis } from "ioredis";
import { loadConfigOrExit, redactConfig } from "@authplat/config";
import { createLogger } from "@authplat/observability";
import { loadServiceAccessRules, runService } from "@authplat/rpc";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import accessRulesFile from "./access-rules.json" with { type: "json" };
import { loadTokenConfig, TOKEN_SECRETS } from "./config.ts";
import { tokenServiceRegistration } from "./handlers.ts";
import { KeyManager } from "./keys/key-manager.ts";
import { KeyRing } from "./keys/key-ring.ts";
import { FileKeyStore, RedisKeyStore } from "./keys/key-store.ts";
import { loadLocalSigner } from "./keys/signer.ts";
import { IdTokenIssuer } from "./tokens/id-token.ts";
import { MemoryRefreshTokenStore } from "./tokens/memory-refresh-token-store.ts";
import { RedisTokenStore } from "./tokens/redis-token-store.ts";
import type { TokenStore } from "./tokens/refresh-token-store.ts";
import { RevocationService } from "./tokens/revocation-service.ts";
import { TokenIssuer } from "./tokens/token-issuer.ts";

const config = loadConfigOrExit("token", () => loadTokenConfig(process.env));
const logger = createLogger({ service: "token", level: config.LOG_LEVEL });

// Verifiers accept a token until `exp` plus their clock tolerance (at most 60 s at auth-edge).
const VERIFIER_LEEWAY_SECONDS = 60;
// How often Redis is checked for readiness; also the retry pushback while it is down.
const READINESS_INTERVAL_MS = 1_000;

/** host:port of a Redis URL, never its credentials. */
function redisAddress(url: string): string {
  try {
    const { hostname, port } = new URL(url);
    return `${hostname}:${port === "" ? "6379" : port}`;
  } catch {
    return "the configured address";
  }
}

/**
 * Resolves once Redis answers a PING. Signing keys and families live there, so nothing can be
 * served before it answers; a Redis that is not up yet is waited for (logged once, at info),
 * not a failure. ioredis keeps reconnecting in the background meanwhile.
 */
async function untilRedisAnswers(redis: Redis, url: string): Promise<void> {
  await redis.connect().catch(() => undefined);
  let waiting = false;
  for (;;) {
    try {
      await redis.ping();
      if (waiting) logger.info({ redis: redisAddress(url) }, "Redis answers");
      return;
    } catch {
      if (!waiting) {
        logger.info(
          { redis: redisAddress(url) },
          "waiting for Redis (REDIS_URL) before loading signing keys",
        );
        waiting = true;
      }
      await new Promise((resolve) => setTimeout(resolve, READINESS_INTERVAL_MS));
    }
  }
}

try {
  logger.debug({ config: redactConfig(config, TOKEN_SECRETS) }, "configuration");
  const nowMs = () => Date.now();
  let redis: Redis | undefined;
  if (config.REDIS_URL !== undefined) {
    redis = new Redis(config.REDIS_URL, {
      lazyConnect: true,
      // Fail fast while Redis is away (UNAVAILABLE), reconnect in the background.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      commandTimeout: 2_000,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
      // Commands issued in the same tick share one socket write (profiled: one write syscall
      // per command was a tenth of the service's CPU under load).
      enableAutoPipelining: true,
    });
    // Outages are reported by the readiness checks (runService); ioredis reconnects by itself.
    redis.on("error", (error) => logger.debug({ err: error }, "Redis connection error"));
    await untilRedisAnswers(redis, config.REDIS_URL);
  }
  const memoryStore =
    redis === undefined
      ? new MemoryRefreshTokenStore({
          file: join(config.TOKEN_DATA_DIR, "store.jsonl"),
          maxEntries: config.TOKEN_STORE_MAX_ENTRIES,
        })
      : undefined;
  const store: TokenStore =
    memoryStore ?? new RedisTokenStore({ client: redis!, prefix: config.REDIS_KEY_PREFIX });

  let keys: KeyRing;
  let keyManager: KeyManager | undefined;
  if (config.SIGNING_KEY_FILE !== undefined) {
    keys = new KeyRing(
      loadLocalSigner(await readFile(config.SIGNING_KEY_FILE, "utf8"), config.SIGNING_ALG),
    );
  } else {
    const keyStore =
      redis !== undefined
        ? new RedisKeyStore(redis, config.REDIS_KEY_PREFIX)
        : new FileKeyStore(config.SIGNING_KEY_DIR ?? join(config.TOKEN_DATA_DIR, "keys"));
    keyManager = new KeyManager({
      store: keyStore,
      algorithm: config.SIGNING_ALG,
      nowMs,
      kek:
        config.KEY_ENCRYPTION_KEY === undefined
          ? undefined
          : Buffer.from(config.KEY_ENCRYPTION_KEY, "base64"),
      publishLeadMs: config.KEY_PUBLISH_LEAD_SECONDS * 1000,
      rotationIntervalMs: config.KEY_ROTATION_INTERVAL_SECONDS * 1000,
      retainMs:
        (Math.max(config.ACCESS_TOKEN_TTL_SECONDS, config.ID_TOKEN_TTL_SECONDS) +
          VERIFIER_LEEWAY_SECONDS) *
        1000,
    });
    await keyManager.start();
    keys = keyManager.ring;
  }
  logger.info(
    { kid: keys.active.keyId, store: redis === undefined ? "embedded" : "redis" },
    "signing keys loaded",
  );

  const maintenance = setInterval(() => {
    memoryStore?.sweep(nowMs());
    keyManager?.tick().catch((error: unknown) => {
      logger.warn({ err: error }, "signing-key maintenance failed; retrying next interval");
    });
  }, config.KEY_RELOAD_INTERVAL_MS);
  maintenance.unref();

  const issuer = new TokenIssuer({
    keys,
    refreshTokens: store,
    nowMs,
    issuer: config.JWT_ISSUER,
    accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTtlSeconds: config.REFRESH_TOKEN_TTL_SECONDS,
    refreshIdleTimeoutSeconds: config.REFRESH_IDLE_TIMEOUT_SECONDS,
    log: logger,
  });
  const revocations = new RevocationService({
    store,
    nowMs,
    verificationKeys: () => keys.published.map((key) => key.jwk),
    maxAccessTokenTtlSeconds: 3_600,
    log: logger,
  });
  const idTokens = new IdTokenIssuer({
    keys,
    nowMs,
    issuer: config.JWT_ISSUER,
    ttlSeconds: config.ID_TOKEN_TTL_SECONDS,
  });

  await runService({
    name: "token",
    settings: config,
    logger,
    accessRules: loadServiceAccessRules(config, {
      rules: { file: "apps/token/src/access-rules.json", content: accessRulesFile },
      services: [TokenService],
    }),
    services: [
      tokenServiceRegistration({
        issuer,
        keys,
        revocations,
        idTokens,
        ...(keyManager === undefined ? {} : { keyManager }),
      }),
    ],
    // Fail closed while Redis is away: health NOT_SERVING and every RPC UNAVAILABLE, never a
    // token that was not recorded; both recover by themselves when Redis answers again.
    readiness:
      redis === undefined ? [] : [{ name: "redis", required: true, check: () => store.ping() }],
    readinessIntervalMs: READINESS_INTERVAL_MS,
    onStopped: async () => {
      clearInterval(maintenance);
      await store.close();
      await redis?.quit().catch(() => undefined);
    },
  });
} catch (error) {
  logger.fatal({ err: error }, "token service failed to start");
  process.exit(1);
}
