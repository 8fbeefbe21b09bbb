/**
 * The contracts gate that CI runs: buf lint, buf breaking against a baseline, and a check
 * that the committed generated code in `libs/contracts/src/gen` is exactly what `buf generate`
 * produces from `proto/`.
 *
 * ```
 * npm run proto:check                      # node tools/src/proto-check.ts
 * node tools/src/proto-check.ts --against origin/main
 * ```
 *
 * The breaking-change baseline is, unless `--against <git-ref>` names one:
 * - `HEAD` when `proto/` or `buf.yaml` has uncommitted changes (you are editing contracts);
 * - otherwise the parent of the last commit that changed `proto/`, so a clean checkout is
 *   checked against the contracts as they were before their latest change.
 * When there is no such commit, or it has no `proto/`, the step prints
 * `skipped: no baseline` and the run goes on; a baseline named with `--against` must exist.
 *
 * Every step runs even when an earlier one failed. Exit status 0 when all passed or were
 * skipped, 1 otherwise, with the failed steps named on the last line.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, type Dirent } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { parseArgs } from "node:util";

import { GENERATED_DIR, REPO_ROOT, generateContracts, runBuf } from "./proto-generate.ts";

const USAGE = "usage: node tools/src/proto-check.ts [--against <git-ref>]";
const REGENERATE_HINT = "run npm run proto:generate";

/** Outcome of one step of the check. */
export interface StepResult {
  /** `ok` and `skipped` pass; `failed` fails the run. */
  readonly outcome: "ok" | "skipped" | "failed";
  /** One-line summary printed after the step's name. */
  readonly summary: string;
  /** Further lines (tool output, file lists), printed indented below the summary. */
  readonly details: readonly string[];
}

/** A git revision to compare with, or why there is none. */
export type Baseline =
  | { readonly kind: "commit"; readonly commit: string; readonly description: string }
  | { readonly kind: "none"; readonly reason: string };

/** Differences between the committed generated tree and a fresh generation. */
export interface TreeDifference {
  /** Files in both trees whose bytes differ. */
  readonly stale: readonly string[];
  /** Files a fresh generation produces that are not committed. */
  readonly missing: readonly string[];
  /** Committed files a fresh generation no longer produces. */
  readonly extra: readonly string[];
}

/** Where the check writes its report; injectable for tests. */
export interface CheckOutput {
  out(line: string): void;
  err(line: string): void;
}

/** Runs git in `root` and returns its trimmed standard output, or `undefined` on failure. */
function git(args: readonly string[], root: string): string | undefined {
  const result = spawnSync("git", args, { cwd: root, encoding: "utf8" });
  if (result.error !== undefined || result.status !== 0) return undefined;
  return result.stdout.trim();
}

function outputLines(...texts: readonly string[]): string[] {
  return texts.flatMap((text) => text.split("\n")).filter((line) => line.trim() !== "");
}

/**
 * Chooses the commit to check breaking changes against (see the module comment), checking
 * that it exists locally and has a `proto/` directory.
 */
export function findBaseline(root: string = REPO_ROOT, against?: string): Baseline {
  if (git(["rev-parse", "--is-inside-work-tree"], root) !== "true") {
    return { kind: "none", reason: "not a git work tree" };
  }
  let ref: string;
  let description: string;
  if (against !== undefined) {
    ref = against;
    description = `--against ${against}`;
  } else if ((git(["status", "--porcelain", "--", "proto", "buf.yaml"], root) ?? "") !== "") {
    ref = "HEAD";
    description = "HEAD, because proto/ or buf.yaml has uncommitted changes";
  } else {
    const last = git(["log", "-1", "--format=%H", "--", "proto"], root);
    if (last === undefined || last === "") {
      return { kind: "none", reason: "no commit has changed proto/ yet" };
    }
    ref = `${last.slice(0, 12)}^`;
    description = `parent of ${last.slice(0, 12)}, the last commit that changed proto/`;
  }
  const commit = git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], root);
  if (commit === undefined || commit === "") {
    return {
      kind: "none",
      reason: `${ref} is not a commit in this clone (first commit, or a shallow clone)`,
    };
  }
  if (git(["cat-file", "-e", `${commit}:proto`], root) === undefined) {
    return { kind: "none", reason: `${commit.slice(0, 12)} has no proto/ directory` };
  }
  return { kind: "commit", commit, description: `${commit.slice(0, 12)}, ${description}` };
}

/** Step 1: `buf lint` with the rules in `buf.yaml`. */
export function checkLint(env: NodeJS.ProcessEnv, root: string = REPO_ROOT): StepResult {
  const result = runBuf(["lint", "--error-format", "text"], env, root);
  if (result.status === 0) return { outcome: "ok", summary: "ok", details: [] };
  return {
    outcome: "failed",
    summary: `FAILED: buf lint reported problems (exit ${String(result.status)})`,
    details: outputLines(result.stdout, result.stderr),
  };
}

