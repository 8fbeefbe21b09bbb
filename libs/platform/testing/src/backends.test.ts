import { describe, expect, it } from "vitest";
import { natsBackend, postgresBackend, redisBackend } from "./backends.ts";

// These tests exercise the harness against the real servers: each backend gets isolated
// data and leaves nothing behind.
const redis = await redisBackend();
const postgres = await postgresBackend();
const nats = await natsBackend();

describe.runIf(redis)("redisBackend", () => {
  it("isolates keys under a prefix and deletes them on cleanup", async () => {
    const backend = redis!;
    await backend.client.set(`${backend.prefix}a`, "1");
    await backend.client.set(`${backend.prefix}b`, "2");
    expect(await backend.client.get(`${backend.prefix}a`)).toBe("1");
    const probe = (await redisBackend())!;
    await backend.cleanup();
    expect(await probe.client.exists(`${backend.prefix}a`, `${backend.prefix}b`)).toBe(0);
    await probe.cleanup();
  });
});

describe.runIf(postgres)("postgresBackend", () => {
  it("gives each test its own schema and drops it on cleanup", async () => {
    const backend = postgres!;
    await backend.pool.query("CREATE TABLE sample (id int primary key)");
    await backend.pool.query("INSERT INTO sample VALUES (1)");
    const rows = await backend.pool.query(
      "SELECT table_schema FROM information_schema.tables WHERE table_name = 'sample' AND table_schema = $1",
      [backend.schema],
    );
    expect(rows.rowCount).toBe(1);
    const other = (await postgresBackend())!;
    await backend.cleanup();
    const left = await other.pool.query(
      "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1",
      [backend.schema],
    );
    expect(left.rowCount).toBe(0);
    await other.cleanup();
  });
});

describe.runIf(nats)("natsBackend", () => {
  it("delivers a message published under the private prefix", async () => {
    const backend = nats!;
    const subject = `${backend.subjectPrefix}.hello`;
    const subscription = backend.connection.subscribe(subject, { max: 1 });
    backend.connection.publish(subject, "payload");
    const received: string[] = [];
    // The subscription ends after its one message (max: 1), so this loop terminates.
    for await (const message of subscription) received.push(message.string());
    expect(received).toEqual(["payload"]);
    await backend.cleanup();
  });
});

describe("when a backend is unreachable", () => {
  const nowhere = {
    TEST_REDIS_URL: "redis://127.0.0.1:1",
    TEST_DATABASE_URL: "postgres://postgres@127.0.0.1:1/test",
    TEST_NATS_URL: "nats://127.0.0.1:1",
  };

  it("fails, naming the backend, when REQUIRE_BACKENDS is set", async () => {
    const config = { ...nowhere, REQUIRE_BACKENDS: true };
    await expect(redisBackend(config)).rejects.toThrow(
      /REQUIRE_BACKENDS is set but Redis at redis:\/\/127.0.0.1:1/,
    );
    await expect(postgresBackend(config)).rejects.toThrow(/but PostgreSQL at/);
    await expect(natsBackend(config)).rejects.toThrow(/but NATS at/);
  });

  it("skips with undefined when REQUIRE_BACKENDS is not set", async () => {
    const config = { ...nowhere, REQUIRE_BACKENDS: false };
    expect(await redisBackend(config)).toBeUndefined();
    expect(await postgresBackend(config)).toBeUndefined();
    expect(await natsBackend(config)).toBeUndefined();
  });
});
