import * as grpc from "@grpc/grpc-js";
import { fromBinary } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { ErrorInfoSchema } from "@authplat/contracts/auth/common/v1/error";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { contextFromIncoming, runWithContext } from "@authplat/correlation";
import { ALL_ERROR_CODES, ERROR_CODES, ServiceError, type ErrorCode } from "@authplat/errors";
import { createLogger } from "@authplat/observability";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki, type TestPki } from "@authplat/spiffe/test-pki";
import { createRpcClient, type RpcClient } from "./client.ts";
import { sameCallersForEveryMethod } from "./access-rules.ts";
import { defineService } from "./handlers.ts";
import { startRpcServer, type RpcServer } from "./server.ts";
import { RemoteCallError } from "./status-mapping.ts";
import { unimplementedHandlers } from "./unimplemented.ts";

/** What the handler throws in one run of the property. */
type Thrown =
  | { kind: "service"; code: ErrorCode; message: string; retryAfterMs: number | undefined }
  | { kind: "other"; value: unknown };

let pki: TestPki;
let server: RpcServer;
let client: RpcClient<typeof TokenService>;
let next: Thrown;

beforeAll(async () => {
  pki = await createTestPki();
  server = await startRpcServer({
    name: "token",
    host: "127.0.0.1",
    port: 0,
    tls: pki.files("token"),
    logger: createLogger({ service: "property-26", level: "silent" }),
    shutdownGraceMs: 1_000,
    accessRules: sameCallersForEveryMethod([TokenService], [pki.idOf("operator")]),
    services: [
      defineService(TokenService, {
        ...unimplementedHandlers(TokenService),
        async issueTokenPair() {
          const thrown = next;
          if (thrown.kind === "service") {
            throw new ServiceError(thrown.code, thrown.message, {
              ...(thrown.retryAfterMs === undefined ? {} : { retryAfterMs: thrown.retryAfterMs }),
              cause: new Error("server-side detail"),
            });
          }
          throw thrown.value;
        },
      }),
    ],
  });
  server.markServing();
  client = await createRpcClient(TokenService, {
    address: `127.0.0.1:${server.port}`,
    tls: pki.files("operator"),
    serverId: parseSpiffeId(pki.idOf("token")),
  });
});

afterAll(async () => {
  client?.close();
  await server?.shutdown();
  await pki?.cleanup();
});

const correlationIds = fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/);
const thrownValues: fc.Arbitrary<Thrown> = fc.oneof(
  fc.record({
    kind: fc.constant("service" as const),
    code: fc.constantFrom(...ALL_ERROR_CODES),
    // Client-safe messages are written by us: any well-formed Unicode text.
    message: fc.string({ unit: "grapheme", minLength: 1, maxLength: 200 }),
    retryAfterMs: fc.option(fc.integer({ min: 0, max: 600_000 }), { nil: undefined }),
  }),
  fc.record({
    kind: fc.constant("other" as const),
    value: fc.oneof(
      fc.string().map((text) => new Error(`leak:${text}`)),
      fc.string().map((text) => `leak:${text}`),
      fc.constant(undefined),
      fc.constant(null),
      fc.integer(),
    ),
  }),
);

describe("error responses", () => {
  it("Property 26: error response structure — every failure carries a stable code mapped by the one table, a safe message and the correlation ID", async () => {
    await fc.assert(
      fc.asyncProperty(thrownValues, correlationIds, async (thrown, correlationId) => {
        next = thrown;
        const failure = await runWithContext(contextFromIncoming({ correlationId }), () =>
          client.issueTokenPair({}).then(
            () => undefined,
            (error: unknown) => error,
          ),
        );
        expect(failure).toBeInstanceOf(RemoteCallError);
        const error = failure as RemoteCallError;
        const metadata = (error.cause as grpc.StatusObject).metadata;
        const expectedCode: ErrorCode = thrown.kind === "service" ? thrown.code : "INTERNAL";
        expect(error.remoteCode).toBe(expectedCode);
        // The client's own code is the boundary mapping, never the server's verdict.
        expect(error.code).toBe(
          [
            grpc.status.UNAVAILABLE,
            grpc.status.DEADLINE_EXCEEDED,
            grpc.status.RESOURCE_EXHAUSTED,
            grpc.status.CANCELLED,
          ].includes(ERROR_CODES[expectedCode].status)
            ? "UNAVAILABLE"
            : "INTERNAL",
        );
        expect(error.grpcCode).toBe(ERROR_CODES[expectedCode].status);
        expect(metadata.get("authplat-error-code")).toEqual([expectedCode]);
        expect(error.correlationId).toBe(correlationId);
        if (thrown.kind === "service") {
          expect(error.message).toBe(thrown.message);
          const retryable = ERROR_CODES[thrown.code].retryable;
          expect(error.retryAfterMs).toBe(
            retryable && thrown.retryAfterMs !== undefined ? thrown.retryAfterMs : undefined,
          );
        } else {
          expect(error.message).toBe("internal error");
          expect(metadata.get("grpc-retry-pushback-ms")).toEqual([]);
        }
        const info = fromBinary(ErrorInfoSchema, metadata.get("authplat-error-bin")[0] as Buffer);
        expect(info.code).toBe(expectedCode);
        expect(info.message).toBe(error.message);
        expect(info.correlationId).toBe(correlationId);
        expect(
          info.retryAfter === undefined ? undefined : Number(durationMs(info.retryAfter)),
        ).toBe(error.retryAfterMs);
        // Every trailer as text, binary ones decoded: JSON of a Buffer is a list of numbers.
        const sent = Object.values(metadata.getMap()).map((value) =>
          typeof value === "string" ? value : Buffer.from(value).toString("utf8"),
        );
        expect([error.message, ...sent].join("\n")).not.toMatch(/leak:|server-side detail/);
      }),
      { numRuns: 150 },
    );
  });
});
