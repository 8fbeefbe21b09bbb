/**
 * `npm start`: makes sure the development PKI exists and is fresh, starts the five services as
 * separate processes on their default ports with embedded backends, prints where each listens,
 * and stops them all on Ctrl-C (SIGINT) or SIGTERM.
 *
 * @module
 */
import { resolve } from "node:path";
import { loadConfig } from "@authplat/config";
import { ensureDevPki } from "@authplat/spiffe/dev-pki";
import { z } from "zod";
import { PLATFORM_SERVICES } from "./platform-services.ts";
import { spawnService, type ServiceProcess } from "./service-process.ts";

const root = resolve(import.meta.dirname, "..", "..");
const settings = loadConfig(
  z.object({
    TRUST_DOMAIN: z.string().default("auth.local"),
    DEV_PKI_DIR: z.string().default(".dev/pki"),
  }),
  process.env,
);
const pkiDir = resolve(root, settings.DEV_PKI_DIR);

const pki = await ensureDevPki({ dir: pkiDir, trustDomain: settings.TRUST_DOMAIN });
console.log(
  pki.regenerated
    ? `dev PKI: new CA and SVIDs for ${settings.TRUST_DOMAIN} in ${pkiDir}`
    : pki.renewed.length > 0
      ? `dev PKI: renewed ${pki.renewed.join(", ")}`
      : `dev PKI: up to date in ${pkiDir}`,
);

const width = Math.max(...PLATFORM_SERVICES.map((s) => s.name.length));
const children: ServiceProcess[] = PLATFORM_SERVICES.map(({ name }) =>
  spawnService({
    root,
    name,
    env: {
      ...process.env,
      SVID_CERT_FILE: resolve(pkiDir, `${name}.pem`),
      SVID_KEY_FILE: resolve(pkiDir, `${name}-key.pem`),
      TRUST_BUNDLE_FILE: resolve(pkiDir, "bundle.pem"),
    },
    onLine: (line) => console.log(`${name.padEnd(width)} | ${line}`),
  }),
);

let stopping = false;
async function stopAll(exitCode: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log("stopping all services…");
    await Promise.all(children.map((child) => child.stop()));
  }
  process.exit(exitCode);
}
process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));
for (const child of children) {
  void child.exited.then((code) => {
    if (!stopping) {
      console.error(`${child.name} exited unexpectedly (${code}); stopping the others`);
      void stopAll(1);
    }
  });
}

try {
  const ready = await Promise.all(children.map((child) => child.serving));
  console.log("\nall five services are SERVING over mTLS:");
  children.forEach((child, index) => {
    console.log(
      `  ${child.name.padEnd(width)}  127.0.0.1:${ready[index]!.port}  ${ready[index]!.spiffeId}`,
    );
  });
  console.log(
    `\ncall them with the operator certificate, e.g.\n` +
      `  grpcurl -cacert ${settings.DEV_PKI_DIR}/bundle.pem -cert ${settings.DEV_PKI_DIR}/operator.pem ` +
      `-key ${settings.DEV_PKI_DIR}/operator-key.pem localhost:50052 list\n` +
      `Ctrl-C stops everything.`,
  );
} catch (error) {
  console.error(String(error));
  await stopAll(1);
}
