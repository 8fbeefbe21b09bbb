import { randomUUID, X509Certificate } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMethod } from "@bufbuild/protobuf";
import {
  contextFromIncoming,
  CORRELATION_ID_HEADER,
  runWithContext,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
  type RequestContext,
} from "@authplat/correlation";
import { ServiceError } from "@authplat/errors";
import type { Logger } from "@authplat/observability";
import { spiffeIdFromCertificate, type SpiffeId } from "@authplat/spiffe";
import type { CallContext } from "./handlers.ts";
import {
  chain,
  type ServerInterceptor,
  type ServerNext,
  type ServerRequest,
  type ServerResponse,
} from "./interceptor.ts";
import { answerableError, CORRELATION_TRAILER, failureStatus } from "./status-mapping.ts";
import type { FailureStatus } from "./status-mapping.ts";

/**
 * Who may call what: `isAllowed` answers for one gRPC path and one verified caller. The
 * `AccessRules` of this package and `CallerAllowlist` of `@authplat/spiffe` have this shape.
 */
export interface AccessRuleSet {
  isAllowed(path: string, caller: SpiffeId): boolean;
}

/**
 * Whether the server can answer at all. While `unavailable` is set (a required dependency is
 * down), every RPC fails with that error.
 */
export interface AvailabilityGate {
  readonly unavailable: ServiceError | undefined;
}

/**
 * A failure on its way from the chain to the grpc-js adapter, with the correlation ID of the
 * call it belongs to (the context interceptor knows it, the adapter does not).
 *
 * @internal
 */
export class FailedCall {
  readonly error: unknown;
  readonly correlationId: string;
  constructor(error: unknown, correlationId: string) {
    this.error = error;
    this.correlationId = correlationId;
  }
}

/**
 * The gRPC status for whatever the chain threw: the context interceptor's {@link FailedCall}
 * carries the correlation ID; anything else (a bug outside the chain) gets a fresh one.
 *
 * @internal
 */
export function statusOfFailure(thrown: unknown): FailureStatus {
  return thrown instanceof FailedCall
    ? failureStatus(thrown.error, thrown.correlationId)
    : failureStatus(thrown, randomUUID());
}

function firstString(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === "string" ? value : undefined;
}

/**
 * Runs an iterable's `next` inside `context`, so a streaming handler's body (which resumes in
 * whoever calls `next`) keeps the request's correlation, trace and deadline, and tags its
 * failures with the correlation ID for the adapter.
 */
function streamInContext(
  source: AsyncIterable<unknown>,
  context: RequestContext,
): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      const iterator = runWithContext(context, () => source[Symbol.asyncIterator]());
      const tag = (error: unknown) => {
        throw new FailedCall(error, context.correlationId);
      };
      return {
        next: () => runWithContext(context, () => iterator.next()).catch(tag),
        return: (value?: unknown) =>
          runWithContext(context, () =>
            iterator.return ? iterator.return(value) : Promise.resolve({ done: true, value }),
          ).catch(tag),
      };
    },
  };
}

/**
 * Built-in, first: the request context. Reads the caller's correlation ID and W3C trace
 * context (minting what is missing or malformed), keeps the call's deadline, runs the rest of
 * the chain inside that context, sets `correlationId`, and echoes the ID in the trailers.
 */
export const contextInterceptor: ServerInterceptor = (next) => async (req) => {
  const header = req.header;
  const context = contextFromIncoming(
    {
      correlationId: firstString(header, CORRELATION_ID_HEADER),
      traceparent: firstString(header, TRACEPARENT_HEADER),
      tracestate: firstString(header, TRACESTATE_HEADER),
    },
    req.deadlineMs,
  );
  let response: ServerResponse;
  try {
    response = await runWithContext(context, () =>
      next({ ...req, correlationId: context.correlationId }),
    );
  } catch (error) {
    throw new FailedCall(error, context.correlationId);
  }
  response.trailer.set(CORRELATION_TRAILER, context.correlationId);
  return req.kind === "server_streaming"
    ? { ...response, message: streamInContext(response.message as AsyncIterable<unknown>, context) }
    : response;
};

const CANCELLED = new ServiceError("CANCELLED", "call cancelled");

function logSuccess(logger: Logger, req: ServerRequest, started: number): void {
  logger.debug({ rpc: req.path, status: "OK", ms: performance.now() - started }, "rpc completed");
}

