import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterEach, describe, expect, inject, it } from "vitest";
import { CapturedLog } from "../../test/captured-log";
import { eventually, fastDemoAgents, openTestDatabase, startTestPulse, untilHealthy } from "../../test/harness";
import { createPulseServer } from "../http-server";
import { createLogger, type Logger } from "../logger";
import { Pulse } from "../pulse";
import { PrivateRedisServer } from "../private-redis-server";
import { HealthCheck } from "./health-check";
import { startMetricsServer, type MetricsServer } from "./metrics-server";

/**
 * `/healthz` says whether a process can do its work, from real signals: a worker process
 * whose Redis refuses every command answers 503 with the reasons (and logs a handful of
 * short lines, not one per refused command), and 200 again once Redis accepts commands.
 */

const toStop: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const stop of toStop.splice(0).reverse()) await stop();
});

async function startWorkerPulse(redisUrl: string, logger: Logger, prefix = `test-${randomUUID().slice(0, 8)}`) {
  const database = await openTestDatabase("pglite");
  // A test may have closed it already, to see the health check notice.
  toStop.push(() => database.close().catch(() => {}));
  const pulse = await Pulse.start({
    database,
    redis: { url: redisUrl },
    redisPrefix: prefix,
    logger,
    agents: fastDemoAgents(),
    runWorkers: true,
    serveSubscriptions: false,
    retention: { maxAgeMs: 86_400_000, minEvents: 10_000, maxEvents: 100_000 },
    logRetentionDays: 30,
    worker: { concurrency: 4, lockDurationMs: 30_000, stalledIntervalMs: 30_000 },
    attempts: 3,
    auth: { secret: new TextEncoder().encode("a-secret-of-at-least-32-characters-here"), sessionTtlSeconds: 60 },
  });
  toStop.push(() => pulse.close({ force: true }));
  return { pulse, database, prefix };
}

async function healthz(
  server: MetricsServer,
): Promise<{ status: number; body: { status: string; reasons: string[] } }> {
  const res = await fetch(`http://127.0.0.1:${server.port}/healthz`);
  return { status: res.status, body: (await res.json()) as { status: string; reasons: string[] } };
}

/** How many commands Redis refused with `code` (from INFO errorstats). */
async function refusals(admin: Redis, code: string): Promise<number> {
  const stats = await admin.info("errorstats");
  return Number(new RegExp(`errorstat_${code}:count=(\\d+)`).exec(stats)?.[1] ?? 0);
}

describe("/healthz and logs when Redis refuses every command", () => {
  it("a worker process answers 503 with reasons and logs a few short lines, then 200 once Redis accepts commands again", async () => {
    const redis = await new PrivateRedisServer().start();
    toStop.push(() => redis.stop());
    const admin = new Redis(redis.url);
    toStop.push(async () => admin.disconnect());
    await admin.acl("SETUSER", "admin", "on", ">admin-password", "+@all", "~*", "&*");
    await admin.auth("admin", "admin-password");

    const captured = new CapturedLog();
    const { pulse } = await startWorkerPulse(redis.url, createLogger("info", "pulse-worker", captured));
    const server = await startMetricsServer({
      metrics: pulse.services.metrics,
      port: 0,
      host: "127.0.0.1",
      enabled: false,
      logger: createLogger("silent"),
      health: pulse.health,
    });
    toStop.push(() => server.close());
    await untilHealthy(`http://127.0.0.1:${server.port}`);
    const before = captured.text.length;

    // Every command of Pulse's connections (the default user's) is refused from now on.
    await admin.acl("SETUSER", "default", "-@all");
    await eventually(
      () => refusals(admin, "NOPERM"),
      (n) => n >= 50,
      "Redis to refuse 50 commands",
      60_000,
    );

    const down = await eventually(
      () => healthz(server),
      (h) => h.status === 503,
      "/healthz to say unavailable",
      30_000,
    );
    expect(down.body.status).toBe("unavailable");
    expect(down.body.reasons.some((r) => r.startsWith("redis: NOPERM"))).toBe(true);
    const workerReason = (h: Awaited<ReturnType<typeof healthz>>) =>
      h.body.reasons.find((r) => r.startsWith("worker "));
    const failing = await eventually(
      () => healthz(server),
      (h) => workerReason(h) !== undefined,
      "a failing worker",
      30_000,
    );
    expect(workerReason(failing)).toMatch(
      /^worker [\w-]+ (keeps failing|is paused for \d+ s after repeated errors): .*NOPERM/,
    );

    const lines = captured.text.slice(before).split("\n").filter(Boolean);
    // Without collapsing, one line per refused command (300 and more, 1.4 KB each).
    expect(lines.length).toBeLessThanOrEqual(30);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(2_500);
    expect(lines.some((l) => l.includes('"msg":"worker error"'))).toBe(true);
    // Backed off instead of retrying at once: BullMQ alone retried thousands of times a second.
    expect(lines.some((l) => /Redis keeps refusing its commands; pausing it/.test(l))).toBe(true);

    await admin.acl("SETUSER", "default", "+@all");
    expect((await untilHealthy(`http://127.0.0.1:${server.port}`, 60_000)).body).toEqual({ status: "ok", reasons: [] });
  }, 180_000);
});

