import { randomUUID } from "node:crypto";
import { loadConfig } from "@authplat/config";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import pg from "pg";
import { z } from "zod";

/** Where the test backends are; the defaults are the local services CI starts. */
const backendEnv = z.object({
  TEST_REDIS_URL: z.string().default("redis://127.0.0.1:6379"),
  TEST_DATABASE_URL: z.string().default("postgres://postgres@127.0.0.1:5432/test"),
  TEST_NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  REQUIRE_BACKENDS: z
    .enum(["0", "1", "true", "false"])
    .default("0")
    .transform((value) => value === "1" || value === "true"),
});

/** Settings of the backends harness. */
export type BackendConfig = z.output<typeof backendEnv>;

/** The configuration of the backends harness, read once from the environment. */
export const backendConfig: BackendConfig = loadConfig(backendEnv, process.env);

/** A Redis connection with a private key prefix, cleaned up after the test. */
export interface RedisBackend {
  readonly client: Redis;
  /** Prefix every key a test writes must start with. */
  readonly prefix: string;
  /** Deletes the prefixed keys and closes the connection. */
  cleanup(): Promise<void>;
}

/** A PostgreSQL pool whose `search_path` is a fresh schema, dropped after the test. */
export interface PostgresBackend {
  readonly pool: pg.Pool;
  readonly schema: string;
  cleanup(): Promise<void>;
}

/** A NATS connection plus a private subject prefix; streams made under it are removed. */
export interface NatsBackend {
  readonly connection: NatsConnection;
  readonly subjectPrefix: string;
  cleanup(): Promise<void>;
}

function unavailable(config: BackendConfig, name: string, url: string, error: unknown): undefined {
  const reason = error instanceof Error ? error.message : String(error);
  if (config.REQUIRE_BACKENDS) {
    throw new Error(`REQUIRE_BACKENDS is set but ${name} at ${url} is unreachable: ${reason}`);
  }
  console.warn(`[backends] SKIPPING ${name} tests: ${url} is unreachable (${reason})`);
  return undefined;
}

/**
 * Connects to the test Redis with a unique key prefix. When Redis is unreachable it returns
 * undefined with a visible warning, or throws when `REQUIRE_BACKENDS` is set.
 */
export async function redisBackend(
  config: BackendConfig = backendConfig,
): Promise<RedisBackend | undefined> {
  const url = config.TEST_REDIS_URL;
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
  });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    return unavailable(config, "Redis", url, error);
  }
  const prefix = `test:${randomUUID()}:`;
  return {
    client,
    prefix,
    async cleanup() {
      let cursor = "0";
      do {
        const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
        if (keys.length > 0) await client.del(...keys);
        cursor = next;
      } while (cursor !== "0");
      await client.quit();
    },
  };
}

/**
 * Connects to the test PostgreSQL with a fresh schema as the search path. When PostgreSQL is
 * unreachable it returns undefined with a visible warning, or throws under `REQUIRE_BACKENDS`.
 */
export async function postgresBackend(
  config: BackendConfig = backendConfig,
): Promise<PostgresBackend | undefined> {
  const url = config.TEST_DATABASE_URL;
  const schema = `test_${randomUUID().replaceAll("-", "")}`;
  const admin = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await admin.connect();
    await admin.query(`CREATE SCHEMA "${schema}"`);
  } catch (error) {
    await admin.end().catch(() => undefined);
    return unavailable(config, "PostgreSQL", url, error);
  }
  await admin.end();
  const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}`, max: 4 });
  return {
    pool,
    schema,
    async cleanup() {
      await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
      await pool.end();
    },
  };
}

/**
 * Connects to the test NATS server (JetStream enabled) with a unique subject prefix. When NATS
 * is unreachable it returns undefined with a visible warning, or throws under
 * `REQUIRE_BACKENDS`.
 */
export async function natsBackend(
  config: BackendConfig = backendConfig,
): Promise<NatsBackend | undefined> {
  const url = config.TEST_NATS_URL;
  let connection: NatsConnection;
  try {
    connection = await connect({ servers: url, timeout: 2_000, reconnect: false });
  } catch (error) {
    return unavailable(config, "NATS", url, error);
  }
  const subjectPrefix = `test.${randomUUID().replaceAll("-", "")}`;
  return {
    connection,
    subjectPrefix,
    async cleanup() {
      await connection.drain();
    },
  };
}
