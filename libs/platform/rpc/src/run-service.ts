import type { Logger } from "@authplat/observability";
import type { ServiceRegistration } from "./handlers.ts";
import type { SvidFiles } from "./credentials.ts";
import { serveUntilSignalled } from "./lifecycle.ts";
import { startRpcServer, type RpcServer, type RpcServerOptions } from "./server.ts";

/** The common settings a service process runs with (see `serviceEnv` in `@authplat/config`). */
export interface ServiceSettings {
  readonly TRUST_DOMAIN: string;
  readonly GRPC_HOST: string;
  readonly GRPC_PORT: number;
  readonly SVID_CERT_FILE: string;
  readonly SVID_KEY_FILE: string;
  readonly TRUST_BUNDLE_FILE: string;
  readonly SVID_REFRESH_INTERVAL_MS: number;
  readonly SHUTDOWN_GRACE_MS: number;
}

/** The SVID file settings of a service. */
export function svidFilesOf(settings: ServiceSettings): SvidFiles {
  return {
    certFile: settings.SVID_CERT_FILE,
    keyFile: settings.SVID_KEY_FILE,
    bundleFile: settings.TRUST_BUNDLE_FILE,
    trustDomain: settings.TRUST_DOMAIN,
    refreshIntervalMs: settings.SVID_REFRESH_INTERVAL_MS,
  };
}

/** Options of {@link runService}. */
export interface RunServiceOptions {
  readonly name: string;
  readonly settings: ServiceSettings;
  readonly logger: Logger;
  readonly services: readonly ServiceRegistration[];
  /** Who may call each RPC: the service's access rules (`loadServiceAccessRules`). */
  readonly accessRules?: RpcServerOptions["accessRules"];
  readonly onStopped?: () => Promise<void> | void;
}

/**
 * Starts a service process's server from its settings, reports SERVING, and drains on
 * SIGTERM/SIGINT. Call it last in `main.ts`, once every dependency is ready, so health only
 * turns SERVING when the service can answer.
 */
export async function runService(options: RunServiceOptions): Promise<RpcServer> {
  const server = await startRpcServer({
    name: options.name,
    host: options.settings.GRPC_HOST,
    port: options.settings.GRPC_PORT,
    tls: svidFilesOf(options.settings),
    services: options.services,
    ...(options.accessRules === undefined ? {} : { accessRules: options.accessRules }),
    logger: options.logger,
    shutdownGraceMs: options.settings.SHUTDOWN_GRACE_MS,
  });
  serveUntilSignalled({
    server,
    logger: options.logger,
    ...(options.onStopped ? { onStopped: options.onStopped } : {}),
  });
  return server;
}
