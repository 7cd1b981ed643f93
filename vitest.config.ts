import path from "node:path";
import { configDefaults, defineConfig } from "vitest/config";

/**
 * The live pipeline's tests that run a second time on the test Redis Cluster (three masters,
 * one replica each, `src/test/cluster-global-setup.ts`): chains over wsLink, resume by id,
 * polling parity, tenant isolation, and the chaos scenarios that make sense on one process.
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

/**
 * Files that run once, on the test cluster (project `cluster`). The cluster starts only when
 * a file of `cluster` or `redis-cluster` is in the run, so a run of other files does not wait
 * for six redis-servers. (The failover scenario starts a cluster of its own.)
 */
const ON_CLUSTER_ONLY = ["src/server/redis-cluster.int.test.ts", "src/server/events/fan-in.int.test.ts"];

const WITH_REDIS = "./src/test/global-setup.ts";
const WITH_CLUSTER = "./src/test/cluster-global-setup.ts";

export default defineConfig({
  resolve: { alias: { "@": path.resolve(import.meta.dirname, "src") } },
  test: {
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
      {
        extends: true,
        test: {
          name: "redis",
          include: ["src/**/*.test.ts", "e2e/**/*.test.ts", "bench/**/*.test.ts"],
          exclude: [...configDefaults.exclude, ...ON_CLUSTER_ONLY],
          globalSetup: [WITH_REDIS],
        },
      },
      // The client package's own tests: no Redis, no server (those that type-check consumers run tsc).
      { extends: true, test: { name: "packages", include: ["packages/*/test/**/*.test.ts"] } },
      { extends: true, test: { name: "cluster", include: ON_CLUSTER_ONLY, globalSetup: [WITH_REDIS, WITH_CLUSTER] } },
      // `src/test/harness.ts` runs Pulse on the cluster when PULSE_TEST_REDIS=cluster.
      {
        extends: true,
        test: {
          name: "redis-cluster",
          include: ON_CLUSTER_TOO,
          env: { PULSE_TEST_REDIS: "cluster" },
          globalSetup: [WITH_REDIS, WITH_CLUSTER],
        },
      },
    ],
  },
});
