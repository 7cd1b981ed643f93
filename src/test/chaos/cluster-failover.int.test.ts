import keySlot from "cluster-key-slot";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, inject, it, vi } from "vitest";
import { ChaosCluster } from "./chaos-cluster";
import {
  auditScenario,
  byTenant,
  recoveryAfter,
  sleep,
  startRecorders,
  trace,
  until,
  waitUntilCaughtUp,
  type WatchedTenant,
} from "./chaos-kit";
import { ChaosLog, LONG, quantile } from "./chaos-log";
import { FeedPublisher } from "./feed-publisher";
import { readTenantStream, StreamTap } from "./stream-audit";
import { compareStreamIds } from "../../shared/stream-id";

/**
 * Issue #16: a Redis Cluster master killed mid-stream (SIGKILL) and its replica promoted.
 * Replication is asynchronous, so a failover may lose the last appends the master
 * acknowledged: the scenario makes sure it does, by freezing the replica while the master
 * takes a few more appends. Every client either resumes with nothing lost or is told to
 * `resync`; nothing arrives twice or out of order; the readers, the publisher's bus and the
 * workers follow the slots to the promoted replica by themselves; no run stays running.
 */

if (LONG) vi.setConfig({ testTimeout: 900_000, hookTimeout: 180_000 });
else vi.setConfig({ testTimeout: 240_000, hookTimeout: 180_000 });
const databaseUrl = inject("databaseUrl");
if (!databaseUrl)
  console.log("chaos: cluster failover skipped: it needs PostgreSQL shared by processes; set DATABASE_URL (CI does)");

const NODE_TIMEOUT_MS = 1_500;
const RECONCILE_INTERVAL_MS = 1_000;
const RECONCILE_GRACE_MS = 5_000;
const FAILOVERS = LONG ? 4 : 1;
const CLIENTS_PER_TENANT = LONG ? 10 : 4;
const RATE = LONG ? 300 : 200;
/** Appends the victim acknowledges while its replica is frozen: what the failover loses. */
const DOOMED_APPENDS = 40;
const ROLES = ["client-researcher", "competitor-researcher", "context-file-writer"];
const log = new ChaosLog("cluster-failover");

