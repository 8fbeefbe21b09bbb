import { beforeAll, describe, expect, it } from "vitest";
import { KeyRing } from "../keys/key-ring.ts";
import { generateLocalSigner, type Signer } from "../keys/signer.ts";
import { IdTokenIssuer, leftHalfHash, type IdTokenRequest } from "./id-token.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
let signer: Signer;

beforeAll(async () => {
  signer = await generateLocalSigner("ES256");
});

const request: IdTokenRequest = {
  subject: "user-1",
  clientId: "web-app",
  nonce: "n-0S6_WzA2Mj",
  authTimeMs: NOW - 60_000,
  amr: ["pwd", "otp"],
  acr: "",
  sessionId: "",
  accessToken: "",
  code: "",
};

describe("leftHalfHash", () => {
  it("matches the at_hash example of OpenID Connect Core (RS256, so SHA-256)", () => {
    // OIDC Core §A.4 example: access_token jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y
    // has at_hash 77QmUPtjPfzWtF2AnpK9RQ.
    expect(leftHalfHash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "ES256")).toBe(
      "77QmUPtjPfzWtF2AnpK9RQ",
    );
  });
});

describe("IdTokenIssuer", () => {
  const issuer = () =>
    new IdTokenIssuer({
      keys: new KeyRing(signer),
      nowMs: () => NOW,
      issuer: "https://auth.local",
      ttlSeconds: 300,
    });

  it.each([
    [{ subject: "" }, "subject must be 1-255 printable characters"],
    [{ clientId: "a b" }, "client_id must be 1-255 printable characters"],
    [{ nonce: "line\nbreak" }, "nonce must be 1-512 printable characters"],
    [{ amr: ["PWD"] }, "amr must list at most 8 RFC 8176 values"],
    [{ authTimeMs: 0 }, "auth_time is required"],
    [{ authTimeMs: NOW + 3_600_000 }, "auth_time must not be in the future"],
  ])("rejects %j with INVALID_ARGUMENT", async (change, message) => {
    await expect(issuer().issue({ ...request, ...change })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message,
    });
  });
});
