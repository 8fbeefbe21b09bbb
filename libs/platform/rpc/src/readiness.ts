import { ServiceError } from "@authplat/errors";
import type { Logger } from "@authplat/observability";

/** One dependency the service needs in order to answer. */
export interface ReadinessCheck {
  /** Short name for logs, e.g. `postgres`. */
  readonly name: string;
  /**
   * Resolves when the dependency answers, rejects when it does not. `signal` aborts when the
   * check takes longer than the interval or the service stops.
   */
  readonly check: (signal: AbortSignal) => Promise<void>;
  /** Whether the service is unavailable while this check fails (otherwise it is only logged). */
  readonly required: boolean;
}

/** Options of {@link monitorReadiness}. */
export interface ReadinessOptions {
  readonly checks: readonly ReadinessCheck[];
  /** Time between rounds of checks, and the timeout of each; also the retry pushback. */
  readonly intervalMs: number;
  readonly logger: Logger;
  /**
   * Called after each round that changes the verdict: an UNAVAILABLE error to answer every
   * RPC with while a required check fails, `undefined` once all pass again.
   */
  readonly onChange: (unavailable: ServiceError | undefined) => void;
}

/** A running readiness monitor. */
export interface ReadinessMonitor {
  /** Resolves after the first round of checks has been applied. */
  readonly firstRound: Promise<void>;
  /** Stops checking (in-flight checks are aborted). */
  stop(): void;
}

/** Node's codes for failures that are expected while a dependency is down: no stack needed. */
const EXPECTED_NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
]);

function isExpectedFailure(error: unknown): boolean {
  if (error instanceof ServiceError) return true;
  if (error instanceof Error && error.name === "AbortError") return true;
  if (error instanceof Error && error.name === "TimeoutError") return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && EXPECTED_NETWORK_CODES.has(code);
}

/**
 * Runs `checks` at once and then every `intervalMs`, and reports through `onChange` when the
 * service must refuse calls (a required check fails) or may answer again (all pass). Each
 * check's transitions are logged once: warn when it starts failing (the message only, no stack,
 * for expected connection failures), info when it recovers.
 */
export function monitorReadiness(options: ReadinessOptions): ReadinessMonitor {
  const { checks, intervalMs, logger } = options;
  const stopped = new AbortController();
  const failing = new Set<string>();
  let unavailable: ServiceError | undefined;
  let timer: NodeJS.Timeout | undefined;

  const runCheck = async (check: ReadinessCheck): Promise<boolean> => {
    try {
      await check.check(AbortSignal.any([stopped.signal, AbortSignal.timeout(intervalMs)]));
      if (failing.delete(check.name)) logger.info({ check: check.name }, "dependency recovered");
      return true;
    } catch (error) {
      if (!failing.has(check.name) && !stopped.signal.aborted) {
        failing.add(check.name);
        const fields = isExpectedFailure(error)
          ? { check: check.name, required: check.required, reason: String(error) }
          : { check: check.name, required: check.required, err: error };
        logger.warn(fields, "dependency check failing");
      }
      return !check.required;
    }
  };

  const round = async (): Promise<void> => {
    const results = await Promise.all(checks.map(runCheck));
    if (stopped.signal.aborted) return;
    const ready = results.every(Boolean);
    if (ready === (unavailable === undefined)) return;
    unavailable = ready
      ? undefined
      : new ServiceError("UNAVAILABLE", "the service cannot answer right now", {
          retryAfterMs: intervalMs,
        });
    options.onChange(unavailable);
  };

  const guardedRound = () =>
    round().catch((error: unknown) => logger.error({ err: error }, "readiness round failed"));

  const schedule = () => {
    if (stopped.signal.aborted) return;
    timer = setTimeout(() => void guardedRound().then(schedule), intervalMs);
    timer.unref();
  };

  const firstRound = guardedRound().then(schedule);
  return {
    firstRound,
    stop: () => {
      stopped.abort();
      clearTimeout(timer);
    },
  };
}
