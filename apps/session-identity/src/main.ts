import { loadConfig, loadConfigOrExit, serviceEnv } from "@authplat/config";
import { OAuthService } from "@authplat/contracts/auth/session_identity/v1/oauth";
import { SessionService } from "@authplat/contracts/auth/session_identity/v1/session";
import { UserService } from "@authplat/contracts/auth/session_identity/v1/user";
import { createLogger } from "@authplat/observability";
import {
  defineService,
  loadServiceAccessRules,
  runService,
  unimplementedHandlers,
} from "@authplat/rpc";
import accessRulesFile from "./access-rules.json" with { type: "json" };

// This release serves the contract and the transport; the RPCs answer UNIMPLEMENTED until the
// session, user and OAuth issues land.
const config = loadConfigOrExit("session-identity", () =>
  loadConfig(serviceEnv("session-identity", 50053), process.env),
);
const logger = createLogger({ service: "session-identity", level: config.LOG_LEVEL });

try {
  const services = [SessionService, UserService, OAuthService];
  await runService({
    name: "session-identity",
    settings: config,
    logger,
    accessRules: loadServiceAccessRules(config, {
      rules: { file: "apps/session-identity/src/access-rules.json", content: accessRulesFile },
      services,
    }),
    services: services.map((service) => defineService(service, unimplementedHandlers(service))),
  });
} catch (error) {
  logger.fatal({ err: error }, "session-identity failed to start");
  process.exit(1);
}
