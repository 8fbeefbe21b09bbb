import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyStatus, TokenService } from "@authplat/contracts/auth/token/v1";
import { createTestPki, startTestServer, testClient, type TestPki } from "@authplat/testing";
import type { RpcServer } from "@authplat/rpc";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { tokenServiceRegistration } from "./handlers.ts";
import { KeyRing } from "./keys/key-ring.ts";
import { generateLocalSigner } from "./keys/signer.ts";
import { MemoryRefreshTokenStore } from "./tokens/memory-refresh-token-store.ts";
import { TokenIssuer } from "./tokens/token-issuer.ts";

let pki: TestPki;
let server: RpcServer;
let keys: KeyRing;

beforeAll(async () => {
  pki = await createTestPki();
  keys = new KeyRing(await generateLocalSigner("EdDSA"));
  const issuer = new TokenIssuer({
    keys,
    refreshTokens: new MemoryRefreshTokenStore(() => Date.now()),
    nowMs: () => Date.now(),
    issuer: "https://auth.local",
    accessTokenTtlSeconds: 600,
    refreshTokenTtlSeconds: 3_600,
  });
  server = await startTestServer(pki, "token", [
    tokenServiceRegistration({
      issuer,
      keys,
      allow: {
        issuers: [pki.idOf("session-identity")],
        jwksReaders: [pki.idOf("auth-edge")],
        revokers: [pki.idOf("session-identity")],
      },
    }),
  ]);
});

afterAll(async () => {
  await server?.shutdown();
  await pki?.cleanup();
});

describe("TokenService over mTLS", () => {
  it("issues a token pair to an allowed caller, with timestamps and a Bearer type", async () => {
    const client = await testClient(pki, TokenService, server, "session-identity");
    const before = Date.now();
    const reply = await client.issueTokenPair({
      subject: "user-7",
      clientId: "cli",
      audience: ["https://api.auth.local"],
      scopes: ["a", "b"],
    });
    client.close();
    expect(reply.tokenType).toBe("Bearer");
    expect(reply.accessToken.split(".")).toHaveLength(3);
    expect(reply.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(reply.scopes).toEqual(["a", "b"]);
    const expiresAt = timestampMs(reply.accessTokenExpiresAt!);
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 600_000);
    expect(timestampMs(reply.refreshTokenExpiresAt!)).toBeGreaterThan(expiresAt);
  });

  it("publishes the active key in the JWKS with a cache lifetime", async () => {
    const client = await testClient(pki, TokenService, server, "auth-edge");
    const reply = await client.getJwks({});
    client.close();
    expect(reply.keys).toHaveLength(1);
    expect(reply.keys[0]).toMatchObject({
      kty: "OKP",
      crv: "Ed25519",
      alg: "EdDSA",
      use: "sig",
      kid: keys.active.keyId,
      y: "",
      status: KeyStatus.ACTIVE,
    });
    expect(reply.maxAge?.seconds).toBe(300n);
  });

  it("reports a bad request as INVALID_ARGUMENT through the shared error model", async () => {
    const client = await testClient(pki, TokenService, server, "session-identity");
    await expect(
      client.issueTokenPair({ subject: "u", clientId: "c", audience: [] }),
    ).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      grpcCode: grpc.status.INVALID_ARGUMENT,
      message: "audience must list 1-16 values",
    });
    client.close();
  });

  it("refuses IssueTokenPair to a workload that may only read the JWKS", async () => {
    const client = await testClient(pki, TokenService, server, "auth-edge");
    await expect(
      client.issueTokenPair({ subject: "u", clientId: "c", audience: ["x"] }),
    ).rejects.toMatchObject({
      code: "CALLER_NOT_ALLOWED",
      grpcCode: grpc.status.PERMISSION_DENIED,
    });
    client.close();
  });
});
