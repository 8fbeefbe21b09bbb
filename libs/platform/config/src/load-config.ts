import { type z } from "zod";

/** Thrown when the environment does not satisfy a service's configuration schema. */
export class ConfigError extends Error {
  /** One entry per bad variable: its name and what is wrong (never its value). */
  readonly problems: readonly { readonly variable: string; readonly problem: string }[];

  constructor(problems: readonly { variable: string; problem: string }[]) {
    super(
      `invalid configuration: ${problems.map((p) => `${p.variable}: ${p.problem}`).join("; ")}`,
    );
    this.name = "ConfigError";
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ ...p })));
  }
}

/** An environment as `process.env` gives it. */
export type Environment = Readonly<Record<string, string | undefined>>;

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/**
 * Parses `env` once against `schema`, whose keys are environment variable names. Empty strings
 * count as unset, so defaults apply. Fails fast with a {@link ConfigError} naming every bad
 * variable (values are never echoed: they may be secrets). Returns a deeply frozen object.
 *
 * This is the only function in the workspace that may be handed `process.env`.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: Environment): z.output<S> {
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const raw = env[key];
    if (raw !== undefined && raw.trim() !== "") input[key] = raw.trim();
  }
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => ({
        variable: issue.path.length > 0 ? issue.path.map(String).join(".") : "(environment)",
        problem: issue.message,
      })),
    );
  }
  return deepFreeze(result.data);
}

/**
 * A copy of `config` that is safe to log: each key in `secretKeys` that has a value is
 * replaced by `"[redacted]"`.
 */
export function redactConfig<T extends object>(
  config: T,
  secretKeys: readonly (keyof T)[],
): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...(config as Record<string, unknown>) };
  for (const key of secretKeys) {
    if (copy[key as string] !== undefined) copy[key as string] = "[redacted]";
  }
  return copy;
}

/** Exit status of a process stopped by bad configuration (sysexits.h EX_CONFIG). */
export const EXIT_CONFIG = 78;

/**
 * Runs `load` (a `loadConfig` call) and, on a {@link ConfigError}, writes one JSON log line
 * naming every bad variable to stderr and exits with {@link EXIT_CONFIG}, so a misconfigured
 * service stops at once with a message an operator can act on. Other errors propagate.
 */
export function loadConfigOrExit<T>(service: string, load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(
      `${JSON.stringify({
        level: "fatal",
        time: new Date().toISOString(),
        service,
        problems: error.problems,
        msg: error.message,
      })}\n`,
    );
    process.exit(EXIT_CONFIG);
  }
}
