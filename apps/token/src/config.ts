import { envInt, loadConfig, serviceEnv, type Environment } from "@authplat/config";
import { z } from "zod";
import { SIGNING_ALGORITHMS } from "./keys/signer.ts";

/**
 * Settings of the token service: the common service variables plus
 * - `TOKEN_PROFILE`: `development` (default) or `production`; production refuses signing keys
 *   that are not both persistent and sealed (no embedded dev folder, no plain keys);
 * - `JWT_ISSUER`: `iss` of every token (default `https://auth.local`);
 * - `ACCESS_TOKEN_TTL_SECONDS`: access token lifetime, 60 s to 1 h (default 900);
 * - `REFRESH_TOKEN_TTL_SECONDS`: absolute lifetime of a refresh-token family, 5 min to 90 days
 *   (default 30 days);
 * - `REFRESH_IDLE_TIMEOUT_SECONDS`: a refresh token unused this long expires (default 14 days,
 *   capped by the family's lifetime);
 * - `ID_TOKEN_TTL_SECONDS`: ID token lifetime, 60 s to 1 h (default 300);
 * - `SIGNING_ALG`: `ES256` (default) or `EdDSA`;
 * - `SIGNING_KEY_FILE`: one fixed PKCS#8 PEM private key, never rotated;
 * - `SIGNING_KEY_DIR`: directory of rotating keys shared by replicas on one host;
 * - `KEY_ENCRYPTION_KEY`: base64 of 32 bytes sealing private keys at rest (AES-256-GCM);
 *   required with `REDIS_URL` or `SIGNING_KEY_DIR` (secret);
 * - `KEY_ROTATION_INTERVAL_SECONDS`: how long a key signs before the next is staged (default 1 d);
 * - `KEY_PUBLISH_LEAD_SECONDS`: how long a new key is published before it signs; at least the
 *   edges' JWKS refresh interval (default 600);
 * - `KEY_RELOAD_INTERVAL_MS`: how often keys are reloaded and the schedule checked (default 10 s);
 * - `REDIS_URL`: Redis for families, revocations, the feed and keys; unset: embedded store;
 * - `REDIS_KEY_PREFIX`: prefix of every Redis key (default `token:`);
 * - `TOKEN_DATA_DIR`: where the embedded store and keys persist (default `.dev/token`);
 * - `TOKEN_STORE_MAX_ENTRIES`: bound of the embedded store (default 200,000).
 */
export const tokenEnv = serviceEnv("token", 50052)
  .extend({
    TOKEN_PROFILE: z
      .enum(["development", "production"], { error: "must be development or production" })
      .default("development"),
    JWT_ISSUER: z.url({ error: "must be an absolute URL" }).default("https://auth.local"),
    ACCESS_TOKEN_TTL_SECONDS: envInt(900, 60, 3600),
    REFRESH_TOKEN_TTL_SECONDS: envInt(2_592_000, 300, 7_776_000),
    REFRESH_IDLE_TIMEOUT_SECONDS: envInt(1_209_600, 300, 7_776_000),
    ID_TOKEN_TTL_SECONDS: envInt(300, 60, 3600),
    SIGNING_ALG: z.enum(SIGNING_ALGORITHMS, { error: "must be ES256 or EdDSA" }).default("ES256"),
    SIGNING_KEY_FILE: z.string().optional(),
    SIGNING_KEY_DIR: z.string().optional(),
    KEY_ENCRYPTION_KEY: z
      .string()
      .refine(
        (value) => /^[A-Za-z0-9+/]{43}=$/.test(value) && Buffer.from(value, "base64").length === 32,
        "must be base64 of exactly 32 bytes",
      )
      .optional(),
    KEY_ROTATION_INTERVAL_SECONDS: envInt(86_400, 300, 31_536_000),
    KEY_PUBLISH_LEAD_SECONDS: envInt(600, 0, 86_400),
    KEY_RELOAD_INTERVAL_MS: envInt(10_000, 100, 3_600_000),
    REDIS_URL: z
      .string()
      .refine((value) => /^rediss?:\/\//.test(value), "must be a redis:// or rediss:// URL")
      .optional(),
    REDIS_KEY_PREFIX: z.string().default("token:"),
    TOKEN_DATA_DIR: z.string().default(".dev/token"),
    TOKEN_STORE_MAX_ENTRIES: envInt(200_000, 1_000, 50_000_000),
  })
  .superRefine((config, context) => {
    const shared = config.REDIS_URL !== undefined || config.SIGNING_KEY_DIR !== undefined;
    if (
      config.SIGNING_KEY_FILE === undefined &&
      shared &&
      config.KEY_ENCRYPTION_KEY === undefined
    ) {
      context.addIssue({
        code: "custom",
        path: ["KEY_ENCRYPTION_KEY"],
        message: "is required when keys are kept in REDIS_URL or SIGNING_KEY_DIR",
      });
    }
    if (config.TOKEN_PROFILE === "production" && config.SIGNING_KEY_FILE === undefined && !shared) {
      context.addIssue({
        code: "custom",
        path: ["SIGNING_KEY_DIR"],
        message:
          "production needs persistent signing keys: set SIGNING_KEY_FILE, SIGNING_KEY_DIR or REDIS_URL",
      });
    }
    if (config.TOKEN_PROFILE === "production" && config.REDIS_URL === undefined) {
      context.addIssue({
        code: "custom",
        path: ["REDIS_URL"],
        message: "production keeps families and revocations in Redis: set REDIS_URL",
      });
    }
  });

/** Parsed settings of the token service. */
export type TokenConfig = z.output<typeof tokenEnv>;

/** Variables whose values must never be logged. */
export const TOKEN_SECRETS = [
  "KEY_ENCRYPTION_KEY",
  "REDIS_URL",
] as const satisfies readonly (keyof TokenConfig)[];

/** Reads the token service's settings from `env`, failing fast on a bad variable. */
export function loadTokenConfig(env: Environment): TokenConfig {
  return loadConfig(tokenEnv, env);
}
