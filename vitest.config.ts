import { defineConfig } from "vitest/config";

/**
 * One vitest run covers every package of the workspace. Service and end-to-end tests start
 * real servers and processes, so the timeouts are generous; nothing waits on a fixed sleep.
 */
export default defineConfig({
  test: {
    include: [
      "apps/*/src/**/*.test.ts",
      "libs/**/src/**/*.test.ts",
      "tools/src/**/*.test.ts",
      "e2e/src/**/*.test.ts",
    ],
    exclude: ["**/node_modules/**"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
