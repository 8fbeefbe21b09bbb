import { loadConfigOrExit } from "@authplat/config";
import { IamPolicyService } from "@authplat/contracts/auth/iam_policy/v1";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { createLogger } from "@authplat/observability";
import { AuthEdgeService } from "@authplat/contracts/auth/auth_edge/v1";
import {
  everyMethodOverride,
  loadServiceAccessRules,
  runService,
  startServiceTelemetry,
  svidFilesOf,
} from "@authplat/rpc";
import { parseSpiffeId, spiffeIdForService } from "@authplat/spiffe";
import accessRulesFile from "./access-rules.json" with { type: "json" };
import { loadAuthEdgeConfig } from "./config.ts";
import { extAuthzRegistration } from "./ext-authz/check-handler.ts";
import { loadEnvoyAuthorizationProtos } from "./ext-authz/envoy-protos.ts";
import { ExtAuthzService } from "./ext-authz/ext-authz-service.ts";
import { createDownstreamClient, type BreakerSettings } from "./downstream-client.ts";
import type { DescService } from "@bufbuild/protobuf";
import { IamPolicyAuthorizer } from "./authorization/iam-policy-authorizer.ts";
import { TokenAuthorizer } from "./authorization/token-authorizer.ts";
import { iamPolicyDecider } from "./iam-policy-decider.ts";
import { authEdgeRegistration } from "./handlers.ts";
import { JwksCache } from "./jwks/jwks-cache.ts";
import { RevocationFeed } from "./revocation/revocation-feed.ts";
import { RevocationSet } from "./revocation/revocation-set.ts";
import { openRevocationFeedFrom } from "./token-revocation-feed.ts";
import { refreshTokenInspector } from "./token-refresh-inspector.ts";
import { fetchJwksFrom } from "./token-service-keys.ts";
import { TokenIntrospector } from "./tokens/token-introspector.ts";
import { TokenValidator } from "./tokens/token-validator.ts";

const config = loadConfigOrExit("auth-edge", () => loadAuthEdgeConfig(process.env));
const logger = createLogger({ service: "auth-edge", level: config.LOG_LEVEL });