/** Logs a failure and returns what the client is answered. */
function logFailure(
  logger: Logger,
  req: ServerRequest,
  started: number,
  error: unknown,
): ServiceError {
  const answer = answerableError(error);
  const fields = {
    rpc: req.path,
    status: grpc.status[answer.grpcStatus],
    code: answer.code,
    ms: performance.now() - started,
    // A downstream's error is logged whole (its code and words are ours to read, not to send).
    err: error instanceof ServiceError && answer === error ? error.cause : error,
  };
  if (error instanceof ServiceError) logger.info(fields, "rpc failed");
  else logger.error(fields, "rpc failed with an unexpected error");
  return answer;
}

async function* loggedStream(
  source: AsyncIterable<unknown>,
  logger: Logger,
  req: ServerRequest,
  started: number,
): AsyncGenerator<unknown> {
  let logged = false;
  try {
    yield* source;
    logged = true;
    logSuccess(logger, req, started);
  } catch (error) {
    logged = true;
    throw logFailure(logger, req, started, error);
  } finally {
    // Returned early: the client cancelled or the deadline passed.
    if (!logged) logFailure(logger, req, started, req.signal.reason ?? CANCELLED);
  }
}

/**
 * Built-in, after the observers: error normalisation and the access log. Anything thrown
 * that is not a `ServiceError` becomes INTERNAL "internal error" (the original goes to the log
 * only); a downstream's `RemoteCallError` is answered with its boundary code. Writes one line
 * per RPC: debug on success, info on a `ServiceError`, error on anything unexpected.
 */
export function errorInterceptor(logger: Logger): ServerInterceptor {
  return (next) => async (req) => {
    const started = performance.now();
    let response: ServerResponse;
    try {
      response = await next(req);
    } catch (error) {
      throw logFailure(logger, req, started, error);
    }
    if (req.kind === "server_streaming") {
      const message = loggedStream(
        response.message as AsyncIterable<unknown>,
        logger,
        req,
        started,
      );
      return { ...response, message };
    }
    logSuccess(logger, req, started);
    return response;
  };
}

/**
 * The verified SPIFFE ID of a peer certificate (SPIFFE X509-SVID §4-§5: one `spiffe://` URI
 * SAN of the trust domain, a leaf with digital-signature key usage), or UNAUTHENTICATED.
 *
 * @internal
 */
export function callerFromCertificate(der: Buffer | undefined, trustDomain: string): SpiffeId {
  if (der === undefined) {
    throw new ServiceError("UNAUTHENTICATED", "a client certificate is required");
  }
  try {
    return spiffeIdFromCertificate(der, { trustDomain });
  } catch (error) {
    throw new ServiceError("UNAUTHENTICATED", "the client certificate is not a valid SVID", {
      cause: error,
    });
  }
}

/**
 * Key of the connection a request arrived on, carried by its `peerCertificate` reader (see
 * {@link peerCertificateReader}).
 *
 * @internal
 */
export const PEER_CONNECTION: unique symbol = Symbol("authplat.rpc.peer-connection");

/**
 * `ServerRequest.peerCertificate` as the server builds it: reads the peer's DER and, when the
 * transport exposes it, names the connection (an object that lives exactly as long as it).
 *
 * @internal
 */
export type PeerCertificateReader = (() => Buffer | undefined) & {
  readonly [PEER_CONNECTION]?: object;
};

/**
 * Tags `read` with the connection it reads from, so the peer's verified identity can be kept
 * for the life of that connection; `connection` undefined leaves `read` as it is (every call
 * then reads and checks the certificate).
 *
 * @internal
 */
export function peerCertificateReader(
  read: () => Buffer | undefined,
  connection: object | undefined,
): PeerCertificateReader {
  if (connection !== undefined)
    (read as { [PEER_CONNECTION]?: object })[PEER_CONNECTION] = connection;
  return read;
}

