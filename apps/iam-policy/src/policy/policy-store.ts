import { watch, type FSWatcher } from "node:fs";
import { bundleVersion, isBundleFileName } from "./policy-bundle.ts";
import type { CompiledPolicies, PolicyBundleSource, PolicyEngine } from "./policy-engine.ts";

/** What a reload did. */
export type ReloadOutcome =
  | {
      readonly ok: true;
      readonly changed: boolean;
      readonly version: string;
      readonly previousVersion: string;
    }
  | { readonly ok: false; readonly error: unknown; readonly version: string };

/** Dependencies of a {@link PolicyStore}. */
export interface PolicyStoreDeps {
  readonly engine: PolicyEngine;
  /** Reads the bundle (from `POLICY_DIR` in production); throws `BundleError` when it cannot. */
  readonly read: () => Promise<PolicyBundleSource>;
  /** Told about every reload, successful or not (logging and metrics). */
  readonly onReload?: (outcome: ReloadOutcome) => void;
}

/**
 * Holds the policy set in force and replaces it on reload (requirement 5.6). A reload reads and
 * compiles the new bundle off to the side while the old set keeps deciding, then swaps the
 * reference in one assignment; an invalid bundle is refused and the old set stays. Reloads run
 * one at a time, in the order asked.
 *
 * Callers take {@link current} once per decision or batch and use only that set, so no
 * decision mixes versions (Property 17).
 */
export class PolicyStore {
  readonly #deps: PolicyStoreDeps;
  #current: CompiledPolicies;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(deps: PolicyStoreDeps, first: CompiledPolicies) {
    this.#deps = deps;
    this.#current = first;
  }

  /** Loads the first bundle; throws (a `BundleError` naming file and line) when it is invalid. */
  static async open(deps: PolicyStoreDeps): Promise<PolicyStore> {
    return new PolicyStore(deps, deps.engine.compile(await deps.read()));
  }

  /** The policy set in force. */
  get current(): CompiledPolicies {
    return this.#current;
  }

  /**
   * Reads the bundle again and swaps it in when its content changed. Resolves with the outcome;
   * an invalid bundle resolves `ok: false` and leaves the current set in force.
   */
  reload(): Promise<ReloadOutcome> {
    const run = this.#queue.then(() => this.#reloadNow());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #reloadNow(): Promise<ReloadOutcome> {
    const previous = this.#current;
    let outcome: ReloadOutcome;
    try {
      const bundle = await this.#deps.read();
      if (bundleVersion(bundle) === previous.version) {
        outcome = {
          ok: true,
          changed: false,
          version: previous.version,
          previousVersion: previous.version,
        };
      } else {
        const next = this.#deps.engine.compile(bundle);
        this.#current = next;
        // Every use of a set is synchronous, so nothing can still be evaluating on the old one.
        previous.dispose();
        outcome = {
          ok: true,
          changed: true,
          version: next.version,
          previousVersion: previous.version,
        };
      }
    } catch (error) {
      outcome = { ok: false, error, version: previous.version };
    }
    this.#deps.onReload?.(outcome);
    return outcome;
  }

  /**
   * Reloads when a bundle file in `dir` changes (after `debounceMs` of quiet) and, as a safety
   * net for file systems whose events get lost, every `pollIntervalMs` (0 turns polling off).
   * Returns a function that stops watching.
   */
  watch(
    dir: string,
    options: { readonly debounceMs: number; readonly pollIntervalMs: number },
  ): () => void {
    let timer: NodeJS.Timeout | undefined;
    const schedule = () => {
      clearTimeout(timer);
      timer = setTimeout(() => void this.reload(), options.debounceMs);
    };
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => {
        // Kubernetes swaps a ConfigMap through a "..data" symlink: any dotfile change counts too.
        if (name === null || isBundleFileName(name) || name.startsWith("..")) schedule();
      });
      watcher.on("error", () => undefined);
    } catch {
      watcher = undefined;
    }
    const poll =
      options.pollIntervalMs > 0
        ? setInterval(() => void this.reload(), options.pollIntervalMs)
        : undefined;
    poll?.unref();
    return () => {
      clearTimeout(timer);
      clearInterval(poll);
      watcher?.close();
    };
  }
}
