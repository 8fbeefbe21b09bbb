import { loadConfig, loadConfigOrExit, serviceEnv } from "@authplat/config";
import { MfaService } from "@authplat/contracts/auth/mfa/v1";
import { createLogger } from "@authplat/observability";
import { defineService, runService, sameCallersForAll, unimplementedHandlers } from "@authplat/rpc";

// This release serves the contract and the transport; the MFA RPCs answer UNIMPLEMENTED until
// the TOTP, WebAuthn and push issues land.
const config = loadConfigOrExit("mfa", () => loadConfig(serviceEnv("mfa", 50055), process.env));
const logger = createLogger({ service: "mfa", level: config.LOG_LEVEL });
const id = (name: string) => `spiffe://${config.TRUST_DOMAIN}/ns/auth/sa/${name}`;
const callers = [id("session-identity"), id("operator")];

try {
  await runService({
    name: "mfa",
    settings: config,
    logger,
    services: [
      defineService(
        MfaService,
        unimplementedHandlers(MfaService),
        sameCallersForAll(MfaService, callers),
      ),
    ],
  });
} catch (error) {
  logger.fatal({ err: error }, "mfa failed to start");
  process.exit(1);
}