/** The outcome of checking one connection's peer certificate, kept for the connection's life. */
interface PeerIdentity {
  readonly trustDomain: string;
  /** The verified caller, or the error every call on this connection fails with. */
  readonly outcome: SpiffeId | ServiceError;
  /** Validity period of the leaf, epoch milliseconds. */
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

/*
 * Keyed by the connection (grpc-js's HTTP/2 session), so an entry goes with its connection. A
 * peer cannot change its certificate within one connection: TLS 1.3 has no renegotiation (RFC 8446
 * §4.6.2 post-handshake authentication is never requested by this server), and Node's HTTP/2
 * refuses TLS 1.2 renegotiation (`disableRenegotiation()` on every session's socket, as RFC 9113
 * §9.2.1 requires: "A deployment of HTTP/2 over TLS 1.2 MUST disable renegotiation"). A client
 * that reconnects, e.g. with a rotated SVID, opens a new session and so gets a new entry.
 */
const identities = new WeakMap<object, PeerIdentity>();
let certificateChecks = 0;

/**
 * How many times a peer certificate was read and checked (not served from the per-connection
 * cache) in this process. For tests.
 *
 * @internal
 */
export function peerCertificateChecks(): number {
  return certificateChecks;
}

function checkPeer(der: Buffer | undefined, trustDomain: string): PeerIdentity {
  certificateChecks++;
  let outcome: SpiffeId | ServiceError;
  try {
    outcome = callerFromCertificate(der, trustDomain);
  } catch (error) {
    if (!(error instanceof ServiceError)) throw error;
    outcome = error;
  }
  if (der === undefined || outcome instanceof ServiceError) {
    return { trustDomain, outcome, notBeforeMs: -Infinity, notAfterMs: Infinity };
  }
  // Parsed without the reflection-heavy X.509 library: only the two dates are needed here.
  const certificate = new X509Certificate(der);
  return {
    trustDomain,
    outcome,
    notBeforeMs: certificate.validFromDate.getTime(),
    notAfterMs: certificate.validToDate.getTime(),
  };
}

/**
 * The verified caller of a request: the SPIFFE ID of its peer certificate (see
 * {@link callerFromCertificate}), checked once per connection when the reader names one and
 * read afresh otherwise; either way the certificate's validity period is checked against
 * `nowMs` on every call, so a connection outliving its client's SVID stops being served.
 *
 * @internal
 */
export function verifiedCaller(
  peerCertificate: PeerCertificateReader,
  trustDomain: string,
  nowMs: number,
): SpiffeId {
  const connection = peerCertificate[PEER_CONNECTION];
  let identity = connection === undefined ? undefined : identities.get(connection);
  if (identity === undefined || identity.trustDomain !== trustDomain) {
    identity = checkPeer(peerCertificate(), trustDomain);
    if (connection !== undefined) identities.set(connection, identity);
  }
  if (identity.outcome instanceof ServiceError) throw identity.outcome;
  // RFC 5280 §4.1.2.5: "The validity period for a certificate is the period of time from
  // notBefore through notAfter, inclusive." The handshake checked it when the connection was
  // made; a long-lived connection must not outlast it.
  if (nowMs > identity.notAfterMs) {
    throw new ServiceError("UNAUTHENTICATED", "the client certificate has expired");
  }
  if (nowMs < identity.notBeforeMs) {
    throw new ServiceError("UNAUTHENTICATED", "the client certificate is not yet valid");
  }
  return identity.outcome;
}

/** Options of {@link peerSvidInterceptor}. */
export interface PeerSvidOptions {
  /** The clock the certificate's validity is checked against, epoch ms; default `Date.now`. */
  readonly now?: () => number;
}

/**
 * Built-in: the peer's SVID. Sets `caller` from the verified client certificate, or fails
 * with UNAUTHENTICATED when there is none, it is not a valid SVID of `trustDomain`, or it is
 * outside its validity period at the time of the call. The certificate is checked once per
 * connection when the server names the connection (see {@link verifiedCaller}).
 */
export function peerSvidInterceptor(
  trustDomain: string,
  options: PeerSvidOptions = {},
): ServerInterceptor {
  const now = options.now ?? Date.now;
  return (next) => async (req) =>
    next({ ...req, caller: verifiedCaller(req.peerCertificate, trustDomain, now()) });
}

/**
 * Built-in: the access rule. Fails with CALLER_NOT_ALLOWED (gRPC PERMISSION_DENIED) unless
 * `rules` allow the verified caller on this path; fails closed (UNAUTHENTICATED) if no caller
 * was verified before it.
 */
export function accessRuleInterceptor(rules: AccessRuleSet): ServerInterceptor {
  return (next) => async (req) => {
    const caller = req.caller;
    if (caller === undefined) {
      throw new ServiceError("UNAUTHENTICATED", "the caller is not authenticated");
    }
    if (!rules.isAllowed(req.path, caller)) {
      throw new ServiceError(
        "CALLER_NOT_ALLOWED",
        `${caller.toString()} may not call ${req.method.name}`,
      );
    }
    return next(req);
  };
}

/**
 * Built-in, after the access rule: refuses every call with the gate's error (UNAVAILABLE with
 * retry pushback) while the service cannot answer.
 */
export function availabilityInterceptor(gate: AvailabilityGate): ServerInterceptor {
  return (next) => async (req) => {
    const unavailable = gate.unavailable;
    if (unavailable !== undefined) throw unavailable;
    return next(req);
  };
}

function encoder(method: DescMethod): (message: unknown) => Buffer {
  const schema = method.output;
  return (message) => Buffer.from(toBinary(schema, create(schema, message as never)));
}

async function* encodedStream(
  source: AsyncIterable<unknown>,
  encode: (message: unknown) => Buffer,
): AsyncGenerator<Buffer> {
  for await (const message of source) yield encode(message);
}

/**
 * Built-in, just before the handler: decodes the request bytes into the method's input
 * message (INVALID_ARGUMENT when they are not one) and encodes the response, or each message
 * of a response stream, into bytes.
 */
export function codecInterceptor(method: DescMethod): ServerInterceptor {
  const encode = encoder(method);
  const input = method.input;
  return (next) => async (req) => {
    let message;
    try {
      message = fromBinary(input, req.message as Uint8Array);
    } catch (error) {
      throw new ServiceError("INVALID_ARGUMENT", "the request message could not be decoded", {
        cause: error,
      });
    }
    const response = await next({ ...req, message });
    const encoded =
      req.kind === "server_streaming"
        ? encodedStream(response.message as AsyncIterable<unknown>, encode)
        : encode(response.message);
    return { message: encoded, trailer: response.trailer };
  };
}

/** A handler as the server calls it, untyped. @internal */
export type UntypedHandler = (request: unknown, context: CallContext) => unknown;

/**
 * The last step: calls the service's handler with its {@link CallContext}.
 *
 * @internal
 */
export function handlerStep(handler: UntypedHandler, logger: Logger): ServerNext {
  return async (req) => {
    const caller = req.caller;
    if (caller === undefined || req.correlationId === undefined) {
      // Only reachable if the built-ins were left out; never serve an unverified caller.
      throw new ServiceError("UNAUTHENTICATED", "the caller is not authenticated");
    }
    const context: CallContext = {
      method: req.path,
      caller,
      correlationId: req.correlationId,
      signal: req.signal,
      logger,
    };
    const result = handler(req.message, context);
    return {
      message: req.kind === "server_streaming" ? result : await result,
      trailer: new grpc.Metadata(),
    };
  };
}

/** What {@link serverPipeline} composes for one method. */
export interface ServerPipelineOptions {
  readonly method: DescMethod;
  readonly handler: UntypedHandler;
  readonly trustDomain: string;
  readonly accessRules: AccessRuleSet;
  readonly gate: AvailabilityGate;
  readonly logger: Logger;
  /** Interceptors that must see every call, denied ones too (metrics, tracing). */
  readonly observers: readonly ServerInterceptor[];
  /** The service's own interceptors; they see `caller` and the raw request bytes. */
  readonly interceptors: readonly ServerInterceptor[];
  /** The clock peer certificates' validity is checked against, epoch ms; default `Date.now`. */
  readonly now?: () => number;
}

/**
 * The server chain of one method, in this order: context, observers, error normalisation
 * and access log, peer SVID, access rule, availability, the service's interceptors, codec,
 * handler. Composed once per method at start-up, so a call allocates only what it carries.
 */
export function serverPipeline(options: ServerPipelineOptions): ServerNext {
  return chain<ServerNext>(
    [
      contextInterceptor,
      ...options.observers,
      errorInterceptor(options.logger),
      peerSvidInterceptor(options.trustDomain, { now: options.now }),
      accessRuleInterceptor(options.accessRules),
      availabilityInterceptor(options.gate),
      ...options.interceptors,
      codecInterceptor(options.method),
    ],
    handlerStep(options.handler, options.logger),
  );
}
