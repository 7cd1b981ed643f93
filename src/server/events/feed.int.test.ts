import type { Duplex } from "node:stream";
import { connectRedis } from "../redis";
import { describe, expect, it, vi } from "vitest";
import { runReplayFloor } from "../trpc/routers/agent";
import { ContextFeedQuery } from "../trpc/routers/context";
import { SubscriptionWire, type WireSocket } from "../ws/subscription-wire";
import type { StreamEntry } from "./event-stream";
import { REPLAY_PAGE, tenantFeed, type ReplayStream } from "./feed";
import { compareStreamIds, STREAM_ORIGIN } from "./schema";
import {
  AgentRemote,
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  isTick,
  useTickerPulse,
  type Collector,
  type TestClient,
  type TestPulse,
  type TrackedItem,
} from "../../test/harness";

/**
 * Guarantees 1-4 of DESIGN.md against a started server, real Redis, a real database and a
 * real wsLink: resuming with `lastEventId` (by hand and by wsLink's own reconnect), honest
 * resync, snapshot first, and the polling twin.
 */

const ticker = new AgentRemote("ticker");
/** Retention keeps only the newest 3 entries whenever a test trims; nothing trims by itself here. */
const RETAINED = 3;

let app: TestPulse;
/** Clients and subscriptions a test opens, closed after it. */
const open = useTickerPulse(
  ticker,
  { agents: [ticker.definition], retention: { minEvents: RETAINED, maxEvents: 1_000, maxAgeMs: 1 } },
  (started) => (app = started),
);
const { clients, collectors } = open;

function client(token: string, options?: Parameters<typeof connectClient>[2]): TestClient {
  const c = connectClient(app, token, options);
  clients.push(c);
  return c;
}

function watch(c: TestClient, input: { lastEventId?: string; runId?: string } = {}): Collector {
  const collector = collect((handlers) => c.trpc.agent.onStatus.subscribe(input, handlers));
  collectors.push(collector);
  return collector;
}

/** A fresh tenant's client, watching its feed from the snapshot on. */
async function watchingTenant() {
  const tenant = await createQuietTenant(app);
  const c = client(tenant.token);
  const watched = watch(c);
  await eventually(
    () => watched.items.length,
    (n) => n === 1,
    "the snapshot",
  );
  return { tenant, c, watched };
}

/** `watchingTenant`, and a ticker run it has seen tick `ticks` times. */
async function watchedTicks(ticks: number) {
  const watching = await watchingTenant();
  const { runId } = await watching.c.trpc.agent.run.mutate({ agentRole: ticker.role });
  ticker.tick(ticks);
  await eventually(() => has(watching.watched, (i) => isTick(i, ticks)), Boolean, `tick ${ticks}`);
  return { ...watching, runId };
}

const ids = (items: TrackedItem[]) => items.map((i) => i.id);
const has = (c: Collector, predicate: (i: TrackedItem) => boolean) => c.items.some(predicate);
const completed = (i: TrackedItem) => i.data.type === "agent:completed";

function expectStrictlyIncreasing(items: TrackedItem[]): void {
  for (let i = 1; i < items.length; i++) {
    expect(compareStreamIds(items[i]!.id, items[i - 1]!.id), `id ${items[i]!.id} after ${items[i - 1]!.id}`).toBe(1);
  }
}

/** Every item `agent.events` returns after `cursor`, page by page, until it has nothing more. */
async function pageAll(
  c: TestClient,
  cursor: string,
  input: { runId?: string } = {},
  limit = 4,
): Promise<TrackedItem[]> {
  const all: TrackedItem[] = [];
  for (let pages = 0; pages < 1_000; pages++) {
    const page = await c.trpc.agent.events.query({ ...input, cursor, limit });
    all.push(...page.items.map((i) => ({ id: i.id, data: i.item as TrackedItem["data"] })));
    if (page.cursor === cursor) return all;
    cursor = page.cursor;
  }
  throw new Error("agent.events never stopped paging");
}

/** Raw ids of the tenant's stream after `after`, straight from Redis: the reference list. */
async function streamIdsAfter(tenantId: string, after: string): Promise<string[]> {
  return (await app.pulse.services.stream.readAfter(tenantId, after, 10_000)).map((e) => e.id);
}

