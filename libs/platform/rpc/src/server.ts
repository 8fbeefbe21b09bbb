import { once } from "node:events";
import * as grpc from "@grpc/grpc-js";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { ServiceError } from "@authplat/errors";
import { PortInUseError, type Logger } from "@authplat/observability";
import type { SpiffeId } from "@authplat/spiffe";
import { HealthImplementation } from "grpc-health-check";
import { serverCredentials, type SvidFiles } from "./credentials.ts";
import type { ServiceRegistration } from "./handlers.ts";
import { methodPath } from "./handlers.ts";
import type {
  RpcKind,
  ServerInterceptor,
  ServerNext,
  ServerRequest,
  ServerResponse,
} from "./interceptor.ts";
import { addReflection } from "./reflection.ts";
import {
  peerCertificateReader,
  serverPipeline,
  statusOfFailure,
  type AccessRuleSet,
  type UntypedHandler,
  verifiedCaller,
} from "./server-chain.ts";
import type { FailureStatus } from "./status-mapping.ts";

/** Options of {@link startRpcServer}. */
export interface RpcServerOptions {
  /** Short service name for logs, e.g. `token`. */
  readonly name: string;
  /** Interface to bind, e.g. `127.0.0.1` or `0.0.0.0`. */
  readonly host: string;
  /** Port to bind; 0 picks a free one (tests). */
  readonly port: number;
  /** This workload's SVID and trust bundle. */
  readonly tls: SvidFiles;
  /** The services to serve. */
  readonly services: readonly ServiceRegistration[];
  readonly logger: Logger;
  /** How long in-flight calls may take to finish on shutdown before they are cancelled. */
  readonly shutdownGraceMs: number;
  /**
   * Who may call each RPC: the service's rules (`loadServiceAccessRules`), or in tests
   * `staticAccessRules` / `sameCallersForEveryMethod`. Required: a method without a rule refuses
   * every caller, and a server without rules does not start.
   */
  readonly accessRules: AccessRuleSet;
  /**
   * Interceptors that see every call, denied ones included (metrics, tracing); they run right
   * after the request context is set up, before errors are normalised.
   */
  readonly observers?: readonly ServerInterceptor[];
  /** The service's own interceptors; they run after the access rule and see `caller`. */
  readonly interceptors?: readonly ServerInterceptor[];
}

/** A running server. */
export interface RpcServer {
  /** The bound port. */
  readonly port: number;
  /** The SPIFFE ID the server presents. */
  readonly spiffeId: SpiffeId;
  /** Reports SERVING on grpc.health.v1 for the server and each service; call once ready. */
  markServing(): void;
  /**
   * While `error` is set (a required dependency is down), health reports NOT_SERVING and every
   * RPC fails with it (health itself still answers); `undefined` lifts that again.
   */
  setUnavailable(error: ServiceError | undefined): void;
  /**
   * Reports NOT_SERVING, stops accepting calls, lets in-flight calls finish for the grace
   * period, then cancels what is left. Safe to call more than once.
   */
  shutdown(): Promise<void>;
}

const CANCELLED = new ServiceError("CANCELLED", "call cancelled");
const DEADLINE_EXCEEDED = new ServiceError("DEADLINE_EXCEEDED", "deadline exceeded");

/** What the adapter knows about a method before any call arrives. */
interface MethodInfo {
  readonly service: DescService;
  readonly method: DescMethod;
  readonly path: string;
  readonly kind: RpcKind;
}

type ServerCall = grpc.ServerUnaryCall<Buffer, Buffer> | grpc.ServerWritableStream<Buffer, Buffer>;

function deadlineOf(call: ServerCall): number {
  const deadline = call.getDeadline();
  return typeof deadline === "number" ? deadline : deadline.getTime();
}

/**
 * A client whose own deadline fires cancels the stream a little before this server's copy of the
 * deadline passes (the server counts `grpc-timeout` from when the request arrived), so a cancel
 * this close to the deadline is taken for the deadline.
 */
const DEADLINE_SLACK_MS = 100;

/** The signal a handler sees: aborts when the client cancels or the deadline passes. */
function callSignal(call: ServerCall, deadlineMs: number): AbortSignal {
  const abort = new AbortController();
  call.once("cancelled", () =>
    abort.abort(Date.now() >= deadlineMs - DEADLINE_SLACK_MS ? DEADLINE_EXCEEDED : CANCELLED),
  );
  return abort.signal;
}

/**
 * The HTTP/2 session a call arrived on, or undefined when it cannot be reached. grpc-js has no
 * public API for it; in 1.14 a handler's call object holds the intercepting call in `call`,
 * wrapped by one `nextCall` per grpc-js server interceptor, down to the base call whose
 * `stream.session` is the session `getAuthContext()` reads the peer certificate from. The peer
 * identity is kept per session (see `verifiedCaller`); when grpc-js is shaped otherwise this
 * answers undefined and the certificate is read and checked on every call, as before.
 *
 * @internal
 */