/** Step 2: `buf breaking` with the rules in `buf.yaml`, against `baseline`. */
export function checkBreaking(
  env: NodeJS.ProcessEnv,
  baseline: Baseline,
  root: string = REPO_ROOT,
): StepResult {
  if (baseline.kind === "none") {
    return {
      outcome: "skipped",
      summary: `skipped: no baseline (${baseline.reason})`,
      details: [],
    };
  }
  // The common git dir holds every object even in a linked worktree, whose own .git is a file.
  const gitDir = git(["rev-parse", "--path-format=absolute", "--git-common-dir"], root);
  if (gitDir === undefined) {
    return {
      outcome: "failed",
      summary: "FAILED: could not locate the git directory",
      details: [],
    };
  }
  const against = `${gitDir}#format=git,ref=${baseline.commit}`;
  const result = runBuf(["breaking", "--against", against, "--error-format", "text"], env, root);
  if (result.status === 0) {
    return { outcome: "ok", summary: `ok (against ${baseline.description})`, details: [] };
  }
  return {
    outcome: "failed",
    summary: `FAILED: breaking changes against ${baseline.description}`,
    details: outputLines(result.stdout, result.stderr),
  };
}

/** Maps each file below `dir` (relative path with `/` separators) to its absolute path. */
function listFiles(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { recursive: true, withFileTypes: true });
  } catch {
    return files; // a missing directory has no files
  }
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(dir, path).split(sep).join("/"), path);
  }
  return files;
}

/**
 * Compares two generated trees byte for byte; only regular files count. Paths in the result
 * are relative to the trees' roots, with `/` separators, sorted.
 */
export function compareTrees(committedDir: string, freshDir: string): TreeDifference {
  const committed = listFiles(committedDir);
  const fresh = listFiles(freshDir);
  const stale: string[] = [];
  const missing: string[] = [];
  const extra: string[] = [];
  for (const [name, freshPath] of fresh) {
    const committedPath = committed.get(name);
    if (committedPath === undefined) missing.push(name);
    else if (!readFileSync(committedPath).equals(readFileSync(freshPath))) stale.push(name);
  }
  for (const name of committed.keys()) if (!fresh.has(name)) extra.push(name);
  return { stale: stale.sort(), missing: missing.sort(), extra: extra.sort() };
}

/** Step 3: generates into a temporary directory and compares with the committed tree. */
export function checkFreshness(env: NodeJS.ProcessEnv, root: string = REPO_ROOT): StepResult {
  const scratch = mkdtempSync(join(tmpdir(), "authplat-proto-check-"));
  try {
    const result = generateContracts(env, scratch, root);
    if (result.status !== 0) {
      return {
        outcome: "failed",
        summary: `FAILED: buf generate failed (exit ${String(result.status)}), so freshness is unknown`,
        details: outputLines(result.stdout, result.stderr),
      };
    }
    const difference = compareTrees(join(root, GENERATED_DIR), join(scratch, GENERATED_DIR));
    const count = difference.stale.length + difference.missing.length + difference.extra.length;
    if (count === 0)
      return { outcome: "ok", summary: `ok (${GENERATED_DIR} is up to date)`, details: [] };
    return {
      outcome: "failed",
      summary: `FAILED: ${String(count)} generated file(s) in ${GENERATED_DIR} are stale; ${REGENERATE_HINT}`,
      details: [
        ...difference.stale.map((name) => `stale:   ${name}`),
        ...difference.missing.map((name) => `missing: ${name}`),
        ...difference.extra.map((name) => `extra:   ${name}`),
      ],
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Runs every step, reports each on `output`, and returns the exit status: 0 when every step
 * passed or was skipped, 1 otherwise. Never throws.
 */
export function runProtoCheck(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  output: CheckOutput = { out: (line) => console.log(line), err: (line) => console.error(line) },
  root: string = REPO_ROOT,
): number {
  let against: string | undefined;
  try {
    const { values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        against: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
    if (values.help === true) {
      output.out(USAGE);
      return 0;
    }
    against = values.against;
  } catch (err) {
    output.err(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 1;
  }
  const steps: ReadonlyArray<readonly [string, () => StepResult]> = [
    ["lint", () => checkLint(env, root)],
    [
      "breaking",
      () => {
        const baseline = findBaseline(root, against);
        // A baseline asked for by name must exist; only the automatic choice may be skipped.
        if (against !== undefined && baseline.kind === "none") {
          return { outcome: "failed", summary: `FAILED: ${baseline.reason}`, details: [] };
        }
        return checkBreaking(env, baseline, root);
      },
    ],
    ["freshness", () => checkFreshness(env, root)],
  ];
  const failed: string[] = [];
  for (const [name, step] of steps) {
    let result: StepResult;
    try {
      result = step();
    } catch (err) {
      result = {
        outcome: "failed",
        summary: `FAILED: ${err instanceof Error ? err.message : String(err)}`,
        details: [],
      };
    }
    // One stream for the step reports keeps them in order when stdout and stderr are merged.
    output.out(`proto:check ${name}: ${result.summary}`);
    for (const line of result.details) output.out(`  ${line}`);
    if (result.outcome === "failed") failed.push(name);
  }
  if (failed.length > 0) {
    output.err(`proto:check: FAILED (${failed.join(", ")})`);
    return 1;
  }
  output.out("proto:check: ok");
  return 0;
}

if (import.meta.main) {
  process.exitCode = runProtoCheck(process.argv.slice(2), process.env);
}
