import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { connectRedis } from "../../server/redis";
import {
  auditRecorders,
  byTenant,
  expectNone,
  type InProcessPulse,
  sleep,
  startInProcessPulse,
  trace,
  until,
  waitUntilCaughtUp,
  type WatchedTenant,
} from "./chaos-kit";
import { ChaosLog, LONG } from "./chaos-log";
import { FeedPublisher } from "./feed-publisher";
import { RecorderClient } from "./recorder-client";
import { StreamTap } from "./stream-audit";
import { TcpBalancer } from "./tcp-balancer";

/**
 * Scenario 5 of issue #4: a client offline for longer than the stream keeps events. Part of
 * the clients lose their connection (their balancer is cut) while events go on and
 * retention trims the stream past their last id; when they come back, the first thing each
 * receives is a `resync` with a snapshot, never a silent skip, and its state ends equal to
 * the database's. Clients that stayed online, or came back before their events went, resume
 * without a resync.
 */

if (LONG) vi.setConfig({ testTimeout: 600_000 });
const ROUNDS = LONG ? 12 : 2;
const CLIENTS = LONG ? 24 : 8;
const RETAINED = 100;
const log = new ChaosLog("retention-resync");

describe("chaos: clients offline longer than the stream's retention", () => {
  let server: InProcessPulse;
  let tenants: WatchedTenant[];
  /** The offline clients' own way in, cut while they are away. */
  let offlineRoute: TcpBalancer;

  beforeAll(async () => {
    // Every entry is "old" at once; only the newest RETAINED survive a retention pass.
    server = await startInProcessPulse({ retention: { maxAgeMs: 1, minEvents: RETAINED, maxEvents: 100_000 } });
    tenants = [await server.tenant(), await server.tenant()];
    offlineRoute = await new TcpBalancer({ backends: [Number(new URL(server.app.baseUrl).port)] }).start();
  });

  afterAll(async () => {
    await log.save();
    await offlineRoute?.close();
    await server?.close();
  });

  it("sends every client that comes back after its events were trimmed a resync, never a silent skip (scenario 5)", async () => {
    const { app } = server;
    const services = app.pulse.services;
    const publisher = new FeedPublisher({
      bus: services.bus,
      runs: services.runs,
      tenants: tenants.map((t) => t.tenantId),
      rate: 300,
    });
    const redis = connectRedis(app.redis, `${app.prefix}:audit`);
    // Keeps what retention removes, so even segments from before a trim are checked entry by entry.
    const tap = new StreamTap(
      redis,
      app.prefix,
      tenants.map((t) => t.tenantId),
    ).start();
    const away: RecorderClient[] = [];
    const online: RecorderClient[] = [];
    let resyncsSeen = 0;
    let recoveryMs = 0;
    try {
      publisher.start();
      await publisher.waitFor(50);
      for (let i = 0; i < CLIENTS; i++) {
        const tenant = tenants[i % tenants.length]!;
        const feed = i % 4 === 3 ? ({ kind: "context" } as const) : ({ kind: "agent" } as const);
        const offline = i % 2 === 0;
        const recorder = new RecorderClient({
          wsUrl: offline ? `ws://127.0.0.1:${offlineRoute.port}/api/trpc` : server.wsUrl,
          token: tenant.token,
          feed,
          label: `${offline ? "away" : "online"}${i}`,
        }).start();
        (offline ? away : online).push(recorder);
      }
      await until(() => [...away, ...online].every((r) => r.tally.items > 0), "every client's snapshot", 20_000);
      for (let round = 0; round < ROUNDS; round++) {
        offlineRoute.cut();
        const resyncsBefore = away.reduce((n, r) => n + r.tally.resyncs, 0);
        // Far more than the stream keeps, then a retention pass (it also runs by itself every 1000 appends).
        await publisher.waitFor(RETAINED * 3);
        for (const tenant of tenants) await services.stream.trim(tenant.tenantId);
        const cameBack = Date.now();
        offlineRoute.restore();
        await until(
          () => away.every((r) => r.tally.resyncs > round),
          "every client that was away to get its resync",
          30_000,
        );
        recoveryMs = Math.max(recoveryMs, Date.now() - cameBack);
        resyncsSeen += away.reduce((n, r) => n + r.tally.resyncs, 0) - resyncsBefore;
        trace("round", round, "resyncs", resyncsSeen);
        await sleep(200);
      }
    } finally {
      await publisher.stop();
    }
    await publisher.finishRuns();
    const all = [...away, ...online];
    const grouped = byTenant(tenants, all);
    await waitUntilCaughtUp(redis, app.prefix, grouped, 120_000);
    await tap.stop();
    const totals = await auditRecorders(
      { redis, prefix: app.prefix, source: services, entries: (t) => tap.entries(t) },
      grouped,
    );
    trace("audited", totals);
    await Promise.all(all.map((r) => r.close()));
    redis.disconnect();

    log.record({
      number: 5,
      scenario: "Client offline longer than the stream's retention comes back",
      events: publisher.published,
      clients: all.length,
      faults: ROUNDS * away.length,
      faultKind: "client cut off while its events were trimmed",
      lost: totals.lost + totals.seqGaps,
      duplicated: totals.duplicated,
      reordered: totals.reordered,
      stuckRuns: 0,
      resyncs: totals.resyncs,
      recoveryMs,
      observed: `the stream kept the ${RETAINED} newest events of each tenant`,
    });
    expect(publisher.failures).toEqual([]);
    expect(totals.stateDiffs).toEqual([]);
    // Every client that was away got a resync each round; the ones that stayed online never did.
    for (const recorder of away) expect(recorder.tally.resyncs, recorder.label).toBe(ROUNDS);
    for (const recorder of online) expect(recorder.tally.resyncs, recorder.label).toBe(0);
    expectNone(totals, ["unverifiable", "lost", "extra", "mismatched", "seqGaps", "duplicated", "reordered", "errors"]);
  });
});
