/**
 * Micro-benchmark of the peer-SVID step on a real mTLS connection: a server's observer takes the
 * request of one real call and runs `peerSvidInterceptor` on it many times, so the numbers are
 * the interceptor's own cost (certificate read from the TLS socket, SVID checks) without the
 * transport. Run with `node libs/platform/rpc/src/peer-svid.bench.ts`.
 *
 * @internal
 * @module
 */
import { cpuUsage } from "node:process";
import { createLogger } from "@authplat/observability";
import { createTestPki } from "@authplat/spiffe/test-pki";
import { readFile } from "node:fs/promises";
import { sameCallersForEveryMethod } from "./access-rules.ts";
import type { ServerInterceptor, ServerResponse } from "./interceptor.ts";
import { peerSvidInterceptor } from "./server-chain.ts";
import { startRpcServer } from "./server.ts";
import { echoRegistration, rawCredentials, rawUnaryCall, StreamsService } from "./test-support.ts";
import * as grpc from "@grpc/grpc-js";

const ITERATIONS = Number(process.argv[2] ?? 200_000);
const ROUNDS = 5;

const pki = await createTestPki();
const done: ServerResponse = { message: undefined, trailer: new grpc.Metadata() };
const step = peerSvidInterceptor(pki.trustDomain)(async (req) => {
  if (req.caller === undefined) throw new Error("no caller");
  return done;
});
const results: string[] = [];

const measuring: ServerInterceptor = (next) => async (req) => {
  for (let round = 0; round < ROUNDS; round++) {
    const cpu = cpuUsage();
    const started = performance.now();
    for (let i = 0; i < ITERATIONS; i++) await step(req);
    const wallMs = performance.now() - started;
    const used = cpuUsage(cpu);
    const cpuMs = (used.user + used.system) / 1000;
    results.push(
      `round ${round}: ${((wallMs * 1e6) / ITERATIONS).toFixed(0)} ns/call wall, ` +
        `${((cpuMs * 1e6) / ITERATIONS).toFixed(0)} ns/call cpu, ` +
        `${Math.round(ITERATIONS / (wallMs / 1000)).toLocaleString("en")} calls/s`,
    );
  }
  const cpu = cpuUsage();
  for (let i = 0; i < ITERATIONS; i++) req.peerCertificate();
  const used = cpuUsage(cpu);
  results.push(
    `certificate read alone (getAuthContext): ${(((used.user + used.system) * 1e3) / ITERATIONS).toFixed(0)} ns/call cpu`,
  );
  return next(req);
};

const server = await startRpcServer({
  name: "peer-bench",
  host: "127.0.0.1",
  port: 0,
  tls: pki.files("token"),
  logger: createLogger({ service: "peer-bench", level: "silent" }),
  shutdownGraceMs: 1_000,
  observers: [measuring],
  accessRules: sameCallersForEveryMethod([StreamsService], [pki.idOf("operator")]),
  services: [echoRegistration()],
});
try {
  const bundle = await readFile(pki.files("operator").bundleFile);
  const outcome = await rawUnaryCall({
    port: server.port,
    credentials: rawCredentials(bundle, {
      certPem: await readFile(pki.files("operator").certFile),
      keyPem: await readFile(pki.files("operator").keyFile),
    }),
    path: "/authplat.test.v1.Streams/Echo",
    request: new Uint8Array(0),
    timeoutMs: 600_000,
  });
  console.log(`peer-SVID step, ${ITERATIONS} iterations per round (call ended ${outcome.code})`);
  for (const line of results) console.log(line);
} finally {
  await server.shutdown();
  await pki.cleanup();
}
