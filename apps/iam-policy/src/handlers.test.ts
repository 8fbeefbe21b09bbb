import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryAuditSink, type MemoryAuditSink } from "@authplat/audit";
import { contextFromIncoming, runWithContext } from "@authplat/correlation";
import { MfaLevel } from "@authplat/contracts/auth/common/v1/authentication";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  Decision,
  IamPolicyService,
  type BatchAuthorizeItemSchema,
} from "@authplat/contracts/auth/iam_policy/v1";
import { loadAccessRules, type RpcClient, type RpcServer } from "@authplat/rpc";
import {
  createTestPki,
  silentLogger,
  startTestServer,
  testClient,
  type TestPki,
} from "@authplat/testing";
import accessRulesFile from "./access-rules.json" with { type: "json" };
import { iamPolicyRegistration } from "./handlers.ts";
import { CedarEngine } from "./policy/cedar-engine.ts";
import { DecisionCache } from "./policy/decision-cache.ts";
import { DecisionService } from "./policy/decision-service.ts";
import { readPolicyBundle } from "./policy/policy-bundle.ts";
import { PolicyStore, type ReloadOutcome } from "./policy/policy-store.ts";
import { DEFAULT_POLICY_DIR } from "./policy/test-bundles.ts";

let pki: TestPki;
let server: RpcServer;
let dir: string;
let store: PolicyStore;
let audit: MemoryAuditSink;
let stopWatching: () => void;
let edge: RpcClient<typeof IamPolicyService>;
let operator: RpcClient<typeof IamPolicyService>;
const reloads: ReloadOutcome[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  dir = await mkdtemp(join(tmpdir(), "iam-policy-"));
  await cp(DEFAULT_POLICY_DIR, dir, { recursive: true });
  store = await PolicyStore.open({
    engine: new CedarEngine(),
    read: () => readPolicyBundle(dir),
    onReload: (outcome) => reloads.push(outcome),
  });
  stopWatching = store.watch(dir, { debounceMs: 20, pollIntervalMs: 0 });
  audit = createMemoryAuditSink();
  let n = 0;
  const decisions = new DecisionService({
    policies: store,
    cache: new DecisionCache({ maxEntries: 100, ttlMs: 60_000, nowMs: Date.now }),
    audit,
    nowMs: Date.now,
    newDecisionId: () => `decision-${n++}`,
    allowSampleRate: 1,
    random: Math.random,
  });
  server = await startTestServer(
    pki,
    "iam-policy",
    [iamPolicyRegistration({ decisions, reload: () => store.reload() })],
    silentLogger(),
    {
      // The shipped rules, production column: auth-edge and the operator may ask for decisions,
      // only the operator may reload.
      accessRules: loadAccessRules({
        rules: { file: "access-rules.json", content: accessRulesFile },
        services: [IamPolicyService],
        trustDomain: pki.trustDomain,
        profile: "production",
      }),
    },
  );
  edge = await testClient(pki, IamPolicyService, server, "auth-edge");
  operator = await testClient(pki, IamPolicyService, server, "operator");
});

