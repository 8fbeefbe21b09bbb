import { envInt, loadConfig, serviceEnv, type Environment } from "@authplat/config";
import { z } from "zod";
import { SIGNING_ALGORITHMS } from "./keys/signer.ts";

/**
 * Settings of the token service: the common service variables plus
 * - `JWT_ISSUER`: `iss` of every token (default `https://auth.local`);
 * - `ACCESS_TOKEN_TTL_SECONDS`: access token lifetime, 60 s to 1 h (default 900);
 * - `REFRESH_TOKEN_TTL_SECONDS`: refresh token lifetime, 5 min to 90 days (default 30 days);
 * - `SIGNING_ALG`: `ES256` (default) or `EdDSA`;
 * - `SIGNING_KEY_FILE`: PKCS#8 PEM private key; unset generates an ephemeral key at start.
 */
export const tokenEnv = serviceEnv("token", 50052).extend({
  JWT_ISSUER: z.url({ error: "must be an absolute URL" }).default("https://auth.local"),
  ACCESS_TOKEN_TTL_SECONDS: envInt(900, 60, 3600),
  REFRESH_TOKEN_TTL_SECONDS: envInt(2_592_000, 300, 7_776_000),
  SIGNING_ALG: z.enum(SIGNING_ALGORITHMS, { error: "must be ES256 or EdDSA" }).default("ES256"),
  SIGNING_KEY_FILE: z.string().optional(),
});

/** Parsed settings of the token service. */
export type TokenConfig = z.output<typeof tokenEnv>;

/** Reads the token service's settings from `env`, failing fast on a bad variable. */
export function loadTokenConfig(env: Environment): TokenConfig {
  return loadConfig(tokenEnv, env);
}
