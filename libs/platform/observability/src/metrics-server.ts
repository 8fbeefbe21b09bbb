import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { MetricsRegistry } from "./metrics.ts";

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  /** Interface to bind; the metrics port is plain HTTP, so loopback unless scraped remotely. */
  readonly host: string;
  /** Port to bind; 0 picks a free one (tests). */
  readonly port: number;
  /** What `GET /metrics` serves. */
  readonly metrics: MetricsRegistry;
  /** Where a failed scrape is reported. */
  readonly logger?: Logger;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The bound port. */
  readonly port: number;
  /** Stops listening and drops open (keep-alive) scrape connections. Safe to call twice. */
  close(): Promise<void>;
}

function answer(
  metrics: MetricsRegistry,
  logger: Logger | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  // Only the path counts: Prometheus may add query parameters, and nothing else is served.
  const path = (req.url ?? "").split("?", 1)[0];
  if (req.method !== "GET" || path !== "/metrics") {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
    return;
  }
  metrics.expose().then(
    (text) => {
      res.writeHead(200, { "content-type": metrics.contentType }).end(text);
    },
    (error: unknown) => {
      logger?.error({ err: error }, "metrics collection failed");
      res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("error\n");
    },
  );
}

/**
 * A port a service was told to listen on is taken by another process: a problem of the
 * environment, not a fault of the service, so logs show it without a stack trace. The message
 * names the variable that sets the port and what to do.
 */
export class PortInUseError extends Error {
  constructor(variable: string, address: string, options?: ErrorOptions) {
    super(
      `${variable}: ${address} is already in use by another process (is the platform already running, for example another \`npm start\`?); stop that process or set ${variable} to a free port`,
      options,
    );
    this.name = "PortInUseError";
  }
}

/**
 * Serves `GET /metrics` (Prometheus text exposition format) over plain HTTP on `host:port`;
 * every other method or path answers 404. The endpoint exposes only counters and timings,
 * never request data, and binds to loopback by default (`METRICS_HOST`).
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server = createServer((req, res) => answer(options.metrics, options.logger, req, res));
  await new Promise<void>((resolve, reject) => {
    const refuse = (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new PortInUseError("METRICS_PORT", `${options.host}:${options.port}`, { cause: error })
          : error,
      );
    server.once("error", refuse);
    server.listen(options.port, options.host, () => {
      server.off("error", refuse);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
