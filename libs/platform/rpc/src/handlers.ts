import type { DescMessage, DescService, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { SpiffeId } from "@authplat/spiffe";
import type { Logger } from "@authplat/observability";

/** What a handler knows about the call besides the request message. */
export interface CallContext {
  /** Fully qualified method path, e.g. `/auth.token.v1.TokenService/IssueTokenPair`. */
  readonly method: string;
  /** The caller's SPIFFE ID, taken from its verified client certificate. */
  readonly caller: SpiffeId;
  /** The request's correlation ID. */
  readonly correlationId: string;
  /** Aborts when the client cancels or the deadline passes. */
  readonly signal: AbortSignal;
  /** Logger bound to this call. */
  readonly logger: Logger;
}

type MethodsOf<S extends DescService> = S extends { method: infer M } ? M : never;

/**
 * The implementation of a protobuf service: one function per method, keyed by the method's
 * local name (`issueTokenPair`). A unary handler resolves to the response (or an init shape of
 * it); a server-streaming handler returns an `AsyncIterable` of them (an `async function*`),
 * which the server writes as the client reads, and which must stop when `context.signal`
 * aborts. Either fails by throwing a `ServiceError`.
 */
export type ServiceHandlers<S extends DescService> = {
  [K in keyof MethodsOf<S>]: MethodsOf<S>[K] extends {
    input: infer I extends DescMessage;
    output: infer O extends DescMessage;
    methodKind: infer Kind;
  }
    ? Kind extends "server_streaming"
      ? (request: MessageShape<I>, context: CallContext) => AsyncIterable<MessageInitShape<O>>
      : (request: MessageShape<I>, context: CallContext) => Promise<MessageInitShape<O>>
    : never;
};

/**
 * A service to serve: its descriptor and its handlers. Built with {@link defineService}, which
 * checks the types; the server reads it untyped. Who may call each method is not part of it: the
 * server's `accessRules` (access-rules.ts) say so for every service it serves.
 */
export interface ServiceRegistration {
  readonly service: DescService;
  readonly handlers: Readonly<Record<string, (request: never, context: CallContext) => unknown>>;
}

/** Bundles a service's handlers, with their types checked. Who may call them: `accessRules`. */
export function defineService<S extends DescService>(
  service: S,
  handlers: ServiceHandlers<S>,
): ServiceRegistration {
  return { service, handlers } as unknown as ServiceRegistration;
}

/** The gRPC path of a method. */
export function methodPath(service: DescService, methodName: string): string {
  return `/${service.typeName}/${methodName}`;
}
