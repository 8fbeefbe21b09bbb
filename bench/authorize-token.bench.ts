/**
 * `npm run bench -- authorize-token`: AuthorizeToken at auth-edge (validate the token, then ask
 * iam-policy) next to, in the same run, a bare grpc-js echo over the same mTLS and iam-policy's
 * own Authorize called directly. token, iam-policy and auth-edge run as processes (as in
 * production) with the default policy bundle; the client is this process. Prints a table and
 * writes JSON to bench/results/authorize-token.json.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { cpus } from "node:os";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import * as grpc from "@grpc/grpc-js";
import { AuthEdgeService } from "@authplat/contracts/auth/auth_edge/v1";
import { AuthenticationMethod } from "@authplat/contracts/auth/common/v1/authentication";
import { IamPolicyService, PrincipalType } from "@authplat/contracts/auth/iam_policy/v1";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { clientCredentials, createRpcClient } from "@authplat/rpc";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki } from "@authplat/spiffe/test-pki";
import { serviceEnv, spawnService, type ServiceProcess } from "@authplat/tools/service-process";
import { measureInterleaved, median } from "./measure.ts";
import { machineLine, printRatios, printTable, saveReport } from "./report.ts";

const root = resolve(import.meta.dirname, "..");
const OPTIONS = { warmup: 500, samples: 3_000, concurrency: 64, throughputMs: 2_000, rounds: 5 };
const DOCUMENT = {
  type: "document",
  id: "d-1",
  attributes: { tenant: "acme", owner: "bob", classification: "internal" },
};

const pki = await createTestPki();
const children: ServiceProcess[] = [];
const cleanups: (() => void)[] = [];

async function start(name: string, extra: Record<string, string> = {}): Promise<number> {
  const child = spawnService({ root, name, env: serviceEnv(process.env, pki.files(name), extra) });
  children.push(child);
  return (await child.serving).port;
}

async function startEcho(): Promise<number> {
  const files = pki.files("iam-policy");
  const child = spawn(
    process.execPath,
    [resolve(root, "bench/echo-server.ts"), files.certFile, files.keyFile, files.bundleFile],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  cleanups.push(() => child.kill("SIGTERM"));
  const line = await new Promise<string>((done) =>
    createInterface({ input: child.stdout! }).once("line", done),
  );
  return (JSON.parse(line) as { port: number }).port;
}

function client<S extends typeof TokenService | typeof AuthEdgeService | typeof IamPolicyService>(
  service: S,
  name: string,
  port: number,
) {
  return createRpcClient(service, {
    address: `127.0.0.1:${port}`,
    tls: pki.files("operator"),
    serverId: parseSpiffeId(pki.idOf(name)),
  });
}

try {
  const [tokenPort, iamPort] = await Promise.all([start("token"), start("iam-policy")]);
  const edgePort = await start("auth-edge", {
    TOKEN_SERVICE_ADDR: `127.0.0.1:${tokenPort}`,
    IAM_POLICY_ADDR: `127.0.0.1:${iamPort}`,
  });
  const echoPort = await startEcho();
  const token = await client(TokenService, "token", tokenPort);
  const edge = await client(AuthEdgeService, "auth-edge", edgePort);
  const iam = await client(IamPolicyService, "iam-policy", iamPort);
  cleanups.push(
    () => token.close(),
    () => edge.close(),
    () => iam.close(),
  );
  const pair = await token.issueTokenPair({
    subject: "alice",
    clientId: "web",
    audience: ["https://api.auth.local"],
    roles: ["editor"],
    tenant: "acme",
    authenticationMethods: [AuthenticationMethod.PASSWORD],
  });
  const authorizeToken = () =>
    edge.authorizeToken({ token: pair.accessToken, action: "update", resource: DOCUMENT });
  const authorizeDirect = () =>
    iam.authorize({
      principal: {
        subjectId: "alice",
        type: PrincipalType.USER,
        roles: ["editor"],
        attributes: { tenant: "acme" },
      },
      action: "update",
      resource: DOCUMENT,
    });
  // Sanity: both paths must allow before they are timed.
  const check = await authorizeToken();
  if (check.result.case !== "decision" || !check.result.value.allowed) {
    throw new Error(`AuthorizeToken does not allow: ${JSON.stringify(check.result)}`);
  }
  if (!(await authorizeDirect()).decision) throw new Error("Authorize gave no decision");

  const { credentials } = await clientCredentials(
    pki.files("operator"),
    parseSpiffeId(pki.idOf("iam-policy")),
  );
  const channel = new grpc.Client(`127.0.0.1:${echoPort}`, credentials, {
    "grpc.ssl_target_name_override": "spiffe",
  });
  cleanups.push(() => channel.close());
  const payload = Buffer.alloc(700, 7); // about an AuthorizeToken request
  const echo = () =>
    new Promise<void>((done, fail) =>
      channel.makeUnaryRequest(
        "/bench.Echo/Echo",
        (value: Buffer) => value,
        (value: Buffer) => value,
        payload,
        new grpc.Metadata(),
        (error) => (error ? fail(error) : done()),
      ),
    );

  const results = await measureInterleaved(
    [
      { name: "grpc-js echo over mTLS (transport baseline)", run: echo },
      { name: "iam-policy Authorize over mTLS (one hop, decision cache)", run: authorizeDirect },
      {
        name: "auth-edge AuthorizeToken (validate + Authorize, two hops, both caches)",
        run: authorizeToken,
      },
    ],
    OPTIONS,
  );
  const [echoRow, direct, viaEdge] = results as [
    (typeof results)[number],
    (typeof results)[number],
    (typeof results)[number],
  ];
  const ratio = (row: typeof echoRow) => ({
    p50: row.p50Ms / echoRow.p50Ms,
    p99: row.p99Ms / echoRow.p99Ms,
    throughput: median(
      row.roundThroughputs.map((value, i) => value / echoRow.roundThroughputs[i]!),
    ),
  });
  const ratios = { authorizeVsEcho: ratio(direct), authorizeTokenVsEcho: ratio(viaEdge) };
  console.log(
    `\nAuthorizeToken benchmark: ${OPTIONS.samples} sequential samples after ${OPTIONS.warmup} warm-up; throughput the median of ${OPTIONS.rounds} windows of ${OPTIONS.throughputMs} ms with ${OPTIONS.concurrency} in flight, taken in turn`,
  );
  console.log(`${machineLine()}\n`);
  printTable(results);
  printRatios(ratios);
  await saveReport("authorize-token", {
    benchmark: "authorize-token",
    at: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    options: OPTIONS,
    results,
    ratios,
  });
} catch (error) {
  console.error(`benchmark failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  for (const cleanup of cleanups) cleanup();
  await Promise.all(children.map((child) => child.stop()));
  await pki.cleanup();
}
