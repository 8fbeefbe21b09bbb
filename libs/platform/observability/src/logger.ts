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
 * Field paths whose values are replaced before a line is written, wherever they appear in the
 * first two levels of a log object. Secrets must never reach logs (OWASP ASVS V16.2.5).
 */
export const REDACTED_PATHS: readonly string[] = [
  "password",
  "secret",
  "token",
  "accessToken",
  "refreshToken",
  "access_token",
  "refresh_token",
  "idToken",
  "privateKey",
  "authorization",
  "code",
  "codeVerifier",
].flatMap((key) => [key, `*.${key}`]);

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
