/**
 * `npm run bench:authorize`: iam-policy's Authorize and BatchAuthorize(100) over mutual TLS next
 * to, in the same run, a bare grpc-js echo over the same transport (with payloads of the same
 * sizes) and the same decisions evaluated in-process by the Cedar engine, so each layer of the
 * decision path can be priced. Prints a table and writes bench/results/authorize.json.
 *
 * Two iam-policy processes serve the default bundle: one with the decision cache off (every
 * call evaluates), one with it on (the repeated request is a cache hit). Both audit every
 * decision to their log, as `npm start` does.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { cpus } from "node:os";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import * as grpc from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { MfaLevel } from "@authplat/contracts/auth/common/v1/authentication";
import {
  AuthorizeRequestSchema,
  BatchAuthorizeRequestSchema,
  Decision,
  GetUserPermissionsRequestSchema,
  IamPolicyService,
} from "@authplat/contracts/auth/iam_policy/v1";
import { CedarEngine } from "@authplat/iam-policy/cedar-engine";
import { DecisionCache } from "@authplat/iam-policy/decision-cache";
import { DecisionService, type BatchItem } from "@authplat/iam-policy/decision-service";
import { readPolicyBundle } from "@authplat/iam-policy/policy-bundle";
import { clientCredentials, createRpcClient } from "@authplat/rpc";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki } from "@authplat/spiffe/test-pki";
import { serviceEnv, spawnService, type ServiceProcess } from "@authplat/tools/service-process";
import { measure, type Measurement } from "./measure.ts";
import { machineLine, printRatios, printTable, saveReport } from "./report.ts";

const root = resolve(import.meta.dirname, "..");
const POLICY_DIR = resolve(root, "apps/iam-policy/policies");
const OPTIONS = { warmup: 500, samples: 5_000, concurrency: 64, throughputMs: 3_000 };
const BATCH_OPTIONS = { warmup: 50, samples: 1_000, concurrency: 16, throughputMs: 3_000 };
const BATCH_SIZE = 100;

const pki = await createTestPki();
const children: ServiceProcess[] = [];
const cleanups: (() => void)[] = [];

/** An editor of tenant acme updating a document of acme, with MFA, from the office: allowed. */
function authorizeInit(resourceId = "d-1") {
  return {
    principal: {
      subjectId: "alice",
      roles: ["editor"],
      attributes: { tenant: "acme", department: "sales" },
    },
    action: "update",
    resource: {
      type: "document",
      id: resourceId,
      attributes: { tenant: "acme", owner: "bob", classification: "internal" },
    },
    context: {
      ipAddress: "10.1.2.3",
      mfaLevel: MfaLevel.MULTI_FACTOR,
      riskScore: 12,
      sessionId: "s-1",
    },
  };
}