afterAll(async () => {
  edge?.close();
  operator?.close();
  stopWatching?.();
  await server?.shutdown();
  await pki?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Polls `check` until it holds or `deadlineMs` passes (file events take their own time). */
async function until(check: () => Promise<boolean> | boolean, deadlineMs = 5_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met before the deadline");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function documentRequest(roles: string[], action = "read", tenant = "acme") {
  return {
    principal: { subjectId: "alice", roles, attributes: { tenant: "acme" } },
    action,
    resource: {
      type: "document",
      id: "d-1",
      attributes: { tenant, owner: "bob", classification: "internal" },
    },
    context: { ipAddress: "10.0.0.7", mfaLevel: MfaLevel.MULTI_FACTOR, riskScore: 10 },
  };
}

describe("Authorize over mTLS", () => {
  it("allows a viewer to read, says which policy and version decided, then answers from the cache", async () => {
    const first = await edge.authorize(documentRequest(["viewer"]));
    expect(first).toMatchObject({
      decision: Decision.ALLOW,
      policyIds: ["role/viewer/document"],
      reason: "permitted by policy",
      cached: false,
      policyVersion: store.current.version,
    });
    const second = await edge.authorize(documentRequest(["viewer"]));
    expect(second).toMatchObject({ decision: Decision.ALLOW, cached: true });
    expect(second.decisionId).not.toBe(first.decisionId);
  });

  it("lets an editor do what a viewer may, and a forbid win over the owner role", async () => {
    expect((await edge.authorize(documentRequest(["editor"]))).decision).toBe(Decision.ALLOW);
    const denied = await edge.authorize(documentRequest(["owner"], "read", "globex"));
    expect(denied).toMatchObject({
      decision: Decision.DENY,
      policyIds: ["tenant-isolation"],
      reason: "forbidden by policy",
    });
  });

  it("records every deny for audit with the caller, correlation ID and policy version", async () => {
    const denied = await runWithContext(
      contextFromIncoming({ correlationId: "corr-audit-1" }),
      () => edge.authorize(documentRequest([], "update")),
    );
    const event = audit.events.find((e) => e.details["decisionId"] === denied.decisionId);
    expect(event).toMatchObject({
      type: "authz.decision",
      actor: "user:alice",
      action: "update",
      resource: "document:d-1",
      result: "deny",
      correlationId: "corr-audit-1",
      callerSpiffeId: pki.idOf("auth-edge"),
      details: {
        policyIds: [],
        reason: "no policy permits",
        policyVersion: denied.policyVersion,
        cached: false,
      },
    });
  });

  it.each([
    [
      "an unknown resource type",
      { ...documentRequest(["viewer"]), resource: { type: "invoice", id: "i-1" } },
      'resource.type: unknown resource type "invoice"',
    ],
    [
      "a missing principal",
      { action: "read", resource: { type: "document" } },
      "principal is required",
    ],
    [
      "a malformed attribute",
      { ...documentRequest([]), principal: { subjectId: "a", attributes: { tenant: ["acme"] } } },
      "principal.attributes.tenant: expected a string, got a list",
    ],
  ])("answers INVALID_ARGUMENT for %s, saying what is wrong", async (_name, request, message) => {
    await expect(edge.authorize(request)).rejects.toMatchObject({
      remoteCode: "INVALID_ARGUMENT",
      grpcCode: grpc.status.INVALID_ARGUMENT,
      message,
    });
  });
});

describe("BatchAuthorize over mTLS", () => {
  it("answers one result per item, in order, from one policy version", async () => {
    const items: MessageInitShape<typeof BatchAuthorizeItemSchema>[] = [
      { id: "b", ...documentRequest(["viewer"], "update") },
      { id: "a", ...documentRequest(["viewer"], "read") },
      { id: "c", ...documentRequest(["admin"], "delete") },
    ];
    const reply = await edge.batchAuthorize({ items });
    expect(reply.policyVersion).toBe(store.current.version);
    expect(reply.results.map((r) => [r.id, r.decision])).toEqual([
      ["b", Decision.DENY],
      ["a", Decision.ALLOW],
      ["c", Decision.ALLOW],
    ]);
  });

  it("refuses a batch over the limit and names a bad item", async () => {
    const item = (id: string) => ({ id, ...documentRequest(["viewer"]) });
    await expect(
      edge.batchAuthorize({ items: Array.from({ length: 101 }, (_, i) => item(`i${i}`)) }),
    ).rejects.toMatchObject({
      remoteCode: "INVALID_ARGUMENT",
      message: "items: a batch holds 1 to 100 items, got 101",
    });
    await expect(
      edge.batchAuthorize({ items: [item("x"), { ...item("y"), action: "fly" }] }),
    ).rejects.toMatchObject({
      remoteCode: "INVALID_ARGUMENT",
      message: 'items[1] (id "y"): action: unknown action "fly"',
    });
    await expect(edge.batchAuthorize({ items: [item("x"), item("x")] })).rejects.toMatchObject({
      remoteCode: "INVALID_ARGUMENT",
      message: 'items[1].id: "x" is used by an earlier item',
    });
  });
});

describe("GetUserPermissions over mTLS", () => {
  it("expands the roles and marks conditional grants", async () => {
    const reply = await edge.getUserPermissions({ userId: "alice", roles: ["support", "nobody"] });
    expect(reply.roles).toEqual(["support"]);
    expect(reply.permissions.map((p) => [p.resourceType, p.action, p.conditional])).toEqual([
      ["order", "list", true],
      ["order", "read", true],
    ]);
    expect(reply.policyVersion).toBe(store.current.version);
  });

  it("needs a user ID", async () => {
    await expect(edge.getUserPermissions({ roles: ["viewer"] })).rejects.toMatchObject({
      remoteCode: "INVALID_ARGUMENT",
      message: "user_id is required",
    });
  });
});

describe("hot reload", () => {
  it("lets only the operator reload on demand", async () => {
    await expect(edge.reloadPolicies({})).rejects.toMatchObject({
      remoteCode: "CALLER_NOT_ALLOWED",
    });
    const reply = await operator.reloadPolicies({});
    expect(reply).toMatchObject({ changed: false, policyVersion: store.current.version });
  });

  it("flips a decision when a policy file changes, without a restart, and refuses a broken file", async () => {
    const before = await edge.authorize(documentRequest(["viewer"], "update"));
    expect(before.decision).toBe(Decision.DENY);
    await writeFile(
      join(dir, "extra.cedar"),
      '@id("viewers-update")\npermit (principal in Role::"viewer", action == Action::"update", resource is Document);\n',
    );
    await until(
      async () =>
        (await edge.authorize(documentRequest(["viewer"], "update"))).decision === Decision.ALLOW,
    );
    const after = await edge.authorize(documentRequest(["viewer"], "update"));
    expect(after.policyIds).toEqual(["viewers-update"]);
    expect(after.policyVersion).not.toBe(before.policyVersion);

    const failuresBefore = reloads.filter((r) => !r.ok).length;
    await writeFile(
      join(dir, "extra.cedar"),
      "permit (principal, action, resource) when { resource.tenant == };\n",
    );
    await until(() => reloads.filter((r) => !r.ok).length > failuresBefore);
    const still = await edge.authorize(documentRequest(["viewer"], "update"));
    expect(still).toMatchObject({ decision: Decision.ALLOW, policyVersion: after.policyVersion });
    await expect(operator.reloadPolicies({})).rejects.toMatchObject({
      remoteCode: "FAILED_PRECONDITION",
      message: expect.stringMatching(
        new RegExp(
          `^invalid policy bundle: extra\\.cedar:1: .*unexpected token.*; still serving ${after.policyVersion}$`,
        ),
      ),
    });
  });
});
