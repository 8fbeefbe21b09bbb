/**
 * `npm run bench`: ValidateToken over mutual TLS next to, in the same run, a bare grpc-js echo
 * over the same transport and an in-process `jose` verify of the same token. Prints a table
 * and writes JSON to bench/results/validate-token.json.
 *
 * Every server runs as its own process (as in production), the client in this one.
 *
 * @module
 */
import { cpus } from "node:os";
import { resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { importJWK, jwtVerify } from "jose";
import { create, toBinary } from "@bufbuild/protobuf";
import { AuthEdgeService, ValidateTokenRequestSchema } from "@authplat/contracts/auth/auth_edge/v1";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { JwksCache } from "@authplat/auth-edge/jwks-cache";
import { TokenValidator } from "@authplat/auth-edge/token-validator";
import { clientCredentials, createRpcClient } from "@authplat/rpc";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki } from "@authplat/spiffe/test-pki";
import { serviceEnv, spawnService, type ServiceProcess } from "@authplat/tools/service-process";
import { measure, measureInterleaved, median, type Measurement } from "./measure.ts";
import { machineLine, printTable, saveReport } from "./report.ts";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const root = resolve(import.meta.dirname, "..");
const OPTIONS = { warmup: 500, samples: 5_000, concurrency: 64, throughputMs: 3_000 };
// Over mTLS the machine's noise is larger than the differences measured: throughput windows are
// taken in turn across the echo and the edges, ROUNDS times, and ratios are medians per round.
const ROUNDS = 5;
const ROUND_MS = 2_000;
const AUDIENCE = "https://api.auth.local";

const pki = await createTestPki();
const children: ServiceProcess[] = [];
const cleanups: (() => void)[] = [];
// The development profile (serviceEnv's): the benchmark issues its token as the operator.
const envFor = (name: string, extra: Record<string, string> = {}) =>
  serviceEnv(process.env, pki.files(name), extra);

