import * as grpc from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema } from "@authplat/contracts/auth/common/v1/error";
import { fallbackCodeForStatus, isErrorCode, ServiceError } from "@authplat/errors";

/** Trailer with the platform's stable error code. */
export const ERROR_CODE_TRAILER = "authplat-error-code";
/** Trailer echoing the request's correlation ID (also sent on success). */
export const CORRELATION_TRAILER = "x-correlation-id";
/**
 * Retry guidance on retryable failures. The name is gRPC's own server pushback key
 * (gRPC A6 "Pushback"), so grpc retry policies honour it too.
 */
export const RETRY_PUSHBACK_TRAILER = "grpc-retry-pushback-ms";
/** Binary trailer carrying the same details as an `auth.common.v1.ErrorInfo` message. */
export const ERROR_INFO_TRAILER = "authplat-error-bin";

/** The status object grpc-js sends for a failed call. */
export interface FailureStatus {
  readonly code: grpc.status;
  readonly details: string;
  readonly metadata: grpc.Metadata;
}

/**
 * Turns what a handler threw into the status sent to the client. A {@link ServiceError}
 * keeps its code and message; anything else becomes INTERNAL "internal error" so causes and
 * stack traces never reach the client (the caller logs them).
 */
export function failureStatus(error: unknown, correlationId: string): FailureStatus {
  const serviceError =
    error instanceof ServiceError ? error : new ServiceError("INTERNAL", "internal error");
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_TRAILER, serviceError.code);
  metadata.set(CORRELATION_TRAILER, correlationId);
  const retryAfterMs =
    serviceError.retryAfterMs === undefined
      ? undefined
      : Math.max(0, Math.round(serviceError.retryAfterMs));
  if (retryAfterMs !== undefined) metadata.set(RETRY_PUSHBACK_TRAILER, String(retryAfterMs));
  const info = create(ErrorInfoSchema, {
    code: serviceError.code,
    message: serviceError.message,
    correlationId,
    ...(retryAfterMs === undefined ? {} : { retryAfter: durationFromMs(retryAfterMs) }),
  });
  metadata.set(ERROR_INFO_TRAILER, Buffer.from(toBinary(ErrorInfoSchema, info)));
  return { code: serviceError.grpcStatus, details: serviceError.message, metadata };
}

/** A failed call as a client sees it, translated back into the platform's error model. */
export class RemoteCallError extends ServiceError {
  /** The gRPC status code the server (or the transport) answered with. */
  readonly grpcCode: grpc.status;
  /** The server's correlation ID for the call, when it sent one. */
  readonly correlationId: string | undefined;

  constructor(status: Partial<grpc.StatusObject>) {
    const metadata = status.metadata;
    const codeValue = metadata?.get(ERROR_CODE_TRAILER)[0];
    const grpcCode = status.code ?? grpc.status.UNKNOWN;
    const code = isErrorCode(codeValue) ? codeValue : fallbackCodeForStatus(grpcCode);
    const pushback = Number(metadata?.get(RETRY_PUSHBACK_TRAILER)[0]);
    super(code, status.details || "call failed", {
      cause: status,
      ...(Number.isFinite(pushback) ? { retryAfterMs: pushback } : {}),
    });
    this.name = "RemoteCallError";
    this.grpcCode = grpcCode;
    const correlation = metadata?.get(CORRELATION_TRAILER)[0];
    this.correlationId = typeof correlation === "string" ? correlation : undefined;
  }
}
