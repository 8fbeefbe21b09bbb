import { describe, expect, it } from "vitest";

import { CallerAllowlist } from "./allowlist.ts";
import { SpiffeError } from "./spiffe-error.ts";
import { parseSpiffeId, type SpiffeId } from "./spiffe-id.ts";

const ISSUE = "/auth.token.v1.TokenService/IssueTokenPair";
const JWKS = "/auth.token.v1.TokenService/GetJwks";
const SESSION = "spiffe://auth.local/ns/auth/sa/session-identity";
const EDGE = "spiffe://auth.local/ns/auth/sa/auth-edge";

function constructionError(config: unknown): SpiffeError {
  try {
    new CallerAllowlist(config as Record<string, string[]>);
  } catch (err) {
    expect(err).toBeInstanceOf(SpiffeError);
    return err as SpiffeError;
  }
  throw new Error("expected the allowlist to be rejected");
}

describe("CallerAllowlist", () => {
  const allowlist = new CallerAllowlist({ [ISSUE]: [SESSION], [JWKS]: [EDGE, SESSION] });

  it("allows a listed caller on its RPC", () => {
    expect(allowlist.isAllowed(ISSUE, parseSpiffeId(SESSION))).toBe(true);
    expect(allowlist.isAllowed(JWKS, parseSpiffeId(EDGE))).toBe(true);
  });

  it("denies a caller listed only for another RPC", () => {
    expect(allowlist.isAllowed(ISSUE, parseSpiffeId(EDGE))).toBe(false);
  });

  it("denies everybody on an RPC that is not configured", () => {
    expect(
      allowlist.isAllowed("/auth.token.v1.TokenService/RevokeToken", parseSpiffeId(SESSION)),
    ).toBe(false);
    expect(allowlist.isAllowed("constructor", parseSpiffeId(SESSION))).toBe(false);
    expect(allowlist.isAllowed("__proto__", parseSpiffeId(SESSION))).toBe(false);
  });

  it("denies a caller without a SPIFFE ID", () => {
    expect(allowlist.isAllowed(ISSUE, undefined)).toBe(false);
  });

  it("matches exactly: no prefix, suffix, case or trust-domain match", () => {
    for (const near of [
      "spiffe://auth.local/ns/auth/sa/session-identity/x",
      "spiffe://auth.local/ns/auth/sa/Session-identity",
      "spiffe://other.local/ns/auth/sa/session-identity",
      "spiffe://auth.local/ns/auth/sa",
    ]) {
      expect(allowlist.isAllowed(ISSUE, parseSpiffeId(near))).toBe(false);
    }
  });

  it("denies a look-alike object that is not a validated SpiffeId", () => {
    const forged = {
      trustDomain: "auth.local",
      path: "/ns/auth/sa/session-identity",
      toString: () => SESSION,
    };
    expect(allowlist.isAllowed(ISSUE, forged as unknown as SpiffeId)).toBe(false);
  });

  it("allows nobody on an RPC configured with an empty list", () => {
    const closed = new CallerAllowlist({ [ISSUE]: [] });
    expect(closed.isAllowed(ISSUE, parseSpiffeId(SESSION))).toBe(false);
    expect(closed.rpcPaths()).toEqual([ISSUE]);
  });

  it("fails at construction on an invalid SPIFFE ID, naming the RPC and entry", () => {
    const err = constructionError({ [ISSUE]: [SESSION, "spiffe://auth.local/ns/auth/sa/token/"] });
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SPIFFE_ID_INVALID",
      reason: "path-trailing-slash",
    });
    expect(err.message).toBe(`allowlist ${ISSUE}[1]: SPIFFE-ID §2.2: the path must not end with /`);
  });

  it("fails at construction on a trust-domain-only ID that could never match a leaf", () => {
    const err = constructionError({ [ISSUE]: ["spiffe://auth.local"] });
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SPIFFE_ID_INVALID",
      reason: "leaf-path-missing",
    });
    expect(err.message).toMatch(/can never match a caller/);
  });

  it.each([
    "auth.token.v1.TokenService/IssueTokenPair",
    "/auth.token.v1.TokenService",
    "/a/b/c",
    "__proto__",
    "",
  ])("fails at construction on RPC path %j", (rpcPath) => {
    const err = constructionError(JSON.parse(JSON.stringify({ [rpcPath]: [SESSION] })));
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "ALLOWLIST_INVALID",
      reason: "rpc-path",
    });
    expect(err.message).toMatch(/is not a \/package\.Service\/Method path/);
  });

  it("fails at construction on a configuration that is not an object of arrays", () => {
    expect(constructionError(null).reason).toBe("config-shape");
    expect(constructionError({ [ISSUE]: SESSION }).reason).toBe("config-shape");
    expect(constructionError({ [ISSUE]: [42] }).reason).toBe("not-a-string");
  });
});
