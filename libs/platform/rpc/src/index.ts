export {
  createRpcClient,
  type CallOptions,
  type RpcClient,
  type RpcClientOptions,
} from "./client.ts";
export { clientCredentials, serverCredentials, type SvidFiles } from "./credentials.ts";
export {
  defineService,
  methodPath,
  sameCallersForAll,
  type CallContext,
  type MethodAllowlist,
  type ServiceHandlers,
  type ServiceRegistration,
} from "./handlers.ts";
export { serveUntilSignalled, type ServeOptions } from "./lifecycle.ts";
export { startRpcServer, type RpcServer, type RpcServerOptions } from "./server.ts";
export {
  CORRELATION_TRAILER,
  ERROR_CODE_TRAILER,
  ERROR_INFO_TRAILER,
  failureStatus,
  RemoteCallError,
  RETRY_PUSHBACK_TRAILER,
  type FailureStatus,
} from "./status-mapping.ts";
export {
  runService,
  svidFilesOf,
  type RunServiceOptions,
  type ServiceSettings,
} from "./run-service.ts";
export { unimplementedHandlers } from "./unimplemented.ts";
export { reflect, type ReflectionSummary } from "./reflection-client.ts";
