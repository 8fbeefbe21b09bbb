import { status } from "@grpc/grpc-js";
import { ServiceError } from "@authplat/errors";
import { RemoteCallError } from "../status-mapping.ts";

/** How a call ended, as metrics and spans report it. */
export interface CallOutcome {
  /** The platform's stable error code, `OK` on success. */
  readonly code: string;
  /** The numeric gRPC status. */
  readonly grpcStatus: number;
  /** The gRPC status name, e.g. `PERMISSION_DENIED`. */
  readonly grpcStatusName: string;
}

/** @internal The outcome of a call that succeeded. */
export const OK_OUTCOME: CallOutcome = { code: "OK", grpcStatus: status.OK, grpcStatusName: "OK" };

/** @internal The outcome of a stream the consumer stopped reading before its end. */
export const CANCELLED_OUTCOME: CallOutcome = {
  code: "CANCELLED",
  grpcStatus: status.CANCELLED,
  grpcStatusName: "CANCELLED",
};

function named(code: string, grpcStatus: number): CallOutcome {
  return { code, grpcStatus, grpcStatusName: status[grpcStatus] ?? "UNKNOWN" };
}

/**
 * @internal How a served call that threw `error` is answered: a `ServiceError` with its code
 * and mapped status (a downstream's {@link RemoteCallError} with its boundary code, as the
 * server's error interceptor answers it), anything else INTERNAL.
 */
export function serverFailure(error: unknown): CallOutcome {
  if (error instanceof ServiceError) return named(error.code, error.grpcStatus);
  return named("INTERNAL", status.INTERNAL);
}

/**
 * @internal How an outgoing call that threw `error` failed: with the downstream's own code and
 * the status it answered ({@link RemoteCallError}), or as {@link serverFailure} for a local
 * failure (a breaker's CIRCUIT_OPEN, a bug).
 */
export function clientFailure(error: unknown): CallOutcome {
  if (error instanceof RemoteCallError) return named(error.remoteCode, error.grpcCode);
  return serverFailure(error);
}