async function startEcho(): Promise<{ port: number; stop: () => void }> {
  const files = pki.files("iam-policy");
  const child = spawn(
    process.execPath,
    [resolve(root, "bench/echo-server.ts"), files.certFile, files.keyFile, files.bundleFile],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const line = await new Promise<string>((done) =>
    createInterface({ input: child.stdout! }).once("line", done),
  );
  return { port: (JSON.parse(line) as { port: number }).port, stop: () => child.kill("SIGTERM") };
}

try {
  const token = spawnService({ root, name: "token", env: envFor("token") });
  children.push(token);
  const tokenPort = (await token.serving).port;
  const edge = spawnService({
    root,
    name: "auth-edge",
    env: envFor("auth-edge", { TOKEN_SERVICE_ADDR: `127.0.0.1:${tokenPort}` }),
  });
  children.push(edge);
  const edgePort = (await edge.serving).port;
  // A second edge with its verification cache off verifies every token's signature, which is
  // what a stream of tokens never seen before costs (the goal for unique tokens).
  const uncachedEdge = spawnService({
    root,
    name: "auth-edge",
    env: envFor("auth-edge", {
      TOKEN_SERVICE_ADDR: `127.0.0.1:${tokenPort}`,
      JWT_VERIFICATION_CACHE_SIZE: "0",
    }),
  });
  children.push(uncachedEdge);
  const uncachedEdgePort = (await uncachedEdge.serving).port;
  const echo = await startEcho();
  cleanups.push(echo.stop);

  const tls = pki.files("operator");
  const tokenClient = await createRpcClient(TokenService, {
    address: `127.0.0.1:${tokenPort}`,
    tls,
    serverId: parseSpiffeId(pki.idOf("token")),
  });
  const edgeClient = await createRpcClient(AuthEdgeService, {
    address: `127.0.0.1:${edgePort}`,
    tls,
    serverId: parseSpiffeId(pki.idOf("auth-edge")),
  });
  cleanups.push(
    () => tokenClient.close(),
    () => edgeClient.close(),
  );
  const pair = await tokenClient.issueTokenPair({
    subject: "bench-user",
    clientId: "bench",
    audience: [AUDIENCE],
    scopes: ["orders:read", "profile"],
  });
  const jwks = await tokenClient.getJwks({});
  const jwk = jwks.keys[0]!;
  const publicKey = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, jwk.alg);

  // Sanity: every path must actually succeed before it is timed.
  const check = await edgeClient.validateToken({ token: pair.accessToken });
  if (check.result.case !== "claims")
    throw new Error(`the benchmark token does not validate: ${JSON.stringify(check.result)}`);

  // The echo and the raw ValidateToken row use the same bare grpc-js client code, so the
  // difference between them is what the server does; the RpcClient row adds the typed client.
  async function rawCaller(port: number, serverName: string, path: string, payload: Buffer) {
    const { credentials } = await clientCredentials(
      pki.files("operator"),
      parseSpiffeId(pki.idOf(serverName)),
    );
    const channel = new grpc.Client(`127.0.0.1:${port}`, credentials, {
      "grpc.ssl_target_name_override": "spiffe",
    });
    cleanups.push(() => channel.close());
    return () =>
      new Promise<void>((done, fail) =>
        channel.makeUnaryRequest(
          path,
          (value: Buffer) => value,
          (value: Buffer) => value,
          payload,
          new grpc.Metadata(),
          (error) => (error ? fail(error) : done()),
        ),
      );
  }
  const validateRequest = Buffer.from(
    toBinary(
      ValidateTokenRequestSchema,
      create(ValidateTokenRequestSchema, { token: pair.accessToken }),
    ),
  );
  // Same payload size as the ValidateToken request.
  const echoCall = await rawCaller(
    echo.port,
    "iam-policy",
    "/bench.Echo/Echo",
    Buffer.alloc(validateRequest.length, 7),
  );
  const rawValidateCall = await rawCaller(
    edgePort,
    "auth-edge",
    "/auth.auth_edge.v1.AuthEdgeService/ValidateToken",
    validateRequest,
  );
  const rawUncachedValidateCall = await rawCaller(
    uncachedEdgePort,
    "auth-edge",
    "/auth.auth_edge.v1.AuthEdgeService/ValidateToken",
    validateRequest,
  );

  const validator = new TokenValidator({
    keys: new JwksCache({
      fetchKeys: async () =>
        jwks.keys.map((key) => ({
          kty: key.kty,
          kid: key.kid,
          alg: key.alg,
          crv: key.crv,
          x: key.x,
          y: key.y,
          use: key.use,
        })),
      algorithms: ["ES256", "EdDSA"],
      nowMs: () => Date.now(),
      minRefetchIntervalMs: 5_000,
    }),
    issuer: "https://auth.local",
    audiences: [AUDIENCE],
    algorithms: ["ES256", "EdDSA"],
    clockToleranceSeconds: 5,
    nowMs: () => Date.now(),
    // Compared with jose doing the same full verification, so no cache here.
    verificationCacheSize: 0,
  });

  const results: Measurement[] = [];
  results.push(
    await measure(
      "jose jwtVerify (in-process baseline)",
      () => jwtVerify(pair.accessToken, publicKey, { algorithms: [jwk.alg] }),
      OPTIONS,
    ),
  );
  results.push(
    await measure(
      "TokenValidator.validate, cache off (in-process, edge logic)",
      () => validator.validate(pair.accessToken),
      OPTIONS,
    ),
  );
  const overTls = await measureInterleaved(
    [
      { name: "grpc-js echo over mTLS (transport baseline)", run: echoCall },
      {
        name: "ValidateToken over mTLS, bare grpc-js client (auth-edge process)",
        run: rawValidateCall,
      },
      {
        name: "ValidateToken over mTLS, bare client, cache off (every signature verified)",
        run: rawUncachedValidateCall,
      },
      {
        name: "ValidateToken over mTLS, platform RpcClient",
        run: () => edgeClient.validateToken({ token: pair.accessToken }),
      },
    ],
    { ...OPTIONS, throughputMs: ROUND_MS, rounds: ROUNDS },
  );
  results.push(...overTls);
  const perRound = (row: (typeof overTls)[number]) =>
    row.roundThroughputs.map((value, round) => value / overTls[0]!.roundThroughputs[round]!);

  const [jose, local, echoResult, validate, uncached] = results as [
    Measurement,
    Measurement,
    Measurement,
    Measurement,
    Measurement,
    Measurement,
  ];
  const ratios = {
    validateTokenVsEcho: {
      p50: validate.p50Ms / echoResult.p50Ms,
      p99: validate.p99Ms / echoResult.p99Ms,
      throughput: median(perRound(overTls[1]!)),
      throughputPerRound: perRound(overTls[1]!),
    },
    uncachedValidateTokenVsEcho: {
      p50: uncached.p50Ms / echoResult.p50Ms,
      p99: uncached.p99Ms / echoResult.p99Ms,
      throughput: median(perRound(overTls[2]!)),
      throughputPerRound: perRound(overTls[2]!),
    },
    validatorVsJose: {
      p50: local.p50Ms / jose.p50Ms,
      p99: local.p99Ms / jose.p99Ms,
      throughput: local.throughputPerSec / jose.throughputPerSec,
    },
  };
  const fmt = (value: number, digits = 3) => value.toFixed(digits);
  console.log(
    `\nValidateToken benchmark: ${OPTIONS.samples} sequential samples after ${OPTIONS.warmup} warm-up; throughput with ${OPTIONS.concurrency} in flight for ${OPTIONS.throughputMs} ms in process, over mTLS the median of ${ROUNDS} windows of ${ROUND_MS} ms taken in turn`,
  );
  console.log(`${machineLine()}, token alg ${jwk.alg}\n`);
  printTable(results);
  console.log(
    `\nValidateToken (repeated token, cache hits) / echo: p50 ×${fmt(ratios.validateTokenVsEcho.p50, 2)}, p99 ×${fmt(ratios.validateTokenVsEcho.p99, 2)}, throughput ×${fmt(ratios.validateTokenVsEcho.throughput, 2)} (median; rounds ${ratios.validateTokenVsEcho.throughputPerRound.map((r) => fmt(r, 2)).join(" ")})`,
  );
  console.log(
    `ValidateToken, cache off / echo: p50 ×${fmt(ratios.uncachedValidateTokenVsEcho.p50, 2)}, p99 ×${fmt(ratios.uncachedValidateTokenVsEcho.p99, 2)}, throughput ×${fmt(ratios.uncachedValidateTokenVsEcho.throughput, 2)} (median; rounds ${ratios.uncachedValidateTokenVsEcho.throughputPerRound.map((r) => fmt(r, 2)).join(" ")})`,
  );
  console.log(
    `TokenValidator / jose: p50 ×${fmt(ratios.validatorVsJose.p50, 2)}, p99 ×${fmt(ratios.validatorVsJose.p99, 2)}, throughput ×${fmt(ratios.validatorVsJose.throughput, 2)}`,
  );
  const report = {
    benchmark: "validate-token",
    at: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    algorithm: jwk.alg,
    options: OPTIONS,
    results,
    ratios,
  };
  await saveReport("validate-token", report);
  console.log(JSON.stringify(report));
} catch (error) {
  console.error(`benchmark failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  for (const cleanup of cleanups) cleanup();
  await Promise.all(children.map((child) => child.stop()));
  await pki.cleanup();
}
