import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type { SpiffeId } from "@authplat/spiffe";
import { clientCredentials, type SvidFiles } from "./credentials.ts";

interface ReflectionReply {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

type ReflectionStream = grpc.ClientDuplexStream<Record<string, string>, ReflectionReply>;

let constructor: grpc.ServiceClientConstructor | undefined;

function reflectionClientConstructor(): grpc.ServiceClientConstructor {
  if (constructor === undefined) {
    const require = createRequire(import.meta.url);
    const file =
      require.resolve("@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto");
    const loaded = grpc.loadPackageDefinition(
      protoLoader.loadSync(file, { keepCase: true }),
    ) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    };
    constructor = loaded.grpc.reflection.v1.ServerReflection;
  }
  return constructor;
}

/** What a server says about itself through gRPC server reflection (v1). */
export interface ReflectionSummary {
  /** Fully qualified names of the services it serves. */
  readonly services: readonly string[];
  /** For each service, the file descriptors `file_containing_symbol` returned, decoded. */
  readonly descriptorFiles: Readonly<Record<string, readonly FileDescriptorProto[]>>;
}

/**
 * Asks a server, over mutual TLS, which services it serves and fetches the descriptors of
 * each: what grpcurl's `list` and `describe` do. For tools and tests.
 */
export async function reflect(
  address: string,
  tls: SvidFiles,
  serverId: SpiffeId,
  timeoutMs = 5_000,
): Promise<ReflectionSummary> {
  const { credentials } = await clientCredentials(tls, serverId);
  const Client = reflectionClientConstructor();
  const client = new Client(address, credentials, { "grpc.ssl_target_name_override": "spiffe" });
  const stream = (
    client as unknown as { ServerReflectionInfo(options: grpc.CallOptions): ReflectionStream }
  ).ServerReflectionInfo({ deadline: Date.now() + timeoutMs });
  const ask = (request: Record<string, string>) =>
    new Promise<ReflectionReply>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      stream.once("error", onError);
      stream.once("data", (reply: ReflectionReply) => {
        stream.off("error", onError);
        resolve(reply);
      });
      stream.write(request);
    });
  try {
    const listed = await ask({ list_services: "" });
    const services = (listed.list_services_response?.service ?? []).map((s) => s.name);
    const descriptorFiles: Record<string, readonly FileDescriptorProto[]> = {};
    for (const name of services) {
      const reply = await ask({ file_containing_symbol: name });
      descriptorFiles[name] = (reply.file_descriptor_response?.file_descriptor_proto ?? []).map(
        (bytes) => fromBinary(FileDescriptorProtoSchema, bytes),
      );
    }
    return { services, descriptorFiles };
  } finally {
    stream.end();
    client.close();
  }
}
