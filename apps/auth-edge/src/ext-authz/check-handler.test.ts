import { readFileSync } from "node:fs";
import type { PeerCertificate } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AuthEdgeService } from "@authplat/contracts/auth/auth_edge/v1";
import { ServiceError } from "@authplat/errors";
import { createLogger } from "@authplat/observability";
import { loadAccessRules, type RpcServer } from "@authplat/rpc";
import { ensureDevPki } from "@authplat/spiffe/dev-pki";
import { TEST_IDENTITIES } from "@authplat/spiffe/test-pki";
import { createTestPki, startTestServer, type TestPki } from "@authplat/testing";
import accessRulesFile from "../access-rules.json" with { type: "json" };
import { authEdgeRegistration } from "../handlers.ts";
import { JwksCache } from "../jwks/jwks-cache.ts";
import { TokenValidator } from "../tokens/token-validator.ts";
import type { AuthorizationRequest, Authorizer } from "./authorizer.ts";
import { checkInputOf, extAuthzRegistration } from "./check-handler.ts";
import {
  envoyProtoIncludeDirs,
  EXTERNAL_AUTH_PROTO,
  loadEnvoyAuthorizationProtos,
} from "./envoy-protos.ts";
import { ExtAuthzService } from "./ext-authz-service.ts";

// The proxy's identity in these tests, as an Envoy sidecar or gateway would present it.
const ENVOY = "envoy";

let pki: TestPki;
let server: RpcServer;
let privateKey: CryptoKey;
let authorizerDown = false;
let lastAuthorization: AuthorizationRequest | undefined;
const logLines: string[] = [];

/** iam-policy's stand-in: allows `read`, denies `delete`, wants scope `admin` for `manage`. */
const authorizer: Authorizer = {
  async authorize(request) {
    lastAuthorization = request;
    if (authorizerDown) {
      throw new ServiceError("CIRCUIT_OPEN", "the circuit to iam-policy is open", {
        retryAfterMs: 0,
      });
    }
    if (request.action === "read") return { allowed: true, policyIds: ["p-read"], reason: "ok" };
    if (request.action === "manage") {
      return { allowed: false, policyIds: [], reason: "needs admin", missingScopes: ["admin"] };
    }
    return { allowed: false, policyIds: ["p-no-delete"], reason: "forbidden by p-no-delete" };
  },
};

function token(claims: Record<string, unknown> = {}, exp = Math.floor(Date.now() / 1000) + 300) {
  return new SignJWT({ client_id: "web", scope: "docs:read docs:write", sid: "s-1", ...claims })
    .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: "k1" })
    .setIssuer("https://auth.local")
    .setSubject("user-1")
    .setAudience("https://api.auth.local")
    .setIssuedAt()
    .setExpirationTime(exp)
    .setJti("j-1")
    .sign(privateKey);
}

interface HeaderValueOption {
  header: { key: string; value: string };
  append_action: string;
}
interface CheckResponse {
  status: { code: number; message: string };
  http_response: "ok_response" | "denied_response";
  ok_response?: { headers: HeaderValueOption[]; headers_to_remove: string[] };
  denied_response?: { status: { code: string }; headers: HeaderValueOption[]; body: string };
}
type Check = (request: unknown) => Promise<CheckResponse>;

/**
 * A client that speaks Envoy's contract and nothing of ours: grpc-js with the same Envoy protos
 * (snake_case fields, enum names), over mTLS with the proxy's SVID, checking the server's
 * SPIFFE ID in its URI SAN.
 */
