/**
 * Audit events (requirements 8.1, 8.2): one record per security-relevant fact, such as a policy
 * decision, a login or a token revocation. The shape is deliberately flat and stable so that the
 * later sinks (NATS, an audit store) can index it by actor, action, time and correlation ID.
 */

/** How the audited operation ended. `allow`/`deny` are for decisions, the others for actions. */
export type AuditResult = "allow" | "deny" | "success" | "failure";

/** One audit record. Values must be safe to store: no secrets, tokens or credentials. */
export interface AuditEvent {
  /** When it happened, RFC 3339 in UTC with milliseconds. */
  readonly timestamp: string;
  /** What kind of event, dotted and stable, such as `authz.decision`. */
  readonly type: string;
  /** The principal the event is about, such as `user:alice` or `service:billing`. */
  readonly actor: string;
  /** The action attempted or performed, such as `read`. */
  readonly action: string;
  /** What the action was on, such as `document:d-1`; empty when none. */
  readonly resource: string;
  /** How it ended. */
  readonly result: AuditResult;
  /** The request's correlation ID. */
  readonly correlationId: string;
  /** SPIFFE ID of the workload that made the call (from its verified certificate). */
  readonly callerSpiffeId: string;
  /** Event-specific facts (for a decision: its ID, the deciding policies, the policy version). */
  readonly details: Readonly<Record<string, unknown>>;
}

/**
 * Where audit events go. `record` must not throw and must not block the caller on I/O: a sink
 * that ships events elsewhere buffers them and reports its own failures (logs, metrics).
 */
export interface AuditSink {
  /** Records one event. */
  record(event: AuditEvent): void;
}
