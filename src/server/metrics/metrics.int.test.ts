import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { createPulseServer } from "../http-server";
import { createLogger } from "../logger";
import {
  AgentRemote,
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  useTickerPulse,
  type Collector,
  type TestClient,
  type TestPulse,
  untilHealthy,
} from "../../test/harness";
import { rawSocket } from "../../test/security/security-kit";
import { startMetricsServer } from "./metrics-server";

/**
 * `/metrics` of a started Pulse, scraped over HTTP while a real wsLink client subscribes,
 * resumes and leaves: the gauges follow connections and subscriptions, and the counters
 * grow by exactly what the client saw.
 */

const ticker = new AgentRemote("metered");
/** Retention keeps the newest 3 entries when a test trims; nothing trims by itself here. */
const RETAINED = 3;

let app: TestPulse;
/** Clients and subscriptions a test opens, closed after it. */
const open = useTickerPulse(
  ticker,
  { agents: [ticker.definition], retention: { minEvents: RETAINED, maxEvents: 1_000, maxAgeMs: 1 } },
  (started) => (app = started),
);

/** One scrape as `name{labels}` → value (label order as prom-client writes it). */
type Scrape = Map<string, number>;

async function scrape(baseUrl = app.baseUrl, headers: Record<string, string> = {}): Promise<Scrape> {
  const res = await fetch(`${baseUrl}/metrics`, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return parse(await res.text());
}

function parse(text: string): Scrape {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

const value = (s: Scrape, key: string) => s.get(key) ?? 0;
/** The sum of every series of a metric (all label values). */
const total = (s: Scrape, name: string) =>
  [...s].filter(([key]) => key === name || key.startsWith(`${name}{`)).reduce((sum, [, v]) => sum + v, 0);
const grew = (after: Scrape, before: Scrape, key: string) => value(after, key) - value(before, key);

function client(token: string): TestClient {
  const c = connectClient(app, token);
  open.clients.push(c);
  return c;
}

function watch(c: TestClient, input: { lastEventId?: string } = {}): Collector {
  const collector = collect((handlers) => c.trpc.agent.onStatus.subscribe(input, handlers));
  open.collectors.push(collector);
  return collector;
}

const completed = (c: Collector) => c.items.some((i) => i.data.type === "agent:completed");

describe("/metrics", () => {
  it("counts the connection, its subscription, published and delivered events, and returns the gauges to 0 when the client leaves", async () => {
    const tenant = await createQuietTenant(app);
    const before = await scrape();
    expect(value(before, "pulse_ws_connections")).toBe(0);
    expect(value(before, 'pulse_subscriptions{transport="ws"}')).toBe(0);
    // Process metrics come along (heap, event loop).
    expect(before.has("nodejs_heap_size_used_bytes")).toBe(true);

    const c = client(tenant.token);
    const feed = watch(c);
    await eventually(
      () => feed.items.length,
      (n) => n === 1,
      "the snapshot",
    );
    const connected = await eventually(
      scrape,
      (s) => value(s, "pulse_ws_connections") === 1 && value(s, 'pulse_subscriptions{transport="ws"}') === 1,
      "one connection and one subscription",
    );
    expect(value(connected, "pulse_stream_reader_tenants")).toBe(1);
    expect(grew(connected, before, "pulse_snapshots_total")).toBe(1);

    await c.trpc.agent.run.mutate({ agentRole: ticker.role });
    ticker.tick(5);
    ticker.finish();
    await eventually(() => completed(feed), Boolean, "the run's completion");
    const delivered = feed.events().length;
    expect(delivered).toBeGreaterThanOrEqual(8); // queued, active, 5 ticks, log, completed

    const after = await scrape();
    // One subscriber of the only tenant with events: every published event was delivered once.
    expect(total(after, "pulse_events_published_total") - total(before, "pulse_events_published_total")).toBe(
      delivered,
    );
    expect(grew(after, before, 'pulse_events_published_total{type="agent:progress"}')).toBe(5);
    expect(grew(after, before, 'pulse_events_delivered_total{transport="ws"}')).toBe(delivered);
    // The reader fanned each entry out once, observing its lag once.
    expect(grew(after, before, "pulse_stream_reader_lag_seconds_count")).toBe(delivered);
    expect(value(after, "pulse_stream_reader_errors_total")).toBe(0);

    await c.close();
    await eventually(
      scrape,
      (s) =>
        value(s, "pulse_ws_connections") === 0 &&
        value(s, 'pulse_subscriptions{transport="ws"}') === 0 &&
        value(s, "pulse_stream_reader_tenants") === 0,
      "the gauges back at 0",
    );
  });

  it("counts a resume as a replay of the events it missed, a trimmed resume as a resync, and polled pages as poll deliveries", async () => {
    const tenant = await createQuietTenant(app);
    const c = client(tenant.token);
    const first = watch(c);
    await eventually(
      () => first.items.length,
      (n) => n === 1,
      "the snapshot",
    );
    await c.trpc.agent.run.mutate({ agentRole: ticker.role });
    ticker.tick(6);
    await eventually(
      () => first.items.some((i) => i.data.type === "agent:progress" && i.data.message === "tick 6"),
      Boolean,
      "tick 6",
    );
    const events = first.events();
    first.unsubscribe();

    // Resume after the second event: everything after it is replayed.
    const before = await scrape();
    const resumed = watch(c, { lastEventId: events[1]!.id });
    const missed = events.length - 2;
    await eventually(
      () => resumed.items.length,
      (n) => n >= missed,
      "the replay",
    );
    const replayed = await scrape();
    expect(grew(replayed, before, "pulse_replays_total")).toBe(1);
    expect(grew(replayed, before, "pulse_replayed_events_total")).toBe(missed);
    expect(grew(replayed, before, 'pulse_events_delivered_total{transport="ws"}')).toBe(missed);
    expect(grew(replayed, before, 'pulse_resyncs_total{reason="trimmed"}')).toBe(0);
    resumed.unsubscribe();

    // Trim to the newest three entries: a resume from the first event now gets a resync.
    expect(await app.pulse.services.stream.trim(tenant.tenantId)).toBeGreaterThan(0);
    const stale = watch(c, { lastEventId: events[0]!.id });
    await eventually(
      () => stale.items[0]?.data.type,
      (t) => t === "resync",
      "the resync",
    );
    const resynced = await scrape();
    expect(grew(resynced, replayed, 'pulse_resyncs_total{reason="trimmed"}')).toBe(1);
    expect(grew(resynced, replayed, "pulse_replays_total")).toBe(0);

    // Polling: a page after the newest kept event's predecessor, and a fresh poll's snapshot.
    const kept = await app.pulse.services.stream.readAfter(tenant.tenantId, events[0]!.id, 100);
    const page = await c.trpc.agent.events.query({ cursor: kept[0]!.id });
    expect(page.items.length).toBe(kept.length - 1);
    await c.trpc.agent.events.query({});
    const polled = await scrape();
    expect(grew(polled, resynced, 'pulse_events_delivered_total{transport="poll"}')).toBe(page.items.length);
    expect(grew(polled, resynced, "pulse_snapshots_total")).toBe(1);
    // A cursor of the trimmed past polls a resync too.
    await c.trpc.agent.events.query({ cursor: events[0]!.id });
    expect(grew(await scrape(), polled, 'pulse_resyncs_total{reason="trimmed"}')).toBe(1);
  });

  it("counts upgrades refused for their origin", async () => {
    const before = await scrape();
    const { default: WebSocket } = await import("ws");
    const socket = new WebSocket(app.wsUrl, { origin: "https://evil.example" });
    const status = await new Promise<number>((resolve) => {
      socket.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      socket.once("open", () => resolve(101));
      socket.once("error", () => {});
    });
    socket.terminate();
    expect(status).toBe(403);
    expect(grew(await scrape(), before, 'pulse_ws_refused_total{reason="origin"}')).toBe(1);
  });
});

describe("a reader that stops reading", () => {
  it("is counted when the send-buffer cap terminates its socket", async () => {
    // A second server on the same Pulse (same metrics), with a small cap on unsent output.
    const capped = createPulseServer({
      pulse: app.pulse,
      logger: createLogger("silent"),
      secureCookies: false,
      security: { ws: { maxBufferedBytes: 64 * 1024 } },
    });
    await new Promise<void>((resolve) => capped.server.listen(0, "127.0.0.1", resolve));
    const port = (capped.server.address() as AddressInfo).port;
    try {
      const tenant = await createQuietTenant(app);
      const c = client(tenant.token);
      const { runId } = await c.trpc.agent.run.mutate({ agentRole: ticker.role });
      ticker.tick(1);
      const run = await eventually(
        () => app.pulse.services.db.agentRun.findUnique({ where: { id: runId } }),
        (r) => r?.status === "active",
        "the run active",
      );
      const stalled = rawSocket({ ...app, wsUrl: `ws://127.0.0.1:${port}/api/trpc` });
      await stalled.opened;
      stalled.authenticate(tenant.token);
      // Ten subscriptions to the same run: each event is sent ten times, so the buffers fill ten times sooner.
      for (let id = 1; id <= 10; id++) stalled.request(id, "subscription", "agent.onStatus", { runId });
      await stalled.waitFor(
        (f) => f.json?.id === 10 && f.json.result?.type === "data",
        "the stalled client's snapshots",
      );
      const before = await scrape();
      // Its TCP socket stops reading: the kernel's buffers fill, then the server's.
      (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const base = {
        tenantId: tenant.tenantId,
        runId,
        jobId: run!.jobId,
        queue: run!.queue,
        agentRole: ticker.role,
        attempt: run!.attempt,
      };
      const chunk = "o".repeat(16_000);
      for (let published = 0; capped.connections.size > 0 && published < 2_000; published++) {
        await app.pulse.services.bus.publish({ ...base, type: "agent:output", chunk });
      }
      expect(capped.connections.size).toBe(0);
      const after = await eventually(
        scrape,
        (s) => grew(s, before, "pulse_ws_send_buffer_closes_total") === 1,
        "the close counted",
      );
      expect(grew(after, before, "pulse_ws_send_buffer_closes_total")).toBe(1);
      stalled.close();
    } finally {
      await capped.close();
    }
  });
});

describe("METRICS_TOKEN and the worker's metrics server", () => {
  const TOKEN = "metrics-token-0123456789abcdef";

  it("answers 401 without the bearer token or with a wrong one, and 200 with the right one", async () => {
    const guarded = createPulseServer({
      pulse: app.pulse,
      logger: createLogger("silent"),
      secureCookies: false,
      metrics: { token: TOKEN },
    });
    await new Promise<void>((resolve) => guarded.server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(guarded.server.address() as AddressInfo).port}/metrics`;
    try {
      const none = await fetch(url);
      expect(none.status).toBe(401);
      expect(none.headers.get("www-authenticate")).toContain("Bearer");
      expect((await fetch(url, { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: "Bearer short" } })).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: TOKEN } })).status).toBe(401);
      const ok = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain("# TYPE pulse_ws_connections gauge");
      expect((await fetch(url, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(405);
    } finally {
      await guarded.close();
    }
  });

  it("serves nothing at /metrics on the public port without a token, unless METRICS_PUBLIC opens it", async () => {
    const closed = createPulseServer({ pulse: app.pulse, logger: createLogger("silent"), secureCookies: false });
    const open = createPulseServer({
      pulse: app.pulse,
      logger: createLogger("silent"),
      secureCookies: false,
      metrics: { public: true },
    });
    const listening = (s: typeof closed) =>
      new Promise<string>((resolve) =>
        s.server.listen(0, "127.0.0.1", () =>
          resolve(`http://127.0.0.1:${(s.server.address() as AddressInfo).port}/metrics`),
        ),
      );
    try {
      const closedAnswer = await fetch(await listening(closed));
      expect(closedAnswer.status).toBe(404);
      expect(await closedAnswer.text()).not.toContain("pulse_ws_connections");
      const openAnswer = await fetch(await listening(open));
      expect(openAnswer.status).toBe(200);
      expect(await openAnswer.text()).toContain("# TYPE pulse_ws_connections gauge");
    } finally {
      await closed.close();
      await open.close();
    }
  });

  it("serves nothing at /metrics when disabled", async () => {
    const off = createPulseServer({
      pulse: app.pulse,
      logger: createLogger("silent"),
      secureCookies: false,
      metrics: { enabled: false },
    });
    await new Promise<void>((resolve) => off.server.listen(0, "127.0.0.1", resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(off.server.address() as AddressInfo).port}/metrics`);
      expect(res.status).toBe(404);
    } finally {
      await off.close();
    }
  });

  it("a worker process's small server answers /metrics (with its token) and /healthz, and closes", async () => {
    const server = await startMetricsServer({
      metrics: app.pulse.services.metrics,
      port: 0,
      host: "127.0.0.1",
      enabled: true,
      token: TOKEN,
      logger: createLogger("silent"),
      health: app.pulse.health,
    });
    const base = `http://127.0.0.1:${server.port}`;
    try {
      expect((await fetch(`${base}/metrics`)).status).toBe(401);
      const scraped = await scrape(base, { authorization: `Bearer ${TOKEN}` });
      expect(scraped.has('pulse_events_published_total{type="agent:queued"}')).toBe(true);
      // The status for anyone; its reasons (none now) with the token only.
      expect((await untilHealthy(base)).body).toEqual({ status: "ok" });
      const withToken = await fetch(`${base}/healthz`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(await withToken.json()).toEqual({ status: "ok", reasons: [] });
      expect((await fetch(`${base}/api/trpc`)).status).toBe(404);
    } finally {
      await server.close();
    }
    expect(server.server.listening).toBe(false);
  });
});
