/**
 * The development supervisor behind `npm start`: runs each service as its own process, keeps the
 * others running when one stops (so a developer can watch, say, auth-edge fail closed while token
 * is down), says which service stopped and how, and starts, stops or restarts one service on
 * request without touching the rest.
 *
 * @module
 */
import type { ServiceProcess } from "./service-process.ts";

/** Why a service process ended, in words. */
export function describeExit(code: number | NodeJS.Signals): string {
  return typeof code === "number" ? `exit code ${code}` : `killed by ${code}`;
}

/** What the supervisor knows about one service. */
export interface ServiceState {
  readonly name: string;
  /** `starting` until it logs "serving", then `serving`; `stopped` after its process ended. */
  readonly state: "starting" | "serving" | "stopped";
  /** Bound port once serving. */
  readonly port?: number;
  /** SPIFFE ID once serving. */
  readonly spiffeId?: string;
  /** How the last process ended, when it has. */
  readonly lastExit?: string;
}

/** Options of {@link Supervisor}. */
export interface SupervisorOptions {
  /** Service names, in start order. */
  readonly names: readonly string[];
  /** Starts one service process. */
  readonly spawn: (name: string) => ServiceProcess;
  /** Where the supervisor's own messages go (one line each). */
  readonly say: (line: string) => void;
}

interface Slot {
  process: ServiceProcess | undefined;
  state: ServiceState;
  /** True while the supervisor itself is stopping the process (an expected exit). */
  stopping: boolean;
}

/** Runs and watches the services; see the module comment. */
export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #slots = new Map<string, Slot>();
  #shuttingDown = false;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    for (const name of options.names) {
      this.#slots.set(name, {
        process: undefined,
        state: { name, state: "stopped" },
        stopping: false,
      });
    }
  }

  /** The names this supervisor manages. */
  get names(): readonly string[] {
    return this.#options.names;
  }

  /** A snapshot of every service's state, in start order. */
  status(): ServiceState[] {
    return this.#options.names.map((name) => this.#slot(name).state);
  }

  /**
   * Starts `name` if it is not running and resolves once it serves; rejects when the process ends
   * before it serves (the reason is also said).
   */
  async start(name: string): Promise<ServiceState> {
    const slot = this.#slot(name);
    if (slot.process !== undefined) return slot.state;
    const child = this.#options.spawn(name);
    slot.process = child;
    slot.stopping = false;
    slot.state = { name, state: "starting" };
    void child.exited.then((code) => {
      if (slot.process !== child) return;
      slot.process = undefined;
      const how = describeExit(code);
      slot.state = { name, state: "stopped", lastExit: how };
      if (slot.stopping || this.#shuttingDown) return;
      const others = this.#options.names.filter((n) => n !== name);
      this.#options.say(
        `${name} stopped unexpectedly (${how}). ${others.join(", ")} keep running; ` +
          `type "restart ${name}" to start it again.`,
      );
    });
    const { port, spiffeId } = await child.serving;
    if (slot.process === child) slot.state = { name, state: "serving", port, spiffeId };
    return slot.state;
  }

  /** Stops `name` (SIGTERM, drain) if it runs; the others are untouched. */
  async stop(name: string): Promise<void> {
    const slot = this.#slot(name);
    const child = slot.process;
    if (child === undefined) return;
    slot.stopping = true;
    const code = await child.stop();
    slot.state = { name, state: "stopped", lastExit: describeExit(code) };
  }

  /** Stops `name` if it runs, then starts it again. */
  async restart(name: string): Promise<ServiceState> {
    await this.stop(name);
    return this.start(name);
  }

  /** Stops every service; after this, exits are no longer reported. */
  async stopAll(): Promise<void> {
    this.#shuttingDown = true;
    await Promise.all(this.#options.names.map((name) => this.stop(name)));
  }

  /**
   * Runs one command typed by the developer: `status`, `start NAME`, `stop NAME`,
   * `restart NAME`, `help`. Unknown input gets the help text; nothing throws.
   */
  async command(input: string): Promise<void> {
    const [verb = "", name, ...rest] = input.trim().split(/\s+/);
    if (verb === "") return;
    const say = this.#options.say;
    if (verb === "status" && name === undefined) {
      for (const s of this.status()) {
        const where = s.state === "serving" ? ` on 127.0.0.1:${s.port}` : "";
        const last = s.state === "stopped" && s.lastExit ? ` (${s.lastExit})` : "";
        say(`  ${s.name.padEnd(18)} ${s.state}${where}${last}`);
      }
      return;
    }
    const action = { start: "start", stop: "stop", restart: "restart" }[verb];
    if (action === undefined || name === undefined || rest.length > 0) {
      say(
        'commands: "status", "stop NAME", "start NAME", "restart NAME" ' +
          `(NAME: ${this.#options.names.join(", ")}); Ctrl-C stops everything`,
      );
      return;
    }
    if (!this.#slots.has(name)) {
      say(`no service named "${name}"; the services are ${this.#options.names.join(", ")}`);
      return;
    }
    try {
      if (action === "stop") {
        await this.stop(name);
        say(`${name} stopped`);
      } else {
        const state = await (action === "start" ? this.start(name) : this.restart(name));
        say(`${name} is SERVING on 127.0.0.1:${state.port}`);
      }
    } catch (error) {
      say(`${name} did not start: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  #slot(name: string): Slot {
    const slot = this.#slots.get(name);
    if (slot === undefined) throw new Error(`no service named "${name}"`);
    return slot;
  }
}
