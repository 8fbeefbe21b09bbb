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
 * - `ACCESS_PROFILE`: which caller rules of `apps/<service>/src/access-rules.json` apply,
 *   `production` (default) or `development` (`npm start`).
 * - `ACCESS_RULES_FILE`: a deployment's rules file of the same shape; it replaces the callers of
 *   the methods it names (unset: none).
 * - `METRICS_HOST` / `METRICS_PORT`: the plain-HTTP Prometheus endpoint `GET /metrics`
 *   (default `127.0.0.1`; port unset or 0: no endpoint).
 * - `OTEL_EXPORTER_OTLP_ENDPOINT`: OTLP/HTTP collector base URL, e.g. `http://127.0.0.1:4318`;
 *   spans go to `<endpoint>/v1/traces`. Unset: no tracing at all.
 * - `OTEL_SERVICE_NAME`: `service.name` of the spans (default: the service's name).
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
    ACCESS_PROFILE: z
      .enum(["production", "development"], { error: "must be production or development" })
      .default("production"),
    ACCESS_RULES_FILE: z.string().optional(),
    METRICS_HOST: z.string().min(1, "must not be empty").default("127.0.0.1"),
    METRICS_PORT: envPort(0),
    OTEL_EXPORTER_OTLP_ENDPOINT: z
      .string()
      .refine(
        (value) => /^https?:\/\/\S+$/.test(value) && URL.canParse(value),
        "must be an http(s) URL",
      )
      .optional(),
    OTEL_SERVICE_NAME: z.string().max(255, "must be at most 255 characters").optional(),
  });
}

/** The parsed common settings of a service. */
export type ServiceEnv = z.output<ReturnType<typeof serviceEnv>>;
