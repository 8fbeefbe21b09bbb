import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { createRpcClient, type RpcClient } from "@authplat/rpc";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki, type TestPki } from "@authplat/spiffe/test-pki";
import { probeHealth } from "@authplat/tools/health-probe";
import { serviceEnv, spawnService, type ServiceProcess } from "@authplat/tools/service-process";

/** The repository root, where the services' sources are. */
export const ROOT = resolve(import.meta.dirname, "..", "..");

/**
 * Services of the platform as real processes for end-to-end tests: one test PKI, each service
 * started from its sources with its own SVID on a free port, every output line kept for the
 * failure message, and all of them stopped by {@link stopAll}.
 */
export class ServiceFleet {
  readonly pki: TestPki;
  /** Every line the services printed, prefixed with the service's name. */
  readonly output: string[] = [];
  readonly #processes: ServiceProcess[] = [];
  readonly #ports = new Map<string, number>();
  readonly #byName = new Map<string, ServiceProcess>();
  readonly #clients: { close(): void }[] = [];

  private constructor(pki: TestPki) {
    this.pki = pki;
  }

  /** A fleet with a new test PKI and nothing running. */
  static async create(): Promise<ServiceFleet> {
    return new ServiceFleet(await createTestPki());
  }

  /**
   * The environment of service `name`: its SVID files, an ephemeral port, info logs, a short
   * shutdown grace and the development access profile (the tests call as the operator, as the
   * tools do under `npm start`), plus `extra`.
   */
  envFor(name: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return serviceEnv(process.env, this.pki.files(name), { SHUTDOWN_GRACE_MS: "1000", ...extra });
  }

  /**
   * Starts service `name` and waits until it serves; rejects with everything the fleet printed
   * when it does not.
   */
  async start(
    name: string,
    extra: Record<string, string> = {},
  ): Promise<{ child: ServiceProcess; port: number }> {
    const child = spawnService({
      root: ROOT,
      name,
      env: this.envFor(name, extra),
      onLine: (line) => this.output.push(`${name} | ${line}`),
    });
    this.#processes.push(child);
    this.#byName.set(name, child);
    try {
      const { port } = await child.serving;
      this.#ports.set(name, port);
      await this.untilServing(name, port);
      return { child, port };
    } catch (error) {
      throw new Error(`${String(error)}\n${this.output.join("\n")}`);
    }
  }

  /**
   * Waits until service `name` on `port` answers a health check SERVING over mTLS, presenting
   * its SPIFFE ID: the "serving" log line says the port is bound, this says handshakes and calls
   * work, which on a loaded machine can come a moment later. Rejects after `timeoutMs`.
   */
  async untilServing(name: string, port: number, timeoutMs = 20_000): Promise<void> {
    const files = this.pki.files("operator");
    const [cert, key, ca] = await Promise.all(
      [files.certFile, files.keyFile, files.bundleFile].map((file) => readFile(file)),
    );
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = await probeHealth({
        addr: `127.0.0.1:${port}`,
        cert: cert!,
        key: key!,
        ca: ca!,
        expectSpiffeId: this.pki.idOf(name),
      });
      if (result.ok) return;
      if (Date.now() > deadline) {
        throw new Error(`${name} on port ${port} is not SERVING: ${result.reason}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The process of service `name` last started. */
  process(name: string): ServiceProcess {
    const child = this.#byName.get(name);
    if (child === undefined) throw new Error(`${name} has not been started`);
    return child;
  }

  /** Stops the process of service `name` last started, and waits for it to exit. */
  async stop(name: string): Promise<void> {
    await this.process(name).stop();
  }

  /** The port service `name` last started on. */
  port(name: string): number {
    const port = this.#ports.get(name);
    if (port === undefined) throw new Error(`${name} has not been started`);
    return port;
  }

  /** `host:port` of service `name`. */
  address(name: string): string {
    return `127.0.0.1:${this.port(name)}`;
  }

  /** A client of `service` at service `name`, calling with the identity `as` (the operator). */
  async client<S extends DescService>(
    service: S,
    name: string,
    as = "operator",
    port = this.port(name),
  ): Promise<RpcClient<S>> {
    const client = await createRpcClient(service, {
      address: `127.0.0.1:${port}`,
      tls: this.pki.files(as),
      serverId: parseSpiffeId(this.pki.idOf(name)),
    });
    this.#clients.push(client);
    return client;
  }

  /** Closes every client and stops every process, then removes the PKI. */
  async stopAll(): Promise<void> {
    for (const client of this.#clients) client.close();
    await Promise.all(this.#processes.map((child) => child.stop()));
    await this.pki.cleanup();
  }
}
