import type { AuthorizationRequest, PolicyDecision, UserPermissions } from "./authorization.ts";

/** One file of a policy bundle: its name inside `POLICY_DIR` and its text. */
export interface BundleFile {
  readonly name: string;
  readonly text: string;
}

/** The files of a policy bundle, sorted by name. */
export interface PolicyBundleSource {
  readonly files: readonly BundleFile[];
}

/** One thing wrong with a bundle, located as precisely as the engine can. */
export interface BundleProblem {
  readonly file: string;
  /** 1-based line, when known. */
  readonly line?: number;
  readonly message: string;
}

/** Thrown when a bundle cannot be loaded; the message lists every problem as `file:line: ...`. */
export class BundleError extends Error {
  /** Every problem found, in file order. */
  readonly problems: readonly BundleProblem[];

  constructor(problems: readonly BundleProblem[]) {
    super(`invalid policy bundle: ${problems.map(formatProblem).join("; ")}`);
    this.name = "BundleError";
    this.problems = problems;
  }
}

/** `file:line: message`, or `file: message` when the line is not known. */
export function formatProblem(problem: BundleProblem): string {
  const where = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}`;
  return `${where}: ${problem.message}`;
}

/**
 * A request checked and translated for one compiled policy set; opaque outside the engine.
 * Requests prepared by one set must not be decided by another.
 */
export interface PreparedRequest {
  /**
   * Covers every input the decision can depend on under this policy set (not the version: the
   * cache adds it), so equal keys always get equal decisions.
   */
  readonly cacheKey: string;
}

/**
 * One loaded, validated policy set. Immutable: a reload compiles a new one and swaps it in.
 * Every method is synchronous, so a decision or a batch can never straddle a swap.
 */
export interface CompiledPolicies {
  /** Content hash of the bundle; equal bundles have equal versions. */
  readonly version: string;
  /** Non-fatal findings of validation (for the log). */
  readonly warnings: readonly string[];
  /** Checks and translates a request; throws `INVALID_ARGUMENT` naming what is wrong. */
  prepare(request: AuthorizationRequest, nowMs: number): PreparedRequest;
  /** Decides a prepared request: deny unless a policy permits; an explicit forbid wins. */
  decide(prepared: PreparedRequest): PolicyDecision;
  /** What the given directly assigned roles permit through the hierarchy. */
  permissionsOf(roles: readonly string[]): UserPermissions;
  /** Releases engine resources; the set must not be used afterwards. */
  dispose(): void;
}

/**
 * A policy engine backend. Cedar is the one this project ships; an OPA bundle backend could
 * implement the same contract where the `opa` CLI exists to compile Rego.
 */
export interface PolicyEngine {
  /** Validates and compiles a bundle; throws {@link BundleError} naming file and line. */
  compile(bundle: PolicyBundleSource): CompiledPolicies;
}
