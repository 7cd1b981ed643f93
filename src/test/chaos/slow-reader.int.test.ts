import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { RunService } from "../../server/agents/run-service";
import { connectRedis } from "../../server/redis";
import { heapUsedAfterGc } from "../security/security-kit";
import {
  auditRecorders,
  byTenant,
  expectNone,
  type InProcessPulse,
  startInProcessPulse,
  trace,
  until,
  waitUntilCaughtUp,
  type WatchedTenant,
} from "./chaos-kit";
import { ChaosLog, LONG } from "./chaos-log";
import { FEED_ROLES } from "./feed-publisher";
import { RecorderClient } from "./recorder-client";
import { TcpBalancer } from "./tcp-balancer";

/**
 * Scenario 7 of issue #4: a client that stops reading. Its route stops taking bytes from
 * the server, so its socket's send buffer grows with every event; past the cap
 * (WS_MAX_BUFFERED_BYTES) the server drops that socket and nothing else. The other clients
 * of the same tenant receive everything, and the server's heap stays flat however much more
 * is published while the slow socket would still be piling it up.
 */

if (LONG) vi.setConfig({ testTimeout: 600_000 });
const CAP = 256 * 1024;
const SLOW_CLIENTS = LONG ? 4 : 2;
const OTHERS = LONG ? 12 : 4;
/** Published after the slow sockets are gone: what they would have held without the cap. */
const AFTER_BYTES = LONG ? 64 * 1024 * 1024 : 24 * 1024 * 1024;
const MESSAGE = "x".repeat(480);
const log = new ChaosLog("slow-reader");

