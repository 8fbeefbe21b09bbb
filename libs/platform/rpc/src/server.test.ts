import { readFile, writeFile } from "node:fs/promises";
import { connect as tlsConnect } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { service as healthServiceDefinition } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IssueTokenPairRequestSchema, TokenService } from "@authplat/contracts/auth/token/v1";
import {
  contextFromIncoming,
  currentContext,
  runWithContext,
  type RequestContext,
} from "@authplat/correlation";
import { ServiceError } from "@authplat/errors";
import { createLogger, PortInUseError } from "@authplat/observability";
import { parseSpiffeId } from "@authplat/spiffe";
import { createCa, issueSvid } from "@authplat/spiffe/dev-pki";
import { createTestPki, type TestPki } from "@authplat/spiffe/test-pki";
import { create, createFileRegistry, toBinary } from "@bufbuild/protobuf";
import { createRpcClient } from "./client.ts";
import { staticAccessRules } from "./access-rules.ts";
import { defineService, methodPath, type CallContext } from "./handlers.ts";
import { startRpcServer, type RpcServer, type RpcServerOptions } from "./server.ts";
import { reflect } from "./reflection-client.ts";
import { RemoteCallError } from "./status-mapping.ts";
import { rawCredentials, rawUnaryCall } from "./test-support.ts";
import { unimplementedHandlers } from "./unimplemented.ts";

const logger = createLogger({ service: "rpc-test", level: "silent" });
let pki: TestPki;
let server: RpcServer;
let release: (() => void) | undefined;
const seen: CallContext[] = [];
const seenRequestContexts: (RequestContext | undefined)[] = [];

function registration() {
  return defineService(TokenService, {
    ...unimplementedHandlers(TokenService),
    async issueTokenPair(request, context) {
      seen.push(context);
      seenRequestContexts.push(currentContext());
      if (request.subject === "service-error") {
        throw new ServiceError("UNAVAILABLE", "store down", {
          retryAfterMs: 750,
          cause: new Error("10.0.0.7 refused"),
        });
      }
      if (request.subject === "crash")
        throw new Error("secret detail: connection string postgres://u:p@db");
      if (request.subject === "slow") await new Promise<void>((resolve) => (release = resolve));
      return { accessToken: `for ${request.subject}`, tokenType: "Bearer" };
    },
  });
}

/** `allowed` may call every method of the token service but IssueIdToken, which nobody may. */
function rulesFor(allowed: readonly string[]) {
  return staticAccessRules({
    ...Object.fromEntries(
      TokenService.methods.map((method) => [methodPath(TokenService, method.name), allowed]),
    ),
    [methodPath(TokenService, "IssueIdToken")]: [],
  });
}

async function start(allowed: readonly string[]): Promise<RpcServer> {
  return startRpcServer({
    name: "token",
    host: "127.0.0.1",
    port: 0,
    tls: { ...pki.files("token"), refreshIntervalMs: 100 },
    services: [registration()],
    accessRules: rulesFor(allowed),
    logger,
    shutdownGraceMs: 2_000,
  });
}

describe("a taken port", () => {
  it("fails the start with PortInUseError naming GRPC_PORT", async () => {
    const first = await start([]);
    try {
      const error: unknown = await startRpcServer({
        name: "token",
        host: "127.0.0.1",
        port: first.port,
        tls: pki.files("token"),
        services: [registration()],
        accessRules: rulesFor([]),
        logger,
        shutdownGraceMs: 1_000,
      }).catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(PortInUseError);
      expect((error as Error).message).toContain(
        `GRPC_PORT: 127.0.0.1:${first.port} is already in use by another process`,
      );
    } finally {
      await first.shutdown();
    }
  });
});

function client(caller: string, target = server) {
  return createRpcClient(TokenService, {
    address: `127.0.0.1:${target.port}`,
    tls: pki.files(caller),
    serverId: parseSpiffeId(pki.idOf("token")),
  });
}

const ISSUE_TOKEN_PAIR = "/auth.token.v1.TokenService/IssueTokenPair";
const issueRequest = toBinary(
  IssueTokenPairRequestSchema,
  create(IssueTokenPairRequestSchema, { subject: "x" }),
);

/** IssueTokenPair with bare grpc-js and the given client certificate (or none). */
async function rawIssue(client?: { certPem: Buffer; keyPem: Buffer }) {
  const bundle = await readFile(pki.files("operator").bundleFile);
  return rawUnaryCall({
    port: server.port,
    credentials: rawCredentials(bundle, client),
    path: ISSUE_TOKEN_PAIR,
    request: issueRequest,
    timeoutMs: 3_000,
  });
}

