import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthEdgeService } from "@authplat/contracts/auth/auth_edge/v1";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { createLogger } from "@authplat/observability";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki, type TestPki } from "@authplat/spiffe/test-pki";
import {
  AccessRulesError,
  everyMethodOverride,
  loadAccessRules,
  loadServiceAccessRules,
  readAccessRulesFile,
  type AccessRulesDocument,
} from "./access-rules.ts";
import { createRpcClient } from "./client.ts";
import { defineService } from "./handlers.ts";
import { startRpcServer, type RpcServer } from "./server.ts";
import { RemoteCallError } from "./status-mapping.ts";
import { unimplementedHandlers } from "./unimplemented.ts";

const TD = "auth.local";
const ISSUE = "/auth.token.v1.TokenService/IssueTokenPair";
const REFRESH = "/auth.token.v1.TokenService/RefreshTokens";
const REVOKE = "/auth.token.v1.TokenService/RevokeToken";
const JWKS = "/auth.token.v1.TokenService/GetJwks";
const ID_TOKEN = "/auth.token.v1.TokenService/IssueIdToken";
const FILE = "apps/token/src/access-rules.json";
const id = (name: string) => parseSpiffeId(`spiffe://${TD}/ns/auth/sa/${name}`);

/** A valid token rules document; `patch` edits a deep copy. */
function tokenRules(
  patch: (rules: Record<string, unknown>) => void = () => {},
): AccessRulesDocument {
  const entry = (production: string[], development: string[]) => ({ production, development });
  const rules: Record<string, unknown> = {
    // Methods this test does not look at (the contract grows): the operator only.
    ...Object.fromEntries(
      TokenService.methods.map((m) => [
        `/${TokenService.typeName}/${m.name}`,
        entry(["operator"], ["operator"]),
      ]),
    ),
    [ISSUE]: entry(["session-identity"], ["session-identity", "operator"]),
    [REFRESH]: entry(["session-identity"], ["session-identity", "operator"]),
    [REVOKE]: entry(["auth-edge", "operator"], ["auth-edge", "operator"]),
    [JWKS]: entry(["auth-edge", `spiffe://${TD}/ns/tools/sa/jwks-mirror`], ["auth-edge"]),
    [ID_TOKEN]: entry(["session-identity"], ["session-identity", "operator"]),
  };
  patch(rules);
  return { file: FILE, content: { $comment: "test", rules } };
}

function load(document: AccessRulesDocument, overrides: AccessRulesDocument[] = []) {
  return loadAccessRules({
    rules: document,
    services: [TokenService],
    trustDomain: TD,
    profile: "production",
    overrides,
  });
}