describe.skipIf(!databaseUrl)("chaos: a Redis Cluster master killed mid-stream", () => {
  let cluster: ChaosCluster;
  let tenants: WatchedTenant[];

  beforeAll(async () => {
    cluster = await ChaosCluster.start({
      name: "failover",
      adminDatabaseUrl: databaseUrl,
      redis: "cluster",
      nodeTimeoutMs: NODE_TIMEOUT_MS,
      env: {
        RECONCILE_INTERVAL_MS: String(RECONCILE_INTERVAL_MS),
        RECONCILE_GRACE_MS: String(RECONCILE_GRACE_MS),
        WORKER_CONCURRENCY: "2",
        WORKER_LOCK_DURATION_MS: "5000",
        WORKER_STALLED_INTERVAL_MS: "2000",
        DEMO_SPEED: "0.3",
      },
    });
    trace("cluster up", cluster.redisCluster!.nodesList);
    await Promise.all([cluster.addReplica(), cluster.addReplica(), cluster.addWorker()]);
    tenants = await tenantsOnEveryMaster(cluster);
    trace(
      "tenants",
      await Promise.all(
        tenants.map(async (t) => `${t.tenantId.slice(0, 6)}@${await masterOfTenant(cluster, t.tenantId)}`),
      ),
    );
  });

  afterAll(async () => {
    await log.save();
    await cluster?.close();
  });

  it("kills the master of most watched tenants: clients resume or resync, nothing silently lost, readers and workers follow the promoted replica, no run stays running", async () => {
    const redisCluster = cluster.redisCluster!;
    const recorders = startRecorders(tenants, CLIENTS_PER_TENANT, cluster.wsUrl);
    const grouped = byTenant(tenants, recorders);
    const tap = new StreamTap(
      cluster.inspector,
      cluster.prefix,
      tenants.map((t) => t.tenantId),
    ).start();
    const { bus, runs } = cluster.publisher.services;
    const publisher = new FeedPublisher({ bus, runs, tenants: tenants.map((t) => t.tenantId), rate: RATE }).start();
    const promotions: number[] = [];
    const recoveries: number[] = [];
    /** Entries the tap saw that the stream no longer holds, counted after each failover. */
    const lostPerFailover: number[] = [];
    let demoRuns = 0;
    let victimTenants = 0;
    try {
      await until(() => recorders.every((r) => r.tally.items > 0), "every client's snapshot", 30_000);
      for (let failover = 0; failover < FAILOVERS; failover++) {
        // Demo runs on the worker (or still queued) when the master goes.
        for (const tenant of tenants)
          for (const role of ROLES) await runs.start(tenant.tenantId, role).then(() => demoRuns++);
        await publisher.waitFor(RATE / 2);
        const victim = await busiestMaster(cluster, tenants);
        victimTenants += victim.tenants;
        const replica = await redisCluster.replicaOf(victim.port);
        if (replica === null) throw new Error(`master ${victim.port} has no replica to promote`);
        // The replica is frozen and the master drops its link (what it had sent still arrives):
        // the appends the master acknowledges from now on reach no replica, and die with it.
        redisCluster.freeze(replica);
        await onNode(victim.port, "CLIENT", "KILL", "TYPE", "replica");
        const frozenAt = publisher.published;
        await Promise.race([publisher.waitFor(DOOMED_APPENDS), sleep(800)]);
        // Writes wait on the victim while the tap takes what it holds, so the audit knows every
        // entry clients could have been sent; the waiting writes fail over with the slots.
        await onNode(victim.port, "CLIENT", "PAUSE", "30000", "WRITE");
        await tap.pollNow();
        const faultAt = Date.now();
        await redisCluster.kill(victim.port);
        redisCluster.thaw(replica);
        trace(
          "failover",
          failover,
          "killed",
          victim.port,
          "holding",
          victim.tenants,
          "tenants; replica",
          replica,
          "frozen for",
          publisher.published - frozenAt,
          "appends",
        );
        const slot = keySlot(`{${victim.tenantIds[0]}}`);
        await until(
          async () => (await redisCluster.masterOf(slot).catch(() => 0)) === replica,
          "the replica to be promoted",
          60_000,
        );
        await redisCluster.waitUntilServing(60_000);
        promotions.push(Date.now() - faultAt);
        trace("promoted after", promotions.at(-1), "ms");
        // Pulse records what the stream lost (its publishers and readers notice the hole on
        // the next append), so a cursor into the hole resyncs; until then it would be unknown.
        const lostUntil = new Map(victim.tenantIds.map((t) => [t, tap.entries(t).at(-1)?.id ?? null]));
        await until(
          async () => (await Promise.all([...lostUntil].map(([t, id]) => holeRecorded(cluster, t, id)))).every(Boolean),
          "the lost entries to be recorded",
          30_000,
          () => JSON.stringify([...lostUntil]),
        );
        const vanishedNow = await vanishedEntries(cluster, tap, tenants);
        lostPerFailover.push(vanishedNow - lostPerFailover.reduce((a, b) => a + b, 0));
        // Every client also reconnects now with the id it holds, as after any network blip:
        // one the promoted replica never received must be answered with a resync.
        cluster.balancer.dropAll();
        recoveries.push(await recoveryAfter(faultAt, recorders, 60_000));
        trace(
          "clients receive again after",
          recoveries.at(-1),
          "ms; published",
          publisher.published,
          "failures",
          publisher.failures,
        );
        await until(
          async () => (await demoRunsInFlight(cluster, tenants)) === 0,
          "no demo run queued or active",
          120_000,
        );
        if (failover < FAILOVERS - 1) {
          // The killed node comes back as the new master's replica, ready for the next failover.
          await redisCluster.restart(victim.port);
          await redisCluster.waitUntilHealthy();
        }
      }
      // Workers followed the queue's slots: a run started now is taken and completes.
      const after = await runs.start(tenants[0]!.tenantId, ROLES[0]!);
      demoRuns += 1;
      await until(
        async () =>
          (await cluster.database.prisma.agentRun.findUnique({ where: { id: after.id } }))?.status === "completed",
        "a run started after the failover to complete",
        120_000,
      );
    } catch (error) {
      if (process.env.CHAOS_TRACE) {
        const { keys } = cluster.publisher.services.stream;
        for (const t of tenants)
          trace(
            "debug",
            t.tenantId,
            "tap",
            tap.entries(t.tenantId).at(-1)?.id,
            "newest",
            await cluster.publisher.services.stream.lastId(t.tenantId),
            "trimmed",
            await cluster.inspector.get(keys.trimmed(t.tenantId)),
          );
        for (const r of cluster.replicas)
          trace(
            "replica log",
            r.name,
            r.output
              .split("\n")
              .filter((l) => /lost|stream reader|"level":[5]/.test(l))
              .slice(-8)
              .map((l) => l.slice(0, 300))
              .join("\n"),
          );
      }
      throw error;
    } finally {
      await publisher.stop();
    }
    await publisher.finishRuns();
    await waitUntilCaughtUp(cluster.inspector, cluster.prefix, grouped, 120_000);
    await tap.stop();
    const vanished = await vanishedEntries(cluster, tap, tenants);
    trace("failover figures", { vanished, lostPerFailover, promotions, recoveries });
    // Lost appends surface as resyncs, never as a gap: every count of a silent loss stays zero.
    await auditScenario({
      cluster,
      recorders: grouped,
      tap,
      log,
      row: () => ({
        number: 9,
        scenario:
          "Redis Cluster master killed mid-stream (SIGKILL), its replica promoted; the last acknowledged appends lost",
        events: publisher.published,
        clients: recorders.length,
        faults: FAILOVERS,
        faultKind: `SIGKILL of a master, cluster-node-timeout ${NODE_TIMEOUT_MS} ms`,
        recoveryMs: quantile(recoveries, 1),
        observed:
          `acknowledged appends lost per failover ${lostPerFailover.join(", ")} (${vanished} in all); ` +
          `promotion ${promotions.join(", ")} ms; clients receive again after ${recoveries.join(", ")} ms; ` +
          `${victimTenants} watched tenants on the killed masters; ${demoRuns} demo runs; ${publisher.failures.length} publish failures`,
      }),
      none: ["lost", "extra", "mismatched", "seqGaps", "duplicated", "reordered", "errors"],
      publisherFailures: publisher.failures,
    });
  });
});

