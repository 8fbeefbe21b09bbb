import { createRequire } from "node:module";
import type * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  createRegistry,
  fromBinary,
  toBinary,
  type DescFile,
  type DescService,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { protoPath as healthProtoPath } from "grpc-health-check";

/** A reflection request as proto-loader decodes it (`keepCase`, oneofs as virtual fields). */
/** @internal */
export interface ReflectionRequest {
  host?: string;
  message_request?: string;
  file_by_filename?: string;
  file_containing_symbol?: string;
  file_containing_extension?: { containing_type: string; extension_number: number };
  all_extension_numbers_of_type?: string;
  list_services?: string;
}

/** @internal */
export type ReflectionResponse = Record<string, unknown>;

/** What reflection knows: each file's serialized descriptor and where each symbol lives. */
interface DescriptorIndex {
  readonly services: readonly string[];
  /** File name → its serialized FileDescriptorProto and the names of its direct imports. */
  readonly files: ReadonlyMap<string, { bytes: Buffer; imports: readonly string[] }>;
  /** Fully qualified symbol → the file name that defines it. */
  readonly symbols: ReadonlyMap<string, string>;
}

const NOT_FOUND = 5;
const UNIMPLEMENTED = 12;
const OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, oneofs: true };

function collectFiles(file: DescFile, seen: Map<string, DescFile>): void {
  if (seen.has(file.name)) return;
  for (const dependency of file.dependencies) collectFiles(dependency, seen);
  seen.set(file.name, file);
}

function buildIndex(services: readonly DescService[]): DescriptorIndex {
  const descFiles = new Map<string, DescFile>();
  for (const service of services) collectFiles(service.file, descFiles);
  const files = new Map<string, { bytes: Buffer; imports: readonly string[] }>();
  const symbols = new Map<string, string>();
  for (const file of descFiles.values()) {
    files.set(file.name, {
      bytes: Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)),
      imports: file.dependencies.map((dependency) => dependency.name),
    });
  }
  const registry = createRegistry(...descFiles.values());
  for (const type of registry) {
    symbols.set(type.typeName, type.file.name);
    if (type.kind === "service") {
      for (const method of type.methods)
        symbols.set(`${type.typeName}.${method.name}`, type.file.name);
    }
  }
  // grpc.health.v1 is served by grpc-health-check from its own .proto file.
  const health = protoLoader.loadSync(healthProtoPath, OPTIONS)["grpc.health.v1.Health"] as
    protoLoader.ServiceDefinition | undefined;
  const healthFile = health?.["Check"]?.requestType.fileDescriptorProtos[0];
  if (healthFile !== undefined) {
    const name = fromBinary(FileDescriptorProtoSchema, healthFile).name;
    files.set(name, { bytes: Buffer.from(healthFile), imports: [] });
    for (const symbol of [
      "grpc.health.v1.Health",
      "grpc.health.v1.Health.Check",
      "grpc.health.v1.Health.Watch",
      "grpc.health.v1.HealthCheckRequest",
      "grpc.health.v1.HealthCheckResponse",
    ]) {
      symbols.set(symbol, name);
    }
  }
  return {
    services: [...services.map((service) => service.typeName), "grpc.health.v1.Health"],
    files,
    symbols,
  };
}

/** The file and everything it imports, transitively, each once. */
function withDependencies(index: DescriptorIndex, name: string): Buffer[] | undefined {
  if (!index.files.has(name)) return undefined;
  const order: string[] = [];
  const visit = (file: string) => {
    if (order.includes(file)) return;
    order.push(file);
    for (const imported of index.files.get(file)?.imports ?? []) visit(imported);
  };
  visit(name);
  return order.map((file) => index.files.get(file)!.bytes);
}

