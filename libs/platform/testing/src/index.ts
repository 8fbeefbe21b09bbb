export {
  backendConfig,
  type BackendConfig,
  natsBackend,
  postgresBackend,
  redisBackend,
  type NatsBackend,
  type PostgresBackend,
  type RedisBackend,
} from "./backends.ts";
export { createTestPki, TEST_IDENTITIES, type TestPki } from "@authplat/spiffe/test-pki";
export { silentLogger, startTestServer, testClient } from "./test-server.ts";
