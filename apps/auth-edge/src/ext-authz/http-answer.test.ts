import { describe, expect, it } from "vitest";
import { validatedClaims } from "../tokens/claims-fixture.ts";
import { headerValueOf, httpAnswerFor } from "./http-answer.ts";

const options = { realm: "api", forwardAuthorization: false };

const claims = validatedClaims({ scopes: [], sessionId: undefined });

describe("httpAnswerFor", () => {
  it("sets the identity headers it has values for and removes the others and authorization", () => {
    expect(httpAnswerFor({ kind: "allowed", claims, policyIds: [] }, options)).toEqual({
      allowed: true,
      headersToSet: [
        { key: "x-authplat-subject", value: "user-1" },
        { key: "x-authplat-client-id", value: "web" },
      ],
      headersToRemove: ["x-authplat-scopes", "x-authplat-session-id", "authorization"],
    });
  });

  it("keeps authorization when configured to forward it", () => {
    const answer = httpAnswerFor(
      { kind: "allowed", claims, policyIds: [] },
      { ...options, forwardAuthorization: true },
    );
    expect(answer.allowed && answer.headersToRemove).not.toContain("authorization");
  });

  it("answers 401 with a bare challenge when no token came (RFC 6750 §3.1)", () => {
    expect(
      httpAnswerFor({ kind: "unauthenticated", problem: "missing", reason: "x" }, options),
    ).toEqual({
      allowed: false,
      rpcCode: 16,
      httpStatus: 401,
      headers: [{ key: "www-authenticate", value: 'Bearer realm="api"' }],
    });
  });

  it("answers a policy denial with a plain 403 and no challenge", () => {
    expect(
      httpAnswerFor({ kind: "forbidden", scope: [], policyIds: ["p"], reason: "no" }, options),
    ).toEqual({ allowed: false, rpcCode: 7, httpStatus: 403, headers: [] });
  });

  it("leaves out a scope attribute that could not be a quoted string", () => {
    const answer = httpAnswerFor(
      { kind: "forbidden", scope: ['a"b'], policyIds: [], reason: "scope" },
      options,
    );
    expect(answer.allowed ? undefined : answer.headers[0]?.value).toBe(
      'Bearer realm="api", error="insufficient_scope", error_description="the access token lacks a required scope"',
    );
  });
});

describe("headerValueOf", () => {
  it("passes ordinary identifiers unchanged and percent-encodes the rest", () => {
    expect(headerValueOf("user-1@example.com")).toBe("user-1@example.com");
    expect(headerValueOf("50% Müller\r\n")).toBe("50%25 M%C3%BCller%0D%0A");
    expect(headerValueOf("\ud800")).toBe("%EF%BF%BD");
  });
});
