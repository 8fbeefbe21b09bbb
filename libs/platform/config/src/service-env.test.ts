import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./load-config.ts";
import { serviceEnv } from "./service-env.ts";

describe("serviceEnv telemetry settings", () => {
  it("serves no metrics endpoint and no tracing by default", () => {
    const config = loadConfig(serviceEnv("token", 50052), {});
    expect(config.METRICS_HOST).toBe("127.0.0.1");
    expect(config.METRICS_PORT).toBe(0);
    expect(config.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    expect(config.OTEL_SERVICE_NAME).toBeUndefined();
  });

  it("reads the metrics port and the OTLP endpoint", () => {
    const config = loadConfig(serviceEnv("token", 50052), {
      METRICS_PORT: "9462",
      METRICS_HOST: "0.0.0.0",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_SERVICE_NAME: "token-eu",
    });
    expect(config).toMatchObject({
      METRICS_PORT: 9462,
      METRICS_HOST: "0.0.0.0",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_SERVICE_NAME: "token-eu",
    });
  });

  it("rejects an OTLP endpoint that is not an http(s) URL and a bad metrics port", () => {
    const load = () =>
      loadConfig(serviceEnv("token", 50052), {
        OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318",
        METRICS_PORT: "70000",
      });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT: must be an http\(s\) URL/);
    expect(load).toThrow(/METRICS_PORT: must be 0-65535/);
  });
});
