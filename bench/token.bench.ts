/**
 * `npm run bench:token`: IssueTokenPair and RefreshTokens of the token service over mutual TLS,
 * with the Redis store, next to, in the same run, node-oidc-provider's client_credentials and
 * refresh_token grants (ES256 JWT access tokens, plain HTTP/1.1 keep-alive, its in-memory
 * adapter). Prints a table with the ratios and writes bench/results/token.json.
 *
 * Both servers run as their own processes; the clients run in this one. Redis is the test
 * Redis (`TEST_REDIS_URL`, default 127.0.0.1:6379) under a private key prefix, removed after.
 *
 * @module
 */
import { randomBytes, randomUUID } from "node:crypto";
import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { cpus } from "node:os";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { createRpcClient } from "@authplat/rpc";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki } from "@authplat/spiffe/test-pki";
import { serviceEnv, spawnService, type ServiceProcess } from "@authplat/tools/service-process";
import { measure, type Measurement } from "./measure.ts";

const root = resolve(import.meta.dirname, "..");
const OPTIONS = {
  warmup: Number(process.env["BENCH_WARMUP"] ?? 300),
  samples: Number(process.env["BENCH_SAMPLES"] ?? 1_000),
  concurrency: 64,
  throughputMs: Number(process.env["BENCH_THROUGHPUT_MS"] ?? 4_000),
};
const AUDIENCE = "https://api.auth.local";
const REDIS_URL = process.env["TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379";
const PREFIX = `bench:${randomUUID()}:`;
const CLIENT_AUTH = `Basic ${Buffer.from("bench:bench-secret-bench-secret-bench-secret").toString("base64")}`;

const pki = await createTestPki();
const children: ServiceProcess[] = [];
const cleanups: (() => void | Promise<void>)[] = [];
// Runs last, once the token service can no longer write.
let removeKeys: () => Promise<void> = async () => {};

/** CPU time (user + system) a process has used so far, in ms; Linux only (clock ticks of 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Runs {@link measure} and adds the server process's CPU time per call. */
async function measureWithCpu(
  name: string,
  pid: number,
  operation: () => Promise<unknown>,
): Promise<Measurement & { serverCpuMsPerCall: number }> {
  let calls = 0;
  const counted = async () => {
    calls += 1;
    return operation();
  };
  const before = await cpuMs(pid);
  const result = await measure(name, counted, OPTIONS);
  return { ...result, serverCpuMsPerCall: ((await cpuMs(pid)) - before) / calls };
}

async function startOidcProvider(): Promise<{ port: number; pid: number }> {
  const child = spawn(process.execPath, [resolve(root, "bench/token-oidc-provider-server.ts")], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  cleanups.push(() => void child.kill("SIGTERM"));
  const line = await new Promise<string>((done) =>
    createInterface({ input: child.stdout! }).once("line", done),
  );
  return { port: (JSON.parse(line) as { port: number }).port, pid: child.pid! };
}

function httpPost(
  agent: Agent,
  port: number,
  path: string,
  body: string,
  headers: Record<string, string>,
): Promise<string> {
  return new Promise((done, fail) => {
    const req = request(
      {
        agent,
        host: "127.0.0.1",
        port,
        path,
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200) fail(new Error(`HTTP ${res.statusCode}: ${text}`));
          else done(text);
        });
      },
    );
    req.on("error", fail);
    req.end(body);
  });
}

