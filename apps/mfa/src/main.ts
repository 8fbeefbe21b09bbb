import { loadConfig, loadConfigOrExit, serviceEnv } from "@authplat/config";
import { MfaService } from "@authplat/contracts/auth/mfa/v1";
import { createLogger } from "@authplat/observability";
import {
  defineService,
  loadServiceAccessRules,
  runService,
  unimplementedHandlers,
} from "@authplat/rpc";
import accessRulesFile from "./access-rules.json" with { type: "json" };

// This release serves the contract and the transport; the MFA RPCs answer UNIMPLEMENTED until
// the TOTP, WebAuthn and push issues land.
const config = loadConfigOrExit("mfa", () => loadConfig(serviceEnv("mfa", 50055), process.env));
const logger = createLogger({ service: "mfa", level: config.LOG_LEVEL });

try {
  const services = [MfaService];
  await runService({
    name: "mfa",
    settings: config,
    logger,
    accessRules: loadServiceAccessRules(config, {
      rules: { file: "apps/mfa/src/access-rules.json", content: accessRulesFile },
      services,
    }),
    services: services.map((service) => defineService(service, unimplementedHandlers(service))),
  });
} catch (error) {
  logger.fatal({ err: error }, "mfa failed to start");
  process.exit(1);
}
