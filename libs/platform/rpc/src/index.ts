export {
  contextHeadersInterceptor,
  createRpcClient,
  deadlineInterceptor,
  type CallOptions,
  type RpcClient,
  type RpcClientOptions,
} from "./client.ts";
export { clientCredentials, type SvidFiles } from "./credentials.ts";
export {
  defineService,
  methodPath,
  type CallContext,
  type ServiceHandlers,
  type ServiceRegistration,
} from "./handlers.ts";
export {
  chain,
  type ClientInterceptor,
  type ClientNext,
  type ClientRequest,
  type ClientResponse,
  type RpcCallInfo,
  type RpcKind,
  type ServerInterceptor,
  type ServerNext,
  type ServerRequest,
  type ServerResponse,
} from "./interceptor.ts";
export type { ReadinessCheck } from "./readiness.ts";
export {
  accessRuleInterceptor,
  availabilityInterceptor,
  codecInterceptor,
  contextInterceptor,
  errorInterceptor,
  peerSvidInterceptor,
  type AccessRuleSet,
  type AvailabilityGate,
} from "./server-chain.ts";
export { startRpcServer, type RpcServer, type RpcServerOptions } from "./server.ts";
export {
  CORRELATION_TRAILER,
  ERROR_CODE_TRAILER,
  ERROR_INFO_TRAILER,
  RemoteCallError,
  RETRY_PUSHBACK_TRAILER,
} from "./status-mapping.ts";
export {
  runService,
  svidFilesOf,
  type RunServiceOptions,
  type ServiceSettings,
} from "./run-service.ts";
export { unimplementedHandlers } from "./unimplemented.ts";
export { reflect, type ReflectionSummary } from "./reflection-client.ts";
export {
  ACCESS_PROFILES,
  AccessRules,
  AccessRulesError,
  everyMethodOverride,
  loadAccessRules,
  loadServiceAccessRules,
  readAccessRulesFile,
  sameCallersForEveryMethod,
  staticAccessRules,
  type AccessProfile,
  type AccessRulesDocument,
  type AccessRulesSettings,
  type LoadAccessRulesOptions,
} from "./access-rules.ts";
export {
  CircuitBreaker,
  circuitBreakerInterceptor,
  classifyOutcome,
  type CallOutcome,
  type CircuitBreakerOptions,
  type CircuitPermit,
  type CircuitState,
  type CircuitStateChange,
  type TripPolicy,
} from "./circuit-breaker.ts";
export {
  startServiceTelemetry,
  type ServiceTelemetry,
  type ServiceTelemetryOptions,
  type TelemetrySettings,
} from "./telemetry/service-telemetry.ts";
