/**
 * Micro-benchmark of the metrics interceptor: `node libs/platform/rpc/src/telemetry/rpc-metrics.bench.ts`.
 * Runs a unary server chain of a no-op step with and without the server metrics interceptor
 * (and the client one), 200,000 calls each after a warm-up, and prints the added cost per
 * call. In-process and single-threaded: it measures the interceptor, not the transport.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { createMetricsRegistry } from "@authplat/observability";
import { chain, type ClientNext, type ServerNext } from "../interceptor.ts";
import { createRpcMetrics } from "./rpc-metrics.ts";
import { clientRequest, serverRequest } from "./telemetry-fixtures.ts";

const ITERATIONS = 200_000;
const ROUNDS = 5;

const response = { message: {}, trailer: new grpc.Metadata() };
const noopServer: ServerNext = () => Promise.resolve(response);
const noopClient: ClientNext = () => Promise.resolve(response);

async function time(step: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < ITERATIONS; i++) await step();
  return ((performance.now() - started) * 1e6) / ITERATIONS; // ns per call
}

async function best(step: () => Promise<unknown>): Promise<number> {
  await time(step); // warm-up: JIT and label children
  let fastest = Number.POSITIVE_INFINITY;
  for (let round = 0; round < ROUNDS; round++) fastest = Math.min(fastest, await time(step));
  return fastest;
}

const rpc = createRpcMetrics(createMetricsRegistry({ defaultMetrics: false }));
const serverReq = serverRequest("IssueTokenPair");
const clientReq = clientRequest("token", "IssueTokenPair");
const bareServer = chain<ServerNext>([], noopServer);
const meteredServer = chain<ServerNext>([rpc.server], noopServer);
const bareClient = chain<ClientNext>([], noopClient);
const meteredClient = chain<ClientNext>([rpc.client], noopClient);

const rows = {
  "server, no interceptor": await best(() => bareServer(serverReq)),
  "server, metrics interceptor": await best(() => meteredServer(serverReq)),
  "client, no interceptor": await best(() => bareClient(clientReq)),
  "client, metrics interceptor": await best(() => meteredClient(clientReq)),
};
console.log(`${ITERATIONS} calls, best of ${ROUNDS} rounds, node ${process.version}`);
for (const [name, ns] of Object.entries(rows))
  console.log(`  ${name.padEnd(30)} ${ns.toFixed(0)} ns/call`);
console.log(
  `  added by server metrics: ${(rows["server, metrics interceptor"] - rows["server, no interceptor"]).toFixed(0)} ns/call`,
);
console.log(
  `  added by client metrics: ${(rows["client, metrics interceptor"] - rows["client, no interceptor"]).toFixed(0)} ns/call`,
);
