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
 * The implementation of a protobuf service: one async function per unary method, keyed by the
 * method's local name (`issueTokenPair`). A handler returns the response (or an init shape of
 * it) or throws a `ServiceError`.
 */
export type ServiceHandlers<S extends DescService> = {
  [K in keyof MethodsOf<S>]: MethodsOf<S>[K] extends {
    input: infer I extends DescMessage;
    output: infer O extends DescMessage;
  }
    ? (request: MessageShape<I>, context: CallContext) => Promise<MessageInitShape<O>>
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
  readonly handlers: Readonly<
    Record<string, (request: never, context: CallContext) => Promise<unknown>>
  >;
  readonly allow: Readonly<Record<string, readonly string[]>>;
}

/** Bundles a service's handlers and per-method caller allowlist, with their types checked. */
export function defineService<S extends DescService>(
  service: S,
  handlers: ServiceHandlers<S>,
  allow: MethodAllowlist<S>,
): ServiceRegistration {
  return { service, handlers, allow } as unknown as ServiceRegistration;
}

/** The gRPC path of a method. */
export function methodPath(service: DescService, methodName: string): string {
  return `/${service.typeName}/${methodName}`;
}

/** An allowlist giving every method of `service` the same callers. */
export function sameCallersForAll<S extends DescService>(
  service: S,
  callers: readonly string[],
): MethodAllowlist<S> {
  return Object.fromEntries(
    service.methods.map((method) => [method.localName, callers]),
  ) as unknown as MethodAllowlist<S>;
}
