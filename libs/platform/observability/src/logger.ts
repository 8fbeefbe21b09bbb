import { currentContext } from "@authplat/correlation";
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger } from "pino";

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** The service name, on every line as `service`. */
  readonly service: string;
  /** pino level name; `silent` turns logging off. */
  readonly level: string;
  /** Where lines go; stdout when omitted. Tests pass a stream to read lines back. */
  readonly destination?: DestinationStream;
}

/**
 * Field names that always hold a secret, redacted wherever they appear in the first two
 * levels of a log object. Secrets must never reach logs (OWASP ASVS V16.2.5).
 *
 * A bare `code` is deliberately not here: on log lines `code` is the platform's stable error
 * code (and `err.code` a Node error code such as `ECONNREFUSED`), which operators need to read.
 * Secret codes are named precisely instead: `authorizationCode`, `totpCode`, `backupCode`, or
 * the `code` field of a request payload (see {@link REDACTED_PAYLOAD_KEYS}).
 */
const SECRET_KEYS: readonly string[] = [
  "password",
  "secret",
  "clientSecret",
  "client_secret",
  "token",
  "accessToken",
  "refreshToken",
  "access_token",
  "refresh_token",
  "idToken",
  "id_token",
  "sessionToken",
  "session_token",
  "privateKey",
  "authorization",
  "cookie",
  "authorizationCode",
  "authorization_code",
  "totpCode",
  "totp_code",
  "backupCode",
  "backup_code",
  "otp",
  "codeVerifier",
  "code_verifier",
];

/**
 * Keys under which a request payload is logged. Protobuf requests carry secrets in a generic
 * `code` field (the OAuth authorization code of `ExchangeCode`, the one-time code of an MFA
 * challenge), so `code` is redacted one level below these keys.
 */
const REDACTED_PAYLOAD_KEYS: readonly string[] = ["request", "req", "body", "params", "query"];

/** The pino redaction paths of {@link createLogger}. */
export const REDACTED_PATHS: readonly string[] = [
  ...SECRET_KEYS.flatMap((key) => [key, `*.${key}`]),
  ...REDACTED_PAYLOAD_KEYS.map((key) => `${key}.code`),
];

/**
 * Creates the JSON logger of a service. Every line carries `service`, and, inside a request,
 * `correlationId`, `traceId` and `spanId` from the current request context.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: "msg",
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_PATHS], censor: "[redacted]" },
      mixin() {
        const context = currentContext();
        return context === undefined
          ? {}
          : {
              correlationId: context.correlationId,
              traceId: context.traceId,
              spanId: context.spanId,
            };
      },
    },
    options.destination,
  );
}
