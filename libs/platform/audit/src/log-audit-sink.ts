import type { AuditEvent, AuditSink } from "./audit-event.ts";

/** The part of a pino-style logger the log sink needs. */
export interface AuditLogger {
  info(fields: object, message: string): void;
}

/**
 * An {@link AuditSink} that writes each event as one structured log line, `{"audit": {...}}`
 * with the message `audit`, so log shippers can route audit lines by that key.
 */
export function createLogAuditSink(logger: AuditLogger): AuditSink {
  return {
    record(event) {
      logger.info({ audit: event }, "audit");
    },
  };
}

/** An {@link AuditSink} that keeps events in memory, for tests. */
export interface MemoryAuditSink extends AuditSink {
  /** Every event recorded so far, oldest first. */
  readonly events: readonly AuditEvent[];
}

/** Creates a {@link MemoryAuditSink}. */
export function createMemoryAuditSink(): MemoryAuditSink {
  const events: AuditEvent[] = [];
  return {
    events,
    record(event) {
      events.push(event);
    },
  };
}
