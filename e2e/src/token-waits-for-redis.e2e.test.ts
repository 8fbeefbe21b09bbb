import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { ServiceFleet } from "./service-fleet.ts";

// Waiting for a dependency is not an error: token started before its Redis says so once, at
// info, and serves as soon as Redis comes up, without a restart.

let fleet: ServiceFleet;
let redis: ChildProcess | undefined;

async function freePort(): Promise<number> {
  const probe = createServer().listen(0, "127.0.0.1");
  await once(probe, "listening");
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  fleet = await ServiceFleet.create();
});

afterAll(async () => {
  await fleet?.stopAll();
  redis?.kill("SIGTERM");
});

describe("token started before its Redis", () => {
  it("logs once at info that it waits, then serves when Redis comes up", async () => {
    const port = await freePort();
    const started = fleet.start("token", {
      REDIS_URL: `redis://127.0.0.1:${port}`,
      REDIS_KEY_PREFIX: `e2e-wait-${randomBytes(4).toString("hex")}:`,
      KEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    });
    await vi.waitFor(
      () => expect(fleet.output.join("\n")).toContain("waiting for Redis (REDIS_URL)"),
      { timeout: 10_000, interval: 50 },
    );
    // Still waiting a while later: one line, at info, and no failure.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const lines = fleet.output.filter((line) => line.startsWith("token |"));
    const waiting = lines.filter((line) => line.includes("waiting for Redis"));
    expect(waiting).toHaveLength(1);
    expect(JSON.parse(waiting[0]!.slice("token | ".length))).toMatchObject({
      level: "info",
      redis: `127.0.0.1:${port}`,
    });
    expect(lines.filter((line) => /"level":"(error|fatal)"/.test(line))).toEqual([]);

    redis = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: "ignore" },
    );
    const { port: tokenPort } = await started;
    const client = await fleet.client(TokenService, "token", "operator", tokenPort);
    expect((await client.getJwks({})).keys.length).toBeGreaterThan(0);
    expect(fleet.output.join("\n")).toContain('"msg":"Redis answers"');
  });
});
