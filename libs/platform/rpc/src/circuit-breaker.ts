/**
 * Circuit breakers for downstream calls (requirement 9.5, 10.2; Property 25).
 *
 * Why not a library: cockatiel 4.0.0 (`CircuitBreakerPolicy` with `ConsecutiveBreaker` /
 * `SamplingBreaker`, `halfOpenAfter`) and opossum 10.0.0 were checked. Both read the wall clock
 * directly (cockatiel `Date.now()` in the policy and the sampling breaker; opossum `setTimeout`
 * for `resetTimeout` and `setInterval` buckets), so tests could only control time by patching
 * globals; cockatiel's half-open makes callers beyond its probes wait for the probes' verdict
 * instead of failing at once, and its `BrokenCircuitError` carries no time left; opossum has one
 * probe and no consecutive-failure mode. The state machine below is about a hundred lines.
 *
 * Behaviour, decided here and checked by Property 25 against an independent model:
 *
 * - **closed**: every call goes through. A counted failure (see {@link classifyOutcome}) trips
 *   the breaker when the trip policy says so: `consecutive` after `failures` counted failures in
 *   a row (a success or a healthy answer resets the run), `ratio` when, among the outcomes of
 *   the last `windowMs` (kept in `buckets` buckets of `windowMs / buckets`), there are at least
 *   `minimumCalls` and the failed share is at least `ratio`.
 * - **open** for `openMs`: calls fail at once, never sent, with `ServiceError("CIRCUIT_OPEN")`
 *   (gRPC UNAVAILABLE) and `retryAfterMs` = time left until half-open, which the server pipeline
 *   sends on as `grpc-retry-pushback-ms`. No timer runs: the first call after `openMs` moves the
 *   breaker to half-open.
 * - **half-open**: up to `halfOpenProbes` calls go through as probes; others fail with
 *   CIRCUIT_OPEN and `retryAfterMs` 0 (a probe slot may free up at any moment). **All probes
 *   must succeed**: the breaker closes once `halfOpenProbes` probes have succeeded, and the first
 *   probe that fails reopens it for another `openMs`. One lucky call is not evidence of recovery.
 *   A probe that ends neutral (the caller cancelled it) gives its slot back.
 * - Outcomes of calls admitted before the last state change are ignored (a slow call from the
 *   closed period cannot close a breaker that has since opened).
 * - For server-streaming calls only the opening of the stream counts.
 * - The interceptor lets a call whose deadline has already passed bypass the breaker (the
 *   client's deadline step refuses it unsent; that is no verdict on the downstream).
 *
 * @module
 */
import { status } from "@grpc/grpc-js";
import { ServiceError } from "@authplat/errors";
import type { ClientInterceptor } from "./interceptor.ts";
import { RemoteCallError } from "./status-mapping.ts";

/** The breaker's state. */
export type CircuitState = "closed" | "open" | "half_open";

/** When a closed breaker opens. */
export type TripPolicy =
  | {
      /** Opens after `failures` counted failures in a row. */
      readonly kind: "consecutive";
      readonly failures: number;
    }
  | {
      /** Opens when the failed share of the recent outcomes reaches `ratio`. */
      readonly kind: "ratio";
      /** In (0, 1]. */
      readonly ratio: number;
      /** Length of the sliding window. */
      readonly windowMs: number;
      /** Fewer outcomes than this in the window never trip. */
      readonly minimumCalls: number;
      /** Number of buckets the window is kept in; must divide `windowMs`. Default 10. */
      readonly buckets?: number;
    };

/** What a call's outcome says about the downstream. */
export type CallOutcome = "success" | "failure" | "neutral";

/** A state change, for metrics and logs. */
export interface CircuitStateChange {
  /** The breaker's name (the downstream). */
  readonly name: string;
  readonly from: CircuitState;
  readonly to: CircuitState;
  /** The injected clock's time of the change. */
  readonly atMs: number;
}

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** The downstream's name, used in messages and state changes (e.g. `token`). */
  readonly name: string;
  readonly trip: TripPolicy;
  /** How long the breaker stays open before it lets probes through. */
  readonly openMs: number;
  /** How many probes half-open admits; all must succeed to close. Default 1. */
  readonly halfOpenProbes?: number;
  /** Milliseconds clock; default `performance.now` (monotonic). Tests inject their own. */
  readonly nowMs?: () => number;
  /** Classifies a thrown error; default {@link classifyOutcome}. */
  readonly classify?: (error: unknown) => CallOutcome;
  /** Called synchronously on every state change; exceptions from it are swallowed. */
  readonly onStateChange?: (change: CircuitStateChange) => void;
}

