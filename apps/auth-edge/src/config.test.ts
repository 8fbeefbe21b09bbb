import { describe, expect, it } from "vitest";
import { ConfigError } from "@authplat/config";
import { loadAuthEdgeConfig } from "./config.ts";

describe("loadAuthEdgeConfig", () => {
  it("defaults to the local token service, both algorithms, a one-hour JWKS staleness limit and the operator-only allowlist", () => {
    const config = loadAuthEdgeConfig({});
    expect(config).toMatchObject({
      GRPC_PORT: 50051,
      TOKEN_SERVICE_ADDR: "127.0.0.1:50052",
      JWT_ALGORITHMS: ["ES256", "EdDSA"],
      JWT_AUDIENCE: ["https://api.auth.local"],
      SVID_CERT_FILE: ".dev/pki/auth-edge.pem",
      JWKS_REFRESH_INTERVAL_MS: 300_000,
      JWKS_MIN_REFETCH_INTERVAL_MS: 5_000,
      JWKS_MAX_STALENESS_MS: 3_600_000,
      JWT_SIGNATURE_PLACEMENT: "auto",
      IAM_POLICY_ADDR: "127.0.0.1:50054",
      IAM_POLICY_BREAKER_FAILURES: 5,
      IAM_POLICY_BREAKER_OPEN_MS: 5_000,
    });
    expect(config.ALLOWED_CALLERS).toBeUndefined();
  });

  it("accepts the lowest JWKS refetch interval, one second", () => {
    expect(loadAuthEdgeConfig({ JWKS_MIN_REFETCH_INTERVAL_MS: "1000" })).toMatchObject({
      JWKS_MIN_REFETCH_INTERVAL_MS: 1_000,
    });
  });

  it("parses comma-separated SPIFFE IDs of allowed callers", () => {
    const config = loadAuthEdgeConfig({
      ALLOWED_CALLERS:
        "spiffe://auth.local/ns/edge/sa/gateway, spiffe://auth.local/ns/auth/sa/operator",
    });
    expect(config.ALLOWED_CALLERS).toEqual([
      "spiffe://auth.local/ns/edge/sa/gateway",
      "spiffe://auth.local/ns/auth/sa/operator",
    ]);
  });

  it.each([
    ["JWT_ALGORITHMS", "ES256,HS256", "JWT_ALGORITHMS.1: must be ES256 or EdDSA"],
    ["ALLOWED_CALLERS", "spiffe://auth.local/", "ALLOWED_CALLERS.0: must be a SPIFFE ID"],
    [
      "TOKEN_SERVICE_SPIFFE_ID",
      "spiffe://Auth.Local/x",
      "TOKEN_SERVICE_SPIFFE_ID: must be a SPIFFE ID",
    ],
    ["TOKEN_SERVICE_ADDR", "token", "TOKEN_SERVICE_ADDR: must be host:port"],
    ["JWT_ISSUER", "auth.local", "JWT_ISSUER: must be an absolute URL"],
    ["JWT_CLOCK_TOLERANCE_SECONDS", "600", "JWT_CLOCK_TOLERANCE_SECONDS: must be at most 60"],
    ["JWKS_MIN_REFETCH_INTERVAL_MS", "0", "JWKS_MIN_REFETCH_INTERVAL_MS: must be at least 1000"],
    ["JWKS_MIN_REFETCH_INTERVAL_MS", "999", "JWKS_MIN_REFETCH_INTERVAL_MS: must be at least 1000"],
    ["JWKS_MAX_STALENESS_MS", "0", "JWKS_MAX_STALENESS_MS: must be at least 60000"],
    ["JWKS_MAX_STALENESS_MS", "1h", "JWKS_MAX_STALENESS_MS: must be a number"],
    [
      "JWT_SIGNATURE_PLACEMENT",
      "worker",
      "JWT_SIGNATURE_PLACEMENT: must be auto, event-loop or thread-pool",
    ],
    ["IAM_POLICY_ADDR", "iam-policy", "IAM_POLICY_ADDR: must be host:port"],
    ["IAM_POLICY_BREAKER_FAILURES", "0", "IAM_POLICY_BREAKER_FAILURES: must be at least 1"],
  ])("rejects a bad %s, naming it", (variable, value, message) => {
    expect(() => loadAuthEdgeConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadAuthEdgeConfig({ [variable]: value })).toThrow(message);
  });
});