try {
  // Envoy's ext_authz contract, parsed once here (about 0.1 s), never on a request.
  const protosStartedMs = performance.now();
  const envoyAuthorization = loadEnvoyAuthorizationProtos();
  logger.info(
    { ms: Math.round(performance.now() - protosStartedMs) },
    "Envoy external authorization protos loaded",
  );
  // Built before the clients so their calls are measured and traced and the breakers' state is
  // exported (authplat_circuit_breaker_state).
  const telemetry = await startServiceTelemetry({ name: "auth-edge", settings: config, logger });
  // Every downstream: mTLS with the edge's SVID, the server's SPIFFE ID checked (the
  // workload's default unless configured), a 2 s deadline, its own breaker, measured and traced.
  const downstream = <S extends DescService>(
    service: S,
    name: string,
    address: string,
    spiffeId: string | undefined,
    breaker: BreakerSettings,
  ) =>
    createDownstreamClient(service, {
      name,
      address,
      tls: svidFilesOf(config),
      serverId:
        spiffeId === undefined
          ? spiffeIdForService(config.TRUST_DOMAIN, name)
          : parseSpiffeId(spiffeId),
      defaultTimeoutMs: 2_000,
      breaker,
      logger,
      metrics: telemetry.metrics,
      interceptors: telemetry.clientInterceptors,
    });
  const { client: tokenService } = await downstream(
    TokenService,
    "token",
    config.TOKEN_SERVICE_ADDR,
    config.TOKEN_SERVICE_SPIFFE_ID,
    { failures: config.TOKEN_BREAKER_FAILURES, openMs: config.TOKEN_BREAKER_OPEN_MS },
  );
  // Decides AuthorizeToken and the ext_authz routes that name an action and a resource; down or
  // circuit open means UNAVAILABLE for those, never an allow.
  const { client: iamPolicy } = await downstream(
    IamPolicyService,
    "iam-policy",
    config.IAM_POLICY_ADDR,
    config.IAM_POLICY_SPIFFE_ID,
    { failures: config.IAM_POLICY_BREAKER_FAILURES, openMs: config.IAM_POLICY_BREAKER_OPEN_MS },
  );
  const nowMs = () => Date.now();
  const decider = iamPolicyDecider(iamPolicy);
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
  const revocations = new RevocationFeed({
    set: new RevocationSet({ maxEntries: config.REVOCATION_MAX_ENTRIES, nowMs }),
    // A heartbeat at least three times per staleness bound: two lost ones are not an outage.
    open: openRevocationFeedFrom(
      tokenService,
      Math.min(5_000, Math.floor(config.REVOCATION_MAX_STALENESS_MS / 3)),
    ),
    maxStalenessMs: config.REVOCATION_MAX_STALENESS_MS,
    // Lost once at warn; the retries while token stays away at debug; back at info.
    onDisconnect: (error, reconnectInMs, attempt) => {
      if (attempt === 1) {
        logger.warn(
          { err: error, reconnectInMs, maxStalenessMs: config.REVOCATION_MAX_STALENESS_MS },
          "revocation feed lost; reconnecting (validation fails closed once it is older than REVOCATION_MAX_STALENESS_MS)",
        );
      } else logger.debug({ err: error, reconnectInMs, attempt }, "revocation feed still away");
    },
    onReconnect: (downForMs) =>
      logger.info({ downForMs: Math.round(downForMs) }, "revocation feed back"),
  });
  void revocations.run(stopRefreshing.signal);
  // Ready means able to validate, which needs the revocation list as much as the keys.
  await Promise.race([
    revocations.loaded,
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error("no revocation snapshot within 120 s")), 120_000).unref(),
    ),
  ]);
  logger.info("revocation list loaded");
  const validator = new TokenValidator({
    keys,
    issuer: config.JWT_ISSUER,
    audiences: config.JWT_AUDIENCE,
    algorithms: config.JWT_ALGORITHMS,
    clockToleranceSeconds: config.JWT_CLOCK_TOLERANCE_SECONDS,
    nowMs,
    verificationCacheSize: config.JWT_VERIFICATION_CACHE_SIZE,
    signaturePlacement: config.JWT_SIGNATURE_PLACEMENT,
    isRevoked: (claims) => revocations.isRevoked(claims),
  });
  await runService({
    name: "auth-edge",
    settings: config,
    logger,
    telemetry,
    // A stale revocation list turns health NOT_SERVING (and every RPC UNAVAILABLE) until the
    // feed is back; the validator fails closed on its own in between readiness rounds.
    readiness: [
      { name: "revocation-feed", required: true, check: async () => revocations.check() },
    ],
    readinessIntervalMs: 1_000,
    // ALLOWED_CALLERS, when set, replaces the rules file's callers of AuthEdgeService; a deployment's
    // ACCESS_RULES_FILE comes after it (README, "Caller allowlists").
    accessRules: loadServiceAccessRules(config, {
      rules: { file: "apps/auth-edge/src/access-rules.json", content: accessRulesFile },
      services: [AuthEdgeService, envoyAuthorization.service],
      extraOverrides: [
        ...(config.ALLOWED_CALLERS === undefined
          ? []
          : [everyMethodOverride("ALLOWED_CALLERS", [AuthEdgeService], config.ALLOWED_CALLERS)]),
        ...(config.EXT_AUTHZ_CALLERS === undefined
          ? []
          : [
              everyMethodOverride(
                "EXT_AUTHZ_CALLERS",
                [envoyAuthorization.service],
                config.EXT_AUTHZ_CALLERS,
              ),
            ]),
      ],
    }),
    services: [
      authEdgeRegistration({
        validator,
        issuer: config.JWT_ISSUER,
        introspector: new TokenIntrospector({
          validator,
          refreshTokens: refreshTokenInspector(tokenService),
        }),
        authorizer: new TokenAuthorizer({ validator, decider, nowMs }),
      }),
      extAuthzRegistration({
        service: envoyAuthorization.service,
        extAuthz: new ExtAuthzService({
          validator,
          authorizer: new IamPolicyAuthorizer({ decider, nowMs }),
        }),
        answers: {
          realm: config.EXT_AUTHZ_REALM,
          forwardAuthorization: config.EXT_AUTHZ_FORWARD_AUTHORIZATION,
        },
      }),
    ],
    onStopped: () => {
      stopRefreshing.abort();
      tokenService.close();
      iamPolicy.close();
    },
  });
} catch (error) {
  logger.fatal({ err: error }, "auth-edge failed to start");
  process.exit(1);
}
