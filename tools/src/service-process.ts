import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { bundlePath } from "./platform-services.ts";

/** A service running as a child process. */
export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves with the bound port and SPIFFE ID once the service logs "serving". */
  readonly serving: Promise<{ port: number; spiffeId: string }>;
  /** Resolves with the exit code (or signal) when the process ends. */
  readonly exited: Promise<number | NodeJS.Signals>;
  /** Sends SIGTERM and waits for the process to drain and exit. */
  stop(): Promise<number | NodeJS.Signals>;
}

/** The SVID files a service reads (`SVID_CERT_FILE`, `SVID_KEY_FILE`, `TRUST_BUNDLE_FILE`). */
export interface ServiceSvidFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly bundleFile: string;
}

/**
 * The environment of a service that tests and benchmarks start: `PATH` from `inherited` (the
 * caller's environment), the SVID files, an ephemeral port (`GRPC_PORT=0`; the bound one is in
 * `serving`), info logs (the "serving" line is read), the development access profile (they
 * call as the operator, as tools do under `npm start`), then `extra`, which wins.
 */
export function serviceEnv(
  inherited: NodeJS.ProcessEnv,
  files: ServiceSvidFiles,
  extra: Readonly<Record<string, string>> = {},
): NodeJS.ProcessEnv {
  return {
    PATH: inherited["PATH"],
    LOG_LEVEL: "info",
    GRPC_PORT: "0",
    SVID_CERT_FILE: files.certFile,
    SVID_KEY_FILE: files.keyFile,
    TRUST_BUNDLE_FILE: files.bundleFile,
    ACCESS_PROFILE: "development",
    ...extra,
  };
}

/** Options of {@link spawnService}. */
export interface SpawnServiceOptions {
  /** Repository root (where `apps/` is). */
  readonly root: string;
  readonly name: string;
  /** Environment of the child; it is the child's only configuration. */
  readonly env: NodeJS.ProcessEnv;
  /** Receives every output line of the child (JSON log lines and anything else). */
  readonly onLine?: (line: string) => void;
  /**
   * What to run: `source` runs `apps/<name>/src/main.ts` (type stripping, no build step);
   * `bundle` runs `apps/<name>/dist/main.js` written by `buildServices` (less memory, faster
   * start). Default `source`.
   */
  readonly entry?: "source" | "bundle";
  /** Extra Node.js flags placed before the script, e.g. V8 heap limits. */
  readonly nodeFlags?: readonly string[];
}

/**
 * Starts a service (its sources or its bundle) with the Node binary running this process, and watches its
 * JSON log for the "serving" line that `runService` writes once health is SERVING.
 */
export function spawnService(options: SpawnServiceOptions): ServiceProcess {
  const script =
    options.entry === "bundle"
      ? bundlePath(options.root, options.name)
      : join(options.root, "apps", options.name, "src", "main.ts");
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), script], {
    cwd: options.root,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: a Ctrl-C in the terminal reaches only the parent, which then
    // stops each service once, with SIGTERM, so every service drains instead of receiving
    // two signals.
    detached: true,
  });
  // Never leave a service behind when the parent exits without stopping it.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const exited = once(child, "exit").then(([code, signal]) => {
    process.off("exit", killOnExit);
    return (code ?? signal) as number | NodeJS.Signals;
  });
  const serving = new Promise<{ port: number; spiffeId: string }>((resolve, reject) => {
    const onLine = (line: string) => {
      options.onLine?.(line);
      if (!line.startsWith("{")) return;
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number; spiffeId?: string };
        if (
          entry.msg === "serving" &&
          typeof entry.port === "number" &&
          typeof entry.spiffeId === "string"
        ) {
          resolve({ port: entry.port, spiffeId: entry.spiffeId });
        }
      } catch {
        // not a log line of ours; shown through onLine only
      }
    };
    createInterface({ input: child.stdout! }).on("line", onLine);
    createInterface({ input: child.stderr! }).on("line", onLine);
    void exited.then((code) =>
      reject(new Error(`${options.name} exited (${code}) before serving`)),
    );
  });
  serving.catch(() => undefined);
  return {
    name: options.name,
    child,
    serving,
    exited,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}