describe("agent.onStatus across reconnects (guarantee 1)", () => {
  it("a client that reconnects with its lastEventId gets every event it missed exactly once, in order", async () => {
    const tenant = await createQuietTenant(app);
    const steady = watch(client(tenant.token));
    const first = client(tenant.token);
    const before = watch(first);
    await eventually(
      () => steady.items.length + before.items.length,
      (n) => n === 2,
      "both snapshots",
    );

    const { runId } = await first.trpc.agent.run.mutate({ agentRole: ticker.role });
    ticker.tick(5);
    await eventually(() => has(before, (i) => isTick(i, 5)), Boolean, "tick 5 on the first connection");
    const lastEventId = before.items.at(-1)!.id;
    await first.close();

    // Published while the client is away: only the replay can deliver these.
    ticker.tick(10);
    await eventually(() => has(steady, (i) => isTick(i, 15)), Boolean, "tick 15 on the steady client");
    const missed = steady.items.filter((i) => compareStreamIds(i.id, lastEventId) > 0).length;
    expect(missed).toBeGreaterThanOrEqual(10);

    const after = watch(client(tenant.token), { lastEventId });
    await eventually(() => has(after, (i) => isTick(i, 15)), Boolean, "the replay up to tick 15");
    // And live delivery continues on the resumed subscription.
    ticker.tick(5);
    ticker.finish();
    await eventually(() => has(after, completed) && has(steady, completed), Boolean, "completion on both");
    // Both live subscriptions, the fresh one and the resumed one, were written to straight from the reader.
    expect(app.http.connections.wiredSubscriptions).toBe(2);

    expect(after.errors).toEqual([]);
    expect(after.items[0]!.data.type).toBe("agent:progress");
    expect(after.items.every((i) => compareStreamIds(i.id, lastEventId) > 0)).toBe(true);
    const resumed = [...before.events(), ...after.items];
    expectStrictlyIncreasing(resumed);
    expect(resumed).toEqual(steady.events());
    // The steady client itself saw the whole stream after its snapshot: nothing was skipped.
    expect(ids(steady.events())).toEqual(await streamIdsAfter(tenant.tenantId, steady.items[0]!.id));
    expect(resumed.filter((i) => i.data.type === "agent:progress").map((i) => i.data.message)).toEqual(
      Array.from({ length: 20 }, (_, k) => `tick ${k + 1}`),
    );
    expect((await first.trpc.agent.get.query({ runId })).status).toBe("completed");
  });

  it.each([
    // The connection is gone at once; ticks published meanwhile can only arrive by replay.
    {
      how: "the server destroys the socket",
      offline: true,
      drop: (sockets: Duplex[]) => sockets.forEach((s) => s.destroy()),
    },
    // wsLink waits its retry delay on the old socket, then swaps sockets and resubscribes.
    { how: "the server asks clients to reconnect", offline: false, drop: () => app.http.broadcastReconnect() },
  ])(
    "after $how, wsLink's reconnect resends lastEventId: no gap, no duplicate, no second snapshot",
    async ({ offline, drop }) => {
      const sockets: Duplex[] = [];
      const track = (_req: unknown, socket: Duplex) => sockets.push(socket);
      app.http.server.on("upgrade", track);
      try {
        const tenant = await createQuietTenant(app);
        // A retry delay longer than the ticks below take, so they land while the socket is down.
        const c = client(tenant.token, { retryDelayMs: () => 400 });
        const live = watch(c);
        await eventually(
          () => live.items.length,
          (n) => n === 1,
          "the snapshot",
        );
        expect(sockets).toHaveLength(1);

        await c.trpc.agent.run.mutate({ agentRole: ticker.role });
        ticker.tick(5);
        await eventually(() => has(live, (i) => isTick(i, 5)), Boolean, "tick 5 before the drop");
        const beforeDrop = live.items.length;
        const lastBeforeDrop = live.items.at(-1)!.id;

        drop(sockets);
        ticker.tick(10);
        // All ten are in the stream before the client is back: they can only arrive by replay.
        await eventually(
          async () => (await app.pulse.services.stream.readAfter(tenant.tenantId, lastBeforeDrop, 100)).length,
          (n) => n >= 10,
          "ten ticks in the stream",
        );
        if (offline) {
          expect(c.ws.connection?.state).not.toBe("open");
          expect(live.items).toHaveLength(beforeDrop);
        }

        // Keep publishing until the new socket is up and a little after, so some events fall
        // between the old subscription's end and the new one's start, whichever way it went.
        let granted = 15;
        const reconnected = eventually(
          () => sockets.length,
          (n) => n >= 2,
          "a new socket",
          10_000,
        );
        const pace = setInterval(() => {
          ticker.tick(1);
          granted += 1;
        }, 15);
        try {
          await reconnected;
          await eventually(
            () => c.ws.connection?.state,
            (s) => s === "open",
            "the new socket open",
            10_000,
          );
          await new Promise((r) => setTimeout(r, 150));
        } finally {
          clearInterval(pace);
        }
        ticker.finish();
        await eventually(() => has(live, completed), Boolean, "completion after the reconnect", 10_000);
        // At least one new socket. wsLink may open one more: on a reconnect it closes the old
        // socket without waiting, and when the server's close reply comes after the new socket
        // opened (a busy machine), the old socket's close listener starts another reconnect.
        // Each resubscribes with its lastEventId, which is what the rest of this test checks.
        expect(sockets.length).toBeGreaterThanOrEqual(2);

        expect(live.errors).toEqual([]);
        expect(live.items.filter((i) => i.data.type === "snapshot" || i.data.type === "resync")).toHaveLength(1);
        expectStrictlyIncreasing(live.items);
        expect(ids(live.events())).toEqual(await streamIdsAfter(tenant.tenantId, live.items[0]!.id));
        expect(live.events()).toEqual(await pageAll(c, live.items[0]!.id));
        expect(
          live
            .events()
            .filter((i) => i.data.type === "agent:progress")
            .map((i) => i.data.message),
        ).toEqual(Array.from({ length: granted }, (_, k) => `tick ${k + 1}`));
      } finally {
        app.http.server.off("upgrade", track);
      }
    },
  );

  it("a fresh subscription opened mid-run starts with a snapshot of the run as it is (guarantee 3)", async () => {
    const tenant = await createQuietTenant(app);
    const c = client(tenant.token);
    const { runId } = await c.trpc.agent.run.mutate({ agentRole: ticker.role });
    ticker.tick(7);
    await eventually(
      () => c.trpc.agent.get.query({ runId }),
      (r) => r.progress === 7,
      "progress 7 in the database",
    );

    const late = watch(c);
    const byRun = watch(c, { runId });
    await eventually(
      () => late.items.length + byRun.items.length,
      (n) => n === 2,
      "both snapshots",
    );
    for (const sub of [late, byRun]) {
      const first = sub.items[0]!;
      expect(first.data.type).toBe("snapshot");
      const run = first.data.snapshot.runs.find((r: { id: string }) => r.id === runId);
      expect(run).toMatchObject({ status: "active", progress: 7, message: "tick 7", attempt: 1 });
      expect(first.id).toBe(await app.pulse.services.stream.lastId(tenant.tenantId));
    }
    expect(byRun.items[0]!.data.snapshot.runs[0].output).toBe("");

    ticker.tick(1);
    ticker.finish();
    await eventually(() => has(late, completed) && has(byRun, completed), Boolean, "completion");
    // Counted events after the snapshot carry a seq above the snapshot's, so none is already
    // in it; progress is uncounted (seq 0) and latest-wins.
    const snapshotSeq = late.items[0]!.data.snapshot.runs[0].seq;
    const counted = late.events().filter((i) => i.data.type !== "agent:progress");
    expect(counted.length).toBeGreaterThan(0);
    expect(counted.every((i) => i.data.seq > snapshotSeq)).toBe(true);
    expect(
      late
        .events()
        .filter((i) => i.data.type === "agent:progress")
        .every((i) => i.data.seq === 0),
    ).toBe(true);
    expect(late.events().map((i) => i.data.type)).toEqual(["agent:progress", "agent:log", "agent:completed"]);
    expect(byRun.events()).toEqual(late.events());
  });
});

