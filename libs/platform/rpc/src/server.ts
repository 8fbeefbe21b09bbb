import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMethod } from "@bufbuild/protobuf";
import { contextFromIncoming, runWithContext, type RequestContext } from "@authplat/correlation";
import { ServiceError } from "@authplat/errors";
import type { Logger } from "@authplat/observability";
import { CallerAllowlist, spiffeIdFromCertificate, type SpiffeId } from "@authplat/spiffe";
import { HealthImplementation } from "grpc-health-check";
import { serverCredentials, type SvidFiles } from "./credentials.ts";
import type { CallContext, ServiceRegistration } from "./handlers.ts";
import { methodPath } from "./handlers.ts";
import { addReflection } from "./reflection.ts";
import { CORRELATION_TRAILER, failureStatus } from "./status-mapping.ts";

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
   * Reports NOT_SERVING, stops accepting calls, lets in-flight calls finish for the grace
   * period, then cancels what is left. Safe to call more than once.
   */
  shutdown(): Promise<void>;
}

type UnaryHandler = (
  call: grpc.ServerUnaryCall<Buffer, Buffer>,
  callback: grpc.sendUnaryData<Buffer>,
) => void;

interface MethodRuntime {
  readonly path: string;
  readonly method: DescMethod;
  readonly allowlist: CallerAllowlist;
  readonly trustDomain: string;
  readonly logger: Logger;
  readonly invoke: (request: unknown, context: CallContext) => Promise<unknown>;
}

function firstString(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === "string" ? value : undefined;
}

function callerOf(call: grpc.ServerUnaryCall<Buffer, Buffer>, trustDomain: string): SpiffeId {
  const certificate = call.getAuthContext().sslPeerCertificate;
  if (certificate?.raw === undefined) {
    throw new ServiceError("UNAUTHENTICATED", "a client certificate is required");
  }
  try {
    return spiffeIdFromCertificate(certificate.raw, { trustDomain });
  } catch (error) {
    throw new ServiceError("UNAUTHENTICATED", "the client certificate is not a valid SVID", {
      cause: error,
    });
  }
}

async function handleUnary(
  runtime: MethodRuntime,
  call: grpc.ServerUnaryCall<Buffer, Buffer>,
  context: RequestContext,
): Promise<Buffer> {
  const caller = callerOf(call, runtime.trustDomain);
  if (!runtime.allowlist.isAllowed(runtime.path, caller)) {
    throw new ServiceError(
      "CALLER_NOT_ALLOWED",
      `${caller.toString()} may not call ${runtime.method.name}`,
    );
  }
  let request;
  try {
    request = fromBinary(runtime.method.input, call.request);
  } catch (error) {
    throw new ServiceError("INVALID_ARGUMENT", "the request message could not be decoded", {
      cause: error,
    });
  }
  const abort = new AbortController();
  const onCancelled = () => abort.abort(new ServiceError("CANCELLED", "call cancelled"));
  call.once("cancelled", onCancelled);
  let response;
  try {
    response = await runtime.invoke(request, {
      method: runtime.path,
      caller,
      correlationId: context.correlationId,
      signal: abort.signal,
      logger: runtime.logger,
    });
  } finally {
    call.off("cancelled", onCancelled);
  }
  const message = create(runtime.method.output, response as never);
  return Buffer.from(toBinary(runtime.method.output, message));
}

