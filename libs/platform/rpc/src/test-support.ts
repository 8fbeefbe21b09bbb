/**
 * Test support for this package's own tests: a small hand-made service with a unary and a
 * server-streaming method, and one raw grpc-js unary call for transport-level checks.
 *
 * @internal
 * @module
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { issueSvid, type DevCa } from "@authplat/spiffe/dev-pki";
import type { SvidFiles } from "./credentials.ts";
import { defineService, type ServiceRegistration } from "./handlers.ts";
import { create, createFileRegistry, type DescService } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_wrappers,
  type StringValueSchema,
  type UInt32ValueSchema,
} from "@bufbuild/protobuf/wkt";

const STREAMS_FILE = create(FileDescriptorProtoSchema, {
  name: "authplat/test/v1/streams.proto",
  package: "authplat.test.v1",
  syntax: "proto3",
  dependency: [file_google_protobuf_wrappers.proto.name],
  service: [
    {
      name: "Streams",
      method: [
        {
          name: "Echo",
          inputType: ".google.protobuf.StringValue",
          outputType: ".google.protobuf.StringValue",
        },
        {
          name: "Count",
          inputType: ".google.protobuf.UInt32Value",
          outputType: ".google.protobuf.UInt32Value",
          serverStreaming: true,
        },
      ],
    },
  ],
});

/**
 * `authplat.test.v1.Streams`: `Echo(StringValue) returns (StringValue)` and
 * `Count(UInt32Value) returns (stream UInt32Value)`, typed as generated code would be.
 */
export const StreamsService = createFileRegistry(STREAMS_FILE, (name) =>
  name === file_google_protobuf_wrappers.proto.name ? file_google_protobuf_wrappers : undefined,
).getService("authplat.test.v1.Streams") as DescService as GenService<{
  echo: { methodKind: "unary"; input: typeof StringValueSchema; output: typeof StringValueSchema };
  count: {
    methodKind: "server_streaming";
    input: typeof UInt32ValueSchema;
    output: typeof UInt32ValueSchema;
  };
}>;

/** The Streams service answering Echo with its input and Count with an empty stream. */
export function echoRegistration(): ServiceRegistration {
  return defineService(StreamsService, {
    echo: async (request) => ({ value: request.value }),
    async *count() {},
  });
}

/** How a raw call ended: the status, and the response bytes when it succeeded. */
export interface RawCallOutcome {
  readonly code: grpc.status;
  readonly details: string;
  readonly trailer: grpc.Metadata;
  readonly response: Buffer | undefined;
}

/** Options of {@link rawUnaryCall}. */
export interface RawCallOptions {
  readonly port: number;
  readonly credentials: grpc.ChannelCredentials;
  /** gRPC path, e.g. `/grpc.health.v1.Health/Check`. */
  readonly path: string;
  /** The request bytes, sent as they are. */
  readonly request: Uint8Array;
  readonly timeoutMs?: number;
}

/**
 * One unary call with bare grpc-js: no platform client, no server identity check (only the
 * server's view of the client is under test), bytes in and out. Resolves with the outcome,
 * success included, so a negative test can run the same call as its positive control.
 */
export async function rawUnaryCall(options: RawCallOptions): Promise<RawCallOutcome> {
  const channel = new grpc.Client(`127.0.0.1:${options.port}`, options.credentials, {
    "grpc.ssl_target_name_override": "spiffe",
  });
  try {
    return await new Promise<RawCallOutcome>((resolve) => {
      let response: Buffer | undefined;
      const call = channel.makeUnaryRequest(
        options.path,
        (value: Buffer) => value,
        (value: Buffer) => value,
        Buffer.from(options.request),
        new grpc.Metadata(),
        { deadline: Date.now() + (options.timeoutMs ?? 5_000) },
        (_error, value) => (response = value),
      );
      call.once("status", (status: grpc.StatusObject) =>
        resolve({
          code: status.code,
          details: status.details,
          trailer: status.metadata,
          response,
        }),
      );
    });
  } finally {
    channel.close();
  }
}

/** TLS credentials from PEM bytes that skip the server identity check (see {@link rawUnaryCall}). */
export function rawCredentials(
  bundle: Buffer,
  client?: { readonly certPem: Buffer | string; readonly keyPem: Buffer | string },
): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(
    bundle,
    client === undefined ? null : Buffer.from(client.keyPem),
    client === undefined ? null : Buffer.from(client.certPem),
    { checkServerIdentity: () => undefined },
  );
}

/**
 * Issues the SVID of `spiffeId` from `ca` and writes it, its key and the CA's bundle into `dir`
 * as `server.pem`, `server-key.pem` and `bundle.pem`: the files a test server is started with.
 */
export async function writeServerSvid(
  dir: string,
  ca: DevCa,
  spiffeId: string,
  trustDomain: string,
  validityMs?: number,
): Promise<SvidFiles> {
  const svid = await issueSvid(ca, {
    spiffeId,
    ...(validityMs === undefined ? {} : { validityMs }),
  });
  const files = {
    certFile: join(dir, "server.pem"),
    keyFile: join(dir, "server-key.pem"),
    bundleFile: join(dir, "bundle.pem"),
    trustDomain,
  };
  await writeFile(files.bundleFile, ca.certPem);
  await writeFile(files.certFile, svid.certPem);
  await writeFile(files.keyFile, svid.keyPem, { mode: 0o600 });
  return files;
}
