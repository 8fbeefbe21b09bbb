/**
 * Envoy's external authorization contract (`envoy.service.auth.v3.Authorization`) as a
 * protobuf-es `DescService`, built at start-up from the `.proto` files that
 * `@grpc/grpc-js-xds` bundles, so the platform's server serves it through its usual pipeline.
 *
 * protobufjs (under `@grpc/proto-loader`) parses the files; its descriptor export is not what
 * protoc would write, so the file descriptors are normalised before protobuf-es reads them:
 * one synthetic file per package, type names relative to their scope, no `dependency` lists,
 * and option extensions folded into `google.protobuf.*Options` as plain fields (which would
 * make `google/protobuf` depend on the validation annotations, a cycle). Option annotations
 * are not needed to encode or decode messages, so they are dropped.
 *
 * @module
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
// The transport edge of this area (like check-handler.ts): it builds the served descriptor.
// eslint-disable-next-line no-restricted-imports -- parsing .proto files is proto-loader's job
import { loadSync } from "@grpc/proto-loader";
import {
  create,
  createFileRegistry,
  fromBinary,
  type DescService,
  type FileRegistry,
} from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type DescriptorProto,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";

/** The full name of Envoy's authorization service. */
export const AUTHORIZATION_SERVICE = "envoy.service.auth.v3.Authorization";
/** The gRPC path of its only method. */
export const CHECK_METHOD_PATH = `/${AUTHORIZATION_SERVICE}/Check`;
/** The root `.proto` file of the contract, relative to {@link envoyProtoIncludeDirs}. */
export const EXTERNAL_AUTH_PROTO = "envoy/service/auth/v3/external_auth.proto";

/**
 * The include directories holding Envoy's API protos and their imports, inside the installed
 * `@grpc/grpc-js-xds` package.
 */
export function envoyProtoIncludeDirs(): string[] {
  const require = createRequire(import.meta.url);
  const deps = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
  return ["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((dir) => join(deps, dir));
}

/** Envoy's authorization service and the registry its message types live in. */
export interface EnvoyAuthorizationProtos {
  readonly service: DescService;
  readonly registry: FileRegistry;
}

/**
 * Parses Envoy's external authorization protos and returns the `Authorization` service. Does
 * file I/O and parsing (about 0.1 s): call it once at start-up, never per request.
 *
 * @throws {Error} when the protos cannot be found or parsed, or the service is missing.
 */
export function loadEnvoyAuthorizationProtos(
  includeDirs: readonly string[] = envoyProtoIncludeDirs(),
): EnvoyAuthorizationProtos {
  const definition = loadSync(EXTERNAL_AUTH_PROTO, { includeDirs: [...includeDirs] });
  const check = (definition[AUTHORIZATION_SERVICE] as Record<string, unknown> | undefined)?.[
    "Check"
  ] as { requestType?: { fileDescriptorProtos?: readonly Uint8Array[] } } | undefined;
  const encoded = check?.requestType?.fileDescriptorProtos;
  if (encoded === undefined)
    throw new Error(`${EXTERNAL_AUTH_PROTO} defines no ${AUTHORIZATION_SERVICE}`);
  const files = encoded.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
  const root = files.find((file) =>
    file.service.some((s) => `${file.package}.${s.name}` === AUTHORIZATION_SERVICE),
  );
  if (root === undefined) throw new Error(`no file declares ${AUTHORIZATION_SERVICE}`);
  const ordered = normaliseFiles(files, root);
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: ordered }));
  const service = registry.getService(AUTHORIZATION_SERVICE);
  if (service === undefined) throw new Error(`${AUTHORIZATION_SERVICE} did not load`);
  return { service, registry };
}

type Visit = (fullName: string, message: DescriptorProto) => void;

function eachMessage(scope: string, messages: readonly DescriptorProto[], visit: Visit): void {
  for (const message of messages) {
    const fullName = `${scope}.${message.name}`;
    visit(fullName, message);
    eachMessage(fullName, message.nestedType, visit);
  }
}

function scopeOf(file: FileDescriptorProto): string {
  return file.package === "" ? "" : `.${file.package}`;
}

/**
 * Drops option extensions, makes every type name fully qualified, derives each file's
 * dependencies from the types it uses, and returns the files `root` needs, dependencies first.
 */
function normaliseFiles(
  files: readonly FileDescriptorProto[],
  root: FileDescriptorProto,
): FileDescriptorProto[] {
  const owner = new Map<string, FileDescriptorProto>();
  for (const file of files) {
    file.extension = [];
    for (const e of file.enumType) owner.set(`${scopeOf(file)}.${e.name}`, file);
    eachMessage(scopeOf(file), file.messageType, (name, message) => {
      message.extension = [];
      // protobufjs lists extensions of an options message among its fields, named ".pkg.ext".
      message.field = message.field.filter((f) => !f.name.startsWith(".") && f.extendee === "");
      owner.set(name, file);
      for (const e of message.enumType) owner.set(`${name}.${e.name}`, file);
    });
  }
  // Protobuf scoping: a relative name is looked up in the innermost scope first, then outwards.
  const qualify = (scope: string, name: string): string => {
    if (name.startsWith(".")) return name;
    for (let s = scope; ; s = s.slice(0, Math.max(0, s.lastIndexOf(".")))) {
      if (owner.has(`${s}.${name}`)) return `${s}.${name}`;
      if (s === "") throw new Error(`type ${name} used in ${scope} is not defined`);
    }
  };
  for (const file of files) {
    const used = new Set<FileDescriptorProto>();
    const use = (name: string) => {
      const other = owner.get(name);
      if (other !== undefined && other !== file) used.add(other);
    };
    eachMessage(scopeOf(file), file.messageType, (name, message) => {
      for (const field of message.field) {
        if (field.typeName === "") continue;
        field.typeName = qualify(name, field.typeName);
        use(field.typeName);
      }
    });
    for (const service of file.service) {
      for (const method of service.method) {
        method.inputType = qualify(scopeOf(file), method.inputType);
        method.outputType = qualify(scopeOf(file), method.outputType);
        use(method.inputType);
        use(method.outputType);
      }
    }
    file.dependency = [...used].map((dependency) => dependency.name);
  }
  const byName = new Map(files.map((file) => [file.name, file]));
  const ordered: FileDescriptorProto[] = [];
  const visit = (file: FileDescriptorProto, path: readonly string[]) => {
    if (ordered.includes(file)) return;
    if (path.includes(file.name))
      throw new Error(`import cycle: ${[...path, file.name].join(" > ")}`);
    for (const dependency of file.dependency) visit(byName.get(dependency)!, [...path, file.name]);
    ordered.push(file);
  };
  visit(root, []);
  return ordered;
}
