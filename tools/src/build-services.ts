/**
 * Bundles each service's own code (`apps/<name>/src/main.ts` and the `@authplat/*` libraries it
 * imports) into one plain JavaScript file, `apps/<name>/dist/main.js`. Third-party packages stay
 * external and load from `node_modules` as usual.
 *
 * Why: a process that loads any `.ts` file pays for Node's type stripper (a WebAssembly module,
 * about 16 MB resident, plus the stripped copies of every source), and loading some forty small
 * modules costs more than one file. Measured on the mfa service: about 133 MB idle running the
 * sources, about 105 MB running the bundle (see docs/decisions.md, "Footprint").
 *
 * Usage: `npm run build` (all services) or `node tools/src/build-services.ts token auth-edge`.
 *
 * @module
 */
import { join } from "node:path";
import { build } from "rolldown";
import { bundlePath, PLATFORM_SERVICES } from "./platform-services.ts";

/** Whether an import is part of this repository (bundled) rather than a package (external). */
function isOwnCode(id: string): boolean {
  return id.startsWith("@authplat/") || id.startsWith(".") || id.startsWith("/");
}

/**
 * Builds the bundles of `names` (default: all five services) in parallel and resolves once all
 * are written. Fails with the bundler's error, which names the file, when a source does not parse.
 */
export async function buildServices(
  root: string,
  names: readonly string[] = PLATFORM_SERVICES.map((s) => s.name),
): Promise<void> {
  await build(
    names.map((name) => ({
      input: join(root, "apps", name, "src", "main.ts"),
      platform: "node" as const,
      logLevel: "warn" as const,
      // Packages keep their own module format and their files next to them (grpc-js and the
      // health checker load .proto files relative to themselves), so only our code is bundled.
      external: (id: string) => !isOwnCode(id),
      output: { file: bundlePath(root, name), format: "esm" as const },
    })),
  );
}

if (import.meta.main) {
  const root = join(import.meta.dirname, "..", "..");
  const requested = process.argv.slice(2);
  const unknown = requested.filter((name) => !PLATFORM_SERVICES.some((s) => s.name === name));
  if (unknown.length > 0) {
    console.error(`unknown service(s): ${unknown.join(", ")}`);
    process.exit(2);
  }
  const started = performance.now();
  await buildServices(root, requested.length > 0 ? requested : undefined);
  console.log(
    `built ${requested.length || PLATFORM_SERVICES.length} service bundle(s) in ${Math.round(performance.now() - started)} ms`,
  );
}
