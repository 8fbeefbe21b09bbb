import { beforeAll, describe, expect, it } from "vitest";
import { ServiceError } from "@authplat/errors";
import { CedarEngine } from "./cedar-engine.ts";
import { BundleError, type CompiledPolicies, type PolicyBundleSource } from "./policy-engine.ts";
import {
  defaultBundle,
  documentRequest,
  withFiles,
  type RequestOverrides,
} from "./test-bundles.ts";

const engine = new CedarEngine();
let bundle: PolicyBundleSource;
let policies: CompiledPolicies;

beforeAll(async () => {
  bundle = await defaultBundle();
  policies = engine.compile(bundle);
});

function decide(overrides: RequestOverrides = {}) {
  return policies.decide(policies.prepare(documentRequest(overrides), Date.now()));
}

function problemsOf(source: PolicyBundleSource): string[] {
  try {
    engine.compile(source).dispose();
  } catch (error) {
    expect(error).toBeInstanceOf(BundleError);
    return (error as BundleError).problems.map((p) => `${p.file}:${p.line ?? "-"}: ${p.message}`);
  }
  throw new Error("the bundle was accepted");
}

function rejection(overrides: RequestOverrides): ServiceError {
  try {
    decide(overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceError);
    return error as ServiceError;
  }
  throw new Error("the request was accepted");
}

describe("the default bundle", () => {
  it("denies by default: no role, not the author", () => {
    expect(decide()).toEqual({ allowed: false, policyIds: [], reason: "no policy permits" });
  });

  it("lets a viewer read, through the role grant", () => {
    expect(decide({ roles: ["viewer"] })).toEqual({
      allowed: true,
      policyIds: ["role/viewer/document"],
      reason: "permitted by policy",
    });
  });

  it("lets an editor do what a viewer may, and an owner what an editor may", () => {
    expect(decide({ roles: ["editor"], action: "read" }).allowed).toBe(true);
    expect(decide({ roles: ["editor"], action: "update" }).allowed).toBe(true);
    expect(decide({ roles: ["viewer"], action: "update" }).allowed).toBe(false);
    expect(decide({ roles: ["owner"], action: "update" }).policyIds).toEqual([
      "role/editor/document",
    ]);
  });

  it("lets a forbid win over any permit: tenant isolation beats the owner role", () => {
    expect(decide({ roles: ["owner"], principalAttributes: { tenant: "globex" } })).toEqual({
      allowed: false,
      policyIds: ["tenant-isolation"],
      reason: "forbidden by policy",
    });
  });

  it("lets authors manage their documents and editors delete only their own", () => {
    expect(decide({ principalId: "bob", action: "update" }).policyIds).toEqual([
      "document-author-manages",
    ]);
    expect(decide({ roles: ["editor"], action: "delete" }).allowed).toBe(false);
    expect(decide({ principalId: "bob", roles: ["editor"], action: "delete" }).policyIds).toEqual([
      "editor-deletes-own-documents",
    ]);
  });

  it("needs a second factor for confidential documents", () => {
    const confidential = { tenant: "acme", owner: "bob", classification: "confidential" };
    expect(decide({ roles: ["viewer"], resourceAttributes: confidential }).policyIds).toEqual([
      "confidential-needs-mfa",
    ]);
    expect(
      decide({
        roles: ["viewer"],
        resourceAttributes: confidential,
        context: { mfaLevel: "multi_factor" },
      }).allowed,
    ).toBe(true);
  });

  it("refunds only with MFA and a risk score under 30", () => {
    const order = {
      resourceType: "order",
      resourceAttributes: { tenant: "acme", owner: "bob", amount_cents: 1200 },
    };
    const refund = { ...order, roles: ["owner"], action: "refund" };
    expect(decide(refund).policyIds).toEqual(["refund-needs-mfa-and-low-risk"]);
    expect(
      decide({ ...refund, context: { mfaLevel: "multi_factor", riskScore: 29 } }).allowed,
    ).toBe(true);
    expect(
      decide({ ...refund, context: { mfaLevel: "multi_factor", riskScore: 30 } }).allowed,
    ).toBe(false);
    expect(
      decide({ ...refund, context: { mfaLevel: "phishing_resistant", riskScore: 75 } }).policyIds,
    ).toEqual(["high-risk-blocks-writes", "refund-needs-mfa-and-low-risk"]);
  });

  it("lets support read orders only from the office networks", () => {
    const order = {
      resourceType: "order",
      roles: ["support"],
      resourceAttributes: { tenant: "acme", owner: "bob", amount_cents: 5 },
    };
    expect(decide(order).allowed).toBe(false);
    expect(decide({ ...order, context: { ipAddress: "203.0.113.9" } }).allowed).toBe(false);
    expect(decide({ ...order, context: { ipAddress: "10.1.2.3" } }).policyIds).toEqual([
      "support-reads-orders-from-office",
    ]);
  });

  it("allows exports only in business hours (UTC)", () => {
    const at = (iso: string) =>
      decide({ roles: ["editor"], action: "export", context: { requestTimeMs: Date.parse(iso) } });
    expect(at("2026-03-02T10:00:00Z").allowed).toBe(true);
    expect(at("2026-03-02T22:30:00Z").policyIds).toEqual(["export-business-hours"]);
  });

  it("grants nothing for unknown role names", () => {
    expect(decide({ roles: ["root", "superuser"] }).allowed).toBe(false);
  });

  it("decides for service principals with roles", () => {
    const request = documentRequest({ roles: ["viewer"] });
    const service = {
      ...request,
      principal: { ...request.principal, kind: "service" as const, id: "billing" },
    };
    expect(policies.decide(policies.prepare(service, 0)).allowed).toBe(true);
  });
});

