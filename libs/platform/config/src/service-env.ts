import { z } from "zod";
import { envInt, envLogLevel, envPort } from "./env-types.ts";

const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

/**
 * The environment variables every service reads, with the defaults that make `npm start`
 * work from the repository root: SVID files under `.dev/pki/`, loopback only.
 *
 * - `LOG_LEVEL`: pino level (default `info`).
 * - `TRUST_DOMAIN`: SPIFFE trust domain of every peer (default `auth.local`).
 * - `GRPC_HOST` / `GRPC_PORT`: where the mTLS gRPC server listens.
 * - `SVID_CERT_FILE`, `SVID_KEY_FILE`, `TRUST_BUNDLE_FILE`: PEM files, re-read when changed.
 * - `SVID_REFRESH_INTERVAL_MS`: how often those files are checked (default 5000).
 * - `SHUTDOWN_GRACE_MS`: how long in-flight calls may finish after SIGTERM (default 10000).
 */
export function serviceEnv(service: string, defaultPort: number) {
  return z.object({
    LOG_LEVEL: envLogLevel,
    TRUST_DOMAIN: z
      .string()
      .default("auth.local")
      .refine((value) => TRUST_DOMAIN.test(value), "must be a SPIFFE trust domain name"),
    GRPC_HOST: z.string().default("127.0.0.1"),
    GRPC_PORT: envPort(defaultPort),
    SVID_CERT_FILE: z.string().default(`.dev/pki/${service}.pem`),
    SVID_KEY_FILE: z.string().default(`.dev/pki/${service}-key.pem`),
    TRUST_BUNDLE_FILE: z.string().default(".dev/pki/bundle.pem"),
    SVID_REFRESH_INTERVAL_MS: envInt(5_000, 100, 3_600_000),
    SHUTDOWN_GRACE_MS: envInt(10_000, 0, 300_000),
  });
}

/** The parsed common settings of a service. */
export type ServiceEnv = z.output<ReturnType<typeof serviceEnv>>;
