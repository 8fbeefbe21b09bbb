import type { Logger } from "@authplat/observability";
import type { RpcServer } from "./server.ts";

/** Options of {@link serveUntilSignalled}. */
export interface ServeOptions {
  readonly server: RpcServer;
  readonly logger: Logger;
  /** Releases what the service holds (stores, clients) after the server has drained. */
  readonly onStopped?: () => Promise<void> | void;
}

/**
 * Marks the server SERVING and, on SIGTERM or SIGINT, drains it (NOT_SERVING, in-flight calls
 * finish within the grace period), runs `onStopped`, and exits. A second signal exits at once.
 */
export function serveUntilSignalled(options: ServeOptions): void {
  const { server, logger } = options;
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal, exiting without draining");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "draining");
    server
      .shutdown()
      .then(() => options.onStopped?.())
      .then(
        () => {
          logger.info("stopped");
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, "shutdown failed");
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  server.markServing();
  logger.info({ port: server.port, spiffeId: server.spiffeId.toString() }, "serving");
}
