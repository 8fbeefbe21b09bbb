import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { createMetricsRegistry } from "@authplat/observability";
import { RemoteCallError } from "@authplat/rpc";
import { parseSpiffeId } from "@authplat/spiffe";
import { createTestPki, silentLogger, type TestPki } from "@authplat/testing";
import { createDownstreamClient } from "./downstream-client.ts";

let pki: TestPki;

beforeAll(async () => {
  pki = await createTestPki();
});

afterAll(async () => {
  await pki?.cleanup();
});

describe("createDownstreamClient", () => {
  it("opens the breaker after the configured failures in a row, then refuses at once with UNAVAILABLE and retry pushback, visible in metrics", async () => {
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    const { client, breaker } = await createDownstreamClient(TokenService, {
      name: "token",
      // Nothing listens on port 1: every call fails UNAVAILABLE at the transport.
      address: "127.0.0.1:1",
      tls: pki.files("auth-edge"),
      serverId: parseSpiffeId(pki.idOf("token")),
      defaultTimeoutMs: 2_000,
      breaker: { failures: 2, openMs: 60_000 },
      logger: silentLogger(),
      metrics,
    });
    const gauge = async () =>
      (await metrics.registry.getSingleMetric("authplat_circuit_breaker_state")!.get()).values;
    expect(await gauge()).toEqual([{ labels: { downstream: "token" }, value: 0 }]);
    for (let i = 0; i < 2; i += 1) {
      const failure = await client.getJwks({}).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(RemoteCallError);
      expect(failure).toMatchObject({ grpcCode: grpc.status.UNAVAILABLE });
    }
    expect(breaker.state).toBe("open");
    const refused = await client.getJwks({}).catch((error: unknown) => error);
    expect(refused).not.toBeInstanceOf(RemoteCallError);
    expect(refused).toMatchObject({
      code: "CIRCUIT_OPEN",
      message: "the circuit to token is open",
      grpcStatus: grpc.status.UNAVAILABLE,
    });
    expect((refused as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(59_000);
    expect(await gauge()).toEqual([{ labels: { downstream: "token" }, value: 2 }]);
    const transitions = await metrics.registry
      .getSingleMetric("authplat_circuit_breaker_transitions_total")!
      .get();
    expect(transitions.values).toEqual([{ labels: { downstream: "token", to: "open" }, value: 1 }]);
    client.close();
  });
});