try {
  // BENCH_PROFILE=<dir>: the token service writes a V8 CPU profile there when it stops.
  const profileDir = process.env["BENCH_PROFILE"];
  const token = spawnService({
    root,
    name: "token",
    ...(profileDir === undefined
      ? {}
      : { nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] }),
    // Production rules, as deployed: the benchmark calls as session-identity.
    env: serviceEnv(process.env, pki.files("token"), {
      ACCESS_PROFILE: "production",
      REDIS_URL,
      REDIS_KEY_PREFIX: PREFIX,
      KEY_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    }),
  });
  children.push(token);
  const tokenPort = (await token.serving).port;
  const oidc = await startOidcProvider();
  const oidcPort = oidc.port;
  const tokenPid = token.child.pid!;
  removeKeys = async () => {
    const redis = new Redis(REDIS_URL);
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${PREFIX}*`, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
    await redis.quit();
  };

  const client = await createRpcClient(TokenService, {
    address: `127.0.0.1:${tokenPort}`,
    tls: pki.files("session-identity"),
    serverId: parseSpiffeId(pki.idOf("token")),
  });
  cleanups.push(() => client.close());
  const agent = new Agent({ keepAlive: true, maxSockets: OPTIONS.concurrency });
  cleanups.push(() => agent.destroy());

  const pairRequest = {
    subject: "bench-user",
    clientId: "bench",
    audience: [AUDIENCE],
    scopes: ["orders:read", "profile"],
  };
  const issuePair = () => client.issueTokenPair(pairRequest);
  const clientCredentials = () =>
    httpPost(
      agent,
      oidcPort,
      "/token",
      "grant_type=client_credentials&scope=orders%3Aread%20profile",
      {
        authorization: CLIENT_AUTH,
      },
    );

  // Each caller keeps its own chain: every call presents the token the previous one returned.
  function refreshChain(start: () => Promise<string>, next: (token: string) => Promise<string>) {
    let tokens: string[] = [];
    return {
      async prepare(count: number) {
        tokens = await Promise.all(Array.from({ length: count }, start));
      },
      operation: (() => {
        let slot = 0;
        return async () => {
          const mine = slot++ % tokens.length;
          tokens[mine] = await next(tokens[mine]!);
        };
      })(),
    };
  }
  const ours = refreshChain(
    async () => (await issuePair()).refreshToken,
    async (refreshToken) =>
      (await client.refreshTokens({ refreshToken, clientId: "bench" })).refreshToken,
  );
  const theirs = refreshChain(
    () => httpPost(agent, oidcPort, "/bench/refresh-token", "", {}),
    async (refreshToken) =>
      (
        JSON.parse(
          await httpPost(
            agent,
            oidcPort,
            "/token",
            `grant_type=refresh_token&refresh_token=${refreshToken}`,
            {
              authorization: CLIENT_AUTH,
            },
          ),
        ) as { refresh_token: string }
      ).refresh_token,
  );
  // More chains than callers, so no two calls in flight ever share a token.
  await ours.prepare(OPTIONS.concurrency * 2);
  await theirs.prepare(OPTIONS.concurrency * 2);

  // Sanity: every path must succeed before it is timed.
  await issuePair();
  JSON.parse(await clientCredentials());
  await ours.operation();
  await theirs.operation();

  // Interleaved, so drift on a shared machine hits both sides alike.
  const results = [
    await measureWithCpu("token IssueTokenPair (mTLS, Redis)", tokenPid, issuePair),
    await measureWithCpu("node-oidc-provider client_credentials", oidc.pid, clientCredentials),
    await measureWithCpu("token RefreshTokens (mTLS, Redis)", tokenPid, ours.operation),
    await measureWithCpu("node-oidc-provider refresh_token", oidc.pid, theirs.operation),
  ];
  const [issue, cc, refresh, rt] = results as [
    (typeof results)[0],
    (typeof results)[0],
    (typeof results)[0],
    (typeof results)[0],
  ];
  const ratios = {
    issueVsClientCredentials: issue.throughputPerSec / cc.throughputPerSec,
    refreshVsRefreshToken: refresh.throughputPerSec / rt.throughputPerSec,
    issueServerCpu: cc.serverCpuMsPerCall / issue.serverCpuMsPerCall,
    refreshServerCpu: rt.serverCpuMsPerCall / refresh.serverCpuMsPerCall,
  };
  console.log(
    `\n${cpus().length} CPUs, ${OPTIONS.samples} sequential samples, ${OPTIONS.concurrency} in flight for ${OPTIONS.throughputMs} ms\n`,
  );
  console.log("| path | p50 ms | p99 ms | calls/s (64 in flight) | server CPU ms/call |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const m of results) {
    console.log(
      `| ${m.name} | ${m.p50Ms.toFixed(2)} | ${m.p99Ms.toFixed(2)} | ${Math.round(m.throughputPerSec)} | ${m.serverCpuMsPerCall.toFixed(3)} |`,
    );
  }
  console.log(
    `\nthroughput, IssueTokenPair / client_credentials: ${ratios.issueVsClientCredentials.toFixed(2)}x; RefreshTokens / refresh_token: ${ratios.refreshVsRefreshToken.toFixed(2)}x (goal >= 2x)`,
  );
  console.log(
    `server CPU per call, node-oidc-provider / token: issue ${ratios.issueServerCpu.toFixed(2)}x, refresh ${ratios.refreshServerCpu.toFixed(2)}x (Redis's own CPU not counted)`,
  );
  await mkdir(resolve(root, "bench/results"), { recursive: true });
  await writeFile(
    resolve(root, "bench/results/token.json"),
    `${JSON.stringify({ options: OPTIONS, cpus: cpus().length, results, ratios }, null, 2)}\n`,
  );
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await Promise.all(children.map((child) => child.stop()));
  await removeKeys();
  await pki.cleanup();
}
