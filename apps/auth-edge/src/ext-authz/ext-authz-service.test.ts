import { describe, expect, it } from "vitest";
import { validatedClaims } from "../tokens/claims-fixture.ts";
import { ServiceError } from "@authplat/errors";
import type { ValidationResult } from "../tokens/token-validator.ts";
import type { Authorizer } from "./authorizer.ts";
import { ExtAuthzService, type CheckInput } from "./ext-authz-service.ts";

const claims = validatedClaims();

function input(
  contextExtensions: Record<string, string> = {},
  authorization = "Bearer t0k",
): CheckInput {
  return { authorization, contextExtensions, method: "GET", path: "/x", host: "h" };
}

function service(
  result: ValidationResult = { valid: true, claims },
  authorizer: Authorizer = {
    authorize: async () => ({ allowed: true, policyIds: ["p"], reason: "" }),
  },
) {
  const seen: { token?: string; scopes?: readonly string[]; authorized: number } = {
    authorized: 0,
  };
  const svc = new ExtAuthzService({
    validator: {
      validate: async (token, scopes) => {
        seen.token = token;
        seen.scopes = scopes;
        return result;
      },
    },
    authorizer: {
      authorize: (request, signal) => {
        seen.authorized += 1;
        return authorizer.authorize(request, signal);
      },
    },
  });
  return { svc, seen };
}

describe("ExtAuthzService.check", () => {
  it("validates the bearer token with the route's space-separated scopes", async () => {
    const { svc, seen } = service();
    const outcome = await svc.check(input({ "authplat.scopes": " a  b " }));
    expect(seen).toEqual({ token: "t0k", scopes: ["a", "b"], authorized: 0 });
    expect(outcome).toEqual({ kind: "allowed", claims, policyIds: [] });
  });

  it("never calls the validator without bearer credentials", async () => {
    const { svc, seen } = service();
    expect(await svc.check(input({}, "Basic x"))).toEqual({
      kind: "unauthenticated",
      problem: "missing",
      reason: "NO_BEARER_TOKEN",
    });
    expect(seen.token).toBeUndefined();
  });

  it("tells an expired token from other rejections", async () => {
    const expired = service({ valid: false, reason: "EXPIRED", message: "m" }).svc;
    const revoked = service({ valid: false, reason: "REVOKED", message: "m" }).svc;
    expect(await expired.check(input())).toMatchObject({ problem: "expired", reason: "EXPIRED" });
    expect(await revoked.check(input())).toMatchObject({ problem: "invalid", reason: "REVOKED" });
  });

  it("fails closed with UNAVAILABLE, keeping the retry guidance, when the authorizer cannot answer", async () => {
    const { svc } = service(undefined, {
      authorize: () =>
        Promise.reject(new ServiceError("CIRCUIT_OPEN", "open", { retryAfterMs: 250 })),
    });
    const error: unknown = await svc
      .check(input({ "authplat.action": "read", "authplat.resource": "doc" }))
      .catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(ServiceError);
    expect(error).toMatchObject({
      code: "UNAVAILABLE",
      message: "the authorization service is unavailable",
      retryAfterMs: 250,
    });
  });

  it("refuses every authorizing route while the authorizer cannot answer, and keeps validating", async () => {
    const down: Authorizer = {
      authorize: () => Promise.reject(new ServiceError("UNAVAILABLE", "iam-policy cannot decide")),
    };
    const { svc } = service(undefined, down);
    await expect(
      svc.check(input({ "authplat.action": "read", "authplat.resource": "doc" })),
    ).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await expect(svc.check(input())).resolves.toMatchObject({ kind: "allowed" });
  });

  it("passes the decision point's refusal of the question on as INVALID_ARGUMENT (a misconfigured route), not UNAVAILABLE", async () => {
    const refusing: Authorizer = {
      authorize: () =>
        Promise.reject(
          new ServiceError(
            "INVALID_ARGUMENT",
            "iam-policy refused the question: resource.attributes.owner: required",
          ),
        ),
    };
    const { svc } = service(undefined, refusing);
    await expect(
      svc.check(input({ "authplat.action": "read", "authplat.resource": "document" })),
    ).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: "iam-policy refused the question: resource.attributes.owner: required",
    });
  });

  it("refuses a route with a resource but no action before looking at the token", async () => {
    const { svc, seen } = service();
    await expect(svc.check(input({ "authplat.resource": "doc" }))).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    expect(seen.token).toBeUndefined();
  });
});