async function pemOf(files: { certFile: string; keyFile: string }) {
  return { certPem: await readFile(files.certFile), keyPem: await readFile(files.keyFile) };
}

/**
 * Every string the server sent with a failure: status details and each trailer value (binary
 * ones decoded as UTF-8). `JSON.stringify` of a grpc-js Metadata prints `{}`, so it is no use.
 */
function everythingSent(failure: RemoteCallError): string {
  const status = failure.cause as grpc.StatusObject;
  const values = Object.values(status.metadata.getMap()).map((value) =>
    typeof value === "string" ? value : Buffer.from(value).toString("utf8"),
  );
  return [status.details, ...values].join("\n");
}

async function healthStatus(target: RpcServer, name = ""): Promise<string> {
  const Health = grpc.makeGenericClientConstructor(
    healthServiceDefinition as grpc.ServiceDefinition,
    "Health",
  );
  const { credentials } = await import("./credentials.ts").then((m) =>
    m.clientCredentials(pki.files("operator"), parseSpiffeId(pki.idOf("token"))),
  );
  const health = new Health(`127.0.0.1:${target.port}`, credentials) as unknown as {
    check(req: { service: string }, cb: (e: Error | null, r: { status: string }) => void): void;
    close(): void;
  };
  try {
    return await new Promise((resolve, reject) =>
      health.check({ service: name }, (error, reply) =>
        error ? reject(error) : resolve(reply.status),
      ),
    );
  } finally {
    health.close();
  }
}

beforeAll(async () => {
  pki = await createTestPki();
  server = await start([pki.idOf("auth-edge"), pki.idOf("operator")]);
  server.markServing();
});

afterAll(async () => {
  await server?.shutdown();
  await pki?.cleanup();
});

describe("mutual TLS", () => {
  it("serves a caller whose certificate chains to the bundle and who is on the allowlist", async () => {
    const edge = await client("auth-edge");
    const reply = await edge.issueTokenPair({ subject: "alice" });
    edge.close();
    expect(reply.accessToken).toBe("for alice");
    expect(seen.at(-1)?.caller.toString()).toBe("spiffe://auth.local/ns/auth/sa/auth-edge");
  });

  it("serves the same raw call when it presents a valid SVID (control for the refusals below)", async () => {
    const outcome = await rawIssue(await pemOf(pki.files("operator")));
    expect(outcome.code).toBe(grpc.status.OK);
    expect(outcome.response).toBeDefined();
  });

  it("refuses a client that presents no certificate", async () => {
    const outcome = await rawIssue();
    expect(outcome.code).toBe(grpc.status.UNAVAILABLE);
    expect(outcome.response).toBeUndefined();
  });

  it("refuses a client whose certificate comes from a foreign CA", async () => {
    const outcome = await rawIssue(await pemOf(await pki.foreign("operator")));
    expect(outcome.code).toBe(grpc.status.UNAVAILABLE);
    expect(outcome.response).toBeUndefined();
  });

  it("fails the call when the server presents another SPIFFE ID than expected", async () => {
    const expecting = (name: string) =>
      createRpcClient(TokenService, {
        address: `127.0.0.1:${server.port}`,
        tls: pki.files("operator"),
        serverId: parseSpiffeId(pki.idOf(name)),
        defaultTimeoutMs: 3_000,
      });
    // Control: the same client expecting the right ID is served.
    const right = await expecting("token");
    await expect(right.issueTokenPair({ subject: "alice" })).resolves.toMatchObject({
      accessToken: "for alice",
    });
    right.close();
    const wrong = await expecting("mfa");
    const failure = await wrong.issueTokenPair({ subject: "alice" }).catch((e: unknown) => e);
    wrong.close();
    expect(failure).toBeInstanceOf(RemoteCallError);
    expect(failure).toMatchObject({
      remoteCode: "UNAVAILABLE",
      grpcCode: grpc.status.UNAVAILABLE,
      message: expect.stringContaining(
        `server presented ${pki.idOf("token")}, expected ${pki.idOf("mfa")}`,
      ),
    });
  });
});

