import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthEdgeService, RejectionReason } from "@authplat/contracts/auth/auth_edge/v1";
import { AuthenticationMethod } from "@authplat/contracts/auth/common/v1/authentication";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { loadEnvoyAuthorizationProtos } from "@authplat/auth-edge/envoy-protos";
import type { RpcClient } from "@authplat/rpc";
import { ROOT, ServiceFleet } from "./service-fleet.ts";

// Authorization through iam-policy with real processes (requirement 1.4): token issues access
// tokens carrying roles, tenant and authentication methods; auth-edge builds the principal from
// the verified claims and asks iam-policy (default policy bundle) in AuthorizeToken and in
// Envoy's Check; refresh tokens introspect through token; iam-policy stopped means UNAVAILABLE.

const AUDIENCE = "https://api.auth.local";
// Document d-1 of tenant acme, owned by bob (the default bundle's example world).
const DOCUMENT = {
  type: "document",
  id: "d-1",
  attributes: { tenant: "acme", owner: "bob", classification: "internal" },
};

interface CheckAnswer {
  status?: { code: number };
  httpResponse:
    | { case: "okResponse"; value: { headers: { header?: { key: string; value: string } }[] } }
    | { case: "deniedResponse"; value: { status?: { code: number } } }
    | { case: undefined };
}
type CheckClient = { check(request: unknown): Promise<CheckAnswer>; close(): void };

let fleet: ServiceFleet;
let dataDir: string;
let token: RpcClient<typeof TokenService>;
let edge: RpcClient<typeof AuthEdgeService>;
let envoy: CheckClient;

function issue(roles: string[], methods = [AuthenticationMethod.PASSWORD], tenant = "acme") {
  return token.issueTokenPair({
    subject: "alice",
    clientId: "web",
    audience: [AUDIENCE],
    scopes: ["documents"],
    sessionId: "session-1",
    roles,
    tenant,
    authenticationMethods: methods,
  });
}

async function decisionFor(accessToken: string, action: string, resource = DOCUMENT) {
  const reply = await edge.authorizeToken({ token: accessToken, action, resource });
  if (reply.result.case !== "decision") {
    throw new Error(`expected a decision, got ${JSON.stringify(reply.result)}`);
  }
  return reply.result.value;
}

/** A CheckRequest as Envoy builds it for `PUT /documents/d-1` on a route naming an action. */
function checkRequest(authorization: string, extensions: Record<string, string>) {
  return {
    attributes: {
      request: {
        http: {
          id: "req-1",
          method: "PUT",
          path: "/documents/d-1",
          host: "api.auth.local",
          headers: { authorization },
        },
      },
      contextExtensions: extensions,
    },
  };
}

const UPDATE_ROUTE = {
  "authplat.action": "update",
  "authplat.resource": "document",
  "resource.id": "d-1",
  "resource.tenant": "acme",
  "resource.owner": "bob",
  "resource.classification": "internal",
};

beforeAll(async () => {
  fleet = await ServiceFleet.create();
  dataDir = await mkdtemp(join(tmpdir(), "authorization-e2e-"));
  await Promise.all([fleet.start("token", { TOKEN_DATA_DIR: dataDir }), fleet.start("iam-policy")]);
  await fleet.start("auth-edge", {
    TOKEN_SERVICE_ADDR: fleet.address("token"),
    IAM_POLICY_ADDR: fleet.address("iam-policy"),
    IAM_POLICY_BREAKER_FAILURES: "2",
    IAM_POLICY_BREAKER_OPEN_MS: "60000",
  });
  token = await fleet.client(TokenService, "token");
  edge = await fleet.client(AuthEdgeService, "auth-edge");
  envoy = (await fleet.client(
    loadEnvoyAuthorizationProtos().service,
    "auth-edge",
  )) as unknown as CheckClient;
}, 60_000);

