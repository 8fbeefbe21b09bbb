import { loadConfig, loadConfigOrExit, serviceEnv } from "@authplat/config";
import { OAuthService } from "@authplat/contracts/auth/session_identity/v1/oauth";
import { SessionService } from "@authplat/contracts/auth/session_identity/v1/session";
import { UserService } from "@authplat/contracts/auth/session_identity/v1/user";
import { createLogger } from "@authplat/observability";
import { defineService, runService, sameCallersForAll, unimplementedHandlers } from "@authplat/rpc";

// This release serves the contract and the transport; the RPCs answer UNIMPLEMENTED until the
// session, user and OAuth issues land.
const config = loadConfigOrExit("session-identity", () =>
  loadConfig(serviceEnv("session-identity", 50053), process.env),
);
const logger = createLogger({ service: "session-identity", level: config.LOG_LEVEL });
const id = (name: string) => `spiffe://${config.TRUST_DOMAIN}/ns/auth/sa/${name}`;
const callers = [id("auth-edge"), id("operator")];

try {
  await runService({
    name: "session-identity",
    settings: config,
    logger,
    services: [SessionService, UserService, OAuthService].map((service) =>
      defineService(service, unimplementedHandlers(service), sameCallersForAll(service, callers)),
    ),
  });
} catch (error) {
  logger.fatal({ err: error }, "session-identity failed to start");
  process.exit(1);
}