function loadError(document: AccessRulesDocument, overrides: AccessRulesDocument[] = []) {
  try {
    load(document, overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(AccessRulesError);
    return error as AccessRulesError;
  }
  throw new Error("expected the rules to be rejected");
}

describe("loadAccessRules", () => {
  it("expands workload names with the trust domain and takes full SPIFFE IDs as written", () => {
    const rules = load(tokenRules());
    expect(rules.callersOf(JWKS)).toEqual([
      `spiffe://${TD}/ns/auth/sa/auth-edge`,
      `spiffe://${TD}/ns/tools/sa/jwks-mirror`,
    ]);
    expect(rules.isAllowed(JWKS, parseSpiffeId(`spiffe://${TD}/ns/tools/sa/jwks-mirror`))).toBe(
      true,
    );
    expect(rules.isAllowed(ISSUE, id("session-identity"))).toBe(true);
  });

  it("denies callers not listed, unknown methods and a missing caller", () => {
    const rules = load(tokenRules());
    expect(rules.isAllowed(ISSUE, id("auth-edge"))).toBe(false);
    expect(rules.isAllowed("/auth.token.v1.TokenService/Nope", id("session-identity"))).toBe(false);
    expect(rules.isAllowed(ISSUE, undefined)).toBe(false);
    expect(
      rules.isAllowed(ISSUE, parseSpiffeId("spiffe://other.local/ns/auth/sa/session-identity")),
    ).toBe(false);
  });

  it("selects the profile: the operator may issue tokens in development only", () => {
    const production = load(tokenRules());
    const development = loadAccessRules({
      rules: tokenRules(),
      services: [TokenService],
      trustDomain: TD,
      profile: "development",
    });
    expect(production.profile).toBe("production");
    expect(production.isAllowed(ISSUE, id("operator"))).toBe(false);
    expect(development.isAllowed(ISSUE, id("operator"))).toBe(true);
    // The development column of GetJwks does not list the mirror.
    expect(development.callersOf(JWKS)).toEqual([`spiffe://${TD}/ns/auth/sa/auth-edge`]);
  });

  it("expands names in another trust domain with that domain", () => {
    const rules = loadAccessRules({
      rules: tokenRules((r) => {
        r[JWKS] = { production: ["auth-edge"], development: [] };
      }),
      services: [TokenService],
      trustDomain: "prod.example",
      profile: "production",
    });
    expect(rules.callersOf(ISSUE)).toEqual(["spiffe://prod.example/ns/auth/sa/session-identity"]);
  });

  it("lets an override replace the callers of the methods it names and keeps the rest", () => {
    const override: AccessRulesDocument = {
      file: "/etc/authplat/access.json",
      content: { rules: { [ISSUE]: { production: ["billing"], development: [] } } },
    };
    const rules = load(tokenRules(), [override]);
    expect(rules.callersOf(ISSUE)).toEqual([`spiffe://${TD}/ns/auth/sa/billing`]);
    expect(rules.isAllowed(ISSUE, id("session-identity"))).toBe(false);
    expect(rules.callersOf(REFRESH)).toEqual([`spiffe://${TD}/ns/auth/sa/session-identity`]);
  });

  it("applies overrides in order: the last one naming a method wins", () => {
    const first: AccessRulesDocument = {
      file: "ALLOWED_CALLERS",
      content: { rules: { [REVOKE]: { production: ["a"], development: ["a"] } } },
    };
    const second: AccessRulesDocument = {
      file: "override.json",
      content: { rules: { [REVOKE]: { production: ["b"], development: ["b"] } } },
    };
    expect(load(tokenRules(), [first, second]).callersOf(REVOKE)).toEqual([
      `spiffe://${TD}/ns/auth/sa/b`,
    ]);
  });

  it("allows nobody on a method whose list is empty", () => {
    const rules = load(
      tokenRules((r) => {
        r[ID_TOKEN] = { production: [], development: [] };
      }),
    );
    expect(rules.callersOf(ID_TOKEN)).toEqual([]);
    expect(rules.isAllowed(ID_TOKEN, id("session-identity"))).toBe(false);
  });

  it.each<[string, (rules: Record<string, unknown>) => void, string]>([
    [
      "a served method without a rule",
      (r) => delete r[ID_TOKEN],
      `${FILE}: ${ID_TOKEN}: has no rule (every method needs one)`,
    ],
    [
      "a rule for a method that is not served",
      (r) => (r["/auth.token.v1.TokenService/MintAnything"] = { production: [], development: [] }),
      `${FILE}: /auth.token.v1.TokenService/MintAnything: no such method is served here`,
    ],
    [
      "a method of another service",
      (r) =>
        (r["/auth.auth_edge.v1.AuthEdgeService/ValidateToken"] = {
          production: [],
          development: [],
        }),
      `${FILE}: /auth.auth_edge.v1.AuthEdgeService/ValidateToken: no such method is served here`,
    ],
    [
      "a missing profile",
      (r) => (r[ISSUE] = { production: ["session-identity"] }),
      `${FILE}: ${ISSUE}: "development" must be a list of workload names or SPIFFE IDs (empty: nobody)`,
    ],
    [
      "a misspelt profile",
      (r) => (r[ISSUE] = { production: [], development: [], prod: ["operator"] }),
      `${FILE}: ${ISSUE}: unknown key "prod" (only "production", "development" and "$comment")`,
    ],
    [
      "a rule that is not an object",
      (r) => (r[ISSUE] = ["session-identity"]),
      `${FILE}: ${ISSUE}: must be an object with "production" and "development" lists`,
    ],
    [
      "a caller that is not a string",
      (r) => (r[ISSUE] = { production: [7], development: [] }),
      `${FILE}: ${ISSUE}: production[0]: must be a string`,
    ],
    [
      "a SPIFFE ID of another trust domain",
      (r) =>
        (r[ISSUE] = {
          production: [],
          development: ["spiffe://evil.example/ns/auth/sa/operator"],
        }),
      `${FILE}: ${ISSUE}: development[0]: spiffe://evil.example/ns/auth/sa/operator is not in trust domain ${TD}`,
    ],
    [
      "a bare trust domain ID (a would-be wildcard)",
      (r) => (r[ISSUE] = { production: [`spiffe://${TD}`], development: [] }),
      `${FILE}: ${ISSUE}: production[0]: spiffe://${TD} has no path and can never match`,
    ],
    [
      "a duplicate caller",
      (r) =>
        (r[ISSUE] = {
          production: ["operator", `spiffe://${TD}/ns/auth/sa/operator`],
          development: [],
        }),
      `${FILE}: ${ISSUE}: production[1]: spiffe://${TD}/ns/auth/sa/operator is listed twice`,
    ],
  ])("rejects %s, naming the file and the method", (_, patch, message) => {
    expect(loadError(tokenRules(patch)).message).toBe(message);
  });

  it.each([
    ["a pattern", "*", "path-chars"],
    ["a path", "ns/auth/sa/operator", "path-chars"],
    ["a malformed SPIFFE ID", "spiffe://auth.local/ns//sa", "path-empty-segment"],
  ])("rejects %s as a caller, with the SPIFFE rule that failed", (_, caller, reason) => {
    const error = loadError(
      tokenRules((r) => (r[ISSUE] = { production: [caller], development: [] })),
    );
    expect(error.message).toMatch(
      new RegExp(
        `^${FILE}: ${ISSUE}: production\\[0\\]: ${JSON.stringify(caller).replace(/[*.]/g, "\\$&")} is neither a workload name nor a SPIFFE ID \\(SPIFFE-ID`,
      ),
    );
    expect(error.method).toBe(ISSUE);
    expect((error.cause as { reason: string }).reason).toBe(reason);
  });

  it.each<[string, unknown, string]>([
    ["not an object", [], `${FILE}: must be a JSON object with a "rules" object`],
    ["without rules", { $comment: "x" }, `${FILE}: "rules" must be an object keyed by method path`],
    [
      "with an unknown top-level key",
      { rules: {}, allowAll: true },
      `${FILE}: unknown key "allowAll" (only "rules" and "$comment")`,
    ],
  ])("rejects a document %s", (_, content, message) => {
    expect(loadError({ file: FILE, content }).message).toBe(message);
  });

  it("validates overrides the same way, naming the override file", () => {
    const error = loadError(tokenRules(), [
      {
        file: "/etc/authplat/access.json",
        content: { rules: { [ISSUE]: { production: ["operator"] } } },
      },
    ]);
    expect(error.message).toBe(
      `/etc/authplat/access.json: ${ISSUE}: "development" must be a list of workload names or SPIFFE IDs (empty: nobody)`,
    );
    const unknown = loadError(tokenRules(), [
      {
        file: "/etc/authplat/access.json",
        content: {
          rules: { "/auth.token.v1.TokenService/Typo": { production: [], development: [] } },
        },
      },
    ]);
    expect(unknown.message).toBe(
      "/etc/authplat/access.json: /auth.token.v1.TokenService/Typo: no such method is served here",
    );
  });

  it("checks that every method of every served service has a rule", () => {
    expect(() =>
      loadAccessRules({
        rules: tokenRules(),
        services: [TokenService, AuthEdgeService],
        trustDomain: TD,
        profile: "production",
      }),
    ).toThrow(
      `${FILE}: /auth.auth_edge.v1.AuthEdgeService/ValidateToken: has no rule (every method needs one)`,
    );
  });
});

describe("loadServiceAccessRules", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "access-rules-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads ACCESS_RULES_FILE and applies it after the service's own rules", async () => {
    const file = join(dir, "override.json");
    await writeFile(
      file,
      JSON.stringify({ rules: { [ISSUE]: { production: ["operator"], development: [] } } }),
    );
    const rules = loadServiceAccessRules(
      { TRUST_DOMAIN: TD, ACCESS_PROFILE: "production", ACCESS_RULES_FILE: file },
      { rules: tokenRules(), services: [TokenService] },
    );
    expect(rules.isAllowed(ISSUE, id("operator"))).toBe(true);
    expect(rules.isAllowed(ISSUE, id("session-identity"))).toBe(false);
  });

  it("puts the extra overrides (ALLOWED_CALLERS) before ACCESS_RULES_FILE", async () => {
    const file = join(dir, "revoke.json");
    await writeFile(
      file,
      JSON.stringify({ rules: { [REVOKE]: { production: ["from-file"], development: [] } } }),
    );
    const extra: AccessRulesDocument = {
      file: "ALLOWED_CALLERS",
      content: {
        rules: {
          [REVOKE]: { production: ["from-env"], development: [] },
          [JWKS]: { production: ["from-env"], development: [] },
        },
      },
    };
    const rules = loadServiceAccessRules(
      { TRUST_DOMAIN: TD, ACCESS_PROFILE: "production", ACCESS_RULES_FILE: file },
      { rules: tokenRules(), services: [TokenService], extraOverrides: [extra] },
    );
    expect(rules.callersOf(REVOKE)).toEqual([`spiffe://${TD}/ns/auth/sa/from-file`]);
    expect(rules.callersOf(JWKS)).toEqual([`spiffe://${TD}/ns/auth/sa/from-env`]);
  });

  it("stops on an unreadable or malformed override file, naming it", async () => {
    const missing = join(dir, "missing.json");
    expect(() => readAccessRulesFile(missing)).toThrow(`${missing}: cannot be read`);
    const broken = join(dir, "broken.json");
    await writeFile(broken, "{ rules: ");
    expect(() =>
      loadServiceAccessRules(
        { TRUST_DOMAIN: TD, ACCESS_PROFILE: "development", ACCESS_RULES_FILE: broken },
        { rules: tokenRules(), services: [TokenService] },
      ),
    ).toThrow(`${broken}: is not valid JSON`);
  });
});