afterAll(async () => {
  await fleet?.stopAll();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

describe("AuthorizeToken: token's claims decided by iam-policy", () => {
  it("lets a viewer read and not update, naming the deciding policy and the decision", async () => {
    const pair = await issue(["viewer"]);
    const read = await decisionFor(pair.accessToken, "read");
    expect(read).toMatchObject({
      allowed: true,
      policyIds: ["role/viewer/document"],
      claims: { subject: "alice", roles: ["viewer"], tenant: "acme", amr: ["pwd"] },
    });
    expect(read.decisionId).not.toBe("");
    expect(await decisionFor(pair.accessToken, "update")).toMatchObject({
      allowed: false,
      policyIds: [],
    });
  });

  it("keeps roles, tenant and methods through a refresh", async () => {
    const pair = await issue(["editor"]);
    const refreshed = await token.refreshTokens({
      refreshToken: pair.refreshToken,
      clientId: "web",
    });
    expect(await decisionFor(refreshed.accessToken, "update")).toMatchObject({
      allowed: true,
      policyIds: ["role/editor/document"],
      claims: { roles: ["editor"], tenant: "acme", amr: ["pwd"] },
    });
  });

  it("enforces tenant isolation and the second factor for confidential documents from the token's claims", async () => {
    const oneFactor = await issue(["owner"]);
    expect(
      await decisionFor(oneFactor.accessToken, "read", {
        ...DOCUMENT,
        attributes: { ...DOCUMENT.attributes, tenant: "globex" },
      }),
    ).toMatchObject({ allowed: false, policyIds: ["tenant-isolation"] });
    const confidential = {
      ...DOCUMENT,
      attributes: { ...DOCUMENT.attributes, classification: "confidential" },
    };
    expect(await decisionFor(oneFactor.accessToken, "read", confidential)).toMatchObject({
      allowed: false,
      policyIds: ["confidential-needs-mfa"],
    });
    const twoFactors = await issue(
      ["viewer"],
      [AuthenticationMethod.PASSWORD, AuthenticationMethod.TOTP],
    );
    expect(await decisionFor(twoFactors.accessToken, "read", confidential)).toMatchObject({
      allowed: true,
    });
  });

  it("answers a forged token with a rejection, and a question the schema refuses with INVALID_ARGUMENT", async () => {
    const pair = await issue(["viewer"]);
    const forged = `${pair.accessToken.slice(0, -4)}AAAA`;
    const reply = await edge.authorizeToken({ token: forged, action: "read", resource: DOCUMENT });
    expect(reply.result).toMatchObject({
      case: "rejection",
      value: { reason: RejectionReason.BAD_SIGNATURE },
    });
    await expect(
      edge.authorizeToken({
        token: pair.accessToken,
        action: "read",
        resource: { ...DOCUMENT, type: "invoice" },
      }),
    ).rejects.toMatchObject({
      remoteCode: "INVALID_ARGUMENT",
      message: expect.stringContaining("iam-policy refused the question"),
    });
  });
});

describe("IntrospectToken for refresh tokens, answered by token", () => {
  it("is active with the family's claims until the token is used, then inactive; unknown is inactive", async () => {
    const pair = await issue(["viewer"]);
    const active = await edge.introspectToken({ token: pair.refreshToken });
    expect(active).toMatchObject({
      active: true,
      tokenType: "refresh_token",
      claims: {
        subject: "alice",
        clientId: "web",
        scopes: ["documents"],
        sessionId: "session-1",
        roles: ["viewer"],
        tenant: "acme",
      },
    });
    // Introspection did not use it: it still rotates, once.
    const refreshed = await token.refreshTokens({
      refreshToken: pair.refreshToken,
      clientId: "web",
    });
    const used = await edge.introspectToken({ token: pair.refreshToken });
    expect(used).toMatchObject({ active: false, tokenType: "" });
    expect(used.claims).toBeUndefined();
    expect(await edge.introspectToken({ token: refreshed.refreshToken })).toMatchObject({
      active: true,
    });
    expect((await edge.introspectToken({ token: "Q".repeat(43) })).active).toBe(false);
  });

  it("is inactive once its family is revoked (RFC 7009 by refresh token)", async () => {
    const pair = await issue(["viewer"]);
    expect((await edge.introspectToken({ token: pair.refreshToken })).active).toBe(true);
    await token.revokeToken({ target: { case: "token", value: pair.refreshToken } });
    const revoked = await edge.introspectToken({ token: pair.refreshToken });
    expect(revoked).toMatchObject({ active: false, tokenType: "" });
    expect(revoked.claims).toBeUndefined();
  });
});

describe("Envoy's Check with an action and a resource, decided by iam-policy", () => {
  it("passes an editor's update (OK), forbids a viewer's (403) and refuses a bad token (401)", async () => {
    const editor = await issue(["editor"]);
    const ok = await envoy.check(checkRequest(`Bearer ${editor.accessToken}`, UPDATE_ROUTE));
    expect(ok.status?.code).toBe(0);
    expect(ok.httpResponse.case).toBe("okResponse");
    const viewer = await issue(["viewer"]);
    const forbidden = await envoy.check(checkRequest(`Bearer ${viewer.accessToken}`, UPDATE_ROUTE));
    expect(forbidden.httpResponse).toMatchObject({
      case: "deniedResponse",
      value: { status: { code: 403 } },
    });
    const bad = await envoy.check(checkRequest("Bearer not.a.token", UPDATE_ROUTE));
    expect(bad.httpResponse).toMatchObject({
      case: "deniedResponse",
      value: { status: { code: 401 } },
    });
  });
});

/** The context extensions of the first route that sets them in `file` (YAML, read by hand). */
async function routeExtensions(file: string): Promise<Record<string, string>> {
  const lines = (await readFile(join(ROOT, file), "utf8")).split("\n");
  const start = lines.findIndex((line) => line.trim() === "context_extensions:");
  const indent = /^\s*/.exec(lines[start + 1] ?? "")![0].length;
  const extensions: Record<string, string> = {};
  for (const line of lines.slice(start + 1)) {
    if (line.trim().startsWith("#")) continue;
    const match = /^(\s*)([\w.]+): (.+)$/.exec(line);
    if (match === null || match[1]!.length !== indent) break;
    extensions[match[2]!] = match[3]!.trim();
  }
  return extensions;
}

describe("the documented Envoy and Istio routes against the default bundle", () => {
  it.each(["deploy/envoy/envoy.yaml", "deploy/envoy/istio-authorization-policy.yaml"])(
    "%s: its /docs route lets a viewer of the tenant read (OK) and refuses another tenant (403)",
    async (file) => {
      const extensions = await routeExtensions(file);
      expect(extensions).toMatchObject({
        "authplat.action": "read",
        "authplat.resource": "document",
      });
      const scopes = (extensions["authplat.scopes"] ?? "").split(" ").filter((s) => s !== "");
      const issueFor = (tenant: string) =>
        token.issueTokenPair({
          subject: "alice",
          clientId: "web",
          audience: [AUDIENCE],
          scopes,
          roles: ["viewer"],
          tenant,
        });
      const own = await issueFor("acme");
      const ok = await envoy.check(checkRequest(`Bearer ${own.accessToken}`, extensions));
      expect(ok.httpResponse.case).toBe("okResponse");
      const other = await issueFor("globex");
      const refused = await envoy.check(checkRequest(`Bearer ${other.accessToken}`, extensions));
      expect(refused.httpResponse).toMatchObject({
        case: "deniedResponse",
        value: { status: { code: 403 } },
      });
    },
  );
});

// Last: it stops iam-policy for good.
describe("iam-policy stopped", () => {
  it("makes AuthorizeToken and authorizing Checks fail UNAVAILABLE, never allow, then opens the breaker; validation goes on", async () => {
    const editor = await issue(["editor"]);
    await fleet.stop("iam-policy");
    for (const expected of ["iam-policy cannot decide now", "iam-policy cannot decide now"]) {
      await expect(
        edge.authorizeToken({ token: editor.accessToken, action: "update", resource: DOCUMENT }),
      ).rejects.toMatchObject({ code: "UNAVAILABLE", message: expected });
    }
    // Two failures opened the breaker: the edge answers at once, with when to retry.
    const open: unknown = await edge
      .authorizeToken({ token: editor.accessToken, action: "read", resource: DOCUMENT })
      .catch((error: unknown) => error);
    expect(open).toMatchObject({ code: "UNAVAILABLE" });
    expect((open as { retryAfterMs?: number }).retryAfterMs).toBeGreaterThan(0);
    await expect(
      envoy.check(checkRequest(`Bearer ${editor.accessToken}`, UPDATE_ROUTE)),
    ).rejects.toMatchObject({ code: "UNAVAILABLE" });
    const validationOnly = await envoy.check(checkRequest(`Bearer ${editor.accessToken}`, {}));
    expect(validationOnly.httpResponse.case).toBe("okResponse");
    expect((await edge.validateToken({ token: editor.accessToken })).result.case).toBe("claims");
  });
});
