import { describe, expect, it } from "vitest";
import { z } from "zod";
import { envInt, envList, envLogLevel, envPort } from "./env-types.ts";
import { ConfigError, loadConfig, redactConfig } from "./load-config.ts";

const schema = z.object({
  GRPC_PORT: envPort(50052),
  TTL_SECONDS: envInt(900, 1, 3600),
  ALGORITHMS: envList("ES256", z.enum(["ES256", "EdDSA"])),
  LOG_LEVEL: envLogLevel,
  API_SECRET: z.string().optional(),
});

describe("loadConfig", () => {
  it("applies defaults when variables are unset or empty", () => {
    const config = loadConfig(schema, { TTL_SECONDS: "  " });
    expect(config).toEqual({
      GRPC_PORT: 50052,
      TTL_SECONDS: 900,
      ALGORITHMS: ["ES256"],
      LOG_LEVEL: "info",
    });
  });

  it("parses typed values and returns a deeply frozen object", () => {
    const config = loadConfig(schema, { GRPC_PORT: "0", ALGORITHMS: "ES256, EdDSA" });
    expect(config.GRPC_PORT).toBe(0);
    expect(config.ALGORITHMS).toEqual(["ES256", "EdDSA"]);
    expect(config).toSatisfy(Object.isFrozen);
    expect(config.ALGORITHMS).toSatisfy(Object.isFrozen);
  });

  it("fails fast naming every bad variable without echoing values", () => {
    let thrown: unknown;
    try {
      loadConfig(schema, { GRPC_PORT: "70000", ALGORITHMS: "HS256", TTL_SECONDS: "abc" });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const problems = (thrown as ConfigError).problems.map((p) => p.variable).sort();
    expect(problems).toEqual(["ALGORITHMS.0", "GRPC_PORT", "TTL_SECONDS"]);
    expect((thrown as ConfigError).message).toContain("GRPC_PORT: must be 0-65535");
    expect((thrown as ConfigError).message).not.toContain("HS256");
  });

  it("ignores variables the schema does not name", () => {
    const config = loadConfig(schema, { PATH: "/usr/bin", HOME: "/root" });
    expect(Object.keys(config)).not.toContain("PATH");
  });
});

describe("redactConfig", () => {
  it("replaces secret values and leaves the rest", () => {
    const config = loadConfig(schema, { API_SECRET: "hunter2" });
    const safe = redactConfig(config, ["API_SECRET"]);
    expect(safe["API_SECRET"]).toBe("[redacted]");
    expect(safe["GRPC_PORT"]).toBe(50052);
    expect(JSON.stringify(safe)).not.toContain("hunter2");
  });
});
