import { readFile } from "node:fs/promises";
import { connect as tlsConnect } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthEdgeService, RejectionReason } from "@authplat/contracts/auth/auth_edge/v1";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { SessionService } from "@authplat/contracts/auth/session_identity/v1/session";
import { createRpcClient, reflect } from "@authplat/rpc";
import { parseSpiffeId } from "@authplat/spiffe";
import type { TestPki } from "@authplat/spiffe/test-pki";
import { probeHealth } from "@authplat/tools/health-probe";
import { PLATFORM_SERVICES } from "@authplat/tools/platform-services";
import { spawnService } from "@authplat/tools/service-process";
import { ROOT, ServiceFleet } from "./service-fleet.ts";

let fleet: ServiceFleet;
let pki: TestPki;
const ports = { get: (name: string) => fleet.port(name) };

function operatorClient<S extends typeof TokenService | typeof AuthEdgeService>(
  service: S,
  name: string,
) {
  return fleet.client(service, name);
}

beforeAll(async () => {
  fleet = await ServiceFleet.create();
  pki = fleet.pki;
  // Token first: auth-edge waits for its JWKS before reporting SERVING.
  await fleet.start("token");
  await Promise.all([
    fleet.start("auth-edge", { TOKEN_SERVICE_ADDR: fleet.address("token") }),
    fleet.start("session-identity"),
    fleet.start("iam-policy"),
    fleet.start("mfa"),
  ]);
}, 60_000);

afterAll(async () => {
  await fleet?.stopAll();
});

