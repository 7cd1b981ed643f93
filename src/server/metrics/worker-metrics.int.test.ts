import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, inject, it } from "vitest";
import { eventually, openTestPostgres, untilHealthy } from "../../test/harness";

const root = path.resolve(import.meta.dirname, "../../..");
const TOKEN = "worker-metrics-token-0123456789";

/**
 * `npm run worker` has no web server; with METRICS_PORT it serves /metrics (behind
 * METRICS_TOKEN) and /healthz on a small server of its own, and closes it on SIGTERM.
 * Workers share the database with API processes, so this needs PostgreSQL.
 */
describe("npm run worker with METRICS_PORT", () => {
  it.skipIf(!inject("databaseUrl"))(
    "serves /metrics with its token and /healthz, and stops serving on SIGTERM",
    async () => {
      const { database, url } = await openTestPostgres();
      const child = spawn(process.execPath, ["--import", "tsx", "src/server/worker-main.ts"], {
        cwd: root,
        env: {
          NODE_ENV: "production",
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "",
          REDIS_URL: inject("redisUrl"),
          DATABASE_URL: url,
          REDIS_PREFIX: "test-worker-metrics",
          HOST: "127.0.0.1",
          METRICS_PORT: "0",
          METRICS_TOKEN: TOKEN,
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      try {
        await eventually(
          () => output,
          (out) => out.includes('"msg":"workers running"'),
          "the workers to start",
          60_000,
        );
        const line = output.split("\n").find((l) => l.includes('"msg":"workers running"'))!;
        const port = (JSON.parse(line) as { metricsPort: number }).metricsPort;
        expect(port).toBeGreaterThan(0);
        const base = `http://127.0.0.1:${port}`;

        expect((await fetch(`${base}/metrics`)).status).toBe(401);
        const scraped = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
        expect(scraped.status).toBe(200);
        const text = await scraped.text();
        expect(text).toContain("# TYPE pulse_events_published_total counter");
        expect(text).toContain("pulse_ws_connections 0");
        expect(text).toContain("nodejs_eventloop_lag_seconds");
        // Without the token, the status alone.
        expect((await untilHealthy(base)).body).toEqual({ status: "ok" });
        // The token never reaches the worker's output.
        expect(output).not.toContain(TOKEN);

        child.kill("SIGTERM");
        expect(await exited).toBe(0);
        await expect(fetch(`${base}/healthz`)).rejects.toThrow();
      } finally {
        if (child.exitCode === null) child.kill("SIGKILL");
        await database.close();
      }
    },
  );
});
