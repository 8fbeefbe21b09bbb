import { describe, expect, it } from "vitest";
import { ServiceError } from "@authplat/errors";
import { watchStoreReadiness } from "./store-readiness.ts";

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("watchStoreReadiness", () => {
  it("closes the gate with UNAVAILABLE while the store fails and reopens it when it answers", async () => {
    let healthy = true;
    const changes: (ServiceError | undefined)[] = [];
    const lines: string[] = [];
    const stop = watchStoreReadiness({
      ping: async () => {
        if (!healthy) throw new ServiceError("UNAVAILABLE", "the token store is unavailable");
      },
      gate: { setUnavailable: (error) => changes.push(error) },
      log: {
        info: (message) => lines.push(message),
        warn: (_fields, message) => lines.push(message),
      },
      intervalMs: 10,
    });
    try {
      healthy = false;
      await until(() => changes.length === 1);
      expect(changes[0]).toMatchObject({
        code: "UNAVAILABLE",
        message: "the token store is unavailable",
        retryAfterMs: 10,
      });
      healthy = true;
      await until(() => changes.length === 2);
      expect(changes[1]).toBeUndefined();
      expect(lines).toEqual([
        "the token store does not answer: NOT_SERVING",
        "the token store answers again: serving",
      ]);
    } finally {
      stop();
    }
  });
});