describe("caller allowlists", () => {
  it("answers PERMISSION_DENIED with CALLER_NOT_ALLOWED to a trusted workload not on the list", async () => {
    const mfa = await client("mfa");
    const failure = await mfa.issueTokenPair({ subject: "alice" }).catch((e: unknown) => e);
    mfa.close();
    expect(failure).toBeInstanceOf(RemoteCallError);
    expect(failure).toMatchObject({
      remoteCode: "CALLER_NOT_ALLOWED",
      grpcCode: grpc.status.PERMISSION_DENIED,
      message: "spiffe://auth.local/ns/auth/sa/mfa may not call IssueTokenPair",
      // What this process would answer if it let the error escape: not the downstream's verdict.
      code: "INTERNAL",
    });
  });

  it("lets nobody call a method whose allowlist is empty", async () => {
    const operator = await client("operator");
    await expect(operator.issueIdToken({})).rejects.toMatchObject({
      remoteCode: "CALLER_NOT_ALLOWED",
    });
    operator.close();
  });

  it("come only from accessRules: a server without them does not start", async () => {
    const withoutRules = {
      name: "token",
      host: "127.0.0.1",
      port: 0,
      tls: pki.files("token"),
      services: [registration()],
      logger,
      shutdownGraceMs: 1_000,
    };
    // @ts-expect-error accessRules is required
    const missing: RpcServerOptions = withoutRules;
    await expect(startRpcServer(missing)).rejects.toThrow(/^accessRules is required: /);
    // Nor does one given per-method lists in the shape registrations used to carry.
    const perMethod = { ...withoutRules, accessRules: { issueTokenPair: [pki.idOf("operator")] } };
    // @ts-expect-error not an AccessRuleSet
    const misshapen: RpcServerOptions = perMethod;
    await expect(startRpcServer(misshapen)).rejects.toThrow(/^accessRules is required: /);
    // A registration carries handlers only: no third argument with callers.
    // @ts-expect-error defineService takes the service and its handlers
    defineService(TokenService, unimplementedHandlers(TokenService), { issueTokenPair: [] });
  });
});