describe("the calling workload", () => {
  it("is context.caller when the schema declares it, and absent when unknown", () => {
    const archiver = "spiffe://auth.local/ns/apps/sa/archiver";
    const withCallerRule = engine.compile(
      withFiles(bundle, {
        "archiver.cedar": `@id("archiver-reads")
permit (principal, action == Action::"read", resource is Document)
when { context has caller && context.caller == "${archiver}" };`,
      }),
    );
    const decideWith = (callerSpiffeId: string) =>
      withCallerRule.decide(
        withCallerRule.prepare(documentRequest({ context: { callerSpiffeId } }), Date.now()),
      );
    try {
      expect(decideWith(archiver).policyIds).toEqual(["archiver-reads"]);
      expect(decideWith("spiffe://auth.local/ns/apps/sa/other").allowed).toBe(false);
      expect(decideWith("").allowed).toBe(false);
    } finally {
      withCallerRule.dispose();
    }
  });
});

describe("request checks", () => {
  it.each<[string, RequestOverrides, string]>([
    [
      "an unknown resource type",
      { resourceType: "invoice" },
      'resource.type: unknown resource type "invoice"',
    ],
    [
      "the role type as a resource",
      { resourceType: "role" },
      'resource.type: unknown resource type "role"',
    ],
    ["an unknown action", { action: "approve" }, 'action: unknown action "approve"'],
    [
      "an action that does not apply",
      { action: "refund" },
      'action "refund" does not apply to resource type "document"',
    ],
    ["an empty subject", { principalId: "" }, "principal.subject_id is required"],
    [
      "a wrongly typed attribute",
      { principalAttributes: { tenant: 7 } },
      "principal.attributes.tenant: expected a string, got a number",
    ],
    [
      "an undeclared attribute",
      { principalAttributes: { tenant: "acme", level: 3 } },
      "principal.attributes.level: not declared in the policy schema",
    ],
    [
      "a missing required attribute",
      { resourceAttributes: { tenant: "acme", owner: "bob" } },
      "resource.attributes.classification: required by the policy schema",
    ],
    [
      "an empty entity reference",
      { resourceAttributes: { tenant: "acme", owner: "", classification: "x" } },
      "resource.attributes.owner: expected the ID of a User as a non-empty string",
    ],
    [
      "a bad IP address",
      { context: { ipAddress: "10.0.0.300" } },
      "context.ip_address: not an IP address",
    ],
    [
      "a risk score over 100",
      { context: { riskScore: 101 } },
      "context.risk_score: must be an integer from 0 to 100",
    ],
    [
      "an undeclared context attribute",
      { context: { attributes: { planet: "mars" } } },
      "context.attributes.planet: not declared in the policy schema",
    ],
    [
      "a wrongly typed context attribute",
      { context: { attributes: { device_trusted: "yes" } } },
      "context.attributes.device_trusted: expected a boolean, got a string",
    ],
  ])("refuses %s with INVALID_ARGUMENT", (_name, overrides, message) => {
    const error = rejection(overrides);
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(error.message).toBe(message);
  });
});

