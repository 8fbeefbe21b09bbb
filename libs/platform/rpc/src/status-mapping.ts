import * as grpc from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { ErrorInfoSchema } from "@authplat/contracts/auth/common/v1/error";
import { fallbackCodeForStatus, isErrorCode, ServiceError, type ErrorCode } from "@authplat/errors";

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
 * Turns what a handler threw into the status sent to the client, through
 * {@link answerableError}: causes and stack traces never reach the client (the server logs
 * them).
 *
 * @internal
 */
export function failureStatus(error: unknown, correlationId: string): FailureStatus {
  const serviceError = answerableError(error);
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

/**
 * The gRPC statuses that say "the dependency could not answer in time or at all" rather than
 * "it answered no": transport failures, overload, deadlines and cancellations.
 */
const UNAVAILABLE_LIKE: ReadonlySet<grpc.status> = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.CANCELLED,
]);

/**
 * A failed outgoing call, translated at the service boundary.
 *
 * What the downstream answered stays readable for the calling code: {@link remoteCode} (its
 * platform code, or one derived from the gRPC status when it sent none), {@link grpcCode} and
 * {@link remoteMessage} (also the error's `message`). The error's own `code` is what *this*
 * service answers if it lets the error escape, so a downstream's verdict never becomes ours
 * (a downstream `CALLER_NOT_ALLOWED` says nothing about our caller):
 *
 * | downstream gRPC status                                         | `code`        |
 * | -------------------------------------------------------------- | ------------- |
 * | UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, CANCELLED  | `UNAVAILABLE` |
 * | anything else                                                  | `INTERNAL`    |
 *
 * Retry pushback from the downstream is kept on the `UNAVAILABLE` ones. When the error escapes
 * a handler, the server's error interceptor also replaces the message with a generic one, so
 * the downstream's wording does not reach our caller either. Code that must branch on the
 * downstream's answer (say "refresh token invalid") reads `remoteCode` explicitly.
 */
export class RemoteCallError extends ServiceError {
  /** The gRPC status code the server (or the transport) answered with. */
  readonly grpcCode: grpc.status;
  /** The downstream's platform code (from its trailer, or derived from {@link grpcCode}). */
  readonly remoteCode: ErrorCode;
  /** The downstream's client-safe message (the same as `message`). */
  readonly remoteMessage: string;
  /** The server's correlation ID for the call, when it sent one. */
  readonly correlationId: string | undefined;

  constructor(status: Partial<grpc.StatusObject>) {
    const metadata = status.metadata;
    const codeValue = metadata?.get(ERROR_CODE_TRAILER)[0];
    const grpcCode = status.code ?? grpc.status.UNKNOWN;
    const remoteCode = isErrorCode(codeValue) ? codeValue : fallbackCodeForStatus(grpcCode);
    const pushback = Number(metadata?.get(RETRY_PUSHBACK_TRAILER)[0]);
    const message = status.details || "call failed";
    super(UNAVAILABLE_LIKE.has(grpcCode) ? "UNAVAILABLE" : "INTERNAL", message, {
      cause: status,
      ...(Number.isFinite(pushback) ? { retryAfterMs: pushback } : {}),
    });
    this.name = "RemoteCallError";
    this.grpcCode = grpcCode;
    this.remoteCode = remoteCode;
    this.remoteMessage = message;
    const correlation = metadata?.get(CORRELATION_TRAILER)[0];
    this.correlationId = typeof correlation === "string" ? correlation : undefined;
  }
}

/**
 * What a server answers for a thrown value: a {@link ServiceError} as it is, a
 * {@link RemoteCallError} with its boundary code and a generic message (the downstream's words
 * stay in our log), anything else INTERNAL "internal error". The original is the `cause`.
 *
 * @internal
 */
export function answerableError(error: unknown): ServiceError {
  if (error instanceof RemoteCallError) {
    return new ServiceError(
      error.code,
      error.code === "UNAVAILABLE" ? "a dependency is unavailable" : "internal error",
      {
        cause: error,
        ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
      },
    );
  }
  if (error instanceof ServiceError) return error;
  return new ServiceError("INTERNAL", "internal error", { cause: error });
}
