export { envAddress, envInt, envList, envLogLevel, envPort } from "./env-types.ts";
export { serviceEnv, type ServiceEnv } from "./service-env.ts";
export {
  ConfigError,
  EXIT_CONFIG,
  loadConfig,
  loadConfigOrExit,
  redactConfig,
  type Environment,
} from "./load-config.ts";
