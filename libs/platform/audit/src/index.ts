export type { AuditEvent, AuditResult, AuditSink } from "./audit-event.ts";
export {
  createLogAuditSink,
  createMemoryAuditSink,
  type AuditLogger,
  type MemoryAuditSink,
} from "./log-audit-sink.ts";
