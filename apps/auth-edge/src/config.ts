import {
  envAddress,
  envInt,
  envList,
  loadConfig,
  serviceEnv,
  type Environment,
} from "@authplat/config";
import { parseSpiffeId } from "@authplat/spiffe";
import { z } from "zod";

const spiffeId = z.string().refine((value) => {
  try {
    parseSpiffeId(value);
    return true;
  } catch {
    return false;
  }
}, "must be a SPIFFE ID such as spiffe://auth.local/ns/auth/sa/name");

/**
 * Settings of auth-edge: the common service variables plus
 * - `TOKEN_SERVICE_ADDR`: host:port of the token service (default `127.0.0.1:50052`);
 * - `TOKEN_SERVICE_SPIFFE_ID`: the ID the token service must present
 *   (default `spiffe://<TRUST_DOMAIN>/ns/auth/sa/token`);
 * - `JWT_ISSUER`: the accepted `iss` (default `https://auth.local`);
 * - `JWT_AUDIENCE`: comma-separated accepted audiences (default `https://api.auth.local`);
 * - `JWT_ALGORITHMS`: comma-separated allowlist, of ES256 and EdDSA (default both);
 * - `JWT_CLOCK_TOLERANCE_SECONDS`: leeway on exp/nbf/iat, 0-60 (default 5);
 * - `JWKS_REFRESH_INTERVAL_MS`: background JWKS refresh, shortened to the `max_age` the token
 *   service sends (default 300000);
 * - `JWKS_MIN_REFETCH_INTERVAL_MS`: least time between fetches caused by lookups, at least 1000
 *   so a stream of unknown key IDs cannot hammer the token service (default 5000);
 * - `JWKS_MAX_STALENESS_MS`: how old the last fetched key set may grow while refreshes fail;
 *   past it ValidateToken fails closed with UNAVAILABLE (default 3600000, one hour);
 * - `JWT_SIGNATURE_PLACEMENT`: where signatures are checked: `auto` (default: on the event loop
 *   while it is at most half busy, on libuv's thread pool above that), `event-loop` or
 *   `thread-pool`;
 * - `JWT_VERIFICATION_CACHE_SIZE`: how many verified tokens to remember so a repeated token
 *   skips the signature check, 0-1000000, 0 turning the cache off (default 10000);
 * - `ALLOWED_CALLERS`: comma-separated SPIFFE IDs that may call ValidateToken,
 *   IntrospectToken and AuthorizeToken (default the operator identity);
 * - `REVOCATION_MAX_STALENESS_MS`: how long the edge goes on answering from its revocation list
 *   without hearing from the token service's feed; past it ValidateToken and IntrospectToken fail
 *   closed with UNAVAILABLE and health turns NOT_SERVING, 1000-600000 (default 30000);
 * - `REVOCATION_MAX_ENTRIES`: the most live revocations the edge holds; more fails closed
 *   (UNAVAILABLE) rather than forgetting one, 1-10000000 (default 200000, about 30 MB);
 * - `TOKEN_BREAKER_FAILURES`, `TOKEN_BREAKER_OPEN_MS`: the circuit breaker in front of the token
 *   service opens after this many failures in a row (default 5, 1-1000) for this long (default
 *   5000, 100-600000), answering UNAVAILABLE with retry pushback meanwhile;
 * - `IAM_POLICY_ADDR`: host:port of iam-policy, which decides AuthorizeToken and the ext_authz
 *   routes that name an action and a resource (default `127.0.0.1:50054`);
 * - `IAM_POLICY_SPIFFE_ID`: the ID iam-policy must present
 *   (default `spiffe://<TRUST_DOMAIN>/ns/auth/sa/iam-policy`);
 * - `IAM_POLICY_BREAKER_FAILURES`, `IAM_POLICY_BREAKER_OPEN_MS`: the circuit breaker in front of
 *   iam-policy, as for the token service (default 5 failures, 5000 ms);
 * - `EXT_AUTHZ_CALLERS`: comma-separated SPIFFE IDs of the proxies (Envoy, Istio gateways) that
 *   may call `envoy.service.auth.v3.Authorization/Check`, replacing the rules file's
 *   (default `envoy` in production, `envoy` and the operator in development);
 * - `EXT_AUTHZ_REALM`: the `realm` of the `WWW-Authenticate` challenges Check returns, printable
 *   ASCII without quotes or backslashes (default `authplat`);
 * - `EXT_AUTHZ_FORWARD_AUTHORIZATION`: `true` to pass the `authorization` header on to the
 *   upstream of an allowed request; `false` (default) has Envoy remove it, the verified identity
 *   travelling in the `x-authplat-*` headers instead.
 */
