import * as grpc from "@grpc/grpc-js";
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { currentContext, outgoingHeaders } from "@authplat/correlation";
import type { SpiffeId } from "@authplat/spiffe";
import { clientCredentials, type SvidFiles } from "./credentials.ts";
import { methodPath } from "./handlers.ts";
import {
  chain,
  type ClientInterceptor,
  type ClientNext,
  type ClientRequest,
  type ClientResponse,
} from "./interceptor.ts";
import { RemoteCallError } from "./status-mapping.ts";

/** Per-call options. */
export interface CallOptions {
  /**
   * Milliseconds until the call fails with DEADLINE_EXCEEDED; default from the client.
   * `Infinity` sends no deadline of its own (for long-lived streams); a call made while serving
   * a request still gets at most the time that request has left.
   */
  readonly timeoutMs?: number;
  /** Cancels the call. */
  readonly signal?: AbortSignal;
}

type MethodsOf<S extends DescService> = S extends { method: infer M } ? M : never;

/**
 * A typed client: per unary method a function returning a promise of the response, per
 * server-streaming method a function returning an `AsyncIterable` of the responses (the call
 * starts when iteration does; breaking out of the loop cancels it).
 */
export type RpcClient<S extends DescService> = {
  [K in keyof MethodsOf<S>]: MethodsOf<S>[K] extends {
    input: infer I extends DescMessage;
    output: infer O extends DescMessage;
    methodKind: infer Kind;
  }
    ? Kind extends "server_streaming"
      ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
      : (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
    : never;
} & {
  /** Closes the channel. */
  close(): void;
};

/** Options of {@link createRpcClient}. */
export interface RpcClientOptions {
  /** `host:port` of the server. */
  readonly address: string;
  /** This workload's SVID and trust bundle, presented to the server. */
  readonly tls: SvidFiles;
  /** The SPIFFE ID the server must present; anything else fails the handshake. */
  readonly serverId: SpiffeId;
  /** Default deadline of each call in milliseconds; default 5000. */
  readonly defaultTimeoutMs?: number;
  /**
   * The downstream's name for metrics, logs and breakers (`ClientRequest.target`); default the
   * service's fully qualified name.
   */
  readonly target?: string;
  /**
   * Interceptors around each call, first outermost. They run after the context headers are
   * set and before the deadline check and the transport.
   */
  readonly interceptors?: readonly ClientInterceptor[];
}

/**
 * Built-in, first: puts the current request's correlation ID and W3C trace context on the
 * call (`x-correlation-id`, `traceparent`, `tracestate`), or fresh ones outside a request.
 * Headers an outer caller already set are kept.
 */
export const contextHeadersInterceptor: ClientInterceptor = (next) => (req) => {
  const header = req.header;
  for (const [key, value] of Object.entries(outgoingHeaders())) {
    if (header.get(key).length === 0) header.set(key, value);
  }
  return next(req);
};

/**
 * Built-in, before the transport: a call whose deadline has already passed (the request being
 * served ran out of time) fails at once, without being sent, as DEADLINE_EXCEEDED
 * (`grpcCode` and `remoteCode`; its own `code` is UNAVAILABLE, see {@link RemoteCallError}).
 */
export const deadlineInterceptor: ClientInterceptor = (next) => (req) => {
  if (req.deadlineMs <= Date.now()) {
    return Promise.reject(
      new RemoteCallError({
        code: grpc.status.DEADLINE_EXCEEDED,
        details: "deadline exceeded before the call was sent",
        metadata: new grpc.Metadata(),
      }),
    );
  }
  return next(req);
};

/**
 * The deadline of an outgoing call: its own timeout, but never later than the deadline of the
 * request being served (gRPC deadline propagation).
 */
function deadlineFor(timeoutMs: number): number {
  const own = Date.now() + timeoutMs;
  const inherited = currentContext()?.deadlineMs;
  return inherited !== undefined && inherited < own ? inherited : own;
}

const NEVER = new AbortController().signal;

function encode(method: DescMethod, message: unknown): Buffer {
  return Buffer.from(toBinary(method.input, create(method.input, message as never)));
}

const passBytes = (value: Buffer) => value;

/** Reads a response stream, turning a failed status into a {@link RemoteCallError}. */
async function* readStream(
  call: grpc.ClientReadableStream<unknown>,
  trailer: grpc.Metadata,
): AsyncGenerator<unknown> {
  let ended = false;
  call.once("status", (status: grpc.StatusObject) => {
    for (const [key, value] of Object.entries(status.metadata.getMap())) trailer.set(key, value);
  });
  try {
    for await (const message of call) yield message;
    ended = true;
  } catch (error) {
    ended = true;
    throw new RemoteCallError(error as grpc.ServiceError);
  } finally {
    // The consumer stopped early: tell the server.
    if (!ended) call.cancel();
  }
}

/** The transport, last: sends the call over the channel and decodes what comes back. */
function transport(channel: grpc.Client): ClientNext {
  return (req) => {
    const method = req.method;
    const decode = (bytes: Buffer) => fromBinary(method.output, bytes);
    const options: grpc.CallOptions = { deadline: req.deadlineMs };
    const payload = encode(method, req.message);
    if (req.kind === "server_streaming") {
      const call = channel.makeServerStreamRequest(
        req.path,
        passBytes,
        decode,
        payload,
        req.header,
        options,
      );
      if (req.signal !== NEVER) {
        const signal = req.signal;
        const cancel = () => call.cancel();
        signal.addEventListener("abort", cancel, { once: true });
        call.once("status", () => signal.removeEventListener("abort", cancel));
      }
      const trailer = new grpc.Metadata();
      return Promise.resolve({ message: readStream(call, trailer), trailer });
    }
    return new Promise<ClientResponse>((resolve, reject) => {
      let message: unknown;
      const call = channel.makeUnaryRequest(
        req.path,
        passBytes,
        decode,
        payload,
        req.header,
        options,
        (error, response) => {
          if (error) reject(new RemoteCallError(error));
          else message = response;
        },
      );
      // grpc-js calls back first and emits the status (with the trailers) right after.
      call.once("status", (status: grpc.StatusObject) => {
        if (status.code === grpc.status.OK) resolve({ message, trailer: status.metadata });
      });
      if (req.signal !== NEVER) {
        const signal = req.signal;
        const cancel = () => call.cancel();
        signal.addEventListener("abort", cancel, { once: true });
        call.once("status", () => signal.removeEventListener("abort", cancel));
      }
    });
  };
}

/**
 * Creates a client for `service` over mutual TLS. Each call runs through a chain: the
 * context headers (correlation ID, W3C trace context), the given `interceptors`, the deadline
 * check, the transport. Every call has a deadline (`defaultTimeoutMs`, 5 s unless set), cut
 * down to what the request being served has left. Every failure is a
 * {@link RemoteCallError}.
 */
export async function createRpcClient<S extends DescService>(
  service: S,
  options: RpcClientOptions,
): Promise<RpcClient<S>> {
  const { credentials } = await clientCredentials(options.tls, options.serverId);
  const channel = new grpc.Client(options.address, credentials, {
    // The authority is not a DNS name in a SPIFFE world; identity is checked by URI SAN.
    "grpc.ssl_target_name_override": "spiffe",
    "grpc.default_authority": options.serverId.trustDomain,
    // grpc-js backs off reconnects up to 120 s by default, so a downstream that comes back could
    // stay unused for half a minute or more; inside one platform, 5 s is plenty of politeness.
    "grpc.max_reconnect_backoff_ms": 5_000,
  });
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 5_000;
  const target = options.target ?? service.typeName;
  const pipeline = chain<ClientNext>(
    [contextHeadersInterceptor, ...(options.interceptors ?? []), deadlineInterceptor],
    transport(channel),
  );
  const client: Record<string, unknown> = { close: () => channel.close() };
  for (const method of service.methods) {
    const kind = method.methodKind;
    if (kind !== "unary" && kind !== "server_streaming") continue;
    const path = methodPath(service, method.name);
    const request = (message: unknown, callOptions: CallOptions | undefined): ClientRequest => ({
      service,
      method,
      path,
      kind,
      deadlineMs: deadlineFor(callOptions?.timeoutMs ?? defaultTimeoutMs),
      // The caller's signal only: grpc-js enforces `deadlineMs` itself, and a timer per call
      // just to abort a signal nobody may read would cost every call.
      signal: callOptions?.signal ?? NEVER,
      header: new grpc.Metadata(),
      message,
      target,
    });
    client[method.localName] =
      kind === "unary"
        ? async (message: unknown, callOptions?: CallOptions) =>
            (await pipeline(request(message, callOptions))).message
        : (message: unknown, callOptions?: CallOptions): AsyncIterable<unknown> => ({
            async *[Symbol.asyncIterator]() {
              const response = await pipeline(request(message, callOptions));
              yield* response.message as AsyncIterable<unknown>;
            },
          });
  }
  return client as RpcClient<S>;
}
