import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { TenantEventStream, type StreamEntry } from "../../server/events/event-stream";
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

/**
 * Scenario 2 of issue #4: events published while a resuming client's catch-up read is in
 * progress. The server's replay reads are slowed (a stream whose reads pause, in place of
 * the real one), and every pause waits until new events went out, so each resume hands
 * over from replay to live with events landing in between: none may be missed or repeated.
 */

if (LONG) vi.setConfig({ testTimeout: 600_000 });
const ROUNDS = LONG ? 40 : 4;
const CLIENTS = LONG ? 24 : 8;
const RATE = LONG ? 400 : 200;
const log = new ChaosLog("catch-up-race");

/** The real stream, with a pause before or after each replay read, during which the test publishes. */
class SlowReplayStream extends TenantEventStream {
  /** Replay reads that saw events published while they were paused. */
  racedReads = 0;
  pauseMs = 150;
  private reads = 0;

  constructor(
    redis: ConstructorParameters<typeof TenantEventStream>[0],
    keys: ConstructorParameters<typeof TenantEventStream>[1],
    private readonly published: () => number,
  ) {
    super(redis, keys, { maxAgeMs: 86_400_000, minEvents: 10_000, maxEvents: 1_000_000 });
  }

  override async readAfter(tenantId: string, afterId: string, count: number): Promise<StreamEntry[]> {
    // Alternate: pause before the read (events land between the live registration and the
    // read) and after it (events land between the read and going live).
    const before = this.reads++ % 2 === 0;
    const at = this.published();
    if (before) await sleep(this.pauseMs);
    const page = await super.readAfter(tenantId, afterId, count);
    if (!before) await sleep(this.pauseMs);
    if (this.published() > at) this.racedReads += 1;
    return page;
  }
}

describe("chaos: events published during a resuming client's catch-up read", () => {
  let server: InProcessPulse;
  let tenants: WatchedTenant[];

  beforeAll(async () => {
    server = await startInProcessPulse();
    tenants = [await server.tenant(), await server.tenant()];
  });

  afterAll(async () => {
    await log.save();
    await server?.close();
  });

  it("hands over from replay to live with no gap and no duplicate (scenario 2)", () => race("ws"));

  it("does the same for clients on server-sent events (httpSubscriptionLink), resuming by Last-Event-ID", () =>
    race("sse"));

  async function race(transport: "ws" | "sse"): Promise<void> {
    const { app } = server;
    const services = app.pulse.services;
    const publisher = new FeedPublisher({
      bus: services.bus,
      runs: services.runs,
      tenants: tenants.map((t) => t.tenantId),
      rate: RATE,
      runsPerTenant: 3,
    });
    const redis = connectRedis(app.redis, `${app.prefix}:slow-replay`);
    const slow = new SlowReplayStream(redis, services.stream.keys, () => publisher.published);
    const original = services.stream;
    // Subscriptions read replays through `ctx.services.stream`; the reader and the bus keep the real one.
    services.stream = slow;
    const recorders: RecorderClient[] = [];
    try {
      publisher.start();
      await publisher.waitFor(100);
      for (let i = 0; i < CLIENTS; i++) {
        const tenant = tenants[i % tenants.length]!;
        recorders.push(
          new RecorderClient({
            wsUrl: server.wsUrl,
            transport,
            token: tenant.token,
            feed: i % 3 === 2 ? { kind: "agent", agentRole: "chaos-feed-b" } : { kind: "agent" },
            label: `c${i}`,
          }).start(),
        );
      }
      await until(() => recorders.every((r) => r.tally.items > 0), "every client's snapshot", 20_000);
      for (let round = 0; round < ROUNDS; round++) {
        await sleep(300);
        // Every connection drops; each client resumes with its last id, and its replay is slowed.
        server.balancer.dropAll();
        // A client coming back from elsewhere with an id it kept (a reloaded page).
        const returning = recorders[round % recorders.length]!;
        if (returning.lastId) recorders.push(RecorderClient.continuing(returning, `back${round}`).start());
        await until(
          () => recorders.every((r) => r.lastOpenAt > r.lastCloseAt && r.lastItemAt > r.lastOpenAt),
          "every client to resume",
          20_000,
        );
        trace("round", round, "raced reads", slow.racedReads, "published", publisher.published);
      }
    } finally {
      await publisher.stop();
    }
    await publisher.finishRuns();
    const grouped = byTenant(tenants, recorders);
    await waitUntilCaughtUp(redis, app.prefix, grouped, 120_000);
    services.stream = original;
    const totals = await auditRecorders({ redis, prefix: app.prefix, source: services }, grouped);
    trace("audited", totals);
    await Promise.all(recorders.map((r) => r.close()));
    redis.disconnect();

    log.record({
      number: 2,
      scenario: `Events published while a resuming client's catch-up read is in progress${transport === "sse" ? " (server-sent events)" : ""}`,
      events: publisher.published,
      clients: recorders.length,
      faults: slow.racedReads,
      faultKind: "catch-up read paused while events were published",
      lost: totals.lost + totals.seqGaps,
      duplicated: totals.duplicated,
      reordered: totals.reordered,
      stuckRuns: 0,
      resyncs: totals.resyncs,
      recoveryMs: null,
      observed: `${totals.deliveries.toLocaleString("en-US")} deliveries; ${ROUNDS} rounds of every client resuming`,
    });
    expect(publisher.failures).toEqual([]);
    expect(slow.racedReads).toBeGreaterThanOrEqual(ROUNDS);
    expect(totals.stateDiffs).toEqual([]);
    expectNone(totals, ["lost", "extra", "mismatched", "seqGaps", "duplicated", "reordered", "errors", "resyncs"]);
    // Every first client lost its stream each round and came back by itself (EventSource, Last-Event-ID).
    if (transport === "sse")
      expect(
        recorders
          .slice(0, CLIENTS)
          .filter((r) => r.tally.closes < ROUNDS)
          .map((r) => r.label),
      ).toEqual([]);
  }
});
