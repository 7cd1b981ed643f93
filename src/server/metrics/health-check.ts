import type http from "node:http";
import type { Logger } from "../logger";
import type { RedisClient } from "../redis";
import { Prisma } from "../../generated/prisma/client";
import type { SqlClient } from "../sql";

/** What the health check finds: `ok`, or `unavailable` and why. */
export interface HealthReport {
  status: "ok" | "unavailable";
  reasons: string[];
}

export interface HealthCheckOptions {
  /** The connection most commands go through; probed with a write that expires by itself. */
  redis: RedisClient;
  /** The key the write probe sets (under the instance's prefix). */
  probeKey: string;
  /** Each Redis connection the process holds, by name; any that is not ready makes it unavailable. */
  connections: () => Iterable<{ name: string; status: string }>;
  database: SqlClient;
  /** Reasons why parts of the process keep failing right now (BullMQ workers). */
  failures?: () => string[];
  /** How long a probe may take before it counts as failed (default 1 s). */
  timeoutMs?: number;
  /** How long an answer is reused, so `/healthz` stays cheap however often it is called (default 1.5 s). */
  cacheMs?: number;
  /** Where a change of status is logged, with its reasons (a warning when unavailable). */
  logger?: Logger;
}

export const HEALTH_PATH = "/healthz";

const SELECT_ONE = Prisma.sql`SELECT 1`;

function withTimeout<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

const reasonOf = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 200);

/**
 * Whether this process can do its work: its Redis connections are ready, Redis accepts a
 * write (a Redis out of memory or read-only answers PING but refuses everything Pulse
 * does), the database answers `SELECT 1`, and no worker keeps failing. Answers are cached
 * briefly and concurrent callers share one probe.
 */
export class HealthCheck {
  private readonly timeoutMs: number;
  private readonly cacheMs: number;
  private cached?: { at: number; report: Promise<HealthReport> };
  /** Probes still on their way, which the next check waits for instead of piling up more behind a stuck server. */
  private readonly inFlight = new Map<"redis" | "database", Promise<unknown>>();
  /** The reasons last logged ("" while ok), so each change is logged once. */
  private logged = "";
  private wasOk = false;

  constructor(private readonly options: HealthCheckOptions) {
    this.timeoutMs = options.timeoutMs ?? 1_000;
    this.cacheMs = options.cacheMs ?? 1_500;
  }

  report(now = Date.now()): Promise<HealthReport> {
    if (!this.cached || now - this.cached.at >= this.cacheMs) this.cached = { at: now, report: this.probe() };
    return this.cached.report;
  }

  private async probe(): Promise<HealthReport> {
    const { redis, database, probeKey } = this.options;
    const reasons: string[] = [];
    for (const { name, status } of this.options.connections())
      if (status !== "ready") reasons.push(`redis: connection ${name} is ${status}`);
    const [write, select] = await Promise.allSettled([
      // A connection that is not ready would only queue the probe until it reconnects.
      redis.status === "ready" ? this.once("redis", () => redis.set(probeKey, "1", "PX", 10_000)) : Promise.resolve(),
      this.once("database", () => database.query(SELECT_ONE)),
    ]);
    if (write.status === "rejected") reasons.push(`redis: ${reasonOf(write.reason)}`);
    if (select.status === "rejected") reasons.push(`database: ${reasonOf(select.reason)}`);
    reasons.push(...(this.options.failures?.() ?? []));
    const report: HealthReport = { status: reasons.length === 0 ? "ok" : "unavailable", reasons };
    this.log(report);
    return report;
  }

  /** Logs each change of the reasons: before the first ok, as the start-up it is (info); after, as a warning. */
  private log({ status, reasons }: HealthReport): void {
    const key = reasons.join("\n");
    if (key === this.logged) return;
    this.logged = key;
    const logger = this.options.logger;
    if (status === "ok") {
      if (this.wasOk) logger?.info("health: ok again");
      this.wasOk = true;
    } else if (this.wasOk) logger?.warn({ reasons }, "health: unavailable");
    else logger?.info({ reasons }, "health: not ready yet");
  }

  /** Starts a probe unless the previous one is still on its way, and waits for it at most `timeoutMs`. */
  private once(what: "redis" | "database", start: () => Promise<unknown>): Promise<unknown> {
    let probe = this.inFlight.get(what);
    if (!probe) {
      probe = start();
      this.inFlight.set(what, probe);
      const done = () => void this.inFlight.delete(what);
      probe.then(done, done);
    }
    return withTimeout(probe, this.timeoutMs, what === "redis" ? "redis" : "the database");
  }

  /**
   * Answers `/healthz`: JSON, 200 when ok and 503 otherwise, with the reasons only for those
   * who may read the process's internals (`withReasons`: they name hosts, connections and
   * errors); the others, a load balancer or anyone on the public port, get the status alone.
   */
  async respond(res: http.ServerResponse, withReasons: boolean): Promise<void> {
    const report = await this.report();
    res.writeHead(report.status === "ok" ? 200 : 503, {
      "content-type": "application/json",
      "cache-control": "no-store",
    });
    res.end(JSON.stringify(withReasons ? report : { status: report.status }));
  }

  /** True for requests `/healthz` answers. */
  static matches(url: string | undefined): boolean {
    return (url ?? "/").split("?")[0] === HEALTH_PATH;
  }
}