// gRPC statuses that say the downstream is unwell or unreachable. Everything else it answers
// (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, UNAUTHENTICATED, FAILED_PRECONDITION,
// UNIMPLEMENTED, ...) shows a downstream that works and judged the request.
const COUNTED_STATUSES: ReadonlySet<number> = new Set([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.INTERNAL,
  status.UNKNOWN,
  status.RESOURCE_EXHAUSTED,
  status.DATA_LOSS,
]);

/**
 * The default classification of a failed call:
 * - `failure` (counted) for a {@link RemoteCallError} with status UNAVAILABLE (including
 *   connection failures), DEADLINE_EXCEEDED, INTERNAL, UNKNOWN, RESOURCE_EXHAUSTED or DATA_LOSS:
 *   the downstream is down, slow, broken or overloaded;
 * - `neutral` for CANCELLED (our caller gave up: no verdict on the downstream) and for anything
 *   that did not come back from the wire (a local `ServiceError` such as a deadline that had
 *   already passed before sending, or a bug in our own code);
 * - `success` for any other status: the downstream answered, so it is healthy.
 */
export function classifyOutcome(error: unknown): CallOutcome {
  if (!(error instanceof RemoteCallError)) return "neutral";
  if (error.grpcCode === status.CANCELLED) return "neutral";
  return COUNTED_STATUSES.has(error.grpcCode) ? "failure" : "success";
}

type Inner =
  | { readonly state: "closed" }
  | { readonly state: "open"; readonly untilMs: number }
  | { readonly state: "half_open"; started: number; succeeded: number };

interface Bucket {
  index: number;
  total: number;
  failures: number;
}