describe("chaos: a client that stops reading", () => {
  let server: InProcessPulse;
  let tenant: WatchedTenant;
  let slowRoute: TcpBalancer;

  beforeAll(async () => {
    // The stream keeps everything published here, so the audit can compare all of it.
    server = await startInProcessPulse({
      security: { ws: { maxBufferedBytes: CAP } },
      retention: { maxEvents: 10_000_000 },
    });
    tenant = await server.tenant();
    slowRoute = await new TcpBalancer({ backends: [Number(new URL(server.app.baseUrl).port)] }).start();
  });

  afterAll(async () => {
    await log.save();
    await slowRoute?.close();
    await server?.close();
  });

  it("drops only the stalled socket, at its cap, while the others get everything and memory stays flat (scenario 7)", async () => {
    const { app } = server;
    const services = app.pulse.services;
    const redis = connectRedis(app.redis, `${app.prefix}:audit`);
    const others = Array.from({ length: OTHERS }, (_, i) =>
      new RecorderClient({
        wsUrl: server.wsUrl,
        token: tenant.token,
        feed: { kind: "agent" },
        label: `reader${i}`,
      }).start(),
    );
    const slow = Array.from({ length: SLOW_CLIENTS }, (_, i) =>
      new RecorderClient({
        wsUrl: `ws://127.0.0.1:${slowRoute.port}/api/trpc`,
        token: tenant.token,
        feed: { kind: "agent" },
        label: `stalled${i}`,
      }).start(),
    );
    await until(() => [...others, ...slow].every((r) => r.tally.items > 0), "every client's snapshot", 20_000);
    const run = await startRun(services.runs, services.bus, tenant.tenantId);
    const heapBefore = heapUsedAfterGc();

    // The slow clients stop reading; progress (large messages) goes out until the server drops them.
    slowRoute.stall();
    slowRoute.refuseNew();
    const stalledAt = Date.now();
    let published = 0;
    const publishBatch = async (count: number) => {
      await Promise.all(
        Array.from({ length: count }, (_, i) =>
          services.bus.publish({
            ...run,
            type: "agent:progress",
            progress: (published + i) % 100,
            phase: "running",
            message: `${published + i} ${MESSAGE}`,
          }),
        ),
      );
      published += count;
    };
    // A stalled route cannot see the server hang up (it reads nothing): the server's own count tells.
    const open = () => app.http.connections.size;
    expect(open()).toBe(OTHERS + SLOW_CLIENTS);
    const deadline = Date.now() + 60_000;
    while (open() > OTHERS && Date.now() < deadline && published < 100_000) {
      await publishBatch(50);
      if (published % 5_000 === 0)
        trace(
          "published",
          published,
          "slow items",
          slow.map((r) => r.tally.items),
          "open",
          open(),
          process.memoryUsage().heapUsed >> 20,
        );
    }
    const droppedAfterMs = Date.now() - stalledAt;
    const bytesToDrop = published * (MESSAGE.length + 200);
    trace("slow sockets dropped after", published, "events", droppedAfterMs, "ms");
    expect(open()).toBe(OTHERS);
    slowRoute.dropAll();
    const afterCount = Math.ceil(AFTER_BYTES / (MESSAGE.length + 200));
    for (let sent = 0; sent < afterCount; sent += 200) await publishBatch(200);
    await services.bus.publish({ ...run, type: "agent:completed", completedAt: new Date().toISOString() });
    published += 1;
    const grouped = byTenant([tenant], others);
    await waitUntilCaughtUp(redis, app.prefix, grouped, 120_000);
    const heapAfter = heapUsedAfterGc();
    const totals = await auditRecorders({ redis, prefix: app.prefix, source: services }, grouped);
    const sendBufferCloses = await metric(app.baseUrl, "pulse_ws_send_buffer_closes_total");
    trace("audited", totals, { heapBefore, heapAfter, sendBufferCloses });
    await Promise.all([...others, ...slow].map((r) => r.close()));
    redis.disconnect();

    const growthMb = (heapAfter - heapBefore) / 1024 / 1024;
    log.record({
      number: 7,
      scenario: "A client stops reading: its socket is dropped at the send-buffer cap, others unaffected",
      events: published,
      clients: OTHERS + SLOW_CLIENTS,
      faults: SLOW_CLIENTS,
      faultKind: "client stops reading (TCP stalled)",
      lost: totals.lost + totals.seqGaps,
      duplicated: totals.duplicated,
      reordered: totals.reordered,
      stuckRuns: 0,
      resyncs: totals.resyncs,
      recoveryMs: droppedAfterMs,
      observed: `dropped after ~${(bytesToDrop / 1024 / 1024).toFixed(1)} MB (cap ${CAP / 1024} KiB plus kernel buffers); heap ${growthMb >= 0 ? "+" : ""}${growthMb.toFixed(1)} MB after ${(AFTER_BYTES / 1024 / 1024).toFixed(0)} MB more published`,
    });
    // Whatever the stalled sockets would have queued (each one everything published after it
    // stalled) is not held. The heap is this process's, recorders included, so the bound is
    // half of that backlog rather than zero.
    expect(growthMb).toBeLessThan((SLOW_CLIENTS * AFTER_BYTES) / 1024 / 1024 / 2);
    if (sendBufferCloses !== null) expect(sendBufferCloses).toBeGreaterThanOrEqual(SLOW_CLIENTS);
    // The readers never lost their connection and received every event.
    expect(others.map((r) => r.tally.closes)).toEqual(others.map(() => 0));
    expect(totals.stateDiffs).toEqual([]);
    expectNone(totals, ["lost", "extra", "seqGaps", "duplicated", "reordered", "errors"]);
  });
});

/** A run of the tenant made active, and the fields every event of it carries. */
async function startRun(runs: RunService, bus: InProcessPulse["app"]["pulse"]["services"]["bus"], tenantId: string) {
  const started = await runs.start(tenantId, FEED_ROLES[0]);
  const run = {
    tenantId,
    runId: started.id,
    jobId: started.jobId,
    queue: started.queue,
    agentRole: started.agentRole,
    attempt: 1,
  };
  await bus.publish({ ...run, type: "agent:active", startedAt: new Date().toISOString() });
  return run;
}

/** A counter from the server's /metrics, or null when the endpoint is not there. */
async function metric(baseUrl: string, name: string): Promise<number | null> {
  const res = await fetch(`${baseUrl}/metrics`).catch(() => null);
  if (!res?.ok) return null;
  const line = (await res.text()).split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(" ").at(-1)) : null;
}