/** The domain form of {@link authorizeInit}, for the in-process rows. */
function domainRequest(resourceId = "d-1") {
  return {
    principal: {
      id: "alice",
      kind: "user" as const,
      roles: ["editor"],
      attributes: { tenant: "acme", department: "sales" },
    },
    action: "update",
    resource: {
      type: "document",
      id: resourceId,
      attributes: { tenant: "acme", owner: "bob", classification: "internal" },
    },
    context: {
      ipAddress: "10.1.2.3",
      requestTimeMs: undefined,
      mfaLevel: "multi_factor" as const,
      riskScore: 12,
      sessionId: "s-1",
      clientId: "",
      callerSpiffeId: "",
      attributes: {},
    },
  };
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

async function startIamPolicy(extra: Record<string, string>): Promise<number> {
  const files = pki.files("iam-policy");
  const service = spawnService({
    root,
    name: "iam-policy",
    // Production rules: the benchmark calls as the operator, which may ask for decisions.
    env: serviceEnv(process.env, files, { ACCESS_PROFILE: "production", POLICY_DIR, ...extra }),
  });
  children.push(service);
  return (await service.serving).port;
}

/** A bare grpc-js unary caller of `path` with a fixed payload (the same client code as the echo). */
async function rawCaller(port: number, path: string, payload: Uint8Array) {
  const { credentials } = await clientCredentials(
    pki.files("operator"),
    parseSpiffeId(pki.idOf("iam-policy")),
  );
  const channel = new grpc.Client(`127.0.0.1:${port}`, credentials);
  cleanups.push(() => channel.close());
  const body = Buffer.from(payload);
  return () =>
    new Promise<void>((done, fail) =>
      channel.makeUnaryRequest(
        path,
        (value: Buffer) => value,
        (value: Buffer) => value,
        body,
        new grpc.Metadata(),
        (error) => (error ? fail(error) : done()),
      ),
    );
}

try {
  const [echoPort, uncachedPort, cachedPort, unauditedPort] = await Promise.all([
    startEcho(),
    startIamPolicy({ DECISION_CACHE_MAX_ENTRIES: "0" }),
    startIamPolicy({ DECISION_CACHE_MAX_ENTRIES: "10000", DECISION_CACHE_TTL_MS: "3600000" }),
    startIamPolicy({
      DECISION_CACHE_MAX_ENTRIES: "10000",
      DECISION_CACHE_TTL_MS: "3600000",
      AUDIT_ALLOW_SAMPLE_RATE: "0",
    }),
  ]);

  const authorizeBytes = toBinary(
    AuthorizeRequestSchema,
    create(AuthorizeRequestSchema, authorizeInit()),
  );
  const batchBytes = toBinary(
    BatchAuthorizeRequestSchema,
    create(BatchAuthorizeRequestSchema, {
      items: Array.from({ length: BATCH_SIZE }, (_, i) => ({
        id: `i${i}`,
        ...authorizeInit(`d-${i}`),
      })),
    }),
  );

  // Sanity: every path must answer as expected before it is timed.
  const check = await createRpcClient(IamPolicyService, {
    address: `127.0.0.1:${uncachedPort}`,
    tls: pki.files("operator"),
    serverId: parseSpiffeId(pki.idOf("iam-policy")),
  });
  const answer = await check.authorize(authorizeInit());
  const batchAnswer = await check.batchAuthorize(
    create(BatchAuthorizeRequestSchema, {
      items: Array.from({ length: BATCH_SIZE }, (_, i) => ({
        id: `i${i}`,
        ...authorizeInit(`d-${i}`),
      })),
    }),
  );
  check.close();
  if (
    answer.decision !== Decision.ALLOW ||
    batchAnswer.results.some((r) => r.decision !== Decision.ALLOW)
  ) {
    throw new Error(`the benchmark request is not allowed: ${JSON.stringify(answer.reason)}`);
  }

  const policies = new CedarEngine().compile(await readPolicyBundle(POLICY_DIR));
  const nullAudit = { record: () => undefined };
  const service = (cache: boolean) =>
    new DecisionService({
      policies: { current: policies },
      cache: cache
        ? new DecisionCache({ maxEntries: 10_000, ttlMs: 3_600_000, nowMs: Date.now })
        : undefined,
      audit: nullAudit,
      nowMs: Date.now,
      newDecisionId: () => crypto.randomUUID(),
      allowSampleRate: 1,
      random: Math.random,
    });
  const uncachedService = service(false);
  const cachedService = service(true);
  const caller = { callerSpiffeId: pki.idOf("operator"), correlationId: "bench" };
  const request = domainRequest();
  const batchItems: BatchItem[] = Array.from({ length: BATCH_SIZE }, (_, i) => ({
    id: `i${i}`,
    request: domainRequest(`d-${i}`),
  }));

  const echoSmall = await rawCaller(
    echoPort,
    "/bench.Echo/Echo",
    new Uint8Array(authorizeBytes.length).fill(7),
  );
  const echoBatch = await rawCaller(
    echoPort,
    "/bench.Echo/Echo",
    new Uint8Array(batchBytes.length).fill(7),
  );
  const authorizePath = `/${IamPolicyService.typeName}/Authorize`;
  const batchPath = `/${IamPolicyService.typeName}/BatchAuthorize`;
  const authorizeUncached = await rawCaller(uncachedPort, authorizePath, authorizeBytes);
  const authorizeCached = await rawCaller(cachedPort, authorizePath, authorizeBytes);
  const batchUncached = await rawCaller(uncachedPort, batchPath, batchBytes);
  const cachedUnaudited = await rawCaller(unauditedPort, authorizePath, authorizeBytes);
  const permissionsBytes = toBinary(
    GetUserPermissionsRequestSchema,
    create(GetUserPermissionsRequestSchema, { userId: "alice", roles: ["editor"] }),
  );
  const permissions = await rawCaller(
    uncachedPort,
    `/${IamPolicyService.typeName}/GetUserPermissions`,
    permissionsBytes,
  );

  const rows: Measurement[] = [];
  const run = async (name: string, op: () => Promise<unknown>, options = OPTIONS) => {
    const result = await measure(name, op, options);
    rows.push(result);
    return result;
  };
  const cedarOnly = await run("Cedar in-process: prepare + decide (engine only)", async () =>
    policies.decide(policies.prepare(request, Date.now())),
  );
  const inProcess = await run("DecisionService.authorize in-process, cache off", async () =>
    uncachedService.authorize(request, caller),
  );
  await run("DecisionService.authorize in-process, cache hit", async () =>
    cachedService.authorize(request, caller),
  );
  const inProcessBatch = await run(
    `DecisionService.batchAuthorize(${BATCH_SIZE}) in-process`,
    async () => uncachedService.batchAuthorize(batchItems, caller),
    BATCH_OPTIONS,
  );
  const echo = await run("grpc-js echo over mTLS, Authorize-sized payload (baseline)", echoSmall);
  const authorize = await run("Authorize over mTLS, cache off (evaluates)", authorizeUncached);
  const cacheHit = await run("Authorize over mTLS, cache hit", authorizeCached);
  await run("Authorize over mTLS, cache hit, allows not audited", cachedUnaudited);
  await run("GetUserPermissions over mTLS (no Cedar call: the RPC pipeline)", permissions);
  const echoBig = await run(
    `grpc-js echo over mTLS, BatchAuthorize(${BATCH_SIZE})-sized payload (baseline)`,
    echoBatch,
    BATCH_OPTIONS,
  );
  const batch = await run(
    `BatchAuthorize(${BATCH_SIZE}) over mTLS, cache off`,
    batchUncached,
    BATCH_OPTIONS,
  );

  const ratio = (a: Measurement, b: Measurement) => ({
    p50: a.p50Ms / b.p50Ms,
    p99: a.p99Ms / b.p99Ms,
    throughput: a.throughputPerSec / b.throughputPerSec,
  });
  const ratios = {
    authorizeVsEcho: ratio(authorize, echo),
    cacheHitVsEcho: ratio(cacheHit, echo),
    batchVsEchoOfSameSize: ratio(batch, echoBig),
  };
  const goals = {
    "Cedar in-process p99 < 1 ms": cedarOnly.p99Ms < 1,
    "Authorize p99 <= 1.3x echo p99": ratios.authorizeVsEcho.p99 <= 1.3,
    "BatchAuthorize(100) p99 < 5 ms": batch.p99Ms < 5,
    "cache hit p99 <= 1.1x echo p99": ratios.cacheHitVsEcho.p99 <= 1.1,
  };
  const fmt = (value: number, digits = 3) => value.toFixed(digits);
  console.log(
    `\nAuthorize benchmark: sequential samples after warm-up (${OPTIONS.samples} single, ${BATCH_OPTIONS.samples} batch); throughput with ${OPTIONS.concurrency} (single) / ${BATCH_OPTIONS.concurrency} (batch) in flight`,
  );
  console.log(`${machineLine()}\n`);
  printTable(rows);
  printRatios(ratios);
  console.log(
    `decision path (mean): engine ${fmt(cedarOnly.meanMs)} ms, service around it ${fmt(inProcess.meanMs - cedarOnly.meanMs)} ms, transport and handler ${fmt(authorize.meanMs - inProcess.meanMs)} ms; batch of ${BATCH_SIZE} in-process ${fmt(inProcessBatch.meanMs)} ms`,
  );
  for (const [goal, met] of Object.entries(goals))
    console.log(`${met ? "met    " : "MISSED "} ${goal}`);
  await saveReport("authorize", {
    benchmark: "authorize",
    at: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    policyVersion: policies.version,
    options: { single: OPTIONS, batch: BATCH_OPTIONS },
    results: rows,
    ratios,
    goals,
  });
} finally {
  for (const cleanup of cleanups) cleanup();
  await Promise.all(children.map((child) => child.stop()));
  await pki.cleanup();
}
