import { afterAll, beforeAll, describe, inject, it, vi } from "vitest";
import { ChaosCluster } from "./chaos-cluster";
import {
  auditScenario,
  byTenant,
  sleep,
  startRecorders,
  trace,
  until,
  waitUntilCaughtUp,
  type WatchedTenant,
} from "./chaos-kit";
import { ChaosLog, LONG } from "./chaos-log";
import { FeedPublisher } from "./feed-publisher";
import { StreamTap } from "./stream-audit";
import { skippedWithoutPostgres } from "./chaos-log";

/**
 * Scenario 4 of issue #4: Redis restarts under a running deployment, once keeping its data
 * (append-only file, graceful restart) and once losing it (a crash without persistence).
 * Clients either resume as if nothing happened or are told to `resync` with a snapshot;
 * the stream reader and the workers reconnect by themselves; and no run stays queued or
 * active past the reconciliation deadline (jobs lost with Redis are ended as failed).
 */

if (LONG) vi.setConfig({ testTimeout: 900_000, hookTimeout: 120_000 });
const databaseUrl = inject("databaseUrl");
if (!databaseUrl)
  console.log(
    "chaos: scenario 4 (Redis restarts) skipped: it needs PostgreSQL shared by processes; set DATABASE_URL (CI does)",
  );

const RECONCILE_INTERVAL_MS = 1_000;
const RECONCILE_GRACE_MS = 5_000;
/** Beyond the reconciler's own timing: its pass, the report, delivery, a busy machine. */
const BOUND_MS = 15_000;
const RESTARTS = LONG ? 5 : 1;
const CLIENTS_PER_TENANT = LONG ? 12 : 4;
const RATE = LONG ? 300 : 150;
const ROLES = ["client-researcher", "competitor-researcher", "context-file-writer"];
const log = new ChaosLog("redis-restart");

