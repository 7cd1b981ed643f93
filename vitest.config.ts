import path from "node:path";
import { defineConfig } from "vitest/config";

/**
 * The live pipeline's tests that run a second time on the test Redis Cluster (three masters,
 * one replica each, started by the global setup): chains over wsLink, resume by id, polling
 * parity, tenant isolation, and the chaos scenarios that make sense on one process. Files
 * that test the cluster itself (failover, fan-in) run once, in the default project.
 */
const ON_CLUSTER_TOO = [
  "src/server/pipeline.int.test.ts",
  "src/server/events/feed.int.test.ts",
  "src/server/events/bus.int.test.ts",
  "src/server/trpc/root.int.test.ts",
  "src/server/trpc/routers/agent.int.test.ts",
  "src/test/chaos/slow-reader.int.test.ts",
  "src/test/chaos/connection-churn.int.test.ts",
  "src/test/chaos/retention-resync.int.test.ts",
  "src/test/chaos/catch-up-race.int.test.ts",
];

export default defineConfig({
  resolve: { alias: { "@": path.resolve(import.meta.dirname, "src") } },
  test: {
    globalSetup: ["./src/test/global-setup.ts"],
    // Backstops for a wedged test, not speed limits: waits inside tests wait for conditions,
    // and a busy two-core machine may take minutes to start the processes some tests need.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // expect.poll waits for a condition too; its default of one second is a race on a busy machine.
    expect: { poll: { timeout: 30_000 } },
    // Integration files each start servers and workers; two cores run two at a time well.
    maxWorkers: 2,
    reporters: process.env.CI ? ["default", ["json", { outputFile: ".data/test-results.json" }]] : ["default"],
    projects: [
      { extends: true, test: { name: "redis", include: ["src/**/*.test.ts", "e2e/**/*.test.ts", "bench/**/*.test.ts"] } },
      // `src/test/harness.ts` runs Pulse on the cluster when PULSE_TEST_REDIS=cluster.
      { extends: true, test: { name: "redis-cluster", include: ON_CLUSTER_TOO, env: { PULSE_TEST_REDIS: "cluster" } } },
    ],
  },
});