describe("the platform as five processes", () => {
  it("brings every service to SERVING over mTLS, presenting its own SPIFFE ID", async () => {
    const operator = pki.files("operator");
    const [cert, key, ca] = await Promise.all([
      readFile(operator.certFile),
      readFile(operator.keyFile),
      readFile(operator.bundleFile),
    ]);
    for (const { name } of PLATFORM_SERVICES) {
      const result = await probeHealth({
        addr: `127.0.0.1:${ports.get(name)}`,
        cert,
        key,
        ca,
        expectSpiffeId: pki.idOf(name),
      });
      expect({ name, result }).toEqual({ name, result: { ok: true, status: "SERVING" } });
      const impostor = await probeHealth({
        addr: `127.0.0.1:${ports.get(name)}`,
        cert,
        key,
        ca,
        expectSpiffeId: pki.idOf("someone-else"),
      });
      expect(impostor).toMatchObject({
        ok: false,
        reason: expect.stringContaining("someone-else"),
      });
    }
  });

  it("presents dev SVIDs that host-checking tools such as grpcurl accept at localhost and 127.0.0.1", async () => {
    const operator = pki.files("operator");
    const [cert, key, ca] = await Promise.all([
      readFile(operator.certFile),
      readFile(operator.keyFile),
      readFile(operator.bundleFile),
    ]);
    for (const { name } of PLATFORM_SERVICES) {
      for (const host of ["localhost", "127.0.0.1"]) {
        // Node's default checkServerIdentity checks the DNS or IP SANs against `host`.
        const outcome = await new Promise<string>((resolveOutcome) => {
          const socket = tlsConnect(
            {
              host,
              port: ports.get(name)!,
              ca,
              cert,
              key,
              ALPNProtocols: ["h2"],
              ...(host === "localhost" ? { servername: host } : {}),
            },
            () => {
              resolveOutcome(socket.authorized ? `ok ${socket.alpnProtocol}` : "unauthorized");
              socket.end();
            },
          );
          socket.once("error", (error) => resolveOutcome(error.message));
        });
        expect({ name, host, outcome }).toEqual({ name, host, outcome: "ok h2" });
      }
    }
  });

  it("serves reflection on every service, with complete descriptors", async () => {
    const expected: Record<string, string[]> = {
      "auth-edge": ["auth.auth_edge.v1.AuthEdgeService", "envoy.service.auth.v3.Authorization"],
      token: ["auth.token.v1.TokenService"],
      "session-identity": [
        "auth.session_identity.v1.SessionService",
        "auth.session_identity.v1.UserService",
        "auth.session_identity.v1.OAuthService",
      ],
      "iam-policy": ["auth.iam_policy.v1.IamPolicyService"],
      mfa: ["auth.mfa.v1.MfaService"],
    };
    for (const { name } of PLATFORM_SERVICES) {
      const summary = await reflect(
        `127.0.0.1:${ports.get(name)}`,
        pki.files("operator"),
        parseSpiffeId(pki.idOf(name)),
      );
      expect([...summary.services].sort()).toEqual(
        [...expected[name]!, "grpc.health.v1.Health"].sort(),
      );
      for (const service of expected[name]!) {
        expect(summary.descriptorFiles[service]?.length).toBeGreaterThan(0);
      }
    }
  });

  it("issues a token at token and validates it at auth-edge; a tampered copy fails with BAD_SIGNATURE", async () => {
    const token = await operatorClient(TokenService, "token");
    const edge = await operatorClient(AuthEdgeService, "auth-edge");
    const pair = await token.issueTokenPair({
      subject: "user-42",
      clientId: "e2e-client",
      audience: ["https://api.auth.local"],
      scopes: ["orders:read"],
      sessionId: "sess-1",
    });
    const valid = await edge.validateToken({
      token: pair.accessToken,
      requiredScopes: ["orders:read"],
    });
    expect(valid.result).toMatchObject({
      case: "claims",
      value: {
        subject: "user-42",
        clientId: "e2e-client",
        tokenId: pair.tokenId,
        sessionId: "sess-1",
        scopes: ["orders:read"],
        callerSpiffeId: pki.idOf("operator"),
      },
    });
    const [header, payload, signature] = pair.accessToken.split(".");
    const forged = Buffer.from(payload!, "base64url").toString().replace("user-42", "user-43");
    const tampered = `${header}.${Buffer.from(forged).toString("base64url")}.${signature}`;
    const rejected = await edge.validateToken({ token: tampered });
    expect(rejected.result).toMatchObject({
      case: "rejection",
      value: { reason: RejectionReason.BAD_SIGNATURE },
    });
    const scopeMissing = await edge.validateToken({
      token: pair.accessToken,
      requiredScopes: ["orders:write"],
    });
    expect(scopeMissing.result).toMatchObject({
      case: "rejection",
      value: { reason: RejectionReason.INSUFFICIENT_SCOPE },
    });
    token.close();
    edge.close();
  });

  it("answers RPCs of later releases with UNIMPLEMENTED", async () => {
    const sessions = await createRpcClient(SessionService, {
      address: `127.0.0.1:${ports.get("session-identity")}`,
      tls: pki.files("operator"),
      serverId: parseSpiffeId(pki.idOf("session-identity")),
    });
    await expect(sessions.getSession({})).rejects.toMatchObject({
      remoteCode: "UNIMPLEMENTED",
      grpcCode: grpc.status.UNIMPLEMENTED,
    });
    sessions.close();
  });

  it("refuses a client without a certificate, and one with a certificate from a foreign CA", async () => {
    const bundle = await readFile(pki.files("operator").bundleFile);
    const foreign = await pki.foreign("operator");
    const credentials = [
      grpc.credentials.createSsl(bundle, null, null, { checkServerIdentity: () => undefined }),
      grpc.credentials.createSsl(
        bundle,
        await readFile(foreign.keyFile),
        await readFile(foreign.certFile),
        {
          checkServerIdentity: () => undefined,
        },
      ),
    ];
    for (const { name } of PLATFORM_SERVICES) {
      for (const credential of credentials) {
        const channel = new grpc.Client(`127.0.0.1:${ports.get(name)}`, credential);
        const code = await new Promise<number>((resolveCode) =>
          channel.makeUnaryRequest(
            "/grpc.health.v1.Health/Check",
            (value: Buffer) => value,
            (value: Buffer) => value,
            Buffer.alloc(0),
            new grpc.Metadata(),
            { deadline: Date.now() + 3_000 },
            (error) => resolveCode(error ? error.code : grpc.status.OK),
          ),
        );
        channel.close();
        expect({ name, code }).toEqual({ name, code: grpc.status.UNAVAILABLE });
      }
    }
  });

  it("refuses the operator's IssueTokenPair in the production profile (it may still read the JWKS)", async () => {
    const lines: string[] = [];
    const production = spawnService({
      root: ROOT,
      name: "token",
      env: fleet.envFor("token", { ACCESS_PROFILE: "production" }),
      onLine: (line) => lines.push(line),
    });
    try {
      const { port } = await production.serving.catch((error: unknown) => {
        throw new Error(`${String(error)}\n${lines.join("\n")}`);
      });
      await fleet.untilServing("token", port);
      const token = await createRpcClient(TokenService, {
        address: `127.0.0.1:${port}`,
        tls: pki.files("operator"),
        serverId: parseSpiffeId(pki.idOf("token")),
      });
      await expect(
        token.issueTokenPair({
          subject: "user-1",
          clientId: "cli",
          audience: ["https://api.auth.local"],
        }),
      ).rejects.toMatchObject({
        grpcCode: grpc.status.PERMISSION_DENIED,
        remoteCode: "CALLER_NOT_ALLOWED",
      });
      expect((await token.getJwks({})).keys.length).toBeGreaterThan(0);
      token.close();
    } finally {
      expect(await production.stop()).toBe(0);
    }
  });

  it("stops a misconfigured service at once, naming the bad variable", async () => {
    const lines: string[] = [];
    const child = spawnService({
      root: ROOT,
      name: "token",
      env: fleet.envFor("token", { SIGNING_ALG: "HS256" }),
      onLine: (line) => lines.push(line),
    });
    expect(await child.exited).toBe(78);
    expect(lines.join("\n")).toContain("SIGNING_ALG: must be ES256 or EdDSA");
  });

  it("drains and exits 0 on SIGTERM", async () => {
    expect(await fleet.process("mfa").stop()).toBe(0);
    expect(fleet.output).toContainEqual(expect.stringMatching(/^mfa \| .*"msg":"stopped"/));
  });
});