export function connectionOf(call: object): object | undefined {
  let layer: unknown = (call as { call?: unknown }).call;
  for (let depth = 0; depth < 16 && typeof layer === "object" && layer !== null; depth++) {
    const stream: unknown = (layer as { stream?: unknown }).stream;
    if (typeof stream === "object" && stream !== null) {
      const session: unknown = (stream as { session?: unknown }).session;
      return typeof session === "object" && session !== null ? session : undefined;
    }
    layer = (layer as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

/** Reads the peer's leaf certificate as grpc-js exposes it (not free: see `connectionOf`). */
function peerCertificateOf(call: ServerCall): () => Buffer | undefined {
  return peerCertificateReader(
    () => call.getAuthContext().sslPeerCertificate?.raw,
    connectionOf(call),
  );
}

function serverRequest(info: MethodInfo, call: ServerCall): ServerRequest {
  const deadlineMs = deadlineOf(call);
  return {
    service: info.service,
    method: info.method,
    path: info.path,
    kind: info.kind,
    deadlineMs,
    signal: callSignal(call, deadlineMs),
    header: call.metadata,
    message: call.request,
    // Lazy and checked once per connection: reading the peer certificate is not free.
    peerCertificate: peerCertificateOf(call),
  };
}

/** The grpc-js adapter of a unary method: runs the chain, answers with its result or error. */
function unaryAdapter(
  info: MethodInfo,
  pipeline: ServerNext,
): grpc.handleUnaryCall<Buffer, Buffer> {
  return (call, callback) => {
    pipeline(serverRequest(info, call)).then(
      (response) => callback(null, response.message as Buffer, response.trailer),
      (thrown: unknown) => callback(statusOfFailure(thrown)),
    );
  };
}

/** How a stream ended by a server shutdown answers: the client should reconnect elsewhere. */
const SHUTTING_DOWN = new ServiceError("UNAVAILABLE", "the server is shutting down; reconnect", {
  retryAfterMs: 0,
});

/**
 * Writes a response stream as the client reads it: when `write` reports a full buffer, the
 * next message waits for 'drain'; cancellation or the deadline stops the iteration (which
 * returns the handler's generator); the end sends OK with the trailers, a failure its status.
 * `signal` may also abort because the server shuts down (it combines the call's own signal,
 * `callSignal`, with the server's): the stream then ends UNAVAILABLE at once, so that a
 * long-lived stream neither holds the shutdown for its whole grace period nor ends as if the
 * feed were complete.
 *
 * @internal
 */
export async function writeStream(
  call: grpc.ServerWritableStream<Buffer, Buffer>,
  pending: Promise<ServerResponse>,
  signal: AbortSignal,
  callSignal: AbortSignal = signal,
): Promise<void> {
  try {
    const response = await pending;
    for await (const chunk of response.message as AsyncIterable<Buffer>) {
      if (signal.aborted) break;
      if (!call.write(chunk)) {
        await once(call, "drain", { signal }).catch(() => undefined);
        if (signal.aborted) break;
      }
    }
    // A cancelled call is over already: grpc-js has answered CANCELLED or DEADLINE_EXCEEDED.
    if (callSignal.aborted) return;
    if (signal.aborted) call.emit("error", statusOfFailure(SHUTTING_DOWN));
    else call.end(response.trailer);
  } catch (thrown) {
    if (callSignal.aborted) return;
    call.emit("error", statusOfFailure(signal.aborted ? SHUTTING_DOWN : thrown));
  }
}

/** The grpc-js adapter of a server-streaming method. */
function streamAdapter(
  info: MethodInfo,
  pipeline: ServerNext,
  shuttingDown: AbortSignal,
): grpc.handleServerStreamingCall<Buffer, Buffer> {
  return (call) => {
    const request = serverRequest(info, call);
    const signal = AbortSignal.any([request.signal, shuttingDown]);
    void writeStream(call, pipeline({ ...request, signal }), signal, request.signal);
  };
}

/** Passes bytes through untouched: decoding is the codec interceptor's, with our error model. */
const identity = (value: Buffer) => value;

function serviceDefinition(
  registration: ServiceRegistration,
  pipelineOf: (method: DescMethod, handler: UntypedHandler) => ServerNext,
  shuttingDown: AbortSignal,
): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  const handlers = registration.handlers as Record<string, UntypedHandler | undefined>;
  for (const method of registration.service.methods) {
    const kind = method.methodKind;
    if (kind !== "unary" && kind !== "server_streaming") {
      throw new Error(`${method.name}: only unary and server-streaming methods are supported`);
    }
    const handler = handlers[method.localName];
    if (handler === undefined) {
      throw new Error(`${registration.service.typeName}.${method.name} has no handler`);
    }
    const info: MethodInfo = {
      service: registration.service,
      method,
      path: methodPath(registration.service, method.name),
      kind,
    };
    definition[method.name] = {
      path: info.path,
      requestStream: false,
      responseStream: kind === "server_streaming",
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
      originalName: method.localName,
    };
    const pipeline = pipelineOf(method, handler);
    implementation[method.name] =
      kind === "unary" ? unaryAdapter(info, pipeline) : streamAdapter(info, pipeline, shuttingDown);
  }
  return { definition, implementation };
}

/**
 * Stops a start without access rules. The type requires them; this is for callers the type
 * does not reach (JavaScript, casts), so that no server ever serves without its rules.
 */
function requireAccessRules(accessRules: AccessRuleSet | undefined): AccessRuleSet {
  if (typeof accessRules?.isAllowed !== "function") {
    throw new Error(
      "accessRules is required: pass the service's rules (loadServiceAccessRules), or in tests " +
        "staticAccessRules or sameCallersForEveryMethod; a registration carries no callers",
    );
  }
  return accessRules;
}

/**
 * Health and reflection are plain grpc-js services outside the chain; this makes each of their
 * calls present a valid SVID of the trust domain first (UNAUTHENTICATED otherwise), as every
 * RPC of the chain must.
 */
function svidCheckingServer(server: grpc.Server, trustDomain: string): grpc.Server {
  const guard =
    (handler: (...args: never[]) => unknown) =>
    (call: ServerCall, callback?: (status: FailureStatus) => void) => {
      try {
        verifiedCaller(peerCertificateOf(call), trustDomain, Date.now());
      } catch (error) {
        const status = statusOfFailure(error);
        if (callback === undefined) call.emit("error", status);
        else callback(status);
        return;
      }
      (handler as (call: ServerCall, callback?: unknown) => void)(call, callback);
    };
  return {
    addService(
      definition: grpc.ServiceDefinition,
      implementation: grpc.UntypedServiceImplementation,
    ) {
      const guarded: grpc.UntypedServiceImplementation = {};
      for (const [name, handler] of Object.entries(implementation)) {
        guarded[name] = guard(handler as never) as grpc.UntypedHandleCall;
      }
      server.addService(definition, guarded);
    },
  } as grpc.Server;
}

/**
 * Starts a gRPC server that accepts only mutually authenticated TLS and runs every call
 * through the RPC pipeline (see {@link serverPipeline}): request context, observers, error
 * mapping and access log, peer SVID, access rule, availability, the service's interceptors,
 * codec, handler. It also serves grpc.health.v1 (NOT_SERVING until
 * {@link RpcServer.markServing}) and server reflection, both to valid SVIDs of the trust
 * domain only.
 *
 * @throws {Error} `accessRules is required: ...` when `options.accessRules` is missing or has no
 *   `isAllowed`, before anything is bound.
 */
export async function startRpcServer(options: RpcServerOptions): Promise<RpcServer> {
  const accessRules = requireAccessRules(options.accessRules);
  const { credentials, spiffeId } = await serverCredentials(options.tls);
  const trustDomain = options.tls.trustDomain;
  const server = new grpc.Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });
  const serviceNames = options.services.map((s) => s.service.typeName);
  const health = new HealthImplementation(
    Object.fromEntries(["", ...serviceNames].map((name) => [name, "NOT_SERVING"])),
  );
  const guarded = svidCheckingServer(server, trustDomain);
  health.addToServer(guarded);
  const gate: { unavailable: ServiceError | undefined } = { unavailable: undefined };
  // Aborted when shutdown starts: open response streams end then instead of at the grace's end.
  const shutdownStarted = new AbortController();
  for (const registration of options.services) {
    const { definition, implementation } = serviceDefinition(
      registration,
      (method, handler) =>
        serverPipeline({
          method,
          handler,
          trustDomain,
          accessRules,
          gate,
          logger: options.logger,
          observers: options.observers ?? [],
          interceptors: options.interceptors ?? [],
        }),
      shutdownStarted.signal,
    );
    server.addService(definition, implementation);
  }
  addReflection(
    guarded,
    options.services.map((s) => s.service),
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${options.host}:${options.port}`, credentials, (error, bound) => {
      if (error === null) resolve(bound);
      // grpc-js reports a taken port as "No address added ... EADDRINUSE".
      else if (error.message.includes("EADDRINUSE")) {
        reject(
          new PortInUseError("GRPC_PORT", `${options.host}:${options.port}`, { cause: error }),
        );
      } else reject(error);
    });
  });
  let stopping: Promise<void> | undefined;
  let serving = false;
  let draining = false;
  const report = () => {
    const status =
      serving && gate.unavailable === undefined && !draining ? "SERVING" : "NOT_SERVING";
    for (const name of ["", ...serviceNames]) health.setStatus(name, status);
  };
  return {
    port,
    spiffeId,
    markServing: () => {
      serving = true;
      report();
    },
    setUnavailable: (error) => {
      gate.unavailable = error;
      report();
    },
    shutdown: () => {
      draining = true;
      report();
      shutdownStarted.abort(SHUTTING_DOWN);
      stopping ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), options.shutdownGraceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return stopping;
    },
  };
}