describe("/healthz of the API server and the database", () => {
  it("answers 503 once the database refuses SELECT 1, naming it only to those who may read the metrics, and logs why", async () => {
    const database = await openTestDatabase("pglite");
    const captured = new CapturedLog();
    const app = await startTestPulse({ database, logger: createLogger("info", "pulse", captured) });
    toStop.push(() => app.close());
    // The public port's default (no METRICS_PUBLIC, no METRICS_TOKEN), and one with a token.
    const TOKEN = "metrics-token-0123456789abcdef";
    const closed = createPulseServer({ pulse: app.pulse, logger: createLogger("silent"), secureCookies: false });
    const guarded = createPulseServer({
      pulse: app.pulse,
      logger: createLogger("silent"),
      secureCookies: false,
      metrics: { token: TOKEN },
    });
    const listening = async (s: typeof closed) => {
      await new Promise<void>((resolve) => s.server.listen(0, "127.0.0.1", resolve));
      toStop.push(() => s.close());
      return `http://127.0.0.1:${(s.server.address() as AddressInfo).port}/healthz`;
    };
    const [closedUrl, guardedUrl] = [await listening(closed), await listening(guarded)];
    await untilHealthy(app.baseUrl);
    expect(await (await fetch(closedUrl)).json()).toEqual({ status: "ok" });
    await database.close();

    // The test server's metrics are public: so are the reasons.
    const res = await eventually(
      () => fetch(`${app.baseUrl}/healthz`),
      (r) => r.status === 503,
      "/healthz to say unavailable",
      30_000,
    );
    const body = (await res.json()) as { status: string; reasons: string[] };
    expect(body.status).toBe("unavailable");
    expect(body.reasons.some((r) => r.startsWith("database: "))).toBe(true);

    for (const answer of [await fetch(closedUrl), await fetch(guardedUrl)]) {
      expect(answer.status).toBe(503);
      expect(await answer.text()).toBe(JSON.stringify({ status: "unavailable" }));
    }
    const bearer = await fetch(guardedUrl, { headers: { authorization: `Bearer ${TOKEN}` } });
    const named = (reasons: string[]) => reasons.some((r) => r.startsWith("database: "));
    expect(named(((await bearer.json()) as { reasons: string[] }).reasons)).toBe(true);
    // One more probe once the cached answer (1.5 s) is stale, with the same reasons.
    await delay(1_600);
    expect((await fetch(closedUrl)).status).toBe(503);
    // The operator reads them in the log: a line when they change, not one per request.
    const warnings = captured.lines.filter((l) => l.msg === "health: unavailable");
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.every((w) => named(w.reasons as string[]))).toBe(true);
    const told = warnings.map((w) => JSON.stringify(w.reasons));
    expect(told.filter((reasons, i) => i > 0 && reasons === told[i - 1])).toEqual([]);
  }, 60_000);
});

describe("worker processes' connections", () => {
  async function connectionNames(prefix: string): Promise<string[]> {
    const inspector = new Redis(inject("redisUrl"));
    try {
      const list = (await inspector.client("LIST")) as string;
      return [...list.matchAll(/ name=(\S+)/g)]
        .map((m) => m[1]!)
        .filter((name) => name.startsWith(`${prefix}:`))
        .map((name) => name.slice(prefix.length + 1));
    } finally {
      inspector.disconnect();
    }
  }

  it("a worker-only Pulse opens no stream-reader or stream-wake connection", async () => {
    const { pulse, prefix } = await startWorkerPulse(inject("redisUrl"), createLogger("silent"));
    const names = await connectionNames(prefix);
    expect(names).toEqual(expect.arrayContaining(["command", "queues", "workers", "cancel-subscriber"]));
    expect(names).not.toContain("stream-reader");
    expect(names).not.toContain("stream-wake");
    expect(pulse.health).toBeInstanceOf(HealthCheck);
  }, 60_000);
});
