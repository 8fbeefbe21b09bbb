import { ServiceError } from "@authplat/errors";

/** What {@link watchStoreReadiness} needs of the server: its availability gate. */
export interface AvailabilityGate {
  setUnavailable(error: ServiceError | undefined): void;
}

/** Where transitions are logged. */
export interface ReadinessLog {
  info(message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/**
 * Pings the store every `intervalMs` and closes the gate while it fails: health NOT_SERVING and
 * every RPC UNAVAILABLE (fail closed), reopening when the store answers again. Only
 * transitions are applied and logged. Returns the function that stops it.
 *
 * TODO(runService is gaining a readiness option): hand it the ping instead.
 */
export function watchStoreReadiness(options: {
  readonly ping: () => Promise<void>;
  readonly gate: AvailabilityGate;
  readonly log: ReadinessLog;
  readonly intervalMs: number;
}): () => void {
  let down = false;
  let stopped = false;
  const check = () =>
    options.ping().then(
      () => {
        if (!down || stopped) return;
        down = false;
        options.log.info("the token store answers again: serving");
        options.gate.setUnavailable(undefined);
      },
      (error: unknown) => {
        if (down || stopped) return;
        down = true;
        options.log.warn({ reason: String(error) }, "the token store does not answer: NOT_SERVING");
        options.gate.setUnavailable(
          new ServiceError("UNAVAILABLE", "the token store is unavailable", {
            retryAfterMs: options.intervalMs,
          }),
        );
      },
    );
  const timer = setInterval(check, options.intervalMs);
  timer.unref();
  void check();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
