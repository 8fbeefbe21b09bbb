import { describe, expect, it } from "vitest";
import { validatedClaims } from "../tokens/claims-fixture.ts";
import { ServiceError } from "@authplat/errors";
import type { ValidatedClaims } from "../tokens/token-validator.ts";
import { IamPolicyAuthorizer, mfaStrengthOf, principalOf } from "./iam-policy-authorizer.ts";
import type { PolicyDecider, PolicyQuestion } from "./policy-decider.ts";

// The policy question the edge builds from verified claims and an ext_authz route. The real
// iam-policy answering these questions is exercised in e2e/src/authorization.e2e.test.ts.

const NOW_MS = Date.parse("2026-11-27T12:00:00Z");
const PROXY = "spiffe://auth.local/ns/auth/sa/envoy";

function claims(overrides: Partial<ValidatedClaims> = {}): ValidatedClaims {
  return validatedClaims({
    subject: "alice",
    scopes: ["documents"],
    roles: ["viewer"],
    tenant: "acme",
    amr: ["pwd"],
    ...overrides,
  });
}

function recordingDecider(): { decider: PolicyDecider; questions: PolicyQuestion[] } {
  const questions: PolicyQuestion[] = [];
  return {
    questions,
    decider: {
      decide: async (question) => {
        questions.push(question);
        return {
          allowed: true,
          policyIds: ["p-1"],
          reason: "permitted by policy",
          decisionId: "d",
        };
      },
    },
  };
}

describe("IamPolicyAuthorizer: the question of an ext_authz route", () => {
  it("takes the principal from the claims and the resource and context from the route's extensions", async () => {
    const { decider, questions } = recordingDecider();
    const authorizer = new IamPolicyAuthorizer({ decider, nowMs: () => NOW_MS });
    const decision = await authorizer.authorize({
      claims: claims(),
      action: "update",
      resource: "document",
      context: {
        "resource.id": "d-1",
        "resource.owner": "bob",
        "context.ip": "10.1.2.3",
        "context.country": "DE",
        "http.method": "PUT",
        "http.path": "/documents/d-1",
        "tenant-header": "globex",
      },
      caller: PROXY,
    });
    expect(decision).toEqual({
      allowed: true,
      policyIds: ["p-1"],
      reason: "permitted by policy",
      decisionId: "d",
    });
    expect(questions).toEqual([
      {
        principal: {
          subject: "alice",
          kind: "user",
          roles: ["viewer"],
          attributes: { tenant: "acme" },
        },
        action: "update",
        resource: { type: "document", id: "d-1", attributes: { owner: "bob" } },
        context: {
          ipAddress: "10.1.2.3",
          requestTimeMs: NOW_MS,
          mfa: "one-factor",
          sessionId: "s-1",
          clientId: "web",
          caller: PROXY,
          // http.* and unprefixed entries are not sent: a schema refuses undeclared attributes.
          attributes: { country: "DE" },
        },
      },
    ]);
  });

  it("passes the decision point's failure on, so the check fails closed", async () => {
    const failure = new ServiceError("UNAVAILABLE", "iam-policy cannot decide now");
    const authorizer = new IamPolicyAuthorizer({
      decider: { decide: () => Promise.reject(failure) },
      nowMs: () => NOW_MS,
    });
    await expect(
      authorizer.authorize({
        claims: claims(),
        action: "read",
        resource: "document",
        context: {},
        caller: PROXY,
      }),
    ).rejects.toBe(failure);
  });
});

describe("principalOf", () => {
  it("is a service when the subject is the client itself, a user otherwise", () => {
    expect(principalOf(claims({ subject: "billing", clientId: "billing" }))).toMatchObject({
      subject: "billing",
      kind: "service",
    });
    expect(principalOf(claims()).kind).toBe("user");
  });

  it("has no tenant attribute and no roles when the token carries none", () => {
    expect(principalOf(claims({ tenant: undefined, roles: [] }))).toEqual({
      subject: "alice",
      kind: "user",
      roles: [],
      attributes: {},
    });
  });
});

describe("mfaStrengthOf", () => {
  it.each([
    [{}, "unknown"],
    [{ amr: ["pwd"] }, "one-factor"],
    [{ amr: ["pwd", "pwd"] }, "one-factor"],
    [{ amr: ["pwd", "otp"] }, "multi-factor"],
    [{ amr: ["pwd", "mca"] }, "multi-factor"],
    [{ amr: ["mfa"] }, "multi-factor"],
    [{ amr: ["hwk"] }, "phishing-resistant"],
    [{ acr: "phrh" }, "phishing-resistant"],
    [{ acr: "urn:example:basic" }, "one-factor"],
  ] as const)("reads %j as %s", (input, expected) => {
    expect(mfaStrengthOf(input)).toBe(expected);
  });
});
