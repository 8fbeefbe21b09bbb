import type { Logger } from "@authplat/observability";
import type { ServiceRegistration } from "./handlers.ts";
import type { SvidFiles } from "./credentials.ts";
import { serveUntilSignalled } from "./lifecycle.ts";
import { monitorReadiness, type ReadinessCheck } from "./readiness.ts";
import { startRpcServer, type RpcServer, type RpcServerOptions } from "./server.ts";
import {
  startServiceTelemetry,
  type ServiceTelemetry,
  type TelemetrySettings,
} from "./telemetry/service-telemetry.ts";

/** The common settings a service process runs with (see `serviceEnv` in `@authplat/config`). */
export interface ServiceSettings extends TelemetrySettings {
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
  /** Who may call each RPC: the service's access rules (`loadServiceAccessRules`). Required. */
  readonly accessRules: RpcServerOptions["accessRules"];
  /** Interceptors that see every call, refused ones included (metrics, traces). */
  readonly observers?: RpcServerOptions["observers"];
  /** The service's own interceptors; they run after the access rule and see `caller`. */
  readonly interceptors?: RpcServerOptions["interceptors"];
  /**
   * Dependencies the service needs in order to answer. While a required one fails, health
   * reports NOT_SERVING and every RPC answers UNAVAILABLE with retry guidance; the service
   * recovers by itself when the check passes again.
   */
  readonly readiness?: readonly ReadinessCheck[];
  /** Time between readiness rounds, their timeout and the retry pushback; default 2000 ms. */
  readonly readinessIntervalMs?: number;
  /**
   * The service's metrics and traces. Build it first in `main.ts` (`startServiceTelemetry`) when
   * clients made before the server need its interceptors or other code registers metrics;
   * otherwise `runService` builds it from the settings (`METRICS_PORT`, `OTEL_*`).
   */
  readonly telemetry?: ServiceTelemetry;
  readonly onStopped?: () => Promise<void> | void;
}

/**
 * Starts a service process's server from its settings, reports SERVING, and drains on
 * SIGTERM/SIGINT. Call it last in `main.ts`, once every dependency is ready, so health only
 * turns SERVING when the service can answer.
 */
export async function runService(options: RunServiceOptions): Promise<RpcServer> {
  const telemetry =
    options.telemetry ??
    (await startServiceTelemetry({
      name: options.name,
      settings: options.settings,
      logger: options.logger,
    }));
  const server = await startRpcServer({
    name: options.name,
    host: options.settings.GRPC_HOST,
    port: options.settings.GRPC_PORT,
    tls: svidFilesOf(options.settings),
    services: options.services,
    accessRules: options.accessRules,
    observers: [...telemetry.observers, ...(options.observers ?? [])],
    ...(options.interceptors === undefined ? {} : { interceptors: options.interceptors }),
    logger: options.logger,
    shutdownGraceMs: options.settings.SHUTDOWN_GRACE_MS,
  });
  const checks = options.readiness ?? [];
  const monitor =
    checks.length === 0
      ? undefined
      : monitorReadiness({
          checks,
          intervalMs: options.readinessIntervalMs ?? 2_000,
          logger: options.logger,
          onChange: (unavailable) => server.setUnavailable(unavailable),
        });
  // The first round decides whether the service starts SERVING or NOT_SERVING; either way it
  // listens, so it can report its health and recover without a restart.
  await monitor?.firstRound;
  serveUntilSignalled({
    server,
    logger: options.logger,
    onStopped: async () => {
      monitor?.stop();
      await options.onStopped?.();
      await telemetry.shutdown();
    },
  });
  return server;
}
