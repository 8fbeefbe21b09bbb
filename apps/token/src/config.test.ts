import { describe, expect, it } from "vitest";
import { ConfigError } from "@authplat/config";
import { loadTokenConfig } from "./config.ts";

describe("loadTokenConfig", () => {
  it("defaults to ES256, a 15-minute access token and an ephemeral key", () => {
    const config = loadTokenConfig({});
    expect(config.SIGNING_KEY_FILE).toBeUndefined();
    expect(config).toMatchObject({
      GRPC_PORT: 50052,
      JWT_ISSUER: "https://auth.local",
      ACCESS_TOKEN_TTL_SECONDS: 900,
      REFRESH_TOKEN_TTL_SECONDS: 2_592_000,
      SIGNING_ALG: "ES256",
    });
  });

  it.each([
    ["SIGNING_ALG", "HS256", "SIGNING_ALG: must be ES256 or EdDSA"],
    ["ACCESS_TOKEN_TTL_SECONDS", "86400", "ACCESS_TOKEN_TTL_SECONDS: must be at most 3600"],
    ["GRPC_PORT", "http", "GRPC_PORT: must be a number"],
    ["TRUST_DOMAIN", "Auth.Local", "TRUST_DOMAIN: must be a SPIFFE trust domain name"],
  ])("rejects a bad %s, naming it", (variable, value, message) => {
    expect(() => loadTokenConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadTokenConfig({ [variable]: value })).toThrow(message);
  });
});
