/**
 * Creates or refreshes the development PKI (a CA and one X509-SVID per identity) and prints what
 * it did.
 *
 * ```
 * node tools/src/dev-pki-cli.ts [--dir .dev/pki] [--trust-domain auth.local] [--force]
 * ```
 *
 * Exit status 0 on success, 1 on a usage error or failure (with a one-line reason on stderr).
 *
 * @module
 */
import { parseArgs } from "node:util";

import { DEV_PKI_DEFAULTS, ensureDevPki } from "@authplat/spiffe/dev-pki";

const USAGE =
  "usage: node tools/src/dev-pki-cli.ts [--dir .dev/pki] [--trust-domain auth.local] [--force]";

/** Where the CLI writes its report; injectable for tests. */
export interface CliOutput {
  out(line: string): void;
  err(line: string): void;
}

/**
 * Runs the CLI with `argv` (without the node and script arguments) and returns the exit status.
 * Never throws: failures are reported on `output.err` with status 1.
 */
export async function runDevPkiCli(
  argv: readonly string[],
  output: CliOutput = { out: (line) => console.log(line), err: (line) => console.error(line) },
): Promise<number> {
  let values: { dir: string; "trust-domain": string; force: boolean; help: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        dir: { type: "string", default: ".dev/pki" },
        "trust-domain": { type: "string", default: DEV_PKI_DEFAULTS.trustDomain },
        force: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    output.err(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 1;
  }
  if (values.help) {
    output.out(USAGE);
    return 0;
  }
  try {
    const started = performance.now();
    const result = await ensureDevPki({
      dir: values.dir,
      trustDomain: values["trust-domain"],
      force: values.force,
    });
    const elapsed = Math.round(performance.now() - started);
    if (result.regenerated) {
      output.out(
        `dev PKI in ${result.files.dir}: new CA for ${values["trust-domain"]} and ${result.renewed.length} SVIDs (${elapsed} ms)`,
      );
    } else if (result.renewed.length > 0) {
      output.out(
        `dev PKI in ${result.files.dir}: renewed ${result.renewed.join(", ")} (${elapsed} ms)`,
      );
    } else {
      output.out(`dev PKI in ${result.files.dir}: up to date, nothing written`);
    }
    for (const note of result.notes) output.out(`  ${note}`);
    return 0;
  } catch (err) {
    output.err(`dev PKI failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (import.meta.main) {
  process.exitCode = await runDevPkiCli(process.argv.slice(2));
}
