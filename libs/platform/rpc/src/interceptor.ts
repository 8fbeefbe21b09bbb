import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { Metadata } from "@grpc/grpc-js";
import type { SpiffeId } from "@authplat/spiffe";

/**
 * The RPC pipeline, server and client side, as chains of interceptors in the connect-es style:
 * an interceptor takes the next step and returns a step that may look at or replace the request,
 * call `next` (or not), and look at or replace the response or the error.
 *
 * ```ts
 * const timing: ServerInterceptor = (next) => async (req) => {
 *   const started = performance.now();
 *   try { return await next(req); }
 *   finally { histogram.observe({ method: req.path }, performance.now() - started); }
 * };
 * ```
 *
 * Errors travel as thrown values: a step that fails throws (a `ServiceError` for anything
 * meant for the caller), and an interceptor that wants to see failures catches and re-throws.
 * Requests are immutable: an interceptor that adds something passes `{ ...req, caller }` on.
 */

/** Whether a method answers with one message or a stream of them. */
export type RpcKind = "unary" | "server_streaming";

/** What every interceptor, server or client side, learns about the call. */
export interface RpcCallInfo {
  /** The protobuf service of the method. */
  readonly service: DescService;
  /** The protobuf method. */
  readonly method: DescMethod;
  /** The gRPC path, `/auth.token.v1.TokenService/IssueTokenPair`. */
  readonly path: string;
  /** Unary or server streaming. */
  readonly kind: RpcKind;
  /**
   * Absolute deadline in epoch milliseconds; `Infinity` when the call has none. Server side:
   * the caller's `grpc-timeout`; client side: the deadline the call is about to be sent with.
   */
  readonly deadlineMs: number;
  /** Aborts when the call is cancelled or its deadline passes. */
  readonly signal: AbortSignal;
}

/** A call as it travels through the server chain, outermost interceptor first. */
export interface ServerRequest extends RpcCallInfo {
  /** The request metadata as received (treat as read-only). */
  readonly header: Metadata;
  /**
   * The request message: the raw bytes (`Uint8Array`) until the built-in codec interceptor
   * has run, the decoded protobuf-es message after it.
   */
  readonly message: unknown;
  /** The DER of the peer's leaf certificate, read lazily (it is not free); undefined without one. */
  readonly peerCertificate: () => Buffer | undefined;
  /** The verified SPIFFE ID of the caller; set by the built-in peer-SVID interceptor. */
  readonly caller?: SpiffeId;
  /** The request's correlation ID; set by the built-in context interceptor. */
  readonly correlationId?: string;
}

/** What the server chain answers with. */
export interface ServerResponse {
  /**
   * Unary: the response message (an init shape or a message; the codec encodes it). Server
   * streaming: an `AsyncIterable` of such messages, consumed after the chain returns.
   */
  readonly message: unknown;
  /** Trailers to send with the status (the chain may add to them). */
  readonly trailer: Metadata;
}

/** One step of the server chain. */
export type ServerNext = (req: ServerRequest) => Promise<ServerResponse>;

/** A server interceptor: wraps the rest of the chain. */
export type ServerInterceptor = (next: ServerNext) => ServerNext;

/** A call as it travels through the client chain, outermost interceptor first. */
export interface ClientRequest extends RpcCallInfo {
  /** Metadata to send; interceptors may add entries (the built-ins add correlation and trace). */
  readonly header: Metadata;
  /** The request message (init shape or message); the transport encodes it last. */
  readonly message: unknown;
  /** The downstream's name as configured on the client (e.g. `token`), for metrics and breakers. */
  readonly target: string;
}

/** What the client chain answers with. */
export interface ClientResponse {
  /** Unary: the decoded response message. Server streaming: an `AsyncIterable` of them. */
  readonly message: unknown;
  /** Trailers received (empty for streams until they end). */
  readonly trailer: Metadata;
}

/** One step of the client chain. */
export type ClientNext = (req: ClientRequest) => Promise<ClientResponse>;

/** A client interceptor: wraps the rest of the chain. */
export type ClientInterceptor = (next: ClientNext) => ClientNext;

/**
 * Composes interceptors around `last`: the first interceptor of the list is the outermost, so it
 * sees the request first and the response last.
 */
export function chain<Next>(interceptors: readonly ((next: Next) => Next)[], last: Next): Next {
  let next = last;
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next);
  return next;
}
