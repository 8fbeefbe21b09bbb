import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import {
  ALL_ERROR_CODES,
  fallbackCodeForStatus,
  grpcStatusFor,
  isErrorCode,
} from "./error-codes.ts";
import { ServiceError, unimplemented } from "./service-error.ts";

describe("the error code table", () => {
  it.each([
    ["INVALID_ARGUMENT", status.INVALID_ARGUMENT],
    ["TOKEN_EXPIRED", status.UNAUTHENTICATED],
    ["INVALID_CREDENTIALS", status.UNAUTHENTICATED],
    ["CALLER_NOT_ALLOWED", status.PERMISSION_DENIED],
    ["ACCESS_DENIED", status.PERMISSION_DENIED],
    ["NOT_FOUND", status.NOT_FOUND],
    ["UNAVAILABLE", status.UNAVAILABLE],
    ["CIRCUIT_OPEN", status.UNAVAILABLE],
    ["UNIMPLEMENTED", status.UNIMPLEMENTED],
    ["INTERNAL", status.INTERNAL],
  ] as const)("maps %s to gRPC status %i", (code, expected) => {
    expect(grpcStatusFor(code)).toBe(expected);
  });

  it("never maps a code to OK or UNKNOWN", () => {
    for (const code of ALL_ERROR_CODES) {
      expect([status.OK, status.UNKNOWN]).not.toContain(grpcStatusFor(code));
    }
  });

  it("recognises only the codes in the table", () => {
    const candidates: unknown[] = ["TOKEN_EXPIRED", "toString", "token_expired", 7, undefined];
    expect(candidates.filter(isErrorCode)).toEqual(["TOKEN_EXPIRED"]);
  });

  it("falls back from a bare gRPC status to a code with the same status", () => {
    for (let grpcStatus = 1; grpcStatus <= 16; grpcStatus += 1) {
      const code = fallbackCodeForStatus(grpcStatus);
      if (
        ![status.UNKNOWN, status.OUT_OF_RANGE, status.ABORTED, status.DATA_LOSS].includes(
          grpcStatus,
        )
      ) {
        expect(grpcStatusFor(code)).toBe(grpcStatus);
      }
    }
  });
});

describe("ServiceError", () => {
  it("keeps retry guidance only for retryable codes", () => {
    expect(new ServiceError("UNAVAILABLE", "redis down", { retryAfterMs: 250 }).retryAfterMs).toBe(
      250,
    );
    expect(
      new ServiceError("TOKEN_INVALID", "bad", { retryAfterMs: 250 }).retryAfterMs,
    ).toBeUndefined();
  });

  it("carries its cause without putting it in the message", () => {
    const cause = new Error("connection refused 10.0.0.7:6379");
    const error = new ServiceError("UNAVAILABLE", "session store unavailable", { cause });
    expect(error.cause).toBe(cause);
    expect(error.message).toBe("session store unavailable");
    expect(error.grpcStatus).toBe(status.UNAVAILABLE);
    expect(error.retryable).toBe(true); // UNAVAILABLE is retryable
  });

  it("reports an RPC that is not served yet as UNIMPLEMENTED", () => {
    const error = unimplemented("RefreshTokens");
    expect(error.code).toBe("UNIMPLEMENTED");
    expect(error.grpcStatus).toBe(status.UNIMPLEMENTED);
    expect(error.message).toBe("RefreshTokens is not available in this release");
  });
});
