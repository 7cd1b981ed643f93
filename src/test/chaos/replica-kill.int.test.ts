import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { RawSocket } from "../security/security-kit";
import { ChaosCluster } from "./chaos-cluster";
import {
  auditRecorders,
  auditScenario,
  byTenant,
  expectNone,
  recoveryAfter,
  sleep,
  startRecorders,
  trace,
  waitUntilCaughtUp,
  type WatchedTenant,
} from "./chaos-kit";
import { ChaosLog, LONG, quantile } from "./chaos-log";
import { FeedPublisher } from "./feed-publisher";
import type { RecorderClient } from "./recorder-client";
import { skippedWithoutPostgres } from "./chaos-log";

/**
 * Scenario 1 of issue #4, and the replicas' drain: API replicas behind a balancer, clients
 * spread over them, a steady stream of events, and replicas killed mid-stream (SIGKILL)
 * again and again. Every client reconnects to a live replica and resumes from its last id:
 * nothing lost, nothing twice, nothing out of order, and its final state is the database's.
 */

if (LONG) vi.setConfig({ testTimeout: 900_000, hookTimeout: 120_000 });
const databaseUrl = inject("databaseUrl");
if (!databaseUrl)
  console.log(
    "chaos: scenario 1 (replica kills) skipped: it needs PostgreSQL shared by processes; set DATABASE_URL (CI does)",
  );

const REPLICAS = LONG ? 3 : 2;
const TENANTS = LONG ? 4 : 2;
const CLIENTS_PER_TENANT = LONG ? 26 : 6;
const KILLS = LONG ? 24 : 2;
const RATE = LONG ? 450 : 250;
const KILL_EVERY_MS = LONG ? 9_000 : 500;
const log = new ChaosLog("replica-kill");

describe.skipIf(!databaseUrl)(`chaos: API replicas killed mid-stream${skippedWithoutPostgres(databaseUrl)}`, () => {
  let cluster: ChaosCluster;
  let tenants: WatchedTenant[];

  beforeAll(async () => {
    cluster = await ChaosCluster.start({ name: "kill", adminDatabaseUrl: databaseUrl });
    trace("cluster up");
    await Promise.all(Array.from({ length: REPLICAS }, () => cluster.addReplica()));
    trace("replicas up");
    tenants = await Promise.all(Array.from({ length: TENANTS }, () => cluster.createTenant()));
  });

  afterAll(async () => {
    await log.save();
    await cluster?.close();
  });

  it("resumes every client on another replica with nothing lost, duplicated or reordered (scenario 1)", async () => {
    const recorders = startRecorders(tenants, CLIENTS_PER_TENANT, cluster.wsUrl);
    const grouped = byTenant(tenants, recorders);
    const { bus, runs } = cluster.publisher.services;
    const publisher = new FeedPublisher({ bus, runs, tenants: tenants.map((t) => t.tenantId), rate: RATE }).start();
    const recoveries: number[] = [];
    try {
      await publisher.waitFor(RATE);
      trace("publishing", publisher.published, publisher.failures);
      for (let kill = 0; kill < KILLS; kill++) {
        // The oldest live replica: after REPLICAS kills, every client has lost its first one.
        const victim = cluster.liveReplicas[0]!;
        const faultAt = Date.now();
        await cluster.stopReplica(victim, "SIGKILL");
        // A replacement starts while clients move over, as an orchestrator would start one.
        const replacement = cluster.addReplica();
        recoveries.push(await recoveryAfter(faultAt, recorders, 30_000));
        trace("kill", kill, victim.name, "recovered in", recoveries.at(-1), "ms; published", publisher.published);
        await replacement;
        await sleep(KILL_EVERY_MS);
      }
    } finally {
      await publisher.stop();
    }
    await publisher.finishRuns();
    trace("published", publisher.published);
    await waitUntilCaughtUp(cluster.inspector, cluster.prefix, grouped, 120_000);
    trace("caught up");
    await auditScenario({
      cluster,
      recorders: grouped,
      log,
      row: ({ totals }) => ({
        number: 1,
        scenario: "API replica killed mid-stream (SIGKILL), clients resume on another replica",
        events: publisher.published,
        clients: recorders.length,
        faults: KILLS,
        faultKind: "SIGKILL of an API replica",
        recoveryMs: quantile(recoveries, 1),
        observed: `${totals.deliveries.toLocaleString("en-US")} deliveries; recovery median ${quantile(recoveries, 0.5)} ms; ${REPLICAS} replicas`,
      }),
      none: ["lost", "extra", "mismatched", "seqGaps", "duplicated", "reordered", "errors", "resyncs"],
      publisherFailures: publisher.failures,
    });
    // Every client lost its replica at least once over the run (clients really moved).
    expect(recorders.filter((r) => r.tally.closes === 0).map((r) => r.label)).toEqual([]);
  });

  it("drains a replica on SIGTERM: reconnect notice, subscriptions end cleanly, the process exits 0 (within its shutdown deadline)", async () => {
    const tenant = tenants[0]!;
    const replica = cluster.liveReplicas[0]!;
    // A client on the draining replica directly, to see exactly what it is sent.
    const raw = new RawSocket(new WebSocket(`ws://127.0.0.1:${replica.port}/api/trpc?connectionParams=1`));
    await raw.opened;
    raw.authenticate(tenant.token);
    raw.request(1, "subscription", "agent.onStatus", {});
    await raw.waitFor((f) => f.json?.id === 1 && f.json?.result?.type === "data", "the snapshot");
    const recorders = startRecorders([tenant], 6, cluster.wsUrl);
    const grouped = byTenant([tenant], recorders);
    const { bus, runs } = cluster.publisher.services;
    const publisher = new FeedPublisher({ bus, runs, tenants: [tenant.tenantId], rate: 100 }).start();
    let exit;
    try {
      await publisher.waitFor(50);
      exit = await cluster.stopReplica(replica, "SIGTERM");
      await publisher.waitFor(50);
    } finally {
      await publisher.stop();
    }
    await publisher.finishRuns();
    const notice = raw.frames.findIndex((f) => f.json?.method === "reconnect" && f.json?.id === null);
    const closed = await raw.closedWithin();
    // Nothing after the notice tells the client its subscription failed or stopped for good.
    const after = raw.frames.slice(notice + 1).filter((f) => f.json?.error || f.json?.result?.type === "stopped");
    await waitUntilCaughtUp(cluster.inspector, cluster.prefix, grouped, 120_000);
    const totals = await auditRecorders(
      { redis: cluster.inspector, prefix: cluster.prefix, source: cluster.publisher.services },
      grouped,
    );
    await closeAll(recorders);
    raw.close();
    await cluster.addReplica();

    expect(notice).toBeGreaterThanOrEqual(0);
    expect(closed.code).toBe(1001);
    expect(after.map((f) => f.text)).toEqual([]);
    expect(exit.code).toBe(0);
    expect(replica.output).not.toMatch(/"level":50/);
    expectNone(totals, ["lost", "seqGaps", "duplicated", "reordered", "errors"]);
    expect(totals.stateDiffs).toEqual([]);
  });
});

async function closeAll(recorders: RecorderClient[]): Promise<void> {
  await Promise.all(recorders.map((r) => r.close()));
}
