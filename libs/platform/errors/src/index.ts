export {
  ALL_ERROR_CODES,
  ERROR_CODES,
  fallbackCodeForStatus,
  grpcStatusFor,
  isErrorCode,
  type ErrorCode,
} from "./error-codes.ts";
export { ServiceError, unimplemented, type ServiceErrorOptions } from "./service-error.ts";