describe("the error model", () => {
  it("sends a ServiceError's code, message, correlation ID and retry guidance, never its cause", async () => {
    const operator = await client("operator");
    const context = contextFromIncoming({ correlationId: "corr-service-error" });
    const failure = (await runWithContext(context, () =>
      operator.issueTokenPair({ subject: "service-error" }).catch((e: unknown) => e),
    )) as RemoteCallError;
    operator.close();
    expect(failure.grpcCode).toBe(grpc.status.UNAVAILABLE);
    expect(failure.remoteCode).toBe("UNAVAILABLE");
    expect(failure.code).toBe("UNAVAILABLE");
    expect(failure.message).toBe("store down");
    expect(failure.retryAfterMs).toBe(750);
    expect(failure.correlationId).toBe("corr-service-error");
    expect(everythingSent(failure)).not.toContain("10.0.0.7");
  });

  it("turns anything else into INTERNAL 'internal error' without leaking details", async () => {
    const operator = await client("operator");
    const failure = (await operator
      .issueTokenPair({ subject: "crash" })
      .catch((e: unknown) => e)) as RemoteCallError;
    operator.close();
    expect(failure.remoteCode).toBe("INTERNAL");
    expect(failure.message).toBe("internal error");
    expect(everythingSent(failure)).toContain("internal error");
    expect(everythingSent(failure)).not.toContain("postgres://");
  });

  it("answers UNIMPLEMENTED for an RPC a later release serves", async () => {
    const operator = await client("operator");
    await expect(operator.refreshTokens({})).rejects.toMatchObject({
      remoteCode: "UNIMPLEMENTED",
      grpcCode: grpc.status.UNIMPLEMENTED,
      message: "RefreshTokens is not available in this release",
    });
    operator.close();
  });

  it("answers INVALID_ARGUMENT when the request bytes are not the message", async () => {
    const bundle = await readFile(pki.files("operator").bundleFile);
    const outcome = await rawUnaryCall({
      port: server.port,
      credentials: rawCredentials(bundle, await pemOf(pki.files("operator"))),
      path: ISSUE_TOKEN_PAIR,
      request: Buffer.from([0x0a, 0xff, 0xff]),
    });
    expect(outcome.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(outcome.details).toBe("the request message could not be decoded");
    expect(outcome.trailer.get("authplat-error-code")).toEqual(["INVALID_ARGUMENT"]);
  });
});

describe("correlation", () => {
  it("carries the caller's correlation ID and trace into the handler, with a new span", async () => {
    const operator = await client("operator");
    const context = contextFromIncoming({
      correlationId: "corr-propagated",
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    });
    await runWithContext(context, () => operator.issueTokenPair({ subject: "trace" }));
    operator.close();
    const handled = seen.at(-1)!;
    expect(handled.correlationId).toBe("corr-propagated");
    // W3C trace context: same trace, a new span of the server's own, flags kept.
    const serverContext = seenRequestContexts.at(-1);
    expect(serverContext).toMatchObject({
      correlationId: "corr-propagated",
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      traceFlags: "01",
    });
    expect(serverContext?.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect([context.spanId, "00f067aa0ba902b7"]).not.toContain(serverContext?.spanId);
  });

  it("mints a correlation ID for a call that arrives without one", async () => {
    const operator = await client("operator");
    await operator.issueTokenPair({ subject: "minted" });
    operator.close();
    expect(seen.at(-1)!.correlationId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("health and reflection", () => {
  it("reports NOT_SERVING until marked ready, then SERVING for the server and each service", async () => {
    const fresh = await start([pki.idOf("operator")]);
    expect(await healthStatus(fresh)).toBe("NOT_SERVING");
    fresh.markServing();
    expect(await healthStatus(fresh)).toBe("SERVING");
    expect(await healthStatus(fresh, "auth.token.v1.TokenService")).toBe("SERVING");
    await fresh.shutdown();
  });

  it("serves reflection: the services and the descriptors of each, with their dependencies", async () => {
    const summary = await reflect(
      `127.0.0.1:${server.port}`,
      pki.files("operator"),
      parseSpiffeId(pki.idOf("token")),
    );
    expect([...summary.services].sort()).toEqual([
      "auth.token.v1.TokenService",
      "grpc.health.v1.Health",
    ]);
    // token.proto plus everything it imports, so a client can build every message.
    const files = summary.descriptorFiles["auth.token.v1.TokenService"] ?? [];
    expect(files.map((file) => file.name)).toEqual([
      "auth/token/v1/token.proto",
      "auth/common/v1/authentication.proto",
      "google/protobuf/duration.proto",
      "google/protobuf/timestamp.proto",
    ]);
    expect(summary.descriptorFiles["grpc.health.v1.Health"]?.map((file) => file.name)).toEqual([
      "grpc_health_v1.proto",
    ]);
    // What grpcurl does next: build the message types from those descriptors alone.
    const registry = createFileRegistry(files[0]!, (name) =>
      files.find((file) => file.name === name),
    );
    const request = registry.getMessage("auth.token.v1.IssueTokenPairRequest");
    expect(request?.fields.map((field) => field.name)).toEqual([
      "subject",
      "client_id",
      "audience",
      "scopes",
      "session_id",
      "roles",
      "tenant",
      "acr",
      "authentication_methods",
      "auth_time",
    ]);
    expect(
      registry.getMessage("auth.token.v1.GetJwksResponse")?.field["maxAge"]?.message?.typeName,
    ).toBe("google.protobuf.Duration");
  });
});

describe("graceful shutdown", () => {
  it("lets an in-flight call finish, then refuses new calls", async () => {
    const draining = await start([pki.idOf("operator")]);
    draining.markServing();
    const operator = await client("operator", draining);
    const inFlight = operator.issueTokenPair({ subject: "slow" });
    // Wait until the handler is running, then start the shutdown.
    const deadline = Date.now() + 5_000;
    while (release === undefined && Date.now() < deadline)
      await new Promise((r) => setImmediate(r));
    const stopped = draining.shutdown();
    release!();
    release = undefined;
    await expect(inFlight).resolves.toMatchObject({ accessToken: "for slow" });
    await stopped;
    await expect(
      operator.issueTokenPair({ subject: "late" }, { timeoutMs: 1_000 }),
    ).rejects.toMatchObject({
      code: expect.stringMatching(/UNAVAILABLE|DEADLINE_EXCEEDED/),
    });
    operator.close();
  });
});

describe("SVID rotation", () => {
  it("serves a rotated certificate from the same files without a restart", async () => {
    const rotating = await start([pki.idOf("operator")]);
    const files = pki.files("token");
    const operator = pki.files("operator");
    const [operatorCert, operatorKey] = [
      await readFile(operator.certFile),
      await readFile(operator.keyFile),
    ];
    const serialOf = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({
          host: "127.0.0.1",
          port: rotating.port,
          ALPNProtocols: ["h2"],
          cert: operatorCert,
          key: operatorKey,
          // Only the serial is read here; chain and identity checks are tested above.
          rejectUnauthorized: false,
        });
        socket.once("secureConnect", () => {
          resolve(socket.getPeerCertificate().serialNumber);
          socket.destroy();
        });
        socket.once("error", reject);
      });
    const before = await serialOf();
    const ca = await createCa({ trustDomain: "auth.local", validityMs: 3_600_000 });
    const renewed = await issueSvid(ca, { spiffeId: pki.idOf("token"), validityMs: 3_600_000 });
    const [oldCert, oldKey] = [await readFile(files.certFile), await readFile(files.keyFile)];
    await writeFile(files.keyFile, renewed.keyPem);
    await writeFile(files.certFile, renewed.certPem);
    try {
      let after = before;
      const deadline = Date.now() + 10_000;
      while (after === before && Date.now() < deadline) after = await serialOf();
      expect(after).not.toBe(before);
    } finally {
      await writeFile(files.certFile, oldCert);
      await writeFile(files.keyFile, oldKey);
      await rotating.shutdown();
    }
  });
});