describe("the token service's production rules over mTLS", () => {
  let pki: TestPki;
  let server: RpcServer;

  beforeAll(async () => {
    pki = await createTestPki();
    const file = resolve(import.meta.dirname, "../../../../apps/token/src/access-rules.json");
    server = await startRpcServer({
      name: "token",
      host: "127.0.0.1",
      port: 0,
      tls: pki.files("token"),
      services: [
        defineService(TokenService, {
          ...unimplementedHandlers(TokenService),
          issueTokenPair: async (request) => ({ accessToken: `for ${request.subject}` }),
          getJwks: async () => ({ keys: [] }),
        }),
      ],
      accessRules: loadAccessRules({
        rules: readAccessRulesFile(file),
        services: [TokenService],
        trustDomain: "auth.local",
        profile: "production",
      }),
      logger: createLogger({ service: "access-rules-test", level: "silent" }),
      shutdownGraceMs: 1_000,
    });
    server.markServing();
  });

  afterAll(async () => {
    await server?.shutdown();
    await pki?.cleanup();
  });

  const clientAs = (caller: string) =>
    createRpcClient(TokenService, {
      address: `127.0.0.1:${server.port}`,
      tls: pki.files(caller),
      serverId: parseSpiffeId(pki.idOf("token")),
    });

  it("answers the operator's IssueTokenPair with PERMISSION_DENIED / CALLER_NOT_ALLOWED", async () => {
    const operator = await clientAs("operator");
    try {
      const error = await operator.issueTokenPair({ subject: "anyone" }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RemoteCallError);
      expect(error).toMatchObject({
        grpcCode: grpc.status.PERMISSION_DENIED,
        remoteCode: "CALLER_NOT_ALLOWED",
      });
      // ...but the operator may still read the JWKS.
      expect((await operator.getJwks({})).keys).toEqual([]);
    } finally {
      operator.close();
    }
  });

  it("lets session-identity issue tokens", async () => {
    const sessionIdentity = await clientAs("session-identity");
    try {
      expect((await sessionIdentity.issueTokenPair({ subject: "u1" })).accessToken).toBe("for u1");
    } finally {
      sessionIdentity.close();
    }
  });
});