/** Tenants until each master serves at least one, and one master two (the victim of choice). */
async function tenantsOnEveryMaster(cluster: ChaosCluster): Promise<WatchedTenant[]> {
  const masters = await cluster.redisCluster!.masterPorts();
  const chosen = new Map<number, WatchedTenant[]>(masters.map((port) => [port, []]));
  const wanted = (port: number) => (port === masters[0] ? 2 : 1);
  for (let tries = 0; tries < 60 && masters.some((port) => chosen.get(port)!.length < wanted(port)); tries++) {
    const tenant = await cluster.createTenant();
    const port = await masterOfTenant(cluster, tenant.tenantId);
    const list = chosen.get(port)!;
    if (list.length < wanted(port)) list.push({ tenantId: tenant.tenantId, token: tenant.token });
  }
  return [...chosen.values()].flat();
}

/** The master serving the tenant's keys (they share the `{tenantId}` hash tag). */
async function masterOfTenant(cluster: ChaosCluster, tenantId: string): Promise<number> {
  return cluster.redisCluster!.masterOf(keySlot(`{${tenantId}}`));
}

/** The master holding the most watched tenants now. */
async function busiestMaster(
  cluster: ChaosCluster,
  tenants: readonly WatchedTenant[],
): Promise<{ port: number; tenants: number; tenantIds: string[] }> {
  const byMaster = new Map<number, string[]>();
  for (const tenant of tenants) {
    const port = await masterOfTenant(cluster, tenant.tenantId);
    byMaster.set(port, [...(byMaster.get(port) ?? []), tenant.tenantId]);
  }
  const [port, tenantIds] = [...byMaster].sort((a, b) => b[1].length - a[1].length)[0]!;
  return { port, tenants: tenantIds.length, tenantIds };
}

/** One command sent to one node of the cluster (CLIENT commands act on that node alone). */
async function onNode(port: number, ...command: [string, ...string[]]): Promise<void> {
  const node = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0, retryStrategy: () => null });
  node.on("error", () => {});
  try {
    await node.call(...command);
  } finally {
    node.disconnect();
  }
}

/** Whether the tenant's stream still holds `id`, or marks everything up to it as gone (so cursors there resync). */
async function holeRecorded(cluster: ChaosCluster, tenantId: string, id: string | null): Promise<boolean> {
  if (id === null) return true;
  const { keys } = cluster.publisher.services.stream;
  const [kept, trimmed] = await Promise.all([
    cluster.inspector.xrange(keys.events(tenantId), id, id),
    cluster.inspector.get(keys.trimmed(tenantId)),
  ]);
  return kept.length > 0 || (trimmed !== null && compareStreamIds(trimmed, id) >= 0);
}

/** Entries the tap saw that the tenants' streams no longer hold: appends the failovers lost. */
async function vanishedEntries(
  cluster: ChaosCluster,
  tap: StreamTap,
  tenants: readonly WatchedTenant[],
): Promise<number> {
  let vanished = 0;
  for (const tenant of tenants) {
    const kept = new Set((await readTenantStream(cluster.inspector, cluster.prefix, tenant.tenantId)).map((e) => e.id));
    vanished += tap.entries(tenant.tenantId).filter((e) => !kept.has(e.id)).length;
  }
  return vanished;
}

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
