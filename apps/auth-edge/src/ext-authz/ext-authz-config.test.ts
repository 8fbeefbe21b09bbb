import { describe, expect, it } from "vitest";
import { ConfigError } from "@authplat/config";
import { loadAuthEdgeConfig } from "../config.ts";

describe("auth-edge's ext_authz settings", () => {
  it("default to the rules file's callers, realm authplat, and removing authorization", () => {
    const config = loadAuthEdgeConfig({});
    expect(config.EXT_AUTHZ_CALLERS).toBeUndefined();
    expect(config.EXT_AUTHZ_REALM).toBe("authplat");
    expect(config.EXT_AUTHZ_FORWARD_AUTHORIZATION).toBe(false);
  });

  it("parse the proxies' SPIFFE IDs and the forwarding switch", () => {
    const config = loadAuthEdgeConfig({
      EXT_AUTHZ_CALLERS: "spiffe://auth.local/ns/edge/sa/gateway",
      EXT_AUTHZ_FORWARD_AUTHORIZATION: "true",
    });
    expect(config.EXT_AUTHZ_CALLERS).toEqual(["spiffe://auth.local/ns/edge/sa/gateway"]);
    expect(config.EXT_AUTHZ_FORWARD_AUTHORIZATION).toBe(true);
  });

  it.each([
    [
      "EXT_AUTHZ_REALM",
      'a"b',
      "EXT_AUTHZ_REALM: must be 1-128 printable ASCII characters without quotes or backslashes",
    ],
    [
      "EXT_AUTHZ_FORWARD_AUTHORIZATION",
      "yes",
      "EXT_AUTHZ_FORWARD_AUTHORIZATION: must be true or false",
    ],
    ["EXT_AUTHZ_CALLERS", "gateway", "EXT_AUTHZ_CALLERS.0: must be a SPIFFE ID"],
  ])("reject a bad %s, naming it", (name, value, message) => {
    let error: unknown;
    try {
      loadAuthEdgeConfig({ [name]: value });
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(message);
  });
});
