import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AuthEdgeService, RejectionReason } from "@authplat/contracts/auth/auth_edge/v1";
import { RevocationReason, TokenService } from "@authplat/contracts/auth/token/v1";
import { RemoteCallError, type RpcClient } from "@authplat/rpc";
import type { ServiceProcess } from "@authplat/tools/service-process";
import { ServiceFleet } from "./service-fleet.ts";

// Revocation at the edge with real processes: token's WatchRevocations feed, auth-edge's
// revocation set, and the fail-closed answer once the feed has been gone too long.

// Short, so the "token gone too long" case takes about a second, not the default 30.
const MAX_STALENESS_MS = 1_000;
let fleet: ServiceFleet;
let dataDir: string;
let token: ServiceProcess;
let tokenPort: number;
let tokenClient: RpcClient<typeof TokenService>;

async function startEdge(): Promise<RpcClient<typeof AuthEdgeService>> {
  const { port } = await fleet.start("auth-edge", {
    TOKEN_SERVICE_ADDR: `127.0.0.1:${tokenPort}`,
    REVOCATION_MAX_STALENESS_MS: String(MAX_STALENESS_MS),
  });
  return fleet.client(AuthEdgeService, "auth-edge", "operator", port);
}

const issue = () =>
  tokenClient.issueTokenPair({
    subject: "user-1",
    clientId: "web",
    audience: ["https://api.auth.local"],
    scopes: ["read"],
    sessionId: "session-1",
  });

beforeAll(async () => {
  fleet = await ServiceFleet.create();
  dataDir = await mkdtemp(join(tmpdir(), "revocation-e2e-"));
  ({ child: token, port: tokenPort } = await fleet.start("token", { TOKEN_DATA_DIR: dataDir }));
  tokenClient = await fleet.client(TokenService, "token");
}, 60_000);

afterAll(async () => {
  await fleet?.stopAll();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

describe("revocation at the edge, token and auth-edge as processes", () => {
  it("rejects a token revoked at token as REVOKED at a running edge and at an edge started later; introspection says inactive", async () => {
    const edge = await startEdge();
    const pair = await issue();
    const other = await issue();
    expect((await edge.validateToken({ token: pair.accessToken })).result.case).toBe("claims");
    const active = await edge.introspectToken({ token: pair.accessToken });
    expect(active).toMatchObject({
      active: true,
      claims: { tokenId: pair.tokenId, subject: "user-1", clientId: "web", sessionId: "session-1" },
    });

    await tokenClient.revokeToken({
      target: { case: "tokenId", value: pair.tokenId },
      reason: RevocationReason.ADMINISTRATIVE,
    });
    await vi.waitFor(
      async () => {
        const reply = await edge.validateToken({ token: pair.accessToken });
        expect(reply.result).toMatchObject({
          case: "rejection",
          value: { reason: RejectionReason.REVOKED, message: "the token has been revoked" },
        });
      },
      { timeout: 5_000, interval: 10 },
    );
    const inactive = await edge.introspectToken({ token: pair.accessToken });
    expect(inactive.active).toBe(false);
    expect(inactive.claims).toBeUndefined();
    // Another token of the same subject is untouched.
    expect((await edge.validateToken({ token: other.accessToken })).result.case).toBe("claims");
    // Revoking one access token by jti leaves the families alone: the refresh token of the
    // other pair is still active (token answers for it).
    expect(await edge.introspectToken({ token: other.refreshToken })).toMatchObject({
      active: true,
      tokenType: "refresh_token",
    });

    // An edge that starts after the revocation learns it from the snapshot.
    const late = await startEdge();
    expect((await late.validateToken({ token: pair.accessToken })).result).toMatchObject({
      case: "rejection",
      value: { reason: RejectionReason.REVOKED },
    });
    expect((await late.validateToken({ token: other.accessToken })).result.case).toBe("claims");
    edge.close();
    late.close();
  }, 60_000);

  it("fails closed with UNAVAILABLE and retry pushback once token has been gone longer than the staleness bound", async () => {
    const edge = await startEdge();
    const pair = await issue();
    expect((await edge.validateToken({ token: pair.accessToken })).result.case).toBe("claims");
    await token.stop();
    let refusal: unknown;
    await vi.waitFor(
      async () => {
        refusal = await edge.validateToken({ token: pair.accessToken }).then(
          () => undefined,
          (error: unknown) => error,
        );
        expect(refusal).toBeInstanceOf(RemoteCallError);
      },
      { timeout: 15_000, interval: 50 },
    );
    expect(refusal).toMatchObject({ grpcCode: grpc.status.UNAVAILABLE, remoteCode: "UNAVAILABLE" });
    expect((refusal as RemoteCallError).retryAfterMs).toBeGreaterThan(0);
    await expect(edge.introspectToken({ token: pair.accessToken })).rejects.toMatchObject({
      grpcCode: grpc.status.UNAVAILABLE,
    });
    edge.close();
  }, 60_000);
});