describe("cache keys", () => {
  it("are equal for equal requests and differ when any input differs", () => {
    const key = (o: RequestOverrides) => policies.prepare(documentRequest(o), 0).cacheKey;
    expect(key({ roles: ["viewer", "editor"] })).toBe(
      key({ roles: ["editor", "viewer", "editor"] }),
    );
    expect(key({ roles: ["viewer"] })).not.toBe(key({ roles: ["editor"] }));
    expect(key({})).not.toBe(key({ context: { riskScore: 1 } }));
    expect(key({})).not.toBe(key({ context: { ipAddress: "10.0.0.1" } }));
    expect(key({})).not.toBe(key({ resourceId: "d-2" }));
  });

  it("leave the time out unless a policy for the action reads it", () => {
    const key = (action: string, iso: string) =>
      policies.prepare(documentRequest({ action, context: { requestTimeMs: Date.parse(iso) } }), 0)
        .cacheKey;
    expect(key("read", "2026-03-02T10:00:00Z")).toBe(key("read", "2026-03-02T23:00:00Z"));
    expect(key("export", "2026-03-02T10:00:00Z")).not.toBe(key("export", "2026-03-02T23:00:00Z"));
  });
});

describe("time sensitivity", () => {
  it("counts a policy that uses the whole context as reading the time", () => {
    const set = engine.compile(
      withFiles(bundle, {
        "x.cedar":
          'permit (principal, action == Action::"list", resource) when { context == context };\n',
      }),
    );
    const key = (iso: string) =>
      set.prepare(
        documentRequest({ action: "list", context: { requestTimeMs: Date.parse(iso) } }),
        0,
      ).cacheKey;
    expect(key("2026-03-02T10:00:00Z")).not.toBe(key("2026-03-02T23:00:00Z"));
    set.dispose();
  });
});

describe("permissionsOf", () => {
  it("expands the hierarchy and marks attribute-dependent grants conditional", () => {
    const answer = policies.permissionsOf(["editor", "support", "unknown"]);
    expect(answer.roles).toEqual(["editor", "support", "viewer"]);
    expect(answer.permissions).toEqual([
      { resourceType: "document", action: "create", conditional: false },
      { resourceType: "document", action: "delete", conditional: true },
      { resourceType: "document", action: "export", conditional: false },
      { resourceType: "document", action: "list", conditional: false },
      { resourceType: "document", action: "read", conditional: false },
      { resourceType: "document", action: "update", conditional: false },
      { resourceType: "order", action: "list", conditional: false },
      { resourceType: "order", action: "read", conditional: false },
    ]);
    expect(policies.permissionsOf(["support"]).permissions).toEqual([
      { resourceType: "order", action: "list", conditional: true },
      { resourceType: "order", action: "read", conditional: true },
    ]);
  });
});

