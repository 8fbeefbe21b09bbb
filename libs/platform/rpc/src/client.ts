import * as grpc from "@grpc/grpc-js";
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { outgoingHeaders } from "@authplat/correlation";
import type { SpiffeId } from "@authplat/spiffe";
import { clientCredentials, type SvidFiles } from "./credentials.ts";
import { methodPath } from "./handlers.ts";
import { RemoteCallError } from "./status-mapping.ts";

/** Per-call options. */
export interface CallOptions {
  /** Milliseconds until the call fails with DEADLINE_EXCEEDED; default from the client. */
  readonly timeoutMs?: number;
  /** Cancels the call. */
  readonly signal?: AbortSignal;
}

type MethodsOf<S extends DescService> = S extends { method: infer M } ? M : never;

/** A typed client: one promise-returning function per unary method of the service. */
export type RpcClient<S extends DescService> = {
  [K in keyof MethodsOf<S>]: MethodsOf<S>[K] extends {
    input: infer I extends DescMessage;
    output: infer O extends DescMessage;
  }
    ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
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
}

/**
 * Creates a client for `service` over mutual TLS. Every call carries the current correlation
 * ID and W3C trace context, and every failure is a {@link RemoteCallError} with the
 * platform's error code.
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
  });
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 5_000;
  const client: Record<string, unknown> = { close: () => channel.close() };
  for (const method of service.methods) {
    if (method.methodKind !== "unary") continue;
    const path = methodPath(service, method.name);
    client[method.localName] = (
      request: MessageInitShape<DescMessage>,
      callOptions?: CallOptions,
    ) =>
      new Promise((resolve, reject) => {
        const metadata = new grpc.Metadata();
        for (const [key, value] of Object.entries(outgoingHeaders())) metadata.set(key, value);
        const deadline = Date.now() + (callOptions?.timeoutMs ?? defaultTimeoutMs);
        const call = channel.makeUnaryRequest(
          path,
          (value: Uint8Array) => Buffer.from(value),
          (bytes: Buffer) => fromBinary(method.output, bytes),
          toBinary(method.input, create(method.input, request)),
          metadata,
          { deadline },
          (error, response) => (error ? reject(new RemoteCallError(error)) : resolve(response)),
        );
        callOptions?.signal?.addEventListener("abort", () => call.cancel(), { once: true });
      });
  }
  return client as RpcClient<S>;
}