function answer(index: DescriptorIndex, request: ReflectionRequest): ReflectionResponse {
  const base = { valid_host: request.host ?? "", original_request: request };
  const files = (found: Buffer[] | undefined, what: string): ReflectionResponse =>
    found === undefined
      ? { ...base, error_response: { error_code: NOT_FOUND, error_message: `${what} not found` } }
      : { ...base, file_descriptor_response: { file_descriptor_proto: found } };
  switch (request.message_request) {
    case "list_services":
      return {
        ...base,
        list_services_response: { service: index.services.map((name) => ({ name })) },
      };
    case "file_by_filename":
      return files(
        withDependencies(index, request.file_by_filename ?? ""),
        `file ${request.file_by_filename}`,
      );
    case "file_containing_symbol": {
      const symbol = request.file_containing_symbol ?? "";
      const file = index.symbols.get(symbol);
      return files(
        file === undefined ? undefined : withDependencies(index, file),
        `symbol ${symbol}`,
      );
    }
    case "all_extension_numbers_of_type":
      // The platform's contracts declare no extensions.
      return {
        ...base,
        all_extension_numbers_response: {
          base_type_name: request.all_extension_numbers_of_type ?? "",
          extension_number: [],
        },
      };
    case "file_containing_extension":
      return {
        ...base,
        error_response: { error_code: NOT_FOUND, error_message: "no extensions are served" },
      };
    default:
      return {
        ...base,
        error_response: { error_code: UNIMPLEMENTED, error_message: "unknown request" },
      };
  }
}

function reflectionServiceDefinition(version: "v1" | "v1alpha"): grpc.ServiceDefinition {
  const require = createRequire(import.meta.url);
  const file = require.resolve(
    `@grpc/reflection/build/proto/grpc/reflection/${version}/reflection.proto`,
  );
  const definition = protoLoader.loadSync(file, OPTIONS);
  return definition[`grpc.reflection.${version}.ServerReflection`] as grpc.ServiceDefinition;
}

/**
 * Most responses one reflection stream may have queued, unread by its peer, before the stream
 * is failed with RESOURCE_EXHAUSTED. Reading is paused as soon as the write buffer is full, so
 * a well-behaved stream never gets near it; the cap bounds memory whatever grpc-js buffers.
 */
const MAX_QUEUED_RESPONSES = 32;
const RESOURCE_EXHAUSTED = 8;

/** The duplex stream of one reflection call, as much of it as the handler uses. @internal */
export type ReflectionCall = Pick<
  grpc.ServerDuplexStream<ReflectionRequest, ReflectionResponse>,
  "on" | "once" | "write" | "end" | "pause" | "resume" | "emit" | "writableLength"
>;

/**
 * Answers each request of a reflection stream, with backpressure: when the peer does not read
 * (`write` reports a full buffer) no further request is read until it drains, so a peer that
 * asks and never reads cannot grow the server's memory.
 *
 * @internal
 */
export function serveReflectionStream(
  call: ReflectionCall,
  respond: (request: ReflectionRequest) => ReflectionResponse,
): void {
  const resume = () => call.resume();
  call.on("data", (request: ReflectionRequest) => {
    if (call.writableLength >= MAX_QUEUED_RESPONSES) {
      call.pause();
      call.emit("error", {
        code: RESOURCE_EXHAUSTED,
        details: "too many reflection responses left unread",
      });
      return;
    }
    if (!call.write(respond(request))) {
      call.pause();
      call.once("drain", resume);
    }
  });
  call.on("end", () => call.end());
  call.on("error", () => call.end());
}

/**
 * Serves gRPC server reflection (v1 and v1alpha) for `services` and grpc.health.v1, from the
 * same protobuf-es descriptors the handlers use, so tools such as grpcurl can list, describe
 * and call every method. Every answer to a file or symbol query carries the file and all it
 * imports, well-known types included. Each stream applies backpressure
 * ({@link serveReflectionStream}).
 */
export function addReflection(server: grpc.Server, services: readonly DescService[]): void {
  const index = buildIndex(services);
  const respond = (request: ReflectionRequest) => answer(index, request);
  for (const version of ["v1", "v1alpha"] as const) {
    server.addService(reflectionServiceDefinition(version), {
      ServerReflectionInfo: (
        call: grpc.ServerDuplexStream<ReflectionRequest, ReflectionResponse>,
      ) => serveReflectionStream(call, respond),
    });
  }
}