describe.skipIf(!databaseUrl)(`chaos: Redis restarts${skippedWithoutPostgres(databaseUrl)}`, () => {
  let cluster: ChaosCluster;
  let tenants: WatchedTenant[];

  beforeAll(async () => {
    cluster = await ChaosCluster.start({
      name: "redis",
      adminDatabaseUrl: databaseUrl,
      persistRedis: true,
      env: {
        RECONCILE_INTERVAL_MS: String(RECONCILE_INTERVAL_MS),
        RECONCILE_GRACE_MS: String(RECONCILE_GRACE_MS),
        // One job per role per worker: the other tenant's run of each role waits in the queue when Redis goes.
        WORKER_CONCURRENCY: "1",
        WORKER_LOCK_DURATION_MS: "5000",
        WORKER_STALLED_INTERVAL_MS: "2000",
        DEMO_SPEED: "0.3",
      },
    });
    await Promise.all([cluster.addReplica(), cluster.addReplica(), cluster.addWorker()]);
    tenants = await Promise.all([cluster.createTenant(), cluster.createTenant()]);
  });

  afterAll(async () => {
    await log.save();
    await cluster?.close();
  });

  for (const persist of [true, false]) {
    it(`${persist ? "keeps" : "loses"} its data: clients resume or resync, readers and workers reconnect, no run stays running (scenario 4)`, async () => {
      const recorders = startRecorders(tenants, CLIENTS_PER_TENANT, cluster.wsUrl);
      const grouped = byTenant(tenants, recorders);
      const tap = new StreamTap(
        cluster.inspector,
        cluster.prefix,
        tenants.map((t) => t.tenantId),
      ).start();
      const { bus, runs } = cluster.publisher.services;
      const publisher = new FeedPublisher({ bus, runs, tenants: tenants.map((t) => t.tenantId), rate: RATE }).start();
      let demoRuns = 0;
      let recoveryMs = 0;
      try {
        await until(() => recorders.every((r) => r.tally.items > 0), "every client's snapshot", 20_000);
        for (let restart = 0; restart < RESTARTS; restart++) {
          // Demo runs in flight (active on the worker, or still waiting in the queue) when Redis goes.
          for (const tenant of tenants)
            for (const role of ROLES)
              await runs
                .start(tenant.tenantId, role)
                .then(() => demoRuns++)
                .catch(() => {});
          await publisher.waitFor(RATE);
          if (!persist) {
            // Writes wait (reads go on) while the tap takes what the stream holds, so nothing
            // appended just before the crash escapes the audit; the waiting writes are resent
            // to the new Redis, as they would be after any crash.
            await cluster.inspector.call("CLIENT", "PAUSE", "5000", "WRITE");
            await tap.pollNow();
          }
          const downAt = Date.now();
          await cluster.redis.restart({ crash: !persist, downMs: 500, persist });
          trace("redis back", persist ? "with its data" : "empty");
          // Every client also reconnects now, with the id it holds: one from before the
          // restart resumes (the stream kept it) or, when Redis lost it, gets a resync.
          cluster.balancer.dropAll();
          // Readers reconnect: events published after the restart reach every client again.
          const mark = publisher.published;
          await publisher.waitFor(RATE);
          await until(
            () => recorders.every((r) => r.lastItemAt > downAt),
            "every client to receive after the restart",
            30_000,
          );
          // No run stays queued or active: the ones whose jobs Redis lost are ended by the reconciler.
          await until(
            async () => (await demoRunsInFlight(cluster, tenants)) === 0,
            "no demo run queued or active",
            RECONCILE_GRACE_MS + RECONCILE_INTERVAL_MS + BOUND_MS + 20_000,
          );
          recoveryMs = Math.max(recoveryMs, Date.now() - downAt);
          trace(
            "restart",
            restart,
            "recovered in",
            Date.now() - downAt,
            "ms; published since",
            publisher.published - mark,
          );
        }
        // Workers reconnected: a run started now is taken and completes.
        const after = await runs.start(tenants[0]!.tenantId, ROLES[0]!);
        demoRuns += 1;
        await until(
          async () =>
            (await cluster.database.prisma.agentRun.findUnique({ where: { id: after.id } }))?.status === "completed",
          "a run started after the restarts to complete",
          60_000,
        );
      } finally {
        await publisher.stop();
      }
      trace(
        "failed feed runs",
        await cluster.database.prisma.agentRun.findMany({
          where: { tenantId: { in: tenants.map((t) => t.tenantId) }, status: "failed" },
          select: { agentRole: true, error: true, updatedAt: true, failedAt: true },
        }),
      );
      await publisher.finishRuns();
      await waitUntilCaughtUp(cluster.inspector, cluster.prefix, grouped, 120_000);
      await tap.stop();
      const ended = await cluster.database.prisma.agentRun.count({
        where: { tenantId: { in: tenants.map((t) => t.tenantId) }, error: { contains: "lost from the queue" } },
      });
      trace("ended by the reconciler", ended);
      await auditScenario({
        cluster,
        recorders: grouped,
        tap,
        log,
        row: () => ({
          number: 4,
          scenario: persist
            ? "Redis restarted, keeping its data (append-only file)"
            : "Redis crashed and came back empty (no persistence)",
          events: publisher.published + tenants.length,
          clients: recorders.length,
          faults: RESTARTS,
          faultKind: persist ? "graceful Redis restart" : "Redis SIGKILL, data lost",
          recoveryMs,
          observed: `${demoRuns} demo runs; ${ended} ended by the reconciler (job lost); reconcile every ${RECONCILE_INTERVAL_MS} ms after ${RECONCILE_GRACE_MS} ms`,
        }),
        none: ["lost", "extra", "mismatched", "seqGaps", "duplicated", "reordered", "errors"],
        publisherFailures: publisher.failures,
      });
      await sleep(100);
    });
  }
});

/** Demo (worker-run) runs of these tenants still queued or active. */
async function demoRunsInFlight(cluster: ChaosCluster, tenants: readonly WatchedTenant[]): Promise<number> {
  return cluster.database.prisma.agentRun.count({
    where: {
      tenantId: { in: tenants.map((t) => t.tenantId) },
      agentRole: { in: ROLES },
      status: { in: ["queued", "active"] },
    },
  });
}