/** What a subscription's wire wrote to its socket: each frame, and how many network writes (corked batches) carried them. */
class RecordingSocket implements WireSocket {
  readyState = 1;
  readonly frames: Buffer[] = [];
  batches = 0;
  send(data: string | Buffer): void {
    this.frames.push(Buffer.isBuffer(data) ? data : Buffer.from(data));
  }
  corked(write: () => void): void {
    this.batches += 1;
    write();
  }
  ids(): string[] {
    return this.frames.map((f) => (JSON.parse(f.toString()) as { result: { id: string } }).result.id);
  }
}

/** The tenant's stream as a feed reads it, keeping the pages it was given; the hooks run around each read. */
class ReadPages implements ReplayStream {
  readonly pages: StreamEntry[][] = [];
  beforeRead: (read: number) => Promise<void> | void = () => {};
  afterRead: (read: number) => Promise<void> | void = () => {};

  constructor(private readonly stream: ReplayStream) {}

  async readAfter(tenantId: string, afterId: string, count: number): Promise<StreamEntry[]> {
    await this.beforeRead(this.pages.length);
    const page = await this.stream.readAfter(tenantId, afterId, count);
    await this.afterRead(this.pages.length);
    this.pages.push(page);
    return page;
  }

  isBehindRetention(tenantId: string, cursor: string): Promise<boolean> {
    return this.stream.isBehindRetention(tenantId, cursor);
  }
}

