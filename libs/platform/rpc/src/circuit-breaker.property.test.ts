import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ServiceError } from "@authplat/errors";
import { CircuitBreaker, type CircuitState } from "./circuit-breaker.ts";
import { RemoteCallError } from "./status-mapping.ts";

// ---------------------------------------------------------------------------------------------
// The reference model, written from the specification in circuit-breaker.ts's module comment and
// nothing else: it keeps every outcome with its time instead of buckets, and an epoch instead of
// permits.

type Kind = "ok" | "counted" | "healthy" | "neutral";

interface Config {
  readonly trip:
    | { readonly kind: "consecutive"; readonly failures: number }
    | {
        readonly kind: "ratio";
        readonly quarters: number; // ratio = quarters / 4
        readonly windowMs: number;
        readonly buckets: number;
        readonly minimumCalls: number;
      };
  readonly openMs: number;
  readonly probes: number;
}

type Answer = { admitted: true; epoch: number } | { admitted: false; retryAfterMs: number };

class Model {
  state: CircuitState = "closed";
  epoch = 0;
  openedAt = 0;
  inARow = 0;
  seen: { at: number; failed: boolean }[] = [];
  probesOut = 0;
  probesOk = 0;
  transitions: string[] = [];

  readonly config: Config;

  constructor(config: Config) {
    this.config = config;
  }

  call(now: number): Answer {
    if (this.state === "open") {
      const left = this.openedAt + this.config.openMs - now;
      if (left > 0) return { admitted: false, retryAfterMs: left };
      this.become("half_open");
      this.probesOut = 0;
      this.probesOk = 0;
    }
    if (this.state === "half_open") {
      if (this.probesOut === this.config.probes) return { admitted: false, retryAfterMs: 0 };
      this.probesOut += 1;
    }
    return { admitted: true, epoch: this.epoch };
  }

  finish(epoch: number, kind: Kind, now: number): void {
    if (epoch !== this.epoch) return;
    const verdict = kind === "counted" ? "bad" : kind === "neutral" ? "none" : "good";
    if (this.state === "half_open") {
      if (verdict === "bad") this.open(now);
      else if (verdict === "none") this.probesOut -= 1;
      else {
        this.probesOk += 1;
        if (this.probesOk === this.config.probes) this.become("closed");
      }
      return;
    }
    if (this.state !== "closed" || verdict === "none") return;
    const trip = this.config.trip;
    if (trip.kind === "consecutive") {
      this.inARow = verdict === "bad" ? this.inARow + 1 : 0;
      if (this.inARow === trip.failures) this.open(now);
      return;
    }
    this.seen.push({ at: now, failed: verdict === "bad" });
    if (verdict !== "bad") return;
    const width = trip.windowMs / trip.buckets;
    const current = Math.floor(now / width);
    const recent = this.seen.filter((s) => Math.floor(s.at / width) > current - trip.buckets);
    const failed = recent.filter((s) => s.failed).length;
    if (recent.length >= trip.minimumCalls && failed * 4 >= trip.quarters * recent.length) {
      this.open(now);
    }
  }

  private open(now: number): void {
    this.openedAt = now;
    this.become("open");
  }

  private become(state: CircuitState): void {
    this.transitions.push(`${this.state}->${state}`);
    this.state = state;
    this.epoch += 1;
    this.inARow = 0;
    this.seen = [];
  }
}

// ---------------------------------------------------------------------------------------------

/** A failure of each kind, as the transport would report it. */
function errorOf(kind: Exclude<Kind, "ok">, variant: number): unknown {
  const remote = (code: grpc.status) =>
    new RemoteCallError({ code, details: "x", metadata: new grpc.Metadata() });
  const counted = [
    grpc.status.UNAVAILABLE,
    grpc.status.DEADLINE_EXCEEDED,
    grpc.status.INTERNAL,
    grpc.status.UNKNOWN,
    grpc.status.RESOURCE_EXHAUSTED,
  ];
  const healthy = [
    grpc.status.INVALID_ARGUMENT,
    grpc.status.NOT_FOUND,
    grpc.status.PERMISSION_DENIED,
    grpc.status.UNAUTHENTICATED,
    grpc.status.FAILED_PRECONDITION,
  ];
  if (kind === "counted") return remote(counted[variant % counted.length]!);
  if (kind === "healthy") return remote(healthy[variant % healthy.length]!);
  // Neutral: our own cancellation, or a failure that never left this process.
  return variant % 2 === 0
    ? remote(grpc.status.CANCELLED)
    : new ServiceError("DEADLINE_EXCEEDED", "deadline passed before sending");
}

type Op =
  | { op: "call"; kind: Kind; variant: number } // a call that ends before the next step
  | { op: "start" } // a call left in flight
  | { op: "finish"; pick: number; kind: Kind; variant: number }
  | { op: "tick"; ms: number };