describe("bundle validation", () => {
  it("names file and line of a policy syntax error", () => {
    const problems = problemsOf(
      withFiles(bundle, {
        "extra.cedar":
          "// one\npermit (principal, action, resource)\nwhen { resource.tenant == };\n",
      }),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^extra\.cedar:3: .*unexpected token/);
  });

  it("names file, line and policy of a schema violation", () => {
    const problems = problemsOf(
      withFiles(bundle, {
        "extra.cedar":
          '\n\n@id("typo")\npermit (principal, action == Action::"read", resource is Document)\nwhen { resource.clasification == "public" };\n',
      }),
    );
    expect(problems).toEqual([
      expect.stringMatching(
        /^extra\.cedar:5: policy "typo": .*attribute `clasification` on entity type `Document` not found/,
      ),
    ]);
  });

  it("refuses an unknown parent role and a cycle in the hierarchy, naming the role's line", () => {
    const roles = (inherits: string) =>
      JSON.stringify(
        { roles: { a: { inherits: ["b"] }, b: { inherits: [inherits] }, c: {} } },
        null,
        2,
      );
    expect(problemsOf(withFiles(bundle, { "roles.json": roles("zz") }))).toEqual([
      'roles.json:8: role "b" inherits unknown role "zz"',
    ]);
    expect(problemsOf(withFiles(bundle, { "roles.json": roles("a") }))).toEqual([
      "roles.json:3: role hierarchy has a cycle: a -> b -> a",
    ]);
  });

  it("refuses a policy that names a role the hierarchy does not define", () => {
    const problems = problemsOf(
      withFiles(bundle, {
        "extra.cedar": 'permit (principal in Role::"auditor", action, resource);\n',
      }),
    );
    expect(problems).toEqual(['extra.cedar:1: unknown role "auditor" (not in roles.json)']);
  });

  it("refuses grants of unknown actions or resource types", () => {
    const roles = JSON.stringify({
      roles: {
        a: { grants: { document: ["read", "fly"], invoice: ["read"] } },
        editor: {},
        support: {},
      },
    });
    expect(problemsOf(withFiles(bundle, { "roles.json": roles }))).toEqual([
      'roles.json:1: role "a" grants unknown action "fly"',
      'roles.json:1: role "a" grants on unknown resource type "invoice"',
    ]);
  });

  it("refuses duplicate policy IDs, naming both places", () => {
    const problems = problemsOf(
      withFiles(bundle, {
        "extra.cedar": '@id("tenant-isolation")\npermit (principal, action, resource);\n',
      }),
    );
    expect(problems).toEqual([
      'tenancy.cedar:3: policy ID "tenant-isolation" is also used at extra.cedar:1',
    ]);
  });

  it("refuses a bundle without a schema or with a schema error", () => {
    expect(problemsOf(withFiles(bundle, { "schema.cedarschema": undefined }))).toEqual([
      "schema.cedarschema:-: missing: a bundle needs a Cedar schema",
    ]);
    expect(
      problemsOf(
        withFiles(bundle, {
          "schema.cedarschema": "entity Role in [Role];\nentity User in [Role] { a: Strin };\n",
        }),
      ),
    ).toEqual([expect.stringMatching(/^schema\.cedarschema:2: failed to resolve type: Strin/)]);
  });

  it("refuses broken JSON in roles.json with its line", () => {
    expect(
      problemsOf(withFiles(bundle, { "roles.json": '{\n  "roles": {\n    "a": {,}\n  }\n}\n' })),
    ).toEqual([expect.stringMatching(/^roles\.json:3: not valid JSON/)]);
  });

  it("gives equal bundles equal versions and changed bundles new ones", () => {
    const again = engine.compile(bundle);
    const changed = engine.compile(withFiles(bundle, { "extra.cedar": "// nothing\n" }));
    expect(again.version).toBe(policies.version);
    expect(changed.version).not.toBe(policies.version);
    expect(policies.version).toMatch(/^[0-9a-f]{16}$/);
    again.dispose();
    changed.dispose();
  });
});