async function envoyClient(identity: string): Promise<{ check: Check; close: () => void }> {
  const definition = loadSync(EXTERNAL_AUTH_PROTO, {
    includeDirs: envoyProtoIncludeDirs(),
    keepCase: true,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
  };
  const files = pki.files(identity);
  const credentials = grpc.credentials.createSsl(
    readFileSync(files.bundleFile),
    readFileSync(files.keyFile),
    readFileSync(files.certFile),
    {
      checkServerIdentity: (_host: string, certificate: PeerCertificate) =>
        // As Envoy's match_typed_subject_alt_names with a URI matcher does.
        (certificate.subjectaltname ?? "").split(", ").includes(`URI:${server.spiffeId.toString()}`)
          ? undefined
          : new Error(`unexpected server identity ${certificate.subjectaltname}`),
    },
  );
  const client = new loaded.envoy.service.auth.v3.Authorization(
    `127.0.0.1:${server.port}`,
    credentials,
  );
  const check: Check = (request) =>
    new Promise((resolve, reject) => {
      (client as unknown as Record<string, (...args: unknown[]) => void>)["Check"]!(
        request,
        { deadline: Date.now() + 5_000 },
        (error: grpc.ServiceError | null, response: CheckResponse) =>
          error === null ? resolve(response) : reject(error),
      );
    });
  // The server's certificate watcher may still be loading when the first handshake comes:
  // wait (with grpc-js's reconnect backoff) until the channel is up, as Envoy's cluster would.
  await new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 10_000, (error) => (error ? reject(error) : resolve())),
  );
  return { check, close: () => client.close() };
}

/** A CheckRequest as Envoy builds it for `GET /docs/1` with these headers and extensions. */
function checkRequest(
  headers: Record<string, string>,
  contextExtensions: Record<string, string> = {},
) {
  return {
    attributes: {
      source: { principal: "spiffe://auth.local/ns/web/sa/browser" },
      request: {
        http: {
          id: "req-42",
          method: "GET",
          path: "/docs/1",
          host: "api.auth.local",
          scheme: "https",
          headers: { ":method": "GET", ":path": "/docs/1", ...headers },
        },
      },
      context_extensions: contextExtensions,
    },
  };
}

function headersOf(options: readonly HeaderValueOption[] | undefined): Record<string, string> {
  return Object.fromEntries((options ?? []).map((o) => [o.header.key, o.header.value]));
}

beforeAll(async () => {
  pki = await createTestPki();
  // The test PKI's CA, one more workload: the proxy.
  await ensureDevPki({
    dir: pki.dir,
    trustDomain: pki.trustDomain,
    identities: [...TEST_IDENTITIES, ENVOY],
    svidValidityMs: 60 * 60 * 1000,
    caValidityMs: 24 * 60 * 60 * 1000,
    renewBeforeMs: 60 * 1000,
  });
  const pair = await generateKeyPair("ES256", { extractable: true });
  privateKey = pair.privateKey;
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256" };
  const keys = new JwksCache({
    fetchKeys: async () => [publicJwk],
    algorithms: ["ES256"],
    nowMs: () => Date.now(),
    minRefetchIntervalMs: 1_000,
  });
  await keys.refresh();
  const validator = new TokenValidator({
    keys,
    issuer: "https://auth.local",
    audiences: ["https://api.auth.local"],
    algorithms: ["ES256"],
    clockToleranceSeconds: 0,
    nowMs: () => Date.now(),
  });
  const envoyAuthorization = loadEnvoyAuthorizationProtos();
  const logger = createLogger({
    service: "auth-edge",
    level: "debug",
    destination: { write: (line: string) => void logLines.push(line) },
  });
  server = await startTestServer(
    pki,
    "auth-edge",
    [
      authEdgeRegistration({ validator, issuer: "https://auth.local" }),
      extAuthzRegistration({
        service: envoyAuthorization.service,
        extAuthz: new ExtAuthzService({ validator, authorizer }),
        answers: { realm: "authplat", forwardAuthorization: false },
      }),
    ],
    logger,
    {
      // The shipped rules file, production column: the proxy may call Check, the operator not.
      accessRules: loadAccessRules({
        rules: { file: "access-rules.json", content: accessRulesFile },
        services: [AuthEdgeService, envoyAuthorization.service],
        trustDomain: pki.trustDomain,
        profile: "production",
      }),
    },
  );
});

afterAll(async () => {
  await server?.shutdown();
  await pki?.cleanup();
});

beforeEach(() => {
  authorizerDown = false;
  lastAuthorization = undefined;
  logLines.length = 0;
});

