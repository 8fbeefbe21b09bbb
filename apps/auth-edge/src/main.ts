import { loadConfigOrExit } from "@authplat/config";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { createLogger } from "@authplat/observability";
import { AuthEdgeService } from "@authplat/contracts/auth/auth_edge/v1";
import {
  createRpcClient,
  everyMethodOverride,
  loadServiceAccessRules,
  runService,
  svidFilesOf,
} from "@authplat/rpc";
import { parseSpiffeId, spiffeIdForService } from "@authplat/spiffe";
import accessRulesFile from "./access-rules.json" with { type: "json" };
import { loadAuthEdgeConfig } from "./config.ts";
import { authEdgeRegistration } from "./handlers.ts";
import { JwksCache } from "./jwks/jwks-cache.ts";
import { fetchJwksFrom } from "./token-service-keys.ts";
import { TokenValidator } from "./tokens/token-validator.ts";

const config = loadConfigOrExit("auth-edge", () => loadAuthEdgeConfig(process.env));
const logger = createLogger({ service: "auth-edge", level: config.LOG_LEVEL });

try {
  const tokenService = await createRpcClient(TokenService, {
    address: config.TOKEN_SERVICE_ADDR,
    tls: svidFilesOf(config),
    serverId:
      config.TOKEN_SERVICE_SPIFFE_ID === undefined
        ? spiffeIdForService(config.TRUST_DOMAIN, "token")
        : parseSpiffeId(config.TOKEN_SERVICE_SPIFFE_ID),
    defaultTimeoutMs: 2_000,
  });
  const nowMs = () => Date.now();
  const keys = new JwksCache({
    fetchKeys: fetchJwksFrom(tokenService),
    algorithms: config.JWT_ALGORITHMS,
    nowMs,
    minRefetchIntervalMs: config.JWKS_MIN_REFETCH_INTERVAL_MS,
    refreshIntervalMs: config.JWKS_REFRESH_INTERVAL_MS,
    maxStalenessMs: config.JWKS_MAX_STALENESS_MS,
    onFetchError: (error) =>
      logger.warn({ err: error }, "JWKS refresh failed; keeping the old keys until too stale"),
    onKeySkipped: (kid, reason) => logger.warn({ kid, reason }, "JWKS key skipped"),
  });
  // Ready means able to validate: wait for the first key set before reporting SERVING.
  await keys.refreshUntilLoaded(AbortSignal.timeout(120_000));
  logger.info({ kids: keys.keyIds }, "JWKS loaded");
  const stopRefreshing = new AbortController();
  void keys.refreshPeriodically(stopRefreshing.signal);
  const validator = new TokenValidator({
    keys,
    issuer: config.JWT_ISSUER,
    audiences: config.JWT_AUDIENCE,
    algorithms: config.JWT_ALGORITHMS,
    clockToleranceSeconds: config.JWT_CLOCK_TOLERANCE_SECONDS,
    nowMs,
    verificationCacheSize: config.JWT_VERIFICATION_CACHE_SIZE,
    // TODO(revocation feed): pass isRevoked once WatchRevocations is consumed here.
  });
  await runService({
    name: "auth-edge",
    settings: config,
    logger,
    // ALLOWED_CALLERS, when set, replaces the rules file's callers of both RPCs; a deployment's
    // ACCESS_RULES_FILE comes after it (README, "Caller allowlists").
    accessRules: loadServiceAccessRules(config, {
      rules: { file: "apps/auth-edge/src/access-rules.json", content: accessRulesFile },
      services: [AuthEdgeService],
      extraOverrides:
        config.ALLOWED_CALLERS === undefined
          ? []
          : [everyMethodOverride("ALLOWED_CALLERS", [AuthEdgeService], config.ALLOWED_CALLERS)],
    }),
    services: [authEdgeRegistration({ validator })],
    onStopped: () => {
      stopRefreshing.abort();
      tokenService.close();
    },
  });
} catch (error) {
  logger.fatal({ err: error }, "auth-edge failed to start");
  process.exit(1);
}
