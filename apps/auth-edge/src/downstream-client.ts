import type { DescService } from "@bufbuild/protobuf";
import type { Logger, MetricsRegistry } from "@authplat/observability";
import {
  CircuitBreaker,
  circuitBreakerInterceptor,
  createRpcClient,
  type CircuitState,
  type ClientInterceptor,
  type RpcClient,
  type SvidFiles,
} from "@authplat/rpc";
import type { SpiffeId } from "@authplat/spiffe";

/** The circuit breaker settings of one downstream (`<NAME>_BREAKER_*` in the config). */
export interface BreakerSettings {
  /** Counted failures in a row that open the breaker. */
  readonly failures: number;
  /** How long it stays open before probing the downstream again. */
  readonly openMs: number;
}

/** Options of {@link createDownstreamClient}. */
export interface DownstreamClientOptions {
  /** The downstream's short name (`token`, `iam-policy`, ...): the breaker's and the metrics' label. */
  readonly name: string;
  readonly address: string;
  readonly tls: SvidFiles;
  readonly serverId: SpiffeId;
  readonly defaultTimeoutMs: number;
  readonly breaker: BreakerSettings;
  readonly logger: Logger;
  /** Where breaker state goes (`authplat_circuit_breaker_state`); absent: logs only. */
  readonly metrics?: MetricsRegistry;
  /** Interceptors outside the breaker (tracing, RPC metrics): they see refused calls too. */
  readonly interceptors?: readonly ClientInterceptor[];
}

/** A downstream client and the breaker in front of it. */
export interface DownstreamClient<S extends DescService> {
  readonly client: RpcClient<S>;
  readonly breaker: CircuitBreaker;
}

const STATE_VALUE: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };

/**
 * Builds the client of one downstream of the edge with its own circuit breaker (requirements 9.5
 * and 10.2): after `breaker.failures` counted failures in a row (UNAVAILABLE, DEADLINE_EXCEEDED,
 * INTERNAL and the like, see `classifyOutcome`) calls fail at once for `breaker.openMs` with
 * CIRCUIT_OPEN, which the edge's own callers receive as UNAVAILABLE with retry pushback; then
 * one probe decides whether it closes.
 *
 * Server-streaming calls (WatchRevocations) pass through the breaker when they are opened: an
 * open breaker refuses them, with pushback the feed honours before reconnecting. What happens
 * on the stream afterwards (messages, a normal end, a break) is not counted, so a long-lived
 * stream never trips or closes the breaker; the unary calls (GetJwks, introspection) judge the
 * downstream's health.
 *
 * State changes are logged and, with `metrics`, exported as the gauge
 * `authplat_circuit_breaker_state{downstream}` (0 closed, 1 half open, 2 open) and the counter
 * `authplat_circuit_breaker_transitions_total{downstream,to}`.
 */
export async function createDownstreamClient<S extends DescService>(
  service: S,
  options: DownstreamClientOptions,
): Promise<DownstreamClient<S>> {
  const { name, logger, metrics } = options;
  const state = metrics?.gauge({
    name: "authplat_circuit_breaker_state",
    help: "State of the circuit breaker in front of a downstream: 0 closed, 1 half open, 2 open.",
    labelNames: ["downstream"],
  });
  const transitions = metrics?.counter({
    name: "authplat_circuit_breaker_transitions_total",
    help: "Circuit breaker state changes, by downstream and the state entered.",
    labelNames: ["downstream", "to"],
  });
  state?.set({ downstream: name }, STATE_VALUE.closed);
  const breaker = new CircuitBreaker({
    name,
    trip: { kind: "consecutive", failures: options.breaker.failures },
    openMs: options.breaker.openMs,
    onStateChange: (change) => {
      state?.set({ downstream: name }, STATE_VALUE[change.to]);
      transitions?.inc({ downstream: name, to: change.to });
      const entry = { downstream: name, from: change.from, to: change.to };
      if (change.to === "open") logger.warn(entry, "circuit breaker opened");
      else logger.info(entry, "circuit breaker state changed");
    },
  });
  const client = await createRpcClient(service, {
    address: options.address,
    tls: options.tls,
    serverId: options.serverId,
    defaultTimeoutMs: options.defaultTimeoutMs,
    target: name,
    interceptors: [...(options.interceptors ?? []), circuitBreakerInterceptor(breaker)],
  });
  return { client, breaker };
}