describe("envoy.service.auth.v3.Authorization/Check over mTLS, as Envoy calls it", () => {
  it("allows a good token with OK, passing the verified identity upstream and stripping the rest", async () => {
    const envoy = await envoyClient(ENVOY);
    const jwt = await token();
    const reply = await envoy.check(
      checkRequest({
        authorization: `Bearer ${jwt}`,
        // Forged by the client: must never reach the upstream.
        "x-authplat-subject": "admin",
      }),
    );
    envoy.close();
    expect(reply.status.code).toBe(0);
    expect(reply.http_response).toBe("ok_response");
    expect(headersOf(reply.ok_response?.headers)).toEqual({
      "x-authplat-subject": "user-1",
      "x-authplat-client-id": "web",
      "x-authplat-scopes": "docs:read docs:write",
      "x-authplat-session-id": "s-1",
    });
    // Set headers replace whatever the client sent under the same name.
    expect(reply.ok_response?.headers.map((h) => h.append_action)).toEqual(
      Array(4).fill("OVERWRITE_IF_EXISTS_OR_ADD"),
    );
    expect(reply.ok_response?.headers_to_remove).toEqual(["authorization"]);
    const decision = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(decision).toContainEqual(
      expect.objectContaining({
        msg: "ext_authz decision",
        decision: "allow",
        httpRequestId: "req-42",
        correlationId: expect.stringMatching(/.+/),
      }),
    );
    expect(logLines.join("\n")).not.toContain(jwt);
  });

  it("removes a client-sent identity header the token has no value for", async () => {
    const envoy = await envoyClient(ENVOY);
    const reply = await envoy.check(
      checkRequest({
        authorization: `Bearer ${await token({ sid: undefined })}`,
        "x-authplat-session-id": "stolen-session",
      }),
    );
    envoy.close();
    expect(reply.status.code).toBe(0);
    expect(headersOf(reply.ok_response?.headers)["x-authplat-session-id"]).toBeUndefined();
    expect(reply.ok_response?.headers_to_remove).toEqual([
      "x-authplat-session-id",
      "authorization",
    ]);
  });

  it("answers a request without an Authorization header with 401 and a challenge without error", async () => {
    const envoy = await envoyClient(ENVOY);
    const reply = await envoy.check(checkRequest({}));
    envoy.close();
    expect(reply.status.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(reply.http_response).toBe("denied_response");
    expect(reply.denied_response?.status.code).toBe("Unauthorized");
    expect(headersOf(reply.denied_response?.headers)).toEqual({
      "www-authenticate": 'Bearer realm="authplat"',
    });
  });

  it("answers a bad token with 401 invalid_token and never echoes it", async () => {
    const envoy = await envoyClient(ENVOY);
    const tampered = `${await token()}x`;
    const reply = await envoy.check(checkRequest({ authorization: `Bearer ${tampered}` }));
    envoy.close();
    expect(reply.status.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(reply.denied_response?.status.code).toBe("Unauthorized");
    expect(headersOf(reply.denied_response?.headers)).toEqual({
      "www-authenticate":
        'Bearer realm="authplat", error="invalid_token", error_description="the access token is invalid"',
    });
    expect(JSON.stringify(reply)).not.toContain(tampered);
    expect(logLines.join("\n")).not.toContain(tampered);
    expect(logLines.map((line) => JSON.parse(line) as unknown)).toContainEqual(
      expect.objectContaining({ decision: "unauthenticated", reason: "BAD_SIGNATURE" }),
    );
  });

  it("says when the token expired", async () => {
    const envoy = await envoyClient(ENVOY);
    const expired = await token({}, Math.floor(Date.now() / 1000) - 60);
    const reply = await envoy.check(checkRequest({ authorization: `bearer ${expired}` }));
    envoy.close();
    expect(headersOf(reply.denied_response?.headers)["www-authenticate"]).toBe(
      'Bearer realm="authplat", error="invalid_token", error_description="the access token expired"',
    );
  });

  it("allows an action the authorizer permits, giving it the claims and the request", async () => {
    const envoy = await envoyClient(ENVOY);
    const reply = await envoy.check(
      checkRequest(
        { authorization: `Bearer ${await token()}` },
        { "authplat.action": "read", "authplat.resource": "document", tenant: "t-1" },
      ),
    );
    envoy.close();
    expect(reply.status.code).toBe(0);
    expect(lastAuthorization).toMatchObject({
      action: "read",
      resource: "document",
      claims: { subject: "user-1", clientId: "web" },
      context: {
        tenant: "t-1",
        "http.method": "GET",
        "http.path": "/docs/1",
        "http.host": "api.auth.local",
      },
    });
  });

  it("answers a forbidden action with PERMISSION_DENIED and a plain 403", async () => {
    const envoy = await envoyClient(ENVOY);
    const reply = await envoy.check(
      checkRequest(
        { authorization: `Bearer ${await token()}` },
        { "authplat.action": "delete", "authplat.resource": "document" },
      ),
    );
    envoy.close();
    expect(reply.status.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(reply.denied_response?.status.code).toBe("Forbidden");
    expect(reply.denied_response?.headers).toEqual([]);
  });

  it("answers a denial for want of scope with 403 insufficient_scope naming the scope", async () => {
    const envoy = await envoyClient(ENVOY);
    const byPolicy = await envoy.check(
      checkRequest(
        { authorization: `Bearer ${await token()}` },
        { "authplat.action": "manage", "authplat.resource": "document" },
      ),
    );
    const byRoute = await envoy.check(
      checkRequest(
        { authorization: `Bearer ${await token()}` },
        { "authplat.scopes": "docs:read docs:admin" },
      ),
    );
    envoy.close();
    expect(byPolicy.status.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(headersOf(byPolicy.denied_response?.headers)["www-authenticate"]).toBe(
      'Bearer realm="authplat", error="insufficient_scope", error_description="the access token lacks a required scope", scope="admin"',
    );
    expect(byRoute.status.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(byRoute.denied_response?.status.code).toBe("Forbidden");
    expect(headersOf(byRoute.denied_response?.headers)["www-authenticate"]).toContain(
      'scope="docs:read docs:admin"',
    );
  });

  it("fails closed with UNAVAILABLE when the authorizer's circuit is open", async () => {
    authorizerDown = true;
    const envoy = await envoyClient(ENVOY);
    const error: unknown = await envoy
      .check(
        checkRequest(
          { authorization: `Bearer ${await token()}` },
          { "authplat.action": "read", "authplat.resource": "document" },
        ),
      )
      .catch((thrown: unknown) => thrown);
    envoy.close();
    expect(error).toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: "the authorization service is unavailable",
    });
  });

  it("refuses a route that names an action without a resource rather than skip authorization", async () => {
    const envoy = await envoyClient(ENVOY);
    const error: unknown = await envoy
      .check(
        checkRequest({ authorization: `Bearer ${await token()}` }, { "authplat.action": "read" }),
      )
      .catch((thrown: unknown) => thrown);
    envoy.close();
    expect(error).toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details:
        "the route's context extensions must set both authplat.action and authplat.resource, or neither",
    });
    expect(lastAuthorization).toBeUndefined();
  });

  it("refuses callers the production rules do not list, the operator included", async () => {
    const operator = await envoyClient("operator");
    const error: unknown = await operator
      .check(checkRequest({}))
      .catch((thrown: unknown) => thrown);
    operator.close();
    expect(error).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
  });
});

describe("checkInputOf", () => {
  const http = { id: "r", method: "POST", path: "/p", host: "h", headers: {} };

  it("reads the authorization header from header_map when Envoy sends raw headers", () => {
    const input = checkInputOf({
      attributes: {
        request: {
          http: {
            ...http,
            headerMap: {
              headers: [
                { key: "Authorization", value: "", rawValue: Buffer.from("Bearer abc") },
                { key: "accept", value: "*/*", rawValue: new Uint8Array() },
              ],
            },
          },
        },
        contextExtensions: { "authplat.scopes": "a" },
      },
    });
    expect(input).toEqual({
      authorization: "Bearer abc",
      contextExtensions: { "authplat.scopes": "a" },
      method: "POST",
      path: "/p",
      host: "h",
    });
  });

  it("joins repeated raw authorization headers, so two tokens are never a choice", () => {
    const input = checkInputOf({
      attributes: {
        request: {
          http: {
            ...http,
            headerMap: {
              headers: [
                { key: "authorization", value: "Bearer a", rawValue: new Uint8Array() },
                { key: "authorization", value: "Bearer b", rawValue: new Uint8Array() },
              ],
            },
          },
        },
        contextExtensions: {},
      },
    });
    expect(input.authorization).toBe("Bearer a,Bearer b");
  });

  it("reads an empty request as one without credentials or context", () => {
    expect(checkInputOf({})).toEqual({
      authorization: undefined,
      contextExtensions: {},
      method: "",
      path: "",
      host: "",
    });
  });
});