export const authEdgeEnv = serviceEnv("auth-edge", 50051).extend({
  TOKEN_SERVICE_ADDR: envAddress("127.0.0.1:50052"),
  TOKEN_SERVICE_SPIFFE_ID: spiffeId.optional(),
  JWT_ISSUER: z.url({ error: "must be an absolute URL" }).default("https://auth.local"),
  JWT_AUDIENCE: envList("https://api.auth.local", z.string().min(1)),
  JWT_ALGORITHMS: envList(
    "ES256,EdDSA",
    z.enum(["ES256", "EdDSA"], { error: "must be ES256 or EdDSA" }),
  ),
  JWT_CLOCK_TOLERANCE_SECONDS: envInt(5, 0, 60),
  JWKS_REFRESH_INTERVAL_MS: envInt(300_000, 1_000, 86_400_000),
  JWKS_MIN_REFETCH_INTERVAL_MS: envInt(5_000, 1_000, 3_600_000),
  JWKS_MAX_STALENESS_MS: envInt(3_600_000, 60_000, 604_800_000),
  JWT_VERIFICATION_CACHE_SIZE: envInt(10_000, 0, 1_000_000),
  JWT_SIGNATURE_PLACEMENT: z
    .enum(["auto", "event-loop", "thread-pool"], {
      error: "must be auto, event-loop or thread-pool",
    })
    .default("auto"),
  ALLOWED_CALLERS: envList("", spiffeId).optional(),
  REVOCATION_MAX_STALENESS_MS: envInt(30_000, 1_000, 600_000),
  REVOCATION_MAX_ENTRIES: envInt(200_000, 1, 10_000_000),
  TOKEN_BREAKER_FAILURES: envInt(5, 1, 1_000),
  TOKEN_BREAKER_OPEN_MS: envInt(5_000, 100, 600_000),
  IAM_POLICY_ADDR: envAddress("127.0.0.1:50054"),
  IAM_POLICY_SPIFFE_ID: spiffeId.optional(),
  IAM_POLICY_BREAKER_FAILURES: envInt(5, 1, 1_000),
  IAM_POLICY_BREAKER_OPEN_MS: envInt(5_000, 100, 600_000),
  EXT_AUTHZ_CALLERS: envList("", spiffeId).optional(),
  // RFC 6750 §3: the realm is a quoted-string; these characters need no escaping in one.
  EXT_AUTHZ_REALM: z
    .string()
    .regex(/^[\x20\x21\x23-\x5b\x5d-\x7e]{1,128}$/, {
      error: "must be 1-128 printable ASCII characters without quotes or backslashes",
    })
    .default("authplat"),
  EXT_AUTHZ_FORWARD_AUTHORIZATION: z
    .enum(["true", "false"], { error: "must be true or false" })
    .default("false")
    .transform((value) => value === "true"),
});

/** Parsed settings of auth-edge. */
export type AuthEdgeConfig = z.output<typeof authEdgeEnv>;

/** Reads auth-edge's settings from `env`, failing fast on a bad variable. */
export function loadAuthEdgeConfig(env: Environment): AuthEdgeConfig {
  return loadConfig(authEdgeEnv, env);
}
