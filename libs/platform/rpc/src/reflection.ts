import { create, toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { protoPath as healthProtoPath } from "grpc-health-check";
import type * as grpc from "@grpc/grpc-js";

function collectFiles(file: DescFile, seen: Map<string, DescFile>): void {
  if (seen.has(file.name)) return;
  for (const dependency of file.dependencies) collectFiles(dependency, seen);
  seen.set(file.name, file);
}

/**
 * Serves gRPC server reflection (v1 and v1alpha) for `services` and grpc.health.v1, so tools
 * such as grpcurl can list and call them. The descriptors come from the same protobuf-es
 * registry the handlers use, dependencies first.
 */
export function addReflection(server: grpc.Server, services: readonly DescService[]): void {
  const files = new Map<string, DescFile>();
  for (const service of services) collectFiles(service.file, files);
  const set = create(FileDescriptorSetSchema, {
    file: [...files.values()].map((file) => file.proto),
  });
  const options: protoLoader.Options = { keepCase: true, longs: String, enums: String };
  const definition: protoLoader.PackageDefinition = {
    ...protoLoader.loadFileDescriptorSetFromBuffer(
      Buffer.from(toBinary(FileDescriptorSetSchema, set)),
      options,
    ),
    ...protoLoader.loadSync(healthProtoPath, options),
  };
  new ReflectionService(definition).addToServer(server);
}
