import path from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { alias: { "@": path.resolve(import.meta.dirname, "src") } },
  test: {
    include: ["src/**/*.test.ts", "e2e/**/*.test.ts"],
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
  },
});
