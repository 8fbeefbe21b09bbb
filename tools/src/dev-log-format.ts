/**
 * Turns the services' JSON log lines into one readable line per event for `npm start`. The
 * services always log JSON (what production log pipelines want); only the development
 * supervisor formats them, so nothing changes in a container.
 *
 * @module
 */

/** Options of {@link formatLogLine}. */
export interface LogFormatOptions {
  /** ANSI colours (when the terminal is a TTY and NO_COLOR is unset). */
  readonly color: boolean;
  /** Width the service name is padded to. */
  readonly nameWidth: number;
}

const LEVEL_STYLE: Record<string, { label: string; ansi: string }> = {
  trace: { label: "TRACE", ansi: "\x1b[90m" },
  debug: { label: "DEBUG", ansi: "\x1b[36m" },
  info: { label: "INFO ", ansi: "\x1b[32m" },
  warn: { label: "WARN ", ansi: "\x1b[33m" },
  error: { label: "ERROR", ansi: "\x1b[31m" },
  fatal: { label: "FATAL", ansi: "\x1b[35m" },
};
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";

// Fields every line carries or that the prefix already shows.
const SHOWN_ELSEWHERE = new Set(["level", "time", "service", "msg", "pid", "hostname"]);
// Request-scoped IDs are long; the correlation ID is the one people search for.
const HIDDEN = new Set(["traceId", "spanId"]);

interface LogError {
  readonly type?: unknown;
  readonly message?: unknown;
  readonly stack?: unknown;
  readonly code?: unknown;
}

function scalar(value: unknown): string {
  if (typeof value === "string") return /^[\w.:/@-]*$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null) {
    return String(value);
  }
  return JSON.stringify(value);
}

function describeError(error: LogError): string {
  const type = typeof error.type === "string" ? error.type : "Error";
  const code = typeof error.code === "string" ? ` [${error.code}]` : "";
  const message = typeof error.message === "string" ? error.message.split("\n")[0] : "";
  return `${type}${code}: ${message}`;
}

/**
 * Formats one output line of service `service`. A JSON log line becomes
 * `12:00:01.234 INFO  token            │ serving port=50052 …`; the stack of an `err` is kept
 * only at level error and above (a real fault), otherwise the error shows as `Type [CODE]:
 * message`. Any other line is shown as it is, behind the same prefix.
 */
export function formatLogLine(service: string, line: string, options: LogFormatOptions): string {
  const paint = (ansi: string, text: string) => (options.color ? `${ansi}${text}${RESET}` : text);
  const name = service.padEnd(options.nameWidth);
  let entry: Record<string, unknown> | undefined;
  if (line.startsWith("{")) {
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
        entry = parsed as Record<string, unknown>;
      }
    } catch {
      entry = undefined;
    }
  }
  if (entry === undefined) return `${paint(DIM, "            ")} ${name} │ ${line}`;

  const level = typeof entry["level"] === "string" ? entry["level"] : "info";
  const style = LEVEL_STYLE[level] ?? { label: level.toUpperCase().padEnd(5), ansi: "" };
  const time = typeof entry["time"] === "string" ? entry["time"].slice(11, 23) : "".padEnd(12);
  const message = typeof entry["msg"] === "string" ? entry["msg"] : "";
  const fields: string[] = [];
  let stack: string | undefined;
  for (const [key, value] of Object.entries(entry)) {
    if (SHOWN_ELSEWHERE.has(key) || HIDDEN.has(key)) continue;
    if (key === "err" && value !== null && typeof value === "object") {
      const error = value as LogError;
      fields.push(`err=${JSON.stringify(describeError(error))}`);
      const severe = level === "error" || level === "fatal";
      // A taken port is the environment's problem; its message says what to do.
      const expected = error.type === "PortInUseError";
      if (severe && !expected && typeof error.stack === "string") stack = error.stack;
      continue;
    }
    fields.push(`${key}=${scalar(value)}`);
  }
  const head = `${paint(DIM, time)} ${paint(style.ansi, style.label)} ${name} │ ${message}`;
  const tail = fields.length > 0 ? ` ${paint(DIM, fields.join(" "))}` : "";
  const trace =
    stack === undefined
      ? ""
      : `\n${stack
          .split("\n")
          .map((l) => `${"".padEnd(12)} ${"".padEnd(5)} ${name} │   ${l}`)
          .join("\n")}`;
  return head + tail + trace;
}
