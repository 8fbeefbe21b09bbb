import { describe, expect, it } from "vitest";
import { ConfigError } from "@authplat/config";
import { loadTokenConfig } from "./config.ts";

const KEK = Buffer.alloc(32, 7).toString("base64");

describe("loadTokenConfig", () => {
  it("defaults to ES256, a 15-minute access token, the embedded store and rotating keys under .dev/token", () => {
    const config = loadTokenConfig({});
    expect(config.SIGNING_KEY_FILE).toBeUndefined();
    expect(config.REDIS_URL).toBeUndefined();
    expect(config).toMatchObject({
      GRPC_PORT: 50052,
      TOKEN_PROFILE: "development",
      JWT_ISSUER: "https://auth.local",
      ACCESS_TOKEN_TTL_SECONDS: 900,
      REFRESH_TOKEN_TTL_SECONDS: 2_592_000,
      REFRESH_IDLE_TIMEOUT_SECONDS: 1_209_600,
      ID_TOKEN_TTL_SECONDS: 300,
      SIGNING_ALG: "ES256",
      KEY_ROTATION_INTERVAL_SECONDS: 86_400,
      KEY_PUBLISH_LEAD_SECONDS: 600,
      TOKEN_DATA_DIR: ".dev/token",
      REDIS_KEY_PREFIX: "token:",
    });
  });

  it.each([
    ["SIGNING_ALG", "HS256", "SIGNING_ALG: must be ES256 or EdDSA"],
    ["ACCESS_TOKEN_TTL_SECONDS", "86400", "ACCESS_TOKEN_TTL_SECONDS: must be at most 3600"],
    ["GRPC_PORT", "http", "GRPC_PORT: must be a number"],
    ["TRUST_DOMAIN", "Auth.Local", "TRUST_DOMAIN: must be a SPIFFE trust domain name"],
    ["KEY_ENCRYPTION_KEY", "c2hvcnQ=", "KEY_ENCRYPTION_KEY: must be base64 of exactly 32 bytes"],
    ["REDIS_URL", "localhost:6379", "REDIS_URL: must be a redis:// or rediss:// URL"],
    ["TOKEN_PROFILE", "prod", "TOKEN_PROFILE: must be development or production"],
  ])("rejects a bad %s, naming it", (variable, value, message) => {
    expect(() => loadTokenConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadTokenConfig({ [variable]: value })).toThrow(message);
  });

  it("requires a key-encryption key when keys are shared through Redis or a key directory", () => {
    for (const env of [{ REDIS_URL: "redis://127.0.0.1:6379" }, { SIGNING_KEY_DIR: "/keys" }]) {
      expect(() => loadTokenConfig(env)).toThrow(
        "KEY_ENCRYPTION_KEY: is required when keys are kept in REDIS_URL or SIGNING_KEY_DIR",
      );
      expect(loadTokenConfig({ ...env, KEY_ENCRYPTION_KEY: KEK }).KEY_ENCRYPTION_KEY).toBe(KEK);
    }
  });

  it("refuses in production the embedded dev keys and store, naming what to set", () => {
    expect(() => loadTokenConfig({ TOKEN_PROFILE: "production" })).toThrow(
      "SIGNING_KEY_DIR: production needs persistent signing keys: set SIGNING_KEY_FILE, SIGNING_KEY_DIR or REDIS_URL",
    );
    expect(() =>
      loadTokenConfig({
        TOKEN_PROFILE: "production",
        SIGNING_KEY_DIR: "/k",
        KEY_ENCRYPTION_KEY: KEK,
      }),
    ).toThrow("REDIS_URL: production keeps families and revocations in Redis: set REDIS_URL");
    expect(
      loadTokenConfig({
        TOKEN_PROFILE: "production",
        REDIS_URL: "rediss://redis:6380",
        KEY_ENCRYPTION_KEY: KEK,
      }).TOKEN_PROFILE,
    ).toBe("production");
  });
});
