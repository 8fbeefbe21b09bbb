/**
 * `npm start`: makes sure the development PKI exists and is fresh, bundles the services, starts
 * the five as separate processes on their default ports with embedded backends, prints where each
 * listens, shows their JSON logs as one readable line per event, keeps the others running when one
 * stops (with a line saying which and how), takes "status", "stop NAME", "start NAME" and
 * "restart NAME" on standard input, and stops them all on Ctrl-C (SIGINT) or SIGTERM.
 *
 * @module
 */
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { loadConfig } from "@authplat/config";
import { ensureDevPki } from "@authplat/spiffe/dev-pki";
import { z } from "zod";
import { buildServices } from "./build-services.ts";
import { PLATFORM_SERVICES } from "./platform-services.ts";
import { formatLogLine } from "./dev-log-format.ts";
import { spawnService } from "./service-process.ts";
import { Supervisor } from "./supervisor.ts";

const startedAt = performance.now();
const root = resolve(import.meta.dirname, "..", "..");
const settings = loadConfig(
  z.object({
    TRUST_DOMAIN: z.string().default("auth.local"),
    DEV_PKI_DIR: z.string().default(".dev/pki"),
    // Development rules let the operator identity call every RPC, so tools can exercise them
    // (README, "Caller allowlists"); ACCESS_PROFILE=production tries the production rules.
    ACCESS_PROFILE: z.enum(["production", "development"]).default("development"),
    // V8 settings for an idle footprint under 90 MB per service: a 1 MB young generation
    // (instead of up to 16 MB per semi-space, which start-up fills and never returns) and one
    // V8 worker thread. See docs/decisions.md, "Footprint".
    SERVICE_NODE_FLAGS: z.string().default("--max-semi-space-size=1 --v8-pool-size=1"),
  }),
  process.env,
);
const pkiDir = resolve(root, settings.DEV_PKI_DIR);

// Bundling our own code (about 150 ms) saves each service the type stripper; see build-services.ts.
const [pki] = await Promise.all([
  ensureDevPki({ dir: pkiDir, trustDomain: settings.TRUST_DOMAIN }),
  buildServices(root),
]);
const nodeFlags = settings.SERVICE_NODE_FLAGS.split(/\s+/).filter((flag) => flag !== "");
console.log(
  pki.regenerated
    ? `dev PKI: new CA and SVIDs for ${settings.TRUST_DOMAIN} in ${pkiDir}`
    : pki.renewed.length > 0
      ? `dev PKI: renewed ${pki.renewed.join(", ")}`
      : `dev PKI: up to date in ${pkiDir}`,
);

// Each service's Prometheus endpoint, http://127.0.0.1:<port>/metrics (see README, "Metrics and traces").
const METRICS_PORTS: Readonly<Record<string, number>> = {
  "auth-edge": 9461,
  token: 9462,
  "session-identity": 9463,
  "iam-policy": 9464,
  mfa: 9465,
};
const width = Math.max(...PLATFORM_SERVICES.map((s) => s.name.length));
const color = process.stdout.isTTY === true && process.env["NO_COLOR"] === undefined;
const supervisor = new Supervisor({
  names: PLATFORM_SERVICES.map((s) => s.name),
  say: (line) => console.log(line),
  spawn: (name) =>
    spawnService({
      root,
      name,
      env: {
        ...process.env,
        SVID_CERT_FILE: resolve(pkiDir, `${name}.pem`),
        SVID_KEY_FILE: resolve(pkiDir, `${name}-key.pem`),
        TRUST_BUNDLE_FILE: resolve(pkiDir, "bundle.pem"),
        // V8 code cache on disk: from the second start on, the packages' modules are not compiled
        // again (measured: token starts in ~0.9-1.0 s instead of ~1.07-1.09 s).
        NODE_COMPILE_CACHE: resolve(root, ".cache", "node-compile"),
        METRICS_PORT: String(METRICS_PORTS[name] ?? 0),
        ACCESS_PROFILE: settings.ACCESS_PROFILE,
      },
      onLine: (line) => console.log(formatLogLine(name, line, { color, nameWidth: width })),
      entry: "bundle",
      nodeFlags,
    }),
});

let stopping = false;
async function stopAll(exitCode: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log("stopping all services…");
    await supervisor.stopAll();
  }
  process.exit(exitCode);
}
process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));

const started = await Promise.allSettled(supervisor.names.map((name) => supervisor.start(name)));
const failed = supervisor.names.filter((_, i) => started[i]!.status === "rejected");
if (failed.length === supervisor.names.length) {
  console.error("no service could start; see the lines above");
  await stopAll(1);
}
const serving = supervisor.status().filter((s) => s.state === "serving");
console.log(
  failed.length === 0
    ? `\nall five services are SERVING over mTLS (${((performance.now() - startedAt) / 1000).toFixed(1)} s):`
    : `\n${serving.length} of ${supervisor.names.length} services are SERVING over mTLS ` +
        `(${failed.join(", ")} did not start; fix the cause above, then type "start NAME"):`,
);
for (const s of serving)
  console.log(
    `  ${s.name.padEnd(width)}  127.0.0.1:${s.port}  ${s.spiffeId}  ` +
      `metrics http://127.0.0.1:${METRICS_PORTS[s.name] ?? "-"}/metrics`,
  );
console.log(
  `\ncall them with the operator certificate, e.g.\n` +
    `  grpcurl -cacert ${settings.DEV_PKI_DIR}/bundle.pem -cert ${settings.DEV_PKI_DIR}/operator.pem ` +
    `-key ${settings.DEV_PKI_DIR}/operator-key.pem localhost:50052 list\n` +
    `type "status", "stop NAME", "start NAME" or "restart NAME" to manage one service; ` +
    `Ctrl-C stops everything.`,
);

// Commands on standard input; without a terminal (CI, a pipe that ends) nothing is read.
if (process.stdin.isTTY === true || process.env["START_COMMANDS"] === "stdin") {
  const commands = createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  commands.on("line", (line) => {
    queue = queue.then(() => supervisor.command(line));
  });
}
