/**
 * Regenerates `libs/contracts/src/gen` from `proto/` with buf and the local protoc-gen-es
 * plugin, as configured in `buf.gen.yaml`.
 *
 * ```
 * npm run proto:generate        # node tools/src/proto-generate.ts
 * ```
 *
 * Exit status 0 on success, 1 on failure (buf's own diagnostics are passed through).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of the repository root (two levels above this file). */
export const REPO_ROOT: string = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Where `buf.gen.yaml` writes the generated code, relative to the repository root. */
export const GENERATED_DIR = "libs/contracts/src/gen";

/** Outcome of one buf invocation. */
export interface BufResult {
  /** Exit status of buf; `null` when it could not be started or was killed. */
  readonly status: number | null;
  /** Everything buf wrote to standard output. */
  readonly stdout: string;
  /** Everything buf wrote to standard error, plus the reason when buf could not be started. */
  readonly stderr: string;
}

/**
 * Returns the environment buf runs with: `BUF_CACHE_DIR` inside the repository's ignored
 * `.cache/`, and `PATH` led by the directory of the Node binary running this script and by
 * `node_modules/.bin`. protoc-gen-es starts with `#!/usr/bin/env node` and needs Node 22 or
 * later, while the machine's own `node` may be older.
 */
export function bufEnvironment(
  baseEnv: NodeJS.ProcessEnv,
  root: string = REPO_ROOT,
): NodeJS.ProcessEnv {
  const path = [dirname(process.execPath), join(root, "node_modules", ".bin"), baseEnv["PATH"]]
    .filter((part) => part !== undefined && part !== "")
    .join(delimiter);
  return { ...baseEnv, PATH: path, BUF_CACHE_DIR: join(root, ".cache", "buf") };
}

/**
 * Runs the repository's pinned buf (from `@bufbuild/buf`) with `args` in `root`, capturing its
 * output. Never throws; a buf that cannot be started yields `status: null`.
 */
export function runBuf(
  args: readonly string[],
  baseEnv: NodeJS.ProcessEnv,
  root: string = REPO_ROOT,
): BufResult {
  const env = bufEnvironment(baseEnv, root);
  mkdirSync(env["BUF_CACHE_DIR"] as string, { recursive: true });
  const bufBin = join(root, "node_modules", "@bufbuild", "buf", "bin", "buf");
  const result = spawnSync(process.execPath, [bufBin, ...args], {
    cwd: root,
    env,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  const startError =
    result.error === undefined ? "" : `could not run buf: ${result.error.message}\n`;
  return {
    status: result.status,
    stdout: result.stdout ?? "",
    stderr: startError + (result.stderr ?? ""),
  };
}

/**
 * Runs `buf generate` with `buf.gen.yaml`. With `outputBase`, the generated tree is written
 * below that directory (`<outputBase>/libs/contracts/src/gen`) instead of the repository, which
 * is how the freshness check generates a copy to compare with.
 */
export function generateContracts(
  baseEnv: NodeJS.ProcessEnv,
  outputBase?: string,
  root: string = REPO_ROOT,
): BufResult {
  const args = ["generate", "--template", "buf.gen.yaml", "--error-format", "text"];
  if (outputBase !== undefined) args.push("--output", outputBase);
  return runBuf(args, baseEnv, root);
}

if (import.meta.main) {
  const result = generateContracts(process.env);
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  if (result.status === 0) {
    console.log(`proto:generate: wrote ${GENERATED_DIR}`);
  } else {
    console.error(`proto:generate: buf generate failed (exit ${String(result.status)})`);
    process.exitCode = 1;
  }
}
