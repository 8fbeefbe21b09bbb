import { createLogger, type Logger } from "@authplat/observability";
import {
  createRpcClient,
  startRpcServer,
  type RpcClient,
  type RpcServer,
  type RpcServerOptions,
  type ServiceRegistration,
  type SvidFiles,
} from "@authplat/rpc";
import { parseSpiffeId } from "@authplat/spiffe";
import type { DescService } from "@bufbuild/protobuf";
import type { TestPki } from "@authplat/spiffe/test-pki";

/** A logger for tests: silent unless a test passes its own. */
export function silentLogger(): Logger {
  return createLogger({ service: "test", level: "silent" });
}

/**
 * What a test gives the server it starts: its access rules (required, as for every server; see
 * `loadAccessRules`, `staticAccessRules`, `sameCallersForEveryMethod`) and any interceptors.
 */
export type TestServerOptions = Pick<
  RpcServerOptions,
  "accessRules" | "observers" | "interceptors"
>;

/**
 * Starts services on 127.0.0.1 port 0 with the SVID of `identity` from `pki` and the access
 * rules of `options`, already marked SERVING. Stop it with `shutdown()`.
 */
export async function startTestServer(
  pki: TestPki,
  identity: string,
  services: readonly ServiceRegistration[],
  logger: Logger,
  options: TestServerOptions,
): Promise<RpcServer> {
  const server = await startRpcServer({
    ...options,
    name: identity,
    host: "127.0.0.1",
    port: 0,
    tls: pki.files(identity),
    services,
    logger,
    shutdownGraceMs: 1_000,
  });
  server.markServing();
  return server;
}

/** A client of `service` on `server`, calling as `caller` (an identity name or SVID files). */
export function testClient<S extends DescService>(
  pki: TestPki,
  service: S,
  server: RpcServer,
  caller: string | SvidFiles,
): Promise<RpcClient<S>> {
  return createRpcClient(service, {
    address: `127.0.0.1:${server.port}`,
    tls: typeof caller === "string" ? pki.files(caller) : caller,
    serverId: parseSpiffeId(server.spiffeId.toString()),
    defaultTimeoutMs: 5_000,
  });
}
