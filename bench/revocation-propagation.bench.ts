/**
 * `npm run bench:revocation`: how long a revocation takes to reach every edge (the goal in
 * docs/decisions.md: "visible at every edge within 100 ms p99").
 *
 * Token and two auth-edges run as their own processes (test PKI, development access rules so the
 * operator may issue and revoke). The benchmark issues `REVOCATIONS` access tokens (default
 * 1,000), validates each at both edges (so they sit in the verification caches, as hot tokens
 * do), then revokes them one by one with RevokeToken by `jti`. For each it measures, from just
 * before RevokeToken is sent, the time until each edge first answers ValidateToken with REVOKED,
 * polling both edges back to back (one call in flight per edge, so the resolution is one
 * ValidateToken round trip, well under a millisecond here). Polling the public RPC rather than a
 * debug hook inside the edge measures what a resource server sees, and needs no hook in
 * production code.
 *
 * With `REDIS_URL` set, token uses Redis (a fresh key prefix) instead of its embedded store.
 * Prints a table and writes JSON to bench/results/revocation-propagation.json.
 *
 * @module
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { AuthEdgeService, RejectionReason } from "@authplat/contracts/auth/auth_edge/v1";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { createRpcClient, type RpcClient } from "@authplat/rpc";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki } from "@authplat/spiffe/test-pki";
import { serviceEnv, spawnService, type ServiceProcess } from "@authplat/tools/service-process";

const root = resolve(import.meta.dirname, "..");
const REVOCATIONS = Number(process.env["REVOCATIONS"] ?? 1_000);
const GOAL_P99_MS = 100;
const AUDIENCE = "https://api.auth.local";
const POLL_GIVE_UP_MS = 10_000;

const pki = await createTestPki();
const dataDir = await mkdtemp(join(tmpdir(), "revocation-bench-"));
const children: ServiceProcess[] = [];
const clients: { close(): void }[] = [];
// The development profile (serviceEnv's): the benchmark issues and revokes as the operator.
const envFor = (name: string, extra: Record<string, string> = {}) =>
  serviceEnv(process.env, pki.files(name), extra);

function percentile(sorted: readonly number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

function summary(values: readonly number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    samples: sorted.length,
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? Number.NaN,
  };
}

/** Polls `edge` until it rejects `token` as REVOKED; the time it first did, from `startedMs`. */
async function untilRevoked(
  edge: RpcClient<typeof AuthEdgeService>,
  token: string,
  startedMs: number,
): Promise<number> {
  for (;;) {
    const reply = await edge.validateToken({ token });
    const now = performance.now();
    if (reply.result.case === "rejection") {
      if (reply.result.value.reason !== RejectionReason.REVOKED) {
        throw new Error(`unexpected rejection ${RejectionReason[reply.result.value.reason]}`);
      }
      return now - startedMs;
    }
    if (now - startedMs > POLL_GIVE_UP_MS) throw new Error("revocation never reached the edge");
  }
}

try {
  const redis = process.env["REDIS_URL"];
  const token = spawnService({
    root,
    name: "token",
    env: envFor("token", {
      TOKEN_DATA_DIR: dataDir,
      ...(redis === undefined
        ? {}
        : { REDIS_URL: redis, REDIS_KEY_PREFIX: `bench-revocation-${process.pid}:` }),
    }),
  });
  children.push(token);
  const tokenPort = (await token.serving).port;
  const edges = await Promise.all(
    [0, 1].map(async () => {
      const edge = spawnService({
        root,
        name: "auth-edge",
        env: envFor("auth-edge", { TOKEN_SERVICE_ADDR: `127.0.0.1:${tokenPort}` }),
      });
      children.push(edge);
      const port = (await edge.serving).port;
      const client = await createRpcClient(AuthEdgeService, {
        address: `127.0.0.1:${port}`,
        tls: pki.files("operator"),
        serverId: parseSpiffeId(pki.idOf("auth-edge")),
      });
      clients.push(client);
      return client;
    }),
  );
  const tokenClient = await createRpcClient(TokenService, {
    address: `127.0.0.1:${tokenPort}`,
    tls: pki.files("operator"),
    serverId: parseSpiffeId(pki.idOf("token")),
  });
  clients.push(tokenClient);

  const issued: { accessToken: string; tokenId: string }[] = [];
  for (let i = 0; i < REVOCATIONS; i += 1) {
    const pair = await tokenClient.issueTokenPair({
      subject: `bench-user-${i}`,
      clientId: "bench",
      audience: [AUDIENCE],
      scopes: ["orders:read"],
    });
    issued.push({ accessToken: pair.accessToken, tokenId: pair.tokenId });
    for (const edge of edges) {
      const reply = await edge.validateToken({ token: pair.accessToken });
      if (reply.result.case !== "claims") throw new Error("a fresh token does not validate");
    }
  }

  const revokeRpc: number[] = [];
  const perEdge: number[][] = [[], []];
  const everyEdge: number[] = [];
  for (const { accessToken, tokenId } of issued) {
    const started = performance.now();
    const revoked = tokenClient
      .revokeToken({ target: { case: "tokenId", value: tokenId } })
      .then(() => revokeRpc.push(performance.now() - started));
    const seen = await Promise.all(edges.map((edge) => untilRevoked(edge, accessToken, started)));
    await revoked;
    seen.forEach((ms, index) => perEdge[index]!.push(ms));
    everyEdge.push(Math.max(...seen));
  }

  const rows = {
    "RevokeToken RPC (token answers)": summary(revokeRpc),
    "REVOKED at edge 1": summary(perEdge[0]!),
    "REVOKED at edge 2": summary(perEdge[1]!),
    "REVOKED at every edge": summary(everyEdge),
  };
  const fmt = (value: number) => value.toFixed(2).padStart(8);
  console.log(
    `\nRevocation propagation: ${REVOCATIONS} revocations one by one, 2 edges, token store ${redis === undefined ? "embedded" : "Redis"}`,
  );
  console.log(
    `node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? "unknown"})\n`,
  );
  console.log(
    `${"".padEnd(34)}${"p50 ms".padStart(8)}${"p95 ms".padStart(8)}${"p99 ms".padStart(8)}${"max ms".padStart(8)}`,
  );
  for (const [name, row] of Object.entries(rows)) {
    console.log(
      `${name.padEnd(34)}${fmt(row.p50Ms)}${fmt(row.p95Ms)}${fmt(row.p99Ms)}${fmt(row.maxMs)}`,
    );
  }
  const every = rows["REVOKED at every edge"];
  const met = every.p99Ms < GOAL_P99_MS;
  console.log(
    `\ngoal: REVOKED at every edge within ${GOAL_P99_MS} ms p99: ${fmt(every.p99Ms).trim()} ms, ${met ? "met" : "NOT met"}`,
  );
  await mkdir(resolve(root, "bench/results"), { recursive: true });
  await writeFile(
    resolve(root, "bench/results/revocation-propagation.json"),
    `${JSON.stringify(
      {
        node: process.version,
        cpus: cpus().length,
        revocations: REVOCATIONS,
        edges: 2,
        store: redis === undefined ? "embedded" : "redis",
        goal: { everyEdgeP99Ms: GOAL_P99_MS, met },
        rows,
      },
      null,
      2,
    )}\n`,
  );
} finally {
  for (const client of clients) client.close();
  await Promise.all(children.map((child) => child.stop()));
  await pki.cleanup();
  await rm(dataDir, { recursive: true, force: true });
}
