/**
 * `npm run bench`: runs every benchmark of the platform one after another, each in its own
 * process so one's servers and garbage never weigh on the next. Every benchmark measures its own
 * baseline in the same run (a grpc-js echo over the same mTLS, jose, node-oidc-provider, Cedar
 * in-process) and prints ratios; the JSON lands in `bench/results/`.
 *
 * `npm run bench -- token authorize` runs only the named ones.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const BENCHMARKS: Record<string, string> = {
  "validate-token": "validate-token.bench.ts",
  "verify-primitives": "verify-primitives.bench.ts",
  token: "token.bench.ts",
  authorize: "authorize.bench.ts",
  "authorize-token": "authorize-token.bench.ts",
  revocation: "revocation-propagation.bench.ts",
};

const requested = process.argv.slice(2);
const unknown = requested.filter((name) => !(name in BENCHMARKS));
if (unknown.length > 0) {
  console.error(
    `unknown benchmark(s): ${unknown.join(", ")}; known: ${Object.keys(BENCHMARKS).join(", ")}`,
  );
  process.exit(2);
}
const names = (requested.length > 0 ? requested : Object.keys(BENCHMARKS)).filter((name) =>
  existsSync(join(import.meta.dirname, BENCHMARKS[name]!)),
);

let failed = 0;
for (const name of names) {
  console.log(`\n=== ${name}`);
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, BENCHMARKS[name]!)], {
      stdio: "inherit",
    });
    child.on("exit", (exitCode) => resolve(exitCode ?? 1));
  });
  if (code !== 0) {
    failed += 1;
    console.error(`${name} failed (exit ${code})`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
