import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { InspectRefreshTokenResponseSchema } from "@authplat/contracts/auth/token/v1";
import { ServiceError } from "@authplat/errors";
import { refreshTokenInspector } from "./token-refresh-inspector.ts";

const ISSUED = Date.parse("2026-11-27T10:00:00Z");

function answering(response: unknown) {
  const asked: string[] = [];
  const inspector = refreshTokenInspector({
    inspectRefreshToken: async (request) => {
      asked.push(request.refreshToken ?? "");
      if (response instanceof Error) throw response;
      return create(InspectRefreshTokenResponseSchema, response as object);
    },
  });
  return { inspector, asked };
}

describe("refreshTokenInspector", () => {
  it("maps an active answer to a description, empty session and tenant to undefined", async () => {
    const { inspector, asked } = answering({
      active: true,
      subject: "alice",
      clientId: "web",
      scopes: ["a"],
      familyId: "f-1",
      issuedAt: timestampFromMs(ISSUED),
      expiresAt: timestampFromMs(ISSUED + 60_000),
      roles: ["viewer"],
    });
    expect(await inspector.inspect("R".repeat(43))).toEqual({
      subject: "alice",
      clientId: "web",
      scopes: ["a"],
      sessionId: undefined,
      familyId: "f-1",
      issuedAtMs: ISSUED,
      expiresAtMs: ISSUED + 60_000,
      roles: ["viewer"],
      tenant: undefined,
    });
    expect(asked).toEqual(["R".repeat(43)]);
  });

  it("answers undefined for an inactive token", async () => {
    expect(await answering({ active: false }).inspector.inspect("x")).toBeUndefined();
  });

  it("fails UNAVAILABLE, keeping the pushback, when token cannot answer, and never says inactive", async () => {
    const down = answering(new ServiceError("CIRCUIT_OPEN", "open", { retryAfterMs: 900 }));
    await expect(down.inspector.inspect("x")).rejects.toMatchObject({
      code: "UNAVAILABLE",
      message: "the token service cannot inspect refresh tokens now",
      retryAfterMs: 900,
    });
    const broken = answering({ active: true, subject: "alice" });
    await expect(broken.inspector.inspect("x")).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });
});
