import { z } from "zod";

/** A TCP port 0-65535 (0 lets the OS choose, for tests). */
export function envPort(defaultPort: number) {
  return z.coerce
    .number({ error: "must be a number" })
    .int("must be an integer")
    .min(0, "must be 0-65535")
    .max(65535, "must be 0-65535")
    .default(defaultPort);
}

/** A positive integer with bounds, such as a duration in milliseconds or seconds. */
export function envInt(defaultValue: number, min: number, max: number) {
  return z.coerce
    .number({ error: "must be a number" })
    .int("must be an integer")
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`)
    .default(defaultValue);
}

/** A comma-separated list of non-empty items, each checked by `item`. */
export function envList<T extends z.ZodType<string, string>>(defaultValue: string, item: T) {
  return z
    .string()
    .default(defaultValue)
    .transform((value) =>
      value
        .split(",")
        .map((part) => part.trim())
        .filter((part) => part.length > 0),
    )
    .pipe(z.array(item).min(1, "must list at least one value"));
}

/** `host:port`, the form gRPC targets use. */
export function envAddress(defaultValue: string) {
  return z
    .string()
    .default(defaultValue)
    .refine((value) => /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(value), "must be host:port");
}

/** Log levels pino understands. */
export const envLogLevel = z
  .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
    error: "must be one of fatal, error, warn, info, debug, trace, silent",
  })
  .default("info");