describe("a replay over a WebSocket", () => {
  /** Appends `count` context events to the tenant's stream; their ids. */
  async function appendContextEvents(tenantId: string, count: number): Promise<string[]> {
    const appended: string[] = [];
    for (let version = 0; version < count; version++) {
      const event = { type: "context:status_changed", tenantId, status: "generating", version };
      const result = await app.pulse.services.stream.append(tenantId, JSON.stringify(event));
      if (!("id" in result)) throw new Error(`append refused: ${result.refused}`);
      appended.push(result.id);
    }
    return appended;
  }

  /** A context feed resuming after `cursor` on a wire of its own, reading through `pages`. */
  function wiredFeed(tenantId: string, cursor: string, pages: ReadPages) {
    const socket = new RecordingSocket();
    const wire = new SubscriptionWire(socket, 1, undefined);
    const { reader } = app.pulse.services;
    const query = new ContextFeedQuery(app.pulse.services, tenantId, { from: "after", id: cursor });
    const feed = tenantFeed({ reader, stream: pages }, query, undefined, wire);
    return { socket, wire, feed };
  }

  it("goes out through the subscription's wire a page per write, the entries as read, then live events follow on it", async () => {
    const { tenantId } = await createQuietTenant(app);
    const appended = await appendContextEvents(tenantId, REPLAY_PAGE + 100);
    const pages = new ReadPages(app.pulse.services.stream);
    const { socket, wire, feed } = wiredFeed(tenantId, appended[0]!, pages);

    // The feed's first item never comes: the replay and the live events all take the wire.
    const first = feed.next();
    await eventually(
      () => socket.frames.length,
      (n) => n === appended.length - 1,
      "the replay",
    );
    expect(socket.ids()).toEqual(appended.slice(1));
    expect(socket.batches).toBe(2);
    // The wire was given the page's own entries: frames for them are the ones already built.
    const other = new RecordingSocket();
    new SubscriptionWire(other, 1, undefined).send(pages.pages.flat());
    expect(other.frames).toHaveLength(socket.frames.length);
    other.frames.forEach((frame, i) => expect(frame).toBe(socket.frames[i]));

    const later = await appendContextEvents(tenantId, 3);
    await eventually(
      () => socket.frames.length,
      (n) => n === appended.length - 1 + later.length,
      "the live events",
    );
    expect(socket.ids()).toEqual([...appended.slice(1), ...later]);
    wire.stop();
    await expect(first).resolves.toEqual({ done: true, value: undefined });
  });

  it("events appended while the replay is read follow it once each, in stream order, those it queued in one write", async () => {
    const { tenantId } = await createQuietTenant(app);
    const appended = await appendContextEvents(tenantId, REPLAY_PAGE + 20);
    const pages = new ReadPages(app.pulse.services.stream);
    // Appended after the feed's live listener registered and before a page's read: in the pages
    // and heard live too, so sent once.
    const read: string[] = [];
    pages.beforeRead = async () => void read.push(...(await appendContextEvents(tenantId, 5)));
    // Appended after the last page was read and heard live before the replay ends: queued.
    const queued: string[] = [];
    const heard = new Set<string>();
    const probe = { receive: (entries: StreamEntry[]) => entries.forEach((e) => heard.add(e.id)), lost: () => {} };
    await app.pulse.services.reader.subscribe(tenantId, probe);
    pages.afterRead = async (page) => {
      if (page !== 1) return;
      queued.push(...(await appendContextEvents(tenantId, 5)));
      // The reader hands an entry to all the tenant's subscribers at once: the feed has these too.
      await eventually(() => queued.every((id) => heard.has(id)), Boolean, "the queued events heard live");
    };
    const { socket, wire, feed } = wiredFeed(tenantId, appended[0]!, pages);

    // What a WebSocket connection does with the items the feed yields (`RpcConnection.stream`).
    let yielded = 0;
    const drained = (async () => {
      for await (const item of feed) {
        yielded += 1;
        socket.send(JSON.stringify({ result: { id: item.id } }));
      }
    })();
    await eventually(
      () => pages.pages.length,
      (n) => n === 2,
      "both pages read",
    );
    const expected = [...appended.slice(1), ...read, ...queued];
    await eventually(
      () => socket.frames.length,
      (n) => n >= expected.length,
      "the replay and what was appended meanwhile",
    );
    // Two pages, then what was queued during them, each one write.
    expect(socket.batches).toBe(3);
    const late = await appendContextEvents(tenantId, 2);
    await eventually(
      () => socket.frames.length,
      (n) => n >= expected.length + late.length,
      "the live events",
    );
    expect(socket.ids()).toEqual([...expected, ...late]);
    expect(yielded).toBe(0);
    app.pulse.services.reader.unsubscribe(tenantId, probe);
    wire.stop();
    await drained;
  });

  it("a page retention trimmed after earlier pages were sent ends the replay with a resync", async () => {
    const { tenantId } = await createQuietTenant(app);
    const appended = await appendContextEvents(tenantId, REPLAY_PAGE + 10);
    const pages = new ReadPages(app.pulse.services.stream);
    pages.beforeRead = async (read) => {
      if (read === 1) await app.pulse.services.stream.trim(tenantId);
    };
    const { socket, wire, feed } = wiredFeed(tenantId, STREAM_ORIGIN, pages);

    const resync = await feed.next();
    expect(socket.ids()).toEqual(appended.slice(0, REPLAY_PAGE));
    expect(resync.value).toMatchObject({ id: appended.at(-1), item: { type: "resync" } });
    wire.stop();
    await expect(feed.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("stopped mid-replay, writes nothing more, reads no page after the one in flight, and the feed ends", async () => {
    const { tenantId } = await createQuietTenant(app);
    const appended = await appendContextEvents(tenantId, REPLAY_PAGE + 10);
    const pages = new ReadPages(app.pulse.services.stream);
    const { socket, wire, feed } = wiredFeed(tenantId, STREAM_ORIGIN, pages);
    pages.beforeRead = (read) => {
      if (read === 1) wire.stop();
    };

    await expect(feed.next()).resolves.toEqual({ done: true, value: undefined });
    expect(socket.ids()).toEqual(appended.slice(0, REPLAY_PAGE));
    expect(pages.pages).toHaveLength(2);
  });
});

describe("one run's feed", () => {
  it("replays from when the run was queued, not from the tenant's first event, and only the run's events", async () => {
    const { c } = await watchingTenant();
    const { runId: earlier } = await c.trpc.agent.run.mutate({ agentRole: ticker.role });
    ticker.tick(2);
    ticker.finish();
    await eventually(
      () => c.trpc.agent.get.query({ runId: earlier }),
      (r) => r.status === "completed",
      "the earlier run",
    );
    ticker.reset();
    const { runId } = await c.trpc.agent.run.mutate({ agentRole: ticker.role });
    ticker.tick(3);
    await eventually(
      () => c.trpc.agent.get.query({ runId }),
      (r) => r.progress === 3,
      "tick 3 of the run",
    );

    const reads = vi.spyOn(app.pulse.services.stream, "readAfter");
    try {
      const page = watch(c, { runId, lastEventId: STREAM_ORIGIN });
      await eventually(() => has(page, (i) => isTick(i, 3)), Boolean, "the run's replay");
      const { queuedAt } = await c.trpc.agent.get.query({ runId });
      expect(reads.mock.calls[0]?.[1]).toBe(runReplayFloor(new Date(queuedAt)));
      expect(page.events().map((i) => i.data.type)).toEqual([
        "agent:queued",
        "agent:active",
        "agent:progress",
        "agent:progress",
        "agent:progress",
      ]);
      expect(page.events().every((i) => i.data.runId === runId)).toBe(true);
    } finally {
      reads.mockRestore();
    }
  });
});

describe("resync (guarantee 2)", () => {
  it("a lastEventId older than the retained stream yields a resync with a fresh snapshot first, then live events", async () => {
    const { tenant, watched: original, runId } = await watchedTicks(6);
    const tickId = (n: number) => original.items.find((i) => isTick(i, n))!.id;

    // queued, active, tick 1-6: trimming keeps the newest three (ticks 4-6).
    const dropped = await app.pulse.services.stream.trim(tenant.tenantId);
    expect(dropped).toBe(5);
    expect(await streamIdsAfter(tenant.tenantId, "0-0")).toEqual([tickId(4), tickId(5), tickId(6)]);

    const stale = watch(client(tenant.token), { lastEventId: tickId(2) });
    await eventually(
      () => stale.items.length,
      (n) => n >= 1,
      "the first item after a stale id",
    );
    const resync = stale.items[0]!;
    expect(resync.data.type).toBe("resync");
    expect(resync.id).toBe(tickId(6));
    const run = resync.data.snapshot.runs.find((r: { id: string }) => r.id === runId);
    const lastCounted = original
      .events()
      .filter((i) => i.data.type !== "agent:progress")
      .at(-1)!;
    expect(run).toMatchObject({ status: "active", progress: 6, message: "tick 6", seq: lastCounted.data.seq });

    ticker.tick(2);
    ticker.finish();
    await eventually(() => has(stale, completed), Boolean, "live events after the resync");
    expect(stale.errors).toEqual([]);
    expect(stale.items.slice(1)).toEqual(original.events().filter((i) => compareStreamIds(i.id, resync.id) > 0));
    expect(stale.items.slice(1).map((i) => i.data.message ?? i.data.type)).toEqual([
      "tick 7",
      "tick 8",
      "finished",
      "agent:completed",
    ]);
  });

  it("a lastEventId exactly at the trimmed boundary still replays, without a resync", async () => {
    const { tenant, c, watched: original } = await watchingTenant();
    await c.trpc.agent.run.mutate({ agentRole: ticker.role });
    ticker.tick(6);
    ticker.finish();
    await eventually(() => has(original, completed), Boolean, "completion");
    await app.pulse.services.stream.trim(tenant.tenantId);
    // Kept: tick 6, the log, completed; the newest trimmed entry is tick 5.
    const boundary = original.items.find((i) => isTick(i, 5))!.id;
    expect(await app.pulse.services.stream.isBehindRetention(tenant.tenantId, boundary)).toBe(false);

    const resumed = watch(client(tenant.token), { lastEventId: boundary });
    await eventually(() => has(resumed, completed), Boolean, "the replay of the retained entries");
    expect(resumed.items).toEqual(original.events().filter((i) => compareStreamIds(i.id, boundary) > 0));
    expect(resumed.items).toHaveLength(RETAINED);
  });

  it("ids of a tail the stream lost (a failover to a replica that never received it) yield a resync once the next append finds the hole", async () => {
    const { tenant, c, watched } = await watchedTicks(4);
    const tickId = (n: number) => watched.items.find((i) => isTick(i, n))!.id;
    // The promoted replica never received ticks 3 and 4, which the master had acknowledged.
    const { keys } = app.pulse.services.stream;
    const redis = connectRedis(app.redis, `${app.prefix}:test`);
    await redis.xdel(keys.events(tenant.tenantId), tickId(3), tickId(4));
    await redis.quit();
    ticker.tick(1);
    // The subscriber that was sent them is told to resync (what it holds of them is not all in
    // the database), at tick 5, which its snapshot covers.
    const resync = await eventually(() => watched.items.find((i) => i.data.type === "resync"), Boolean, "the resync");
    for (const lost of [tickId(3), tickId(2)]) {
      const resumed = watch(c, { lastEventId: lost });
      await eventually(
        () => resumed.items.length + resumed.errors.length,
        (n) => n >= 1,
        `the answer for ${lost}`,
      );
      expect(resumed.errors).toEqual([]);
      expect(resumed.items[0]!.data.type).toBe("resync");
      resumed.unsubscribe();
    }
    // A client that received them and resumes from its own last id resyncs too, at tick 5 or later.
    const current = await c.trpc.agent.events.query({ cursor: tickId(4) });
    expect(current.items.map((i) => i.item.type)).toEqual(["resync"]);
    expect(compareStreamIds(current.cursor, resync!.id)).toBeGreaterThanOrEqual(0);
    ticker.finish();
  });

  it("a lastEventId the stream never issued is NOT_FOUND; one lost with the stream (a Redis restart) yields a resync", async () => {
    const tenant = await createQuietTenant(app);
    const c = client(tenant.token);
    const notFound = async (lastEventId: string) => {
      const sub = watch(c, { lastEventId });
      await eventually(
        () => sub.errors.length + sub.items.length,
        (n) => n >= 1,
        `the answer for ${lastEventId}`,
      );
      expect(sub.items).toEqual([]);
      expect((sub.errors[0] as { data?: { code?: string } }).data?.code).toBe("NOT_FOUND");
      expect((sub.errors[0] as Error).message).toBe("lastEventId: event not found");
    };
    // A tenant without events was never given an id.
    await notFound(`${Date.now() + 3_600_000}-0`);

    await c.trpc.agent.run.mutate({ agentRole: ticker.role });
    ticker.tick(1);
    ticker.finish();
    const live = watch(c);
    await eventually(
      async () => (await c.trpc.agent.get.query({ runId: (await c.trpc.agent.list.query()).runs[0]!.id })).status,
      (s) => s === "completed",
      "completion",
    );
    const newest = await app.pulse.services.stream.lastId(tenant.tenantId);
    // Ids past the newest entry, or between entries, were never issued.
    await notFound(`${newest.split("-")[0]}-${BigInt(newest.split("-")[1]!) + 1n}`);
    await notFound(`${Date.now() + 3_600_000}-0`);
    await notFound("1-0");
    // The newest id itself is not ahead: nothing to replay, no resync.
    const current = watch(c, { lastEventId: newest });
    await new Promise((r) => setTimeout(r, 300));
    expect(current.items).toEqual([]);
    expect(current.errors).toEqual([]);
    live.unsubscribe();
    current.unsubscribe();
    await eventually(
      () => app.pulse.services.reader.tenantCount,
      (n) => n === 0,
      "no subscriber left for the tenant",
    );

    // Redis loses the tenant's keys, as a restart without persistence would.
    const { keys } = app.pulse.services.stream;
    const redis = connectRedis(app.redis, `${app.prefix}:test`);
    await redis.del(keys.events(tenant.tenantId), keys.trimmed(tenant.tenantId), keys.genesis(tenant.tenantId));
    await redis.quit();
    const lost = watch(c, { lastEventId: newest });
    await eventually(
      () => lost.items.length,
      (n) => n >= 1,
      "the first item after the stream was lost",
    );
    expect(lost.errors).toEqual([]);
    expect(lost.items[0]!.data.type).toBe("resync");
    expect(lost.items[0]!.data.snapshot.runs[0]).toMatchObject({ status: "completed", progress: 100 });
    // Ids older than the tenant's first event were never its own, lost or not.
    await notFound("1-0");
  });
});

describe("streams written before the genesis marker", () => {
  it("still resume their entries and resync trimmed ids, and are marked on their next event", async () => {
    const { tenant, c, watched: original } = await watchedTicks(6);
    const tickId = (n: number) => original.items.find((i) => isTick(i, n))!.id;
    // As an install upgraded with its Redis data would have it: no marker, no first id.
    const { keys } = app.pulse.services.stream;
    const redis = connectRedis(app.redis, `${app.prefix}:test`);
    await redis.del(keys.genesis(tenant.tenantId));
    await redis.quit();
    await app.pulse.services.db.tenant.update({ where: { id: tenant.tenantId }, data: { firstEventId: null } });
    await app.pulse.services.stream.trim(tenant.tenantId);

    const resumed = await c.trpc.agent.events.query({ cursor: tickId(5) });
    expect(resumed.items.map((i) => i.id)).toEqual([tickId(6)]);
    const stale = await c.trpc.agent.events.query({ cursor: tickId(2) });
    expect(stale.items.map((i) => i.item.type)).toEqual(["resync"]);

    ticker.tick(1);
    await eventually(() => has(original, (i) => isTick(i, 7)), Boolean, "tick 7");
    // The publish marks the tenant after its append, which subscribers may see first.
    const tenantRow = () => app.pulse.services.db.tenant.findUniqueOrThrow({ where: { id: tenant.tenantId } });
    expect(
      (await eventually(tenantRow, (t) => t.firstEventId !== null, "the tenant's first event id")).firstEventId,
    ).toBe("0-1");
  });
});

describe("agent.events, the polling twin (guarantee 4)", () => {
  it("pages from a snapshot cursor return exactly the ids and items the subscription received", async () => {
    const { c, watched: all } = await watchingTenant();
    const { runId } = await c.trpc.agent.run.mutate({ agentRole: ticker.role });
    const one = watch(c, { runId });
    await eventually(
      () => one.items.length,
      (n) => n >= 1,
      "the run's snapshot",
    );
    ticker.tick(12);
    ticker.finish();
    await eventually(() => has(all, completed) && has(one, completed), Boolean, "completion on both");

    const polled = await pageAll(c, all.items[0]!.id);
    expect(polled.length).toBeGreaterThan(12);
    expect(polled).toEqual(all.events());
    expect(await pageAll(c, one.items[0]!.id, { runId }, 5)).toEqual(one.events());

    // Switching mid-way: the socket's id for event k is a polling cursor that continues at k+1.
    const k = 6;
    expect(await pageAll(c, all.events()[k]!.id, {}, 500)).toEqual(all.events().slice(k + 1));

    // Without a cursor, polling starts like the socket does: a snapshot at the newest id.
    const fresh = await c.trpc.agent.events.query({});
    expect(fresh.items).toHaveLength(1);
    expect(fresh.items[0]!.item.type).toBe("snapshot");
    expect(fresh.cursor).toBe(all.items.at(-1)!.id);
    expect(fresh.items[0]!.id).toBe(fresh.cursor);
  });

  it("a filtered poll past other runs' events answers an empty page with more=true, and the next pages hold the run's events", async () => {
    const { c, watched: all } = await watchingTenant();
    const start = all.items[0]!.id;
    // Run A fills the stream with more events than one filtered poll scans (10 pages of `limit` 1) ...
    await c.trpc.agent.run.mutate({ agentRole: ticker.role });
    ticker.tick(14);
    ticker.finish();
    await eventually(
      () => all.events().filter(completed).length,
      (n) => n === 1,
      "run A's completion",
    );
    // ... before run B, the one polled, says anything.
    const { runId } = await c.trpc.agent.run.mutate({ agentRole: ticker.role });
    ticker.tick(2);
    ticker.finish();
    await eventually(
      () => all.events().filter(completed).length,
      (n) => n === 2,
      "run B's completion",
    );
    const expected = all.events().filter((i) => (i.data as { runId?: string }).runId === runId);
    expect(expected.length).toBeGreaterThan(2);

    const first = await c.trpc.agent.events.query({ runId, cursor: start, limit: 1 });
    expect(first.items).toEqual([]);
    expect(first.more).toBe(true);
    expect(compareStreamIds(first.cursor, start)).toBe(1);

    // The rule a poller follows: while `more`, ask again at once with the returned cursor.
    const polled: TrackedItem[] = [];
    let page = first;
    for (let pages = 0; page.more && pages < 100; pages++) {
      page = await c.trpc.agent.events.query({ runId, cursor: page.cursor, limit: 1 });
      polled.push(...page.items.map((i) => ({ id: i.id, data: i.item as TrackedItem["data"] })));
    }
    expect(page.more).toBe(false);
    expect(polled).toEqual(expected);
  });

  it("a cursor older than the retained stream gets a resync item, and paging goes on after it", async () => {
    const { tenant, c, watched: all, runId } = await watchedTicks(6);
    expect(await app.pulse.services.stream.trim(tenant.tenantId)).toBe(5);

    const stale = await c.trpc.agent.events.query({ cursor: all.items[0]!.id });
    expect(stale.items).toHaveLength(1);
    expect(stale.items[0]!.item.type).toBe("resync");
    expect(stale.items[0]!.id).toBe(all.items.at(-1)!.id);
    expect(stale.cursor).toBe(stale.items[0]!.id);
    const resync = stale.items[0]!.item as { type: "resync"; snapshot: { runs: { id: string; progress: number }[] } };
    expect(resync.snapshot.runs.find((r) => r.id === runId)?.progress).toBe(6);

    const ahead = await c.trpc.agent.events.query({ cursor: `${Date.now() + 3_600_000}-0` }).catch((e: unknown) => e);
    expect((ahead as { data?: { code?: string } }).data?.code).toBe("NOT_FOUND");

    ticker.tick(1);
    ticker.finish();
    await eventually(() => has(all, completed), Boolean, "completion");
    expect(await pageAll(c, stale.cursor)).toEqual(
      all.events().filter((i) => compareStreamIds(i.id, stale.cursor) > 0),
    );
  });
});
