import { status } from "@grpc/grpc-js";

/**
 * Every stable error code the platform returns, with the gRPC status it maps to and whether a
 * client may retry. This table is the only place a code is tied to a status (requirements
 * 10.1-10.5); the server interceptor in `@authplat/rpc` applies it.
 *
 * Codes are part of the public contract: add new ones freely, never rename or remove one.
 */
export const ERROR_CODES = {
  /** The request is malformed or a field fails validation. */
  INVALID_ARGUMENT: { status: status.INVALID_ARGUMENT, retryable: false },
  /** The caller presented no usable identity (no or invalid client certificate). */
  UNAUTHENTICATED: { status: status.UNAUTHENTICATED, retryable: false },
  /** A credential (password, code, refresh token, OTP) is wrong; deliberately unspecific. */
  INVALID_CREDENTIALS: { status: status.UNAUTHENTICATED, retryable: false },
  /** A token is malformed, badly signed, or fails a claim check. */
  TOKEN_INVALID: { status: status.UNAUTHENTICATED, retryable: false },
  /** A token's `exp` has passed. */
  TOKEN_EXPIRED: { status: status.UNAUTHENTICATED, retryable: false },
  /** A token was revoked before it expired. */
  TOKEN_REVOKED: { status: status.UNAUTHENTICATED, retryable: false },
  /** A refresh token was presented twice; its whole family has been revoked. */
  REFRESH_TOKEN_REUSED: { status: status.UNAUTHENTICATED, retryable: false },
  /** The calling workload's SPIFFE ID is not on the RPC's allowlist. */
  CALLER_NOT_ALLOWED: { status: status.PERMISSION_DENIED, retryable: false },
  /** A policy decision denied the action. */
  ACCESS_DENIED: { status: status.PERMISSION_DENIED, retryable: false },
  /** The action needs a stronger authentication (MFA step-up) first. */
  STEP_UP_REQUIRED: { status: status.FAILED_PRECONDITION, retryable: false },
  /** The addressed entity does not exist (or the caller may not know it exists). */
  NOT_FOUND: { status: status.NOT_FOUND, retryable: false },
  /** The entity to create exists already. */
  ALREADY_EXISTS: { status: status.ALREADY_EXISTS, retryable: false },
  /** The system is not in a state that allows the operation. */
  FAILED_PRECONDITION: { status: status.FAILED_PRECONDITION, retryable: false },
  /** Too many requests; retry after the advertised delay. */
  RATE_LIMITED: { status: status.RESOURCE_EXHAUSTED, retryable: true },
  /** A dependency (database, cache, downstream service) cannot be reached. */
  UNAVAILABLE: { status: status.UNAVAILABLE, retryable: true },
  /** A circuit breaker is open in front of a failing dependency (requirement 10.2). */
  CIRCUIT_OPEN: { status: status.UNAVAILABLE, retryable: true },
  /** The deadline passed before the work finished. */
  DEADLINE_EXCEEDED: { status: status.DEADLINE_EXCEEDED, retryable: true },
  /** The caller cancelled the call. */
  CANCELLED: { status: status.CANCELLED, retryable: false },
  /** The RPC exists in the contract but this release does not serve it yet. */
  UNIMPLEMENTED: { status: status.UNIMPLEMENTED, retryable: false },
  /** Anything unexpected; details go to the log, never to the client. */
  INTERNAL: { status: status.INTERNAL, retryable: false },
} as const satisfies Record<string, { status: status; retryable: boolean }>;

/** The union of stable error codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** All codes, for validation and exhaustive tests. */
export const ALL_ERROR_CODES = Object.freeze(Object.keys(ERROR_CODES) as ErrorCode[]);

/** Whether `value` is one of the stable codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.hasOwn(ERROR_CODES, value);
}

/** The gRPC status a code maps to. */
export function grpcStatusFor(code: ErrorCode): status {
  return ERROR_CODES[code].status;
}

/**
 * The code a client should assume for a failure that carried no platform code (for example a
 * transport failure from grpc-js), chosen from the gRPC status alone.
 */
export function fallbackCodeForStatus(grpcStatus: number): ErrorCode {
  switch (grpcStatus) {
    case status.INVALID_ARGUMENT:
    case status.OUT_OF_RANGE:
      return "INVALID_ARGUMENT";
    case status.UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case status.PERMISSION_DENIED:
      return "CALLER_NOT_ALLOWED";
    case status.NOT_FOUND:
      return "NOT_FOUND";
    case status.ALREADY_EXISTS:
    case status.ABORTED:
      return "ALREADY_EXISTS";
    case status.FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case status.RESOURCE_EXHAUSTED:
      return "RATE_LIMITED";
    case status.UNAVAILABLE:
      return "UNAVAILABLE";
    case status.DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case status.CANCELLED:
      return "CANCELLED";
    case status.UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    default:
      return "INTERNAL";
  }
}
