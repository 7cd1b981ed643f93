import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Database } from "../../server/db";
import { connectRedis } from "../../server/redis";
import { openTestDatabase } from "../harness";
import { heapUsedAfterGc } from "../security/security-kit";
import { sleep, startInProcessPulse, trace, until, type InProcessPulse, type WatchedTenant } from "./chaos-kit";
import { ChaosLog, LONG } from "./chaos-log";
import { FEED_ROLES, FeedPublisher } from "./feed-publisher";
import { RecorderClient, type RecorderFeed } from "./recorder-client";

/**
 * Scenario 8 of issue #4: connection churn. Waves of clients connect, subscribe (fresh, or
 * resuming from an id), receive, and drop, half politely and half by a reset, for minutes in
 * the long run. Afterwards the server holds what it held before: no connection, no
 * subscription, no stream-reader tenant, no extra Redis connection, socket or timer, and its
 * heap after garbage collection has not grown.
 */

if (LONG) vi.setConfig({ testTimeout: 900_000 });
const DURATION_MS = LONG ? 240_000 : 8_000;
const WAVE = LONG ? 40 : 12;
const log = new ChaosLog("connection-churn");

/** What the process holds, by kind: sockets, timers, handles (`process.getActiveResourcesInfo`). */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

describe("chaos: connection churn", () => {
  let server: InProcessPulse;
  let tenants: WatchedTenant[];
  let database: Database;

  beforeAll(async () => {
    // In memory: a PostgreSQL pool opens and closes sockets with the load, which would hide
    // (or fake) a socket Pulse itself kept.
    database = await openTestDatabase("pglite");
    server = await startInProcessPulse({ database });
    tenants = [await server.tenant(), await server.tenant()];
  });

  afterAll(async () => {
    await log.save();
    await server?.close();
    await database?.close();
  });

  it("returns connections, subscriptions, reader tenants, Redis connections, sockets, timers and heap to their baseline (scenario 8)", async () => {
    const { app } = server;
    const services = app.pulse.services;
    const redis = connectRedis(app.redis, `${app.prefix}:audit`);
    // On a cluster, every node's clients: each connection of Pulse's is one per node it reached.
    const nodes = () => ("nodes" in redis && redis.isCluster ? redis.nodes("all") : [redis]);
    /** Pulse's connections by name, over every node. */
    const redisClients = async () => {
      const lists = await Promise.all(nodes().map(async (node) => String(await node.client("LIST"))));
      // ioredis names a cluster's subscriber connections `ioredis-cluster(ssubscriber):<name>`.
      // Each slot-map refresh (every 2 s per cluster client) asks CLUSTER SLOTS on a connection
      // of its own, `ioredis-cluster(refresher):<name>`, closed once answered: on a busy machine
      // a listing catches some of them, and they say nothing of what Pulse keeps.
      const byName: Record<string, number> = {};
      for (const line of lists.flatMap((list) => list.split("\n"))) {
        const name = /name=(\S*)/.exec(line)?.[1];
        if (name?.includes(`${app.prefix}:`) && !name.startsWith("ioredis-cluster(refresher)"))
          byName[name] = (byName[name] ?? 0) + 1;
      }
      return byName;
    };
    const feeds: RecorderFeed[] = [{ kind: "agent" }, { kind: "agent", agentRole: FEED_ROLES[1] }, { kind: "context" }];
    let connections = 0;
    let waves = 0;
    let anomalies = 0;
    const kept: RecorderClient[] = [];

    /** One wave: connect, subscribe, receive, drop (half politely, half with a reset). */
    const wave = async (size: number) => {
      const clients = Array.from({ length: size }, (_, i) => {
        const tenant = tenants[i % tenants.length]!;
        const earlier = kept.find((k) => k.options.token === tenant.token && k.lastId);
        // Some come back with an id kept from an earlier visit; the rest start from a snapshot.
        return i % 5 === 4 && earlier
          ? RecorderClient.continuing(earlier, `w${waves}-${i}`)
          : new RecorderClient({
              wsUrl: server.wsUrl,
              token: tenant.token,
              feed: feeds[i % feeds.length]!,
              label: `w${waves}-${i}`,
            });
      });
      for (const client of clients) client.start();
      connections += size;
      await until(
        () =>
          clients.every((c) => c.tally.items > 0 || c.feed.kind === "context" || c.options.lastEventId !== undefined),
        "the wave's first items",
        20_000,
      ).catch(() => {});
      const abrupt = clients.filter((_, i) => i % 2 === 1);
      if (abrupt.length > 0) server.balancer.dropAll();
      await Promise.all(clients.map((c) => c.close()));
      for (const c of clients) anomalies += c.tally.duplicated + c.tally.reordered + c.tally.errors;
      kept.splice(0, kept.length, ...clients.filter((c) => c.lastId));
      waves += 1;
    };

    // Warm-up: the first connections create what every later one reuses (JIT, pools, caches).
    const warm = new FeedPublisher({
      bus: services.bus,
      runs: services.runs,
      tenants: tenants.map((t) => t.tenantId),
      rate: 100,
      limit: 100,
    }).start();
    await wave(WAVE);
    await warm.stop();
    await warm.finishRuns();
    await until(
      () => app.http.connections.size === 0 && services.reader.tenantCount === 0,
      "the warm-up to drain",
      20_000,
    );
    await sleep(500);
    const baseline = { resources: resources(), redis: await redisClients(), heap: heapUsedAfterGc() };
    trace("baseline", baseline);

    const publisher = new FeedPublisher({
      bus: services.bus,
      runs: services.runs,
      tenants: tenants.map((t) => t.tenantId),
      rate: 100,
    }).start();
    const started = Date.now();
    let peakConnections = 0;
    /** Heap after GC between waves, to tell a trend from the one-time cost of the first waves. */
    const samples: number[] = [];
    let nextSample = started + DURATION_MS / 8;
    try {
      while (Date.now() - started < DURATION_MS) {
        const done = wave(WAVE);
        await sleep(50);
        peakConnections = Math.max(peakConnections, app.http.connections.size);
        await done;
        if (Date.now() >= nextSample) {
          samples.push(heapUsedAfterGc());
          nextSample += DURATION_MS / 8;
        }
      }
    } finally {
      await publisher.stop();
    }
    await publisher.finishRuns();
    const drainedAt = Date.now();
    await until(
      () => app.http.connections.size === 0 && services.reader.tenantCount === 0,
      "every connection and reader tenant to go",
      20_000,
      () => `connections ${app.http.connections.size}, tenants ${services.reader.tenantCount}`,
    );
    const settledMs = Date.now() - drainedAt;
    // Progress writes and timers of the last events settle.
    await sleep(1_000);
    const after = { resources: resources(), redis: await redisClients(), heap: heapUsedAfterGc() };
    const gauges = await scrape(app.baseUrl, [
      "pulse_ws_connections",
      "pulse_subscriptions",
      "pulse_stream_reader_tenants",
    ]);
    trace("after", after, gauges, { waves, connections, peakConnections, anomalies });
    redis.disconnect();

    const growthMb = (after.heap - baseline.heap) / 1024 / 1024;
    // From the first quarter of the churn on, the heap must not keep growing.
    const steady = samples.slice(0, Math.max(1, Math.floor(samples.length / 4)));
    const trendMb = (after.heap - Math.min(...steady, after.heap)) / 1024 / 1024;
    log.record({
      number: 8,
      scenario: "Connection churn: connect, subscribe, drop",
      events: publisher.published,
      clients: connections,
      faults: waves,
      faultKind: "waves of clients dropped (half reset)",
      lost: 0,
      duplicated: anomalies,
      reordered: 0,
      stuckRuns: 0,
      resyncs: 0,
      recoveryMs: settledMs,
      observed: `${(DURATION_MS / 1000).toFixed(0)} s of churn, ${connections.toLocaleString("en-US")} connections; heap after GC ${growthMb >= 0 ? "+" : ""}${growthMb.toFixed(2)} MB over the baseline, ${trendMb >= 0 ? "+" : ""}${trendMb.toFixed(2)} MB after the first quarter`,
    });
    expect(anomalies).toBe(0);
    expect(app.http.connections.size).toBe(0);
    expect(services.reader.tenantCount).toBe(0);
    for (const value of Object.values(gauges)) if (value !== null) expect(value).toBe(0);
    expect(after.redis).toEqual(baseline.redis);
    // Sockets and handles exactly as before; timers within the few that come and go with any live server.
    const kinds = new Set([...Object.keys(baseline.resources), ...Object.keys(after.resources)]);
    // On a cluster, ioredis opens and drops connections to nodes (replicas among them) as its
    // slot map refreshes, apart from any client: a slack of two per node, far below one per
    // churned client (a leak). Pulse's own named connections are counted exactly above.
    const nodeSockets = "cluster" in app.redis ? app.redis.cluster.nodes.length * 2 : 0;
    for (const kind of kinds) {
      const slack = kind === "Timeout" ? 3 : kind === "TCPSocketWrap" ? nodeSockets : 0;
      expect(after.resources[kind] ?? 0, kind).toBeLessThanOrEqual((baseline.resources[kind] ?? 0) + slack);
    }
    expect(growthMb).toBeLessThan(8);
    expect(trendMb).toBeLessThan(LONG ? 4 : 6);
  });
});

/** Gauges from the server's /metrics (summed over labels), null each when the endpoint or the metric is missing. */
async function scrape(baseUrl: string, names: string[]): Promise<Record<string, number | null>> {
  const res = await fetch(`${baseUrl}/metrics`).catch(() => null);
  const text = res?.ok ? await res.text() : "";
  return Object.fromEntries(
    names.map((name) => {
      const lines = text.split("\n").filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
      return [name, lines.length === 0 ? null : lines.reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0)];
    }),
  );
}