describe("everyMethodOverride", () => {
  it("gives the callers every method of the services, validated like any override", () => {
    const rules = loadAccessRules({
      rules: {
        file: "edge.json",
        content: {
          rules: {
            "/auth.auth_edge.v1.AuthEdgeService/ValidateToken": {
              production: ["operator"],
              development: ["operator"],
            },
            "/auth.auth_edge.v1.AuthEdgeService/IntrospectToken": {
              production: ["operator"],
              development: ["operator"],
            },
            "/auth.auth_edge.v1.AuthEdgeService/AuthorizeToken": {
              production: ["operator"],
              development: ["operator"],
            },
          },
        },
      },
      services: [AuthEdgeService],
      trustDomain: TD,
      profile: "production",
      overrides: [
        everyMethodOverride(
          "ALLOWED_CALLERS",
          [AuthEdgeService],
          [`spiffe://${TD}/ns/shop/sa/checkout`],
        ),
      ],
    });
    for (const method of ["IntrospectToken", "AuthorizeToken"]) {
      expect(rules.callersOf(`/auth.auth_edge.v1.AuthEdgeService/${method}`)).toEqual([
        `spiffe://${TD}/ns/shop/sa/checkout`,
      ]);
    }
    expect(
      rules.isAllowed("/auth.auth_edge.v1.AuthEdgeService/ValidateToken", id("operator")),
    ).toBe(false);
    expect(() =>
      loadAccessRules({
        rules: { file: "edge.json", content: { rules: {} } },
        services: [AuthEdgeService],
        trustDomain: TD,
        profile: "production",
      }),
    ).toThrow("edge.json: /auth.auth_edge.v1.AuthEdgeService/ValidateToken: has no rule");
    const foreign = everyMethodOverride(
      "ALLOWED_CALLERS",
      [AuthEdgeService],
      ["spiffe://evil.example/x"],
    );
    expect(() =>
      loadAccessRules({
        rules: foreign,
        services: [AuthEdgeService],
        trustDomain: TD,
        profile: "production",
      }),
    ).toThrow(
      "ALLOWED_CALLERS: /auth.auth_edge.v1.AuthEdgeService/ValidateToken: production[0]: spiffe://evil.example/x is not in trust domain auth.local",
    );
  });
});
