import { loadConfig, loadConfigOrExit, serviceEnv } from "@authplat/config";
import { IamPolicyService } from "@authplat/contracts/auth/iam_policy/v1";
import { createLogger } from "@authplat/observability";
import { defineService, runService, sameCallersForAll, unimplementedHandlers } from "@authplat/rpc";

// This release serves the contract and the transport; Authorize, BatchAuthorize and
// GetUserPermissions answer UNIMPLEMENTED until the policy engine issue lands.
const config = loadConfigOrExit("iam-policy", () =>
  loadConfig(serviceEnv("iam-policy", 50054), process.env),
);
const logger = createLogger({ service: "iam-policy", level: config.LOG_LEVEL });
const id = (name: string) => `spiffe://${config.TRUST_DOMAIN}/ns/auth/sa/${name}`;
const callers = [id("auth-edge"), id("session-identity"), id("operator")];

try {
  await runService({
    name: "iam-policy",
    settings: config,
    logger,
    services: [
      defineService(
        IamPolicyService,
        unimplementedHandlers(IamPolicyService),
        sameCallersForAll(IamPolicyService, callers),
      ),
    ],
  });
} catch (error) {
  logger.fatal({ err: error }, "iam-policy failed to start");
  process.exit(1);
}
