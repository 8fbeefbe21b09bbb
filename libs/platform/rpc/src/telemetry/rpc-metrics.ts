import type { MetricsRegistry } from "@authplat/observability";
import type { ClientInterceptor, ServerInterceptor } from "../interceptor.ts";
import { clientFailure, OK_OUTCOME, serverFailure, type CallOutcome } from "./call-outcome.ts";
import { isAsyncIterable, observeStream } from "./observe-stream.ts";

/** The RPC metrics interceptors of one service (see {@link createRpcMetrics}). */
export interface RpcMetrics {
  /** Server side: goes in the server chain's `observers` slot. */
  readonly server: ServerInterceptor;
  /** Client side: goes in each client's `interceptors`. */
  readonly client: ClientInterceptor;
}

/** A map-backed cache: `make` runs once per key. */
function memo<V>(make: (key: string) => V): (key: string) => V {
  const cache = new Map<string, V>();
  return (key) => {
    let value = cache.get(key);
    if (value === undefined) {
      value = make(key);
      cache.set(key, value);
    }
    return value;
  };
}

/** One series' number, updated on the hot path and read when scraped. */
interface Tally<L extends string> {
  readonly labels: Readonly<Record<L, string>>;
  value: number;
}

function tally<L extends string>(all: Tally<L>[], labels: Record<L, string>): Tally<L> {
  const created: Tally<L> = { labels, value: 0 };
  all.push(created);
  return created;
}

function seconds(started: number): number {
  return (performance.now() - started) / 1000;
}

/**
 * Creates the RPC metrics of a service on its registry. Label values are bounded: `method` is
 * the gRPC path of a registered method (`/auth.token.v1.TokenService/IssueTokenPair`; unknown
 * methods are answered by grpc-js before any interceptor runs), `target` a configured
 * downstream name, `code` one of the platform's error codes or `OK`, `grpc_status` a gRPC
 * status name.
 *
 * Server side (`observers` slot, so calls refused by the access rule are counted too):
 * - `rpc_server_requests_total{method,code,grpc_status}`: finished calls.
 * - `rpc_server_duration_seconds{method}`: histogram of the time from the call entering the
 *   observers to its last message (buckets `LATENCY_BUCKETS_SECONDS`, 100 µs to 10 s).
 * - `rpc_server_in_flight{method}`: calls started and not yet finished.
 *
 * Client side:
 * - `rpc_client_requests_total{target,method,code}`: finished outgoing calls; `code` is the
 *   downstream's code (from its error trailer) or a local one such as `DEADLINE_EXCEEDED`.
 * - `rpc_client_duration_seconds{target,method}`: histogram of outgoing call time.
 *
 * A server-streaming call is counted and timed when its stream ends (OK after the last
 * message, the error's code when it fails, CANCELLED when the consumer stops early).
 *
 * Call it once per registry (`startServiceTelemetry` does): the counts live in this call's
 * interceptors and are copied into the registry's metrics when it is scraped.
 */
export function createRpcMetrics(metrics: MetricsRegistry): RpcMetrics {
  // Counts and in-flight numbers are kept in plain tallies and copied into the prom-client
  // metrics when scraped (`collect`): a prom-client label update hashes its labels every time
  // (about 0.4 µs each, see rpc-metrics.bench.ts), which the hot path does not need to pay.
  const serverRequestTallies: Tally<"method" | "code" | "grpc_status">[] = [];
  const serverInFlightTallies: Tally<"method">[] = [];
  const clientRequestTallies: Tally<"target" | "method" | "code">[] = [];
  metrics.counter({
    name: "rpc_server_requests_total",
    help: "RPCs this service finished handling, by method, platform error code and gRPC status.",
    labelNames: ["method", "code", "grpc_status"] as const,
    collect() {
      this.reset();
      for (const tally of serverRequestTallies) this.inc(tally.labels, tally.value);
    },
  });
  const serverDuration = metrics.histogram({
    name: "rpc_server_duration_seconds",
    help: "Time this service took to handle an RPC, by method.",
    labelNames: ["method"] as const,
  });
  metrics.gauge({
    name: "rpc_server_in_flight",
    help: "RPCs this service is handling right now, by method.",
    labelNames: ["method"] as const,
    collect() {
      for (const tally of serverInFlightTallies) this.set(tally.labels, tally.value);
    },
  });
  metrics.counter({
    name: "rpc_client_requests_total",
    help: "RPCs this service made to a downstream, by target, method and platform error code.",
    labelNames: ["target", "method", "code"] as const,
    collect() {
      this.reset();
      for (const tally of clientRequestTallies) this.inc(tally.labels, tally.value);
    },
  });
  const clientDuration = metrics.histogram({
    name: "rpc_client_duration_seconds",
    help: "Time an RPC to a downstream took as seen by this service, by target and method.",
    labelNames: ["target", "method"] as const,
  });

  const server = memo((method) => ({
    inFlight: tally(serverInFlightTallies, { method }),
    duration: serverDuration.labels({ method }),
    ok: tally(serverRequestTallies, { method, code: "OK", grpc_status: "OK" }),
    failed: memo((outcome) => {
      const [code, grpcStatus] = outcome.split(" ") as [string, string];
      return tally(serverRequestTallies, { method, code, grpc_status: grpcStatus });
    }),
  }));
  const client = memo((targetAndMethod) => {
    const [target, method] = targetAndMethod.split(" ") as [string, string];
    return {
      duration: clientDuration.labels({ target, method }),
      ok: tally(clientRequestTallies, { target, method, code: "OK" }),
      failed: memo((code) => tally(clientRequestTallies, { target, method, code })),
    };
  });

  const serverInterceptor: ServerInterceptor = (next) => async (req) => {
    const instruments = server(req.path);
    instruments.inFlight.value++;
    const started = performance.now();
    const finish = (outcome: CallOutcome) => {
      instruments.inFlight.value--;
      instruments.duration.observe(seconds(started));
      const requests =
        outcome === OK_OUTCOME
          ? instruments.ok
          : instruments.failed(`${outcome.code} ${outcome.grpcStatusName}`);
      requests.value++;
    };
    let res;
    try {
      res = await next(req);
    } catch (error) {
      finish(serverFailure(error));
      throw error;
    }
    if (req.kind === "server_streaming" && isAsyncIterable(res.message)) {
      return { ...res, message: observeStream(res.message, finish, serverFailure) };
    }
    finish(OK_OUTCOME);
    return res;
  };

  const clientInterceptor: ClientInterceptor = (next) => async (req) => {
    // Target names and gRPC paths contain no spaces, so a space joins them unambiguously.
    const instruments = client(`${req.target} ${req.path}`);
    const started = performance.now();
    const finish = (outcome: CallOutcome) => {
      instruments.duration.observe(seconds(started));
      (outcome === OK_OUTCOME ? instruments.ok : instruments.failed(outcome.code)).value++;
    };
    let res;
    try {
      res = await next(req);
    } catch (error) {
      finish(clientFailure(error));
      throw error;
    }
    if (req.kind === "server_streaming" && isAsyncIterable(res.message)) {
      return { ...res, message: observeStream(res.message, finish, clientFailure) };
    }
    finish(OK_OUTCOME);
    return res;
  };

  return { server: serverInterceptor, client: clientInterceptor };
}
