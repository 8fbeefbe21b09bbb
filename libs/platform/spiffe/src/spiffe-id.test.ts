import { describe, expect, it } from "vitest";

import { SpiffeError } from "./spiffe-error.ts";
import {
  isMemberOf,
  parseSpiffeId,
  parseTrustDomain,
  SpiffeId,
  spiffeIdForService,
} from "./spiffe-id.ts";

function expectSpiffeError(fn: () => unknown, code: string, reason: string, message: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(SpiffeError);
  const err = thrown as SpiffeError;
  expect({ code: err.code, reason: err.reason }).toEqual({ code, reason });
  expect(err.message).toMatch(message);
}

const TD_255 = "a".repeat(255);
const ID_2048 = `spiffe://td/${"x".repeat(2048 - "spiffe://td/".length)}`;

describe("parseSpiffeId", () => {
  it.each([
    ["spiffe://trust-domain-name/path", "trust-domain-name", "/path"],
    ["spiffe://auth.local/ns/auth/sa/token", "auth.local", "/ns/auth/sa/token"],
    ["spiffe://staging.example.com/payments/web-fe", "staging.example.com", "/payments/web-fe"],
    [
      "spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453",
      "example.com",
      "/9eebccd2-12bf-40a6-b262-65fe0487d453",
    ],
    ["spiffe://example.com", "example.com", ""],
    ["spiffe://192.168.0.1/svc", "192.168.0.1", "/svc"],
    ["spiffe://td_0-9.x/Path.With-All_Chars09/UPPER", "td_0-9.x", "/Path.With-All_Chars09/UPPER"],
    ["spiffe://td/.../a..b/.x", "td", "/.../a..b/.x"],
    [`spiffe://${TD_255}/p`, TD_255, "/p"],
    [ID_2048, "td", ID_2048.slice("spiffe://td".length)],
  ])("accepts %s (SPIFFE-ID §2)", (input, trustDomain, path) => {
    const id = parseSpiffeId(input);
    expect(id.trustDomain).toBe(trustDomain);
    expect(id.path).toBe(path);
    expect(id.toString()).toBe(input);
  });

  it.each([
    ["", "scheme", /must start with "spiffe:\/\/"/],
    ["http://td/x", "scheme", /SPIFFE-ID §2: .*"spiffe:\/\/"/],
    ["SPIFFE://td/x", "scheme", /lowercase/],
    ["Spiffe://td/x", "scheme", /lowercase/],
    ["spiffe:/td/x", "scheme", /"spiffe:\/\/"/],
    [" spiffe://td/x", "scheme", /"spiffe:\/\/"/],
    ["spiffe://", "trust-domain-empty", /§2\.1: the trust domain must not be empty/],
    ["spiffe:///path", "trust-domain-empty", /must not be empty/],
    ["spiffe://user@td/x", "trust-domain-userinfo", /§2\.1: .*userinfo/],
    ["spiffe://user:pw@td/x", "trust-domain-userinfo", /userinfo/],
    ["spiffe://td:8080/x", "trust-domain-port", /§2\.1: .*port/],
    ["spiffe://td:/x", "trust-domain-port", /port/],
    ["spiffe://Auth.Local/x", "trust-domain-chars", /§2\.1: .*lowercase \[a-z0-9\.-_\]/],
    ["spiffe://td!/x", "trust-domain-chars", /\[a-z0-9\.-_\]/],
    ["spiffe://[::1]/x", "trust-domain-chars", /\[a-z0-9\.-_\]/],
    ["spiffe://tdé/x", "trust-domain-chars", /\[a-z0-9\.-_\]/],
    [`spiffe://${"a".repeat(256)}/p`, "trust-domain-too-long", /§2\.3: .*at most 255 bytes/],
    ["spiffe://td/", "path-trailing-slash", /§2\.2: the path must not end with \//],
    ["spiffe://td/a/", "path-trailing-slash", /must not end with \//],
    ["spiffe://td//a", "path-empty-segment", /§2\.2: path segments must not be empty/],
    ["spiffe://td/a//b", "path-empty-segment", /must not be empty/],
    ["spiffe://td/./a", "path-dot-segment", /§2\.2: .*"\." or "\.\."/],
    ["spiffe://td/a/..", "path-dot-segment", /"\.\."/],
    ["spiffe://td/a b", "path-chars", /§2\.2: .*\[a-zA-Z0-9\.-_\]/],
    ["spiffe://td/a:b", "path-chars", /\[a-zA-Z0-9\.-_\]/],
    ["spiffe://td/é", "path-chars", /\[a-zA-Z0-9\.-_\]/],
    ["spiffe://td/a\n", "path-chars", /\[a-zA-Z0-9\.-_\]/],
    ["spiffe://td/a%20b", "percent-encoding", /percent-encoded/],
    ["spiffe://t%64/a", "percent-encoding", /percent-encoded/],
    ["spiffe://td/a?x=1", "query", /§2: .*must not include a query/],
    ["spiffe://td?x", "query", /query/],
    ["spiffe://td/a#frag", "fragment", /§2: .*must not include a fragment/],
    [`${ID_2048}x`, "too-long", /§2\.3: .*at most 2048 bytes/],
    [`spiffe://td/${"é".repeat(1020)}`, "too-long", /2048 bytes/],
  ])("rejects %j with SPIFFE_ID_INVALID naming rule %s", (input, reason, message) => {
    expectSpiffeError(() => parseSpiffeId(input), "SPIFFE_ID_INVALID", reason, message);
  });

  it("rejects a value that is not a string with reason not-a-string", () => {
    expectSpiffeError(
      () => parseSpiffeId(undefined as unknown as string),
      "SPIFFE_ID_INVALID",
      "not-a-string",
      /must be a string/,
    );
  });

  it("returns a frozen, nominal value that serialises as its URI", () => {
    const id = parseSpiffeId("spiffe://auth.local/ns/auth/sa/mfa");
    expect(Object.isFrozen(id)).toBe(true);
    expect(id).toBeInstanceOf(SpiffeId);
    expect(JSON.stringify({ id })).toBe('{"id":"spiffe://auth.local/ns/auth/sa/mfa"}');
    expect(`${id}`).toBe("spiffe://auth.local/ns/auth/sa/mfa");
    expect(() => {
      (id as { path: string }).path = "/other";
    }).toThrow(TypeError);
  });

  it("compares identities exactly and case-sensitively with equals", () => {
    const a = parseSpiffeId("spiffe://auth.local/ns/auth/sa/token");
    expect(a.equals(parseSpiffeId("spiffe://auth.local/ns/auth/sa/token"))).toBe(true);
    expect(a.equals(parseSpiffeId("spiffe://auth.local/ns/auth/sa/Token"))).toBe(false);
    expect(a.equals(parseSpiffeId("spiffe://auth.local/ns/auth/sa/token/x"))).toBe(false);
  });
});

describe("parseTrustDomain", () => {
  it("returns a valid trust domain name unchanged", () => {
    expect(parseTrustDomain("auth.local")).toBe("auth.local");
  });

  it.each([
    ["", "trust-domain-empty"],
    ["Auth.local", "trust-domain-chars"],
    ["auth.local:443", "trust-domain-port"],
    ["spiffe://auth.local", "trust-domain-chars"],
    ["auth.local/x", "trust-domain-chars"],
  ])("rejects %j with reason %s", (input, reason) => {
    expectSpiffeError(
      () => parseTrustDomain(input),
      "SPIFFE_ID_INVALID",
      reason,
      /SPIFFE-ID §2\.1/,
    );
  });
});

describe("spiffeIdForService", () => {
  it("builds spiffe://<td>/ns/auth/sa/<name>", () => {
    const id = spiffeIdForService("auth.local", "session-identity");
    expect(id.toString()).toBe("spiffe://auth.local/ns/auth/sa/session-identity");
    expect(id.path).toBe("/ns/auth/sa/session-identity");
  });

  it("refuses a service account that would add path segments", () => {
    expectSpiffeError(
      () => spiffeIdForService("auth.local", "token/admin"),
      "SPIFFE_ID_INVALID",
      "path-chars",
      /§2\.2/,
    );
  });

  it.each([
    ["", "path-empty-segment"],
    ["..", "path-dot-segment"],
    ["Töken", "path-chars"],
  ])("refuses service account %j with reason %s", (name, reason) => {
    expectSpiffeError(
      () => spiffeIdForService("auth.local", name),
      "SPIFFE_ID_INVALID",
      reason,
      /SPIFFE-ID §2\.2/,
    );
  });

  it("refuses an invalid trust domain", () => {
    expectSpiffeError(
      () => spiffeIdForService("AUTH", "token"),
      "SPIFFE_ID_INVALID",
      "trust-domain-chars",
      /§2\.1/,
    );
  });
});

describe("isMemberOf", () => {
  it("is true only for the exact trust domain", () => {
    const id = parseSpiffeId("spiffe://auth.local/ns/auth/sa/token");
    expect(isMemberOf(id, "auth.local")).toBe(true);
    expect(isMemberOf(id, "other.local")).toBe(false);
    expect(isMemberOf(id, "local")).toBe(false);
    expect(isMemberOf(id, "AUTH.LOCAL")).toBe(false);
    expect(isMemberOf(id, "")).toBe(false);
  });
});