function unaryHandler(runtime: MethodRuntime): UnaryHandler {
  return (call, callback) => {
    const started = process.hrtime.bigint();
    const context = contextFromIncoming({
      correlationId: firstString(call.metadata, "x-correlation-id"),
      traceparent: firstString(call.metadata, "traceparent"),
      tracestate: firstString(call.metadata, "tracestate"),
    });
    runWithContext(context, () => {
      handleUnary(runtime, call, context).then(
        (reply) => {
          const trailer = new grpc.Metadata();
          trailer.set(CORRELATION_TRAILER, context.correlationId);
          runtime.logger.debug(
            { rpc: runtime.path, status: "OK", ms: elapsedMs(started) },
            "rpc completed",
          );
          callback(null, reply, trailer);
        },
        (error: unknown) => {
          const status = failureStatus(error, context.correlationId);
          const fields = {
            rpc: runtime.path,
            status: grpc.status[status.code],
            code: error instanceof ServiceError ? error.code : "INTERNAL",
            ms: elapsedMs(started),
            err: error instanceof ServiceError ? error.cause : error,
          };
          if (error instanceof ServiceError) runtime.logger.info(fields, "rpc failed");
          else runtime.logger.error(fields, "rpc failed with an unexpected error");
          callback(status);
        },
      );
    });
  };
}

function elapsedMs(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function serviceDefinition(
  registration: ServiceRegistration,
  trustDomain: string,
  logger: Logger,
): { definition: grpc.ServiceDefinition; implementation: grpc.UntypedServiceImplementation } {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  const paths: Record<string, readonly string[]> = {};
  const handlers = registration.handlers as Record<string, MethodRuntime["invoke"] | undefined>;
  const allow = registration.allow as Record<string, readonly string[] | undefined>;
  for (const method of registration.service.methods) {
    if (method.methodKind !== "unary") {
      throw new Error(`${method.name}: only unary methods are supported`);
    }
    const invoke = handlers[method.localName];
    const allowed = allow[method.localName];
    if (invoke === undefined || allowed === undefined) {
      throw new Error(
        `${registration.service.typeName}.${method.name} has no handler or allowlist`,
      );
    }
    paths[methodPath(registration.service, method.name)] = allowed;
  }
  const allowlist = new CallerAllowlist(paths);
  for (const method of registration.service.methods) {
    const path = methodPath(registration.service, method.name);
    definition[method.name] = {
      path,
      requestStream: false,
      responseStream: false,
      // Bytes pass through untouched; decoding happens inside the handler so that a bad
      // message becomes INVALID_ARGUMENT with the platform's trailers.
      requestSerialize: (value: Buffer) => value,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: (value: Buffer) => value,
      responseDeserialize: (bytes: Buffer) => bytes,
      originalName: method.localName,
    };
    implementation[method.name] = unaryHandler({
      path,
      method,
      allowlist,
      trustDomain,
      logger,
      invoke: handlers[method.localName] as MethodRuntime["invoke"],
    });
  }
  return { definition, implementation };
}

/**
 * Starts a gRPC server that accepts only mutually authenticated TLS, checks every call's
 * caller against the method's allowlist, maps errors through the shared table, and serves
 * grpc.health.v1 (NOT_SERVING until {@link RpcServer.markServing}) and server reflection.
 */
export async function startRpcServer(options: RpcServerOptions): Promise<RpcServer> {
  const { credentials, spiffeId } = await serverCredentials(options.tls);
  const server = new grpc.Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });
  const serviceNames = options.services.map((s) => s.service.typeName);
  const health = new HealthImplementation(
    Object.fromEntries(["", ...serviceNames].map((name) => [name, "NOT_SERVING"])),
  );
  health.addToServer(server);
  for (const registration of options.services) {
    const { definition, implementation } = serviceDefinition(
      registration,
      options.tls.trustDomain,
      options.logger,
    );
    server.addService(definition, implementation);
  }
  addReflection(
    server,
    options.services.map((s) => s.service),
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${options.host}:${options.port}`, credentials, (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
  let stopping: Promise<void> | undefined;
  const setAll = (status: "SERVING" | "NOT_SERVING") => {
    for (const name of ["", ...serviceNames]) health.setStatus(name, status);
  };
  return {
    port,
    spiffeId,
    markServing: () => setAll("SERVING"),
    shutdown: () => {
      stopping ??= new Promise<void>((resolve) => {
        setAll("NOT_SERVING");
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