const kindArb = fc.constantFrom<Kind>("ok", "counted", "healthy", "neutral");
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant("call" as const), kind: kindArb, variant: fc.nat(9) }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("start" as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("finish" as const),
      pick: fc.nat(),
      kind: kindArb,
      variant: fc.nat(9),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("tick" as const),
      ms: fc.integer({ min: 1, max: 40 }),
    }),
  },
);

const configArb: fc.Arbitrary<Config> = fc.record({
  trip: fc.oneof(
    fc.record({
      kind: fc.constant("consecutive" as const),
      failures: fc.integer({ min: 1, max: 5 }),
    }),
    fc
      .record({
        kind: fc.constant("ratio" as const),
        quarters: fc.integer({ min: 1, max: 4 }),
        buckets: fc.integer({ min: 1, max: 5 }),
        bucketMs: fc.integer({ min: 1, max: 20 }),
        minimumCalls: fc.integer({ min: 1, max: 6 }),
      })
      .map(({ bucketMs, ...rest }) => ({ ...rest, windowMs: bucketMs * rest.buckets })),
  ),
  openMs: fc.integer({ min: 1, max: 60 }),
  probes: fc.integer({ min: 1, max: 3 }),
});

interface Pending {
  readonly settle: (kind: Kind, variant: number) => Promise<void>;
}

describe("circuit breaker", () => {
  it("Property 25: circuit breaker behaviour: state and answers match the reference model for any outcomes, probes and clock steps", async () => {
    await fc.assert(
      fc.asyncProperty(configArb, fc.array(opArb, { maxLength: 100 }), async (config, ops) => {
        let now = 0;
        const seenTransitions: string[] = [];
        const breaker = new CircuitBreaker({
          name: "downstream",
          trip:
            config.trip.kind === "consecutive"
              ? config.trip
              : {
                  kind: "ratio",
                  ratio: config.trip.quarters / 4,
                  windowMs: config.trip.windowMs,
                  buckets: config.trip.buckets,
                  minimumCalls: config.trip.minimumCalls,
                },
          openMs: config.openMs,
          halfOpenProbes: config.probes,
          nowMs: () => now,
          onStateChange: ({ from, to, atMs }) => {
            expect(atMs).toBe(now);
            seenTransitions.push(`${from}->${to}`);
          },
        });
        const model = new Model(config);
        const pending: Pending[] = [];

        // Starts a call through the breaker and checks the answer against the model's.
        const begin = async (): Promise<Pending | undefined> => {
          const expected = model.call(now);
          let sent = false;
          let release!: (kind: Kind, variant: number) => void;
          const downstream = new Promise<string>((resolve, reject) => {
            release = (kind, variant) =>
              kind === "ok" ? resolve("answer") : reject(errorOf(kind, variant));
          });
          const running = breaker.run(() => {
            sent = true;
            return downstream;
          });
          if (!expected.admitted) {
            const error = await running.then(
              () => undefined,
              (e: unknown) => e,
            );
            expect(sent).toBe(false);
            expect(error).toBeInstanceOf(ServiceError);
            expect(error).toMatchObject({
              code: "CIRCUIT_OPEN",
              grpcStatus: grpc.status.UNAVAILABLE,
              retryAfterMs: expected.retryAfterMs,
              message: "the circuit to downstream is open",
            });
            return undefined;
          }
          expect(sent).toBe(true);
          const epoch = expected.epoch;
          return {
            settle: async (kind, variant) => {
              release(kind, variant);
              const outcome = await running.then(
                (value) => ({ value }),
                (error: unknown) => ({ error }),
              );
              // The breaker passes the downstream's answer through untouched.
              if (kind === "ok") expect(outcome).toEqual({ value: "answer" });
              else expect((outcome as { error: unknown }).error).toBeInstanceOf(Error);
              model.finish(epoch, kind, now);
            },
          };
        };

        for (const op of ops) {
          if (op.op === "tick") now += op.ms;
          else if (op.op === "call") {
            const call = await begin();
            await call?.settle(op.kind, op.variant);
          } else if (op.op === "start") {
            const call = await begin();
            if (call) pending.push(call);
          } else if (pending.length > 0) {
            const [call] = pending.splice(op.pick % pending.length, 1);
            await call!.settle(op.kind, op.variant);
          }
          expect(breaker.state).toBe(model.state);
        }
        expect(seenTransitions).toEqual(model.transitions);
        // Let whatever is still in flight finish, so no promise is left dangling.
        for (const call of pending) await call.settle("ok", 0);
        expect(breaker.state).toBe(model.state);
      }),
      { numRuns: 500 },
    );
  });
});
