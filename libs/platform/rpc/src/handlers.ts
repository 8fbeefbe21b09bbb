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

/** Caller allowlist of a service: method local name → SPIFFE IDs that may call it. */
export type MethodAllowlist<S extends DescService> = {
  readonly [K in keyof MethodsOf<S>]: readonly string[];
};

/**
 * A service to serve: its descriptor, its handlers and who may call each method. Built with
 * {@link defineService}, which checks the types; the server reads it untyped.
 */
export interface ServiceRegistration {
  readonly service: DescService;
  readonly handlers: Readonly<Record<string, (request: never, context: CallContext) => unknown>>;
  /** @deprecated Being replaced by `accessRules` (access-rules.ts); only servers started without them read it. */
  readonly allow?: Readonly<Record<string, readonly string[]>>;
}

/** Bundles a service's handlers, with their types checked. Who may call them: `accessRules`. */
export function defineService<S extends DescService>(
  service: S,
  handlers: ServiceHandlers<S>,
  allow?: MethodAllowlist<S>,
): ServiceRegistration {
  return { service, handlers, allow } as unknown as ServiceRegistration;
}

/** The gRPC path of a method. */
export function methodPath(service: DescService, methodName: string): string {
  return `/${service.typeName}/${methodName}`;
}

/**
 * An allowlist giving every method of `service` the same callers.
 *
 * @deprecated Use `sameCallersForEveryMethod` (access-rules.ts) as the server's `accessRules`.
 */
export function sameCallersForAll<S extends DescService>(
  service: S,
  callers: readonly string[],
): MethodAllowlist<S> {
  return Object.fromEntries(
    service.methods.map((method) => [method.localName, callers]),
  ) as unknown as MethodAllowlist<S>;
}
