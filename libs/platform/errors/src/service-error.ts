import { ERROR_CODES, type ErrorCode } from "./error-codes.ts";

/** Options of a {@link ServiceError}. */
export interface ServiceErrorOptions {
  /** The underlying failure; it is logged, never sent to a client. */
  readonly cause?: unknown;
  /** How long a client should wait before retrying; only meaningful for retryable codes. */
  readonly retryAfterMs?: number;
}

/**
 * The one error type services throw on purpose. `code` is stable and machine-readable,
 * `message` is safe to show to the calling service, and `cause` stays server-side.
 */
export class ServiceError extends Error {
  /** The stable code, mapped to a gRPC status by {@link ERROR_CODES}. */
  readonly code: ErrorCode;
  /** Retry guidance in milliseconds, or undefined when the client should not retry. */
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, options: ServiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ServiceError";
    this.code = code;
    this.retryAfterMs = ERROR_CODES[code].retryable ? options.retryAfterMs : undefined;
  }

  /** The gRPC status this error is reported with. */
  get grpcStatus(): number {
    return ERROR_CODES[this.code].status;
  }

  /** Whether a client may retry the same request. */
  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }
}

/**
 * The error for an RPC the contract defines but this release does not serve yet. It answers
 * gRPC UNIMPLEMENTED with code `UNIMPLEMENTED` through the usual error path.
 */
export function unimplemented(rpcName: string): ServiceError {
  return new ServiceError("UNIMPLEMENTED", `${rpcName} is not available in this release`);
}