/** A permit to make one call, returned by {@link CircuitBreaker.admit}. */
export interface CircuitPermit {
  /** Reports the call's outcome; only the first report counts. */
  report(outcome: CallOutcome): void;
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${what} must be an integer ≥ 1`);
  return value;
}

/**
 * One circuit breaker in front of one downstream. Use it through
 * {@link circuitBreakerInterceptor}, or directly with {@link run} / {@link admit}.
 */
export class CircuitBreaker {
  /** The downstream's name. */
  readonly name: string;
  readonly #trip: TripPolicy;
  readonly #openMs: number;
  readonly #probes: number;
  readonly #now: () => number;
  readonly #onStateChange: ((change: CircuitStateChange) => void) | undefined;
  /** @internal */
  readonly classify: (error: unknown) => CallOutcome;
  #inner: Inner = { state: "closed" };
  // Bumped on every state change; a permit from an older generation reports into the void.
  #generation = 0;
  #consecutive = 0;
  readonly #buckets: Bucket[];
  readonly #bucketMs: number;

  /** @throws {RangeError} on a trip policy, `openMs` or probe count that makes no sense. */
  constructor(options: CircuitBreakerOptions) {
    this.name = options.name;
    this.#trip = options.trip;
    if (!(options.openMs > 0)) throw new RangeError("openMs must be > 0");
    this.#openMs = options.openMs;
    this.#probes = positiveInteger(options.halfOpenProbes ?? 1, "halfOpenProbes");
    this.#now = options.nowMs ?? (() => performance.now());
    this.#onStateChange = options.onStateChange;
    this.classify = options.classify ?? classifyOutcome;
    if (options.trip.kind === "consecutive") {
      positiveInteger(options.trip.failures, "trip.failures");
      this.#buckets = [];
      this.#bucketMs = 1;
    } else {
      const { ratio, windowMs, minimumCalls } = options.trip;
      const buckets = positiveInteger(options.trip.buckets ?? 10, "trip.buckets");
      if (!(ratio > 0 && ratio <= 1)) throw new RangeError("trip.ratio must be in (0, 1]");
      positiveInteger(minimumCalls, "trip.minimumCalls");
      if (!Number.isInteger(windowMs) || windowMs < buckets || windowMs % buckets !== 0) {
        throw new RangeError("trip.windowMs must be a positive multiple of trip.buckets");
      }
      this.#bucketMs = windowMs / buckets;
      this.#buckets = Array.from({ length: buckets }, () => ({
        index: -Infinity,
        total: 0,
        failures: 0,
      }));
    }
  }

  /**
   * The current state. An open breaker whose time is up still reads `open` until the next call
   * moves it to half-open (there is no timer).
   */
  get state(): CircuitState {
    return this.#inner.state;
  }

  /**
   * Asks to make a call. Returns a permit to report the outcome to, or throws.
   *
   * @throws {ServiceError} `CIRCUIT_OPEN` with `retryAfterMs` while open, or while half-open with
   *   every probe slot taken.
   */
  admit(): CircuitPermit {
    const now = this.#now();
    let inner = this.#inner;
    if (inner.state === "open") {
      if (now < inner.untilMs) throw this.#openError(inner.untilMs - now);
      inner = this.#moveTo({ state: "half_open", started: 0, succeeded: 0 }, now);
    }
    if (inner.state === "half_open") {
      if (inner.started >= this.#probes) throw this.#openError(0);
      inner.started++;
    }
    const generation = this.#generation;
    let reported = false;
    return {
      report: (outcome) => {
        if (reported) return;
        reported = true;
        if (generation === this.#generation) this.#record(outcome);
      },
    };
  }

  /**
   * Runs `call` under the breaker: fails at once while open, otherwise calls and records the
   * outcome (a resolved promise is a success; a rejection is classified).
   */
  async run<T>(call: () => Promise<T>): Promise<T> {
    const permit = this.admit();
    let result: T;
    try {
      result = await call();
    } catch (error) {
      permit.report(this.classify(error));
      throw error;
    }
    permit.report("success");
    return result;
  }

  #openError(retryAfterMs: number): ServiceError {
    return new ServiceError("CIRCUIT_OPEN", `the circuit to ${this.name} is open`, {
      retryAfterMs: Math.max(0, Math.ceil(retryAfterMs)),
    });
  }

  #record(outcome: CallOutcome): void {
    const now = this.#now();
    const inner = this.#inner;
    if (inner.state === "half_open") {
      if (outcome === "failure") this.#open(now);
      else if (outcome === "neutral") inner.started--;
      else if (++inner.succeeded >= this.#probes) this.#close(now);
      return;
    }
    if (inner.state !== "closed" || outcome === "neutral") return;
    if (this.#trip.kind === "consecutive") {
      this.#consecutive = outcome === "failure" ? this.#consecutive + 1 : 0;
      if (this.#consecutive >= this.#trip.failures) this.#open(now);
      return;
    }
    const index = Math.floor(now / this.#bucketMs);
    const bucket = this.#buckets[index % this.#buckets.length]!;
    if (bucket.index !== index) Object.assign(bucket, { index, total: 0, failures: 0 });
    bucket.total++;
    if (outcome !== "failure") return;
    bucket.failures++;
    let total = 0;
    let failures = 0;
    for (const b of this.#buckets) {
      if (b.index > index - this.#buckets.length) {
        total += b.total;
        failures += b.failures;
      }
    }
    if (total >= this.#trip.minimumCalls && failures >= this.#trip.ratio * total) this.#open(now);
  }

  #open(now: number): void {
    this.#moveTo({ state: "open", untilMs: now + this.#openMs }, now);
  }

  #close(now: number): void {
    this.#moveTo({ state: "closed" }, now);
  }

  #moveTo<I extends Inner>(next: I, now: number): I {
    const from = this.#inner.state;
    this.#inner = next;
    this.#generation++;
    this.#consecutive = 0;
    for (const bucket of this.#buckets)
      Object.assign(bucket, { index: -Infinity, total: 0, failures: 0 });
    try {
      this.#onStateChange?.({ name: this.name, from, to: next.state, atMs: now });
    } catch {
      // An observer must not change what the breaker answers.
    }
    return next;
  }
}

/**
 * A client interceptor that sends every call through `breaker`: while it is open, calls fail
 * at once with `CIRCUIT_OPEN` (UNAVAILABLE) and `retryAfterMs`, without being sent. Give each
 * downstream client its own breaker.
 */
export function circuitBreakerInterceptor(breaker: CircuitBreaker): ClientInterceptor {
  return (next) => (req) =>
    // A call whose (propagated) deadline has already passed is refused by the deadline step
    // without being sent: that says nothing about the downstream, so it bypasses the breaker.
    req.deadlineMs <= Date.now() ? next(req) : breaker.run(() => next(req));
}
