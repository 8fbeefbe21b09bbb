import { readFile } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@authplat/observability";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki, type TestPki } from "@authplat/spiffe/test-pki";
import { createRpcClient, type RpcClient } from "./client.ts";
import { sameCallersForEveryMethod } from "./access-rules.ts";
import { monitorReadiness, type ReadinessMonitor } from "./readiness.ts";
import { startRpcServer, type RpcServer } from "./server.ts";
import { echoRegistration, rawCredentials, rawUnaryCall, StreamsService } from "./test-support.ts";

const INTERVAL_MS = 50;
/** HealthCheckResponse bytes: field 1 (status) = SERVING (1) or NOT_SERVING (2). */
const SERVING = Buffer.from([0x08, 0x01]);
const NOT_SERVING = Buffer.from([0x08, 0x02]);

let pki: TestPki;
let server: RpcServer;
let monitor: ReadinessMonitor;
let client: RpcClient<typeof StreamsService>;
let databaseUp = true;
let databaseChecks = 0;
const logLines: { level: string; msg: string; check?: string; reason?: string; err?: unknown }[] =
  [];

function connectionRefused(): Error {
  return Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), {
    code: "ECONNREFUSED",
  });
}

beforeAll(async () => {
  pki = await createTestPki();
  const logger = createLogger({
    service: "readiness-test",
    level: "debug",
    destination: { write: (line: string) => void logLines.push(JSON.parse(line)) },
  });
  server = await startRpcServer({
    name: "ready",
    host: "127.0.0.1",
    port: 0,
    tls: pki.files("token"),
    logger,
    shutdownGraceMs: 1_000,
    accessRules: sameCallersForEveryMethod([StreamsService], [pki.idOf("operator")]),
    services: [echoRegistration()],
  });
  monitor = monitorReadiness({
    checks: [
      {
        name: "database",
        required: true,
        check: async () => {
          databaseChecks++;
          if (!databaseUp) throw connectionRefused();
        },
      },
      {
        name: "optional-cache",
        required: false,
        check: async () => {
          throw connectionRefused();
        },
      },
    ],
    intervalMs: INTERVAL_MS,
    logger,
    onChange: (unavailable) => server.setUnavailable(unavailable),
  });
  await monitor.firstRound;
  server.markServing();
  client = await createRpcClient(StreamsService, {
    address: `127.0.0.1:${server.port}`,
    tls: pki.files("operator"),
    serverId: parseSpiffeId(pki.idOf("token")),
  });
});

afterAll(async () => {
  monitor?.stop();
  client?.close();
  await server?.shutdown();
  await pki?.cleanup();
});

async function health(): Promise<Buffer | undefined> {
  const files = pki.files("operator");
  const outcome = await rawUnaryCall({
    port: server.port,
    credentials: rawCredentials(await readFile(files.bundleFile), {
      certPem: await readFile(files.certFile),
      keyPem: await readFile(files.keyFile),
    }),
    path: "/grpc.health.v1.Health/Check",
    request: new Uint8Array(0),
  });
  expect(outcome.code).toBe(grpc.status.OK);
  return outcome.response;
}

async function healthBecomes(expected: Buffer): Promise<void> {
  const deadline = Date.now() + 5_000;
  let last = await health();
  while (!last?.equals(expected) && Date.now() < deadline) last = await health();
  expect(last).toEqual(expected);
}

describe("readiness follows dependencies", () => {
  it("serves while required checks pass, even with an optional one failing", async () => {
    expect(await health()).toEqual(SERVING);
    await expect(client.echo({ value: "up" })).resolves.toMatchObject({ value: "up" });
  });

  it("turns NOT_SERVING and answers UNAVAILABLE with pushback while a required check fails, then recovers by itself", async () => {
    databaseUp = false;
    await healthBecomes(NOT_SERVING);
    await expect(client.echo({ value: "down" })).rejects.toMatchObject({
      grpcCode: grpc.status.UNAVAILABLE,
      remoteCode: "UNAVAILABLE",
      message: "the service cannot answer right now",
      retryAfterMs: INTERVAL_MS,
    });
    // Several more rounds fail while it is down; each transition is still logged once.
    const failing = () =>
      logLines.filter((line) => line.check === "database" && line.level === "warn");
    const runs = databaseChecks;
    const deadline = Date.now() + 5_000;
    while (databaseChecks < runs + 3 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(databaseChecks).toBeGreaterThanOrEqual(runs + 3);
    databaseUp = true;
    await healthBecomes(SERVING);
    await expect(client.echo({ value: "back" })).resolves.toMatchObject({ value: "back" });
    expect(failing()).toEqual([
      expect.objectContaining({
        msg: "dependency check failing",
        reason: "Error: connect ECONNREFUSED 127.0.0.1:5432",
      }),
    ]);
    // An expected connection failure is logged without a stack.
    expect(failing()[0]?.err).toBeUndefined();
    expect(logLines.filter((line) => line.check === "database" && line.level === "info")).toEqual([
      expect.objectContaining({ msg: "dependency recovered" }),
    ]);
    expect(
      logLines.filter((line) => line.check === "optional-cache" && line.level === "warn"),
    ).toHaveLength(1);
  });
});
