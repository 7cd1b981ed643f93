import { logEventPayload } from "../../test/log-event-payload";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { RestartableRedis } from "../../test/chaos/restartable-redis";
import { connectClient, eventually, registerTenant, startTestPulse, type TestPulse } from "../../test/harness";
import { createLogger } from "../logger";
import { CapturedLog } from "../../test/captured-log";
import { redisOptions } from "../redis";
import { TenantEventStream, TenantStreamKeys, type StreamEntry } from "./event-stream";
import { PulseMetrics } from "../metrics/pulse-metrics";
import { compareStreamIds } from "../../shared/stream-id";
import { TenantStreamReader, type StreamSubscriber, type TenantStreamReaderOptions } from "./stream-reader";

/** Connections this Pulse opened, as Redis sees them (each is named `<prefix>:<purpose>`). */
async function pulseConnections(admin: Redis, prefix: string): Promise<string[]> {
  const list = (await admin.client("LIST")) as string;
  return list
    .split("\n")
    .map((line) => /name=(\S*)/.exec(line)?.[1] ?? "")
    .filter((name) => name.startsWith(`${prefix}:`))
    .sort();
}

let admin: Redis;
beforeAll(() => {
  admin = new Redis(inject("redisUrl"));
});
afterAll(async () => {
  await admin.quit();
});

describe("TenantStreamReader", () => {
  let app: TestPulse;
  afterAll(async () => {
    await app?.close();
  });

  it("serves many subscribers of many tenants without opening a Redis connection per subscriber", async () => {
    app = await startTestPulse({ runWorkers: false });
    const tenants = await Promise.all([1, 2, 3].map(() => registerTenant(app)));
    const clients = tenants.map((t) => connectClient(app, t.token));
    const received = tenants.map(() => [] as string[]);
    const subscriptions = clients.flatMap((client, i) =>
      Array.from({ length: 10 }, () =>
        client.trpc.agent.onStatus.subscribe(
          {},
          { onData: (e) => received[i]!.push((e.data as { type: string }).type) },
        ),
      ),
    );
    try {
      await eventually(
        () => received.map((r) => r.filter((t) => t === "snapshot").length),
        (n) => n.every((c) => c === 10),
        "30 snapshots",
      );
      expect(app.pulse.services.reader.tenantCount).toBe(3);
      // The process's fixed set: commands, queues, the stream reader's two, and the revocation channel's.
      const fixed = ["command", "queues", "revocations", "stream-reader", "stream-wake"].map(
        (n) => `${app.prefix}:${n}`,
      );
      expect(await pulseConnections(admin, app.prefix)).toEqual(fixed);
    } finally {
      subscriptions.forEach((s) => s.unsubscribe());
      await Promise.all(clients.map((c) => c.close()));
    }
    await eventually(
      () => app.pulse.services.reader.tenantCount,
      (n) => n === 0,
      "the reader to drop tenants without subscribers",
    );
  });

  it("closes every connection it opened on shutdown", async () => {
    const other = await startTestPulse();
    expect((await pulseConnections(admin, other.prefix)).length).toBeGreaterThan(0);
    await other.close();
    await eventually(
      () => pulseConnections(admin, other.prefix),
      (names) => names.length === 0,
      "all connections closed",
    );
  });
});

describe("TenantStreamReader's wake-ups", () => {
  const connections: Redis[] = [];
  const readers: TenantStreamReader[] = [];
  afterAll(async () => {
    await Promise.all(readers.map((r) => r.stop()));
    connections.forEach((c) => c.disconnect());
  });

  /**
   * A reader of its own over a fresh key prefix, and the stream it follows, once its
   * connections are up: a connection that comes up makes the reader read every followed
   * stream. It listens to a tenant's wakes from the moment `subscribe` resolves.
   */
  async function reader(
    sweepMs: number,
    url: string = inject("redisUrl"),
    extra: Partial<TenantStreamReaderOptions> = {},
    prefix = `wake-${randomUUID().slice(0, 8)}`,
  ) {
    const [command, read, wake] = [0, 1, 2].map(() => {
      const connection = new Redis(url, redisOptions());
      connection.on("error", () => {});
      return connection;
    });
    connections.push(command!, read!, wake!);
    const keys = new TenantStreamKeys(prefix);
    const stream = new TenantEventStream(command!, keys, { maxAgeMs: 60_000, minEvents: 100, maxEvents: 1_000 });
    const metrics = new PulseMetrics({ processMetrics: false });
    const r = new TenantStreamReader({
      readRedis: read!,
      wakeRedis: wake!,
      controlRedis: command!,
      stream,
      logger: createLogger(process.env.TEST_LOG_LEVEL ?? "silent"),
      metrics,
      sweepMs,
      ...extra,
    });
    r.start();
    readers.push(r);
    await Promise.all(
      [command!, read!, wake!].map((c) => (c.status === "ready" ? Promise.resolve() : once(c, "ready"))),
    );
    return { reader: r, stream, keys, command: command!, read: read!, wake: wake!, metrics };
  }

  const event = (tenantId: string, message: string) => logEventPayload(tenantId, message, 1);

  async function follow(r: TenantStreamReader, tenantId: string): Promise<StreamEntry[]> {
    const received: StreamEntry[] = [];
    await r.subscribe(tenantId, { receive: (entries) => received.push(...entries), lost: () => {} });
    return received;
  }

  it("reads a stream as soon as its append rings, not at the next sweep", async () => {
    // A sweep an hour away: only the wake can bring these in before the test times out.
    const { reader: r, stream } = await reader(3_600_000);
    const [quiet, busy] = [`t-${randomUUID()}`, `t-${randomUUID()}`];
    const [quietSeen, busySeen] = [await follow(r, quiet), await follow(r, busy)];
    for (let i = 0; i < 20; i++) await stream.append(busy, event(busy, `m${i}`));
    await eventually(
      () => busySeen.length,
      (n) => n === 20,
      "every append of the busy tenant",
    );
    expect(busySeen.map((e) => (e.event as { message: string }).message)).toEqual(
      Array.from({ length: 20 }, (_, i) => `m${i}`),
    );
    await stream.append(quiet, event(quiet, "at last"));
    await eventually(
      () => quietSeen.length,
      (n) => n === 1,
      "the quiet tenant's one append",
    );
  });

  /**
   * A reader (no sweep for an hour) following a fresh tenant whose first entry it has
   * delivered, with its stream reads counted from then on.
   */
  async function afterFirstEntry() {
    const { reader: r, stream, keys, command, read } = await reader(3_600_000);
    const tenant = `t-${randomUUID()}`;
    const reads = vi.spyOn(read, "xread");
    const seen = await follow(r, tenant);
    await stream.append(tenant, event(tenant, "first"));
    await eventually(
      () => seen.length,
      (n) => n === 1,
      "the first entry",
    );
    // Following a tenant ends with one read, queued rather than awaited: on a busy machine it
    // may come after the first entry's wake. It is over before the reads are counted.
    await eventually(
      () => reads.mock.calls.length,
      (n) => n >= 1,
      "the tenant's opening read",
    );
    await Promise.allSettled(reads.mock.results.map((result) => result.value));
    reads.mockClear();
    return { stream, keys, command, tenant, seen, reads };
  }

  const messages = (seen: StreamEntry[]) => seen.map((e) => (e.event as { message: string }).message);

  it("delivers the entries that ride on their wakes without reading the stream", async () => {
    const { stream, tenant, seen, reads } = await afterFirstEntry();
    for (let i = 0; i < 20; i++) await stream.append(tenant, event(tenant, `m${i}`));
    await eventually(
      () => seen.length,
      (n) => n === 21,
      "every entry",
    );
    expect(messages(seen)).toEqual(["first", ...Array.from({ length: 20 }, (_, i) => `m${i}`)]);
    expect(reads).not.toHaveBeenCalled();
  });

  it("does not read the stream for a wake whose entry a read already delivered", async () => {
    const { stream, keys, command, tenant, seen, reads } = await afterFirstEntry();
    // The wake of "first" again, arriving after the reader has it (as when a read overtook it).
    const payload = event(tenant, "first");
    await command.spublish(keys.wake(tenant), `${tenant}\n0-0\n${seen[0]!.id}\n${payload}`);
    await stream.append(tenant, event(tenant, "second"));
    await eventually(
      () => seen.length,
      (n) => n === 2,
      "the second entry",
    );
    expect(messages(seen)).toEqual(["first", "second"]);
    expect(reads).not.toHaveBeenCalled();
  });

  it("reads the stream when a wake's entry does not follow what it delivered, or is too large to ride along, in order", async () => {
    const { stream, keys, command, tenant, seen, reads } = await afterFirstEntry();
    // Appended behind the bus's back (no wake): the next wake's entry does not follow the cursor.
    await command.xadd(keys.events(tenant), "*", "e", event(tenant, "unannounced"));
    await stream.append(tenant, event(tenant, "announced"));
    await eventually(
      () => seen.length,
      (n) => n === 3,
      "both entries",
    );
    expect(reads).toHaveBeenCalled();
    // Too large to ride on its wake: read from the stream.
    await stream.append(tenant, event(tenant, `large ${"x".repeat(10_000)}`));
    await stream.append(tenant, event(tenant, "after the large one"));
    await eventually(
      () => seen.length,
      (n) => n === 5,
      "the large entry and the next",
    );
    expect(messages(seen).map((m) => m.slice(0, 20))).toEqual([
      "first",
      "unannounced",
      "announced",
      `large ${"x".repeat(14)}`,
      "after the large one",
    ]);
    expect(new Set(seen.map((e) => e.id)).size).toBe(5);
  });

  it("still delivers an entry whose wake never came, at the next sweep", async () => {
    const { reader: r, keys, command } = await reader(200);
    const tenant = `t-${randomUUID()}`;
    const seen = await follow(r, tenant);
    // Appended behind the bus's back: no wake is published.
    await command.xadd(keys.events(tenant), "*", "e", event(tenant, "unannounced"));
    await eventually(
      () => seen.length,
      (n) => n === 1,
      "the unannounced entry",
    );
  });

  /** What a reader's metrics say it received of `kind`. */
  async function received(metrics: PulseMetrics, kind: "wake" | "entry"): Promise<number> {
    const { values } = await metrics.readerReceived.get();
    return values.find((v) => v.labels.kind === kind)?.value ?? 0;
  }

  it("receives the wakes of the tenants it follows only, not of those another process follows", async () => {
    const prefix = `routing-${randomUUID().slice(0, 8)}`;
    // Two processes' readers on one Redis and one key prefix, following disjoint tenants.
    const processes = [await reader(3_600_000, undefined, {}, prefix), await reader(3_600_000, undefined, {}, prefix)];
    const tenants = processes.map(() => Array.from({ length: 5 }, () => `t-${randomUUID()}`));
    const seen = await Promise.all(processes.map((p, i) => Promise.all(tenants[i]!.map((t) => follow(p.reader, t)))));
    const perTenant = 20;
    for (let n = 0; n < perTenant; n++) {
      for (const t of tenants.flat()) await processes[0]!.stream.append(t, event(t, `m${n}`));
    }
    await eventually(
      () => seen.flat().map((s) => s.length),
      (counts) => counts.every((c) => c === perTenant),
      "every tenant's entries at its process",
    );
    for (const p of processes) {
      const own = 5 * perTenant;
      // Each wake carries one entry: a process hearing the other's tenants would receive twice its own.
      expect(await received(p.metrics, "wake")).toBeLessThanOrEqual(1.2 * own);
      expect(await received(p.metrics, "wake")).toBeGreaterThan(0);
    }
  });

  it("leaves exactly the followed tenants' wake channels subscribed after subscribers come and go, and none once all left", async () => {
    const { reader: r, keys, command, stream } = await reader(3_600_000);
    const tenants = Array.from({ length: 10 }, () => `t-${randomUUID()}`);
    const quiet = { receive: () => {}, lost: () => {} };
    const kept: { tenantId: string; seen: StreamEntry[]; subscriber: StreamSubscriber }[] = [];
    const opening: Promise<string>[] = [];
    for (let round = 0; round < 40; round++) {
      const tenantId = tenants[round % 10]!;
      const subscriber = { ...quiet };
      const subscribed = r.subscribe(tenantId, subscriber);
      opening.push(subscribed);
      if (round % 2 === 0) {
        // Gone before its tenant's subscription was even confirmed.
        r.unsubscribe(tenantId, subscriber);
      } else if (round < 20 || round % 10 >= 5) {
        await subscribed;
        r.unsubscribe(tenantId, subscriber);
      } else {
        // Tenants 0 to 4 keep one subscriber, arriving amid the others' churn.
        const seen: StreamEntry[] = [];
        const keeper = { receive: (entries: StreamEntry[]) => seen.push(...entries), lost: () => {} };
        kept.push({ tenantId, seen, subscriber: keeper });
        await r.subscribe(tenantId, keeper);
        r.unsubscribe(tenantId, subscriber);
      }
    }
    await Promise.all(opening);
    const followed = [...new Set(kept.map((k) => k.tenantId))];
    const channels = async () =>
      ((await command.pubsub("SHARDCHANNELS", `${keys.wake("*").replace("{*}", "*")}`)) as string[]).sort();
    expect(followed.length).toBeGreaterThan(0);
    await eventually(
      channels,
      (list) => JSON.stringify(list) === JSON.stringify(followed.map((t) => keys.wake(t)).sort()),
      "the followed tenants' channels only",
    );
    for (const t of tenants) {
      const [, count] = (await command.pubsub("SHARDNUMSUB", keys.wake(t))) as [string, number];
      expect(count, t).toBe(followed.includes(t) ? 1 : 0);
    }
    // The kept subscriptions are live.
    for (const { tenantId } of kept) await stream.append(tenantId, event(tenantId, "live"));
    await eventually(
      () => kept.map((k) => k.seen.length),
      (counts) => counts.every((c) => c >= 1),
      "the kept subscribers' entries",
    );
    for (const { tenantId, subscriber } of kept) r.unsubscribe(tenantId, subscriber);
    expect(r.tenantCount).toBe(0);
    await eventually(channels, (list) => list.length === 0, "no wake channel left subscribed");
  });

  it("reads every followed stream when its wake connection comes back, and listens again, and logs why", async () => {
    // No rolling check for an hour: only the read after the reconnect can find the entry.
    const log = new CapturedLog();
    const {
      reader: r,
      stream,
      keys,
      command,
      read,
      wake,
    } = await reader(3_600_000, inject("redisUrl"), {
      logger: createLogger("info", "pulse", log),
    });
    const wakeId = await wake.client("ID");
    const reads = vi.spyOn(read, "xread");
    const tenant = `t-${randomUUID()}`;
    const seen = await follow(r, tenant);
    // The read every new tenant gets is done, so it cannot be what finds the entry below.
    await eventually(
      () => reads.mock.results.length,
      (n) => n >= 1,
      "the opening read",
    );
    await Promise.allSettled(reads.mock.results.map((result) => result.value as Promise<unknown>));
    // Appended without a wake: as if its wake had been lost with the connection.
    await command.xadd(keys.events(tenant), "*", "e", event(tenant, "unannounced"));
    await admin.client("KILL", "ID", String(wakeId));
    await eventually(
      () => messages(seen),
      (m) => m.length === 1,
      "the entry whose wake was lost",
    );
    await stream.append(tenant, event(tenant, "rings again"));
    await eventually(
      () => messages(seen),
      (m) => m.length === 2,
      "the next entry, by its wake",
    );
    expect(messages(seen)).toEqual(["unannounced", "rings again"]);
    // A whole read says why it was made, and how many streams it read (the second, once
    // settled, comes a sweep later: an hour here).
    const wholeReads = log.lines.filter((line) => line.msg === "stream reader: reading every followed stream");
    expect(wholeReads.map(({ cause, tenants }) => ({ cause, tenants }))).toEqual([
      { cause: "the wake subscriptions were made again", tenants: 1 },
    ]);
  });

  it("checks idle streams a bounded slice per sweep, and every one in time", async () => {
    const {
      reader: r,
      keys,
      command,
      read,
    } = await reader(20, undefined, { checkPeriodMs: 200, maxChecksPerSweep: 2 });
    const reads = vi.spyOn(read, "xread");
    const tenants = Array.from({ length: 30 }, () => `t-${randomUUID()}`);
    const seen = await Promise.all(tenants.map((t) => follow(r, t)));
    // The reads every new tenant gets are over once two more reads have begun (reads go one round at a time).
    const settled = reads.mock.calls.length;
    await eventually(
      () => reads.mock.calls.length,
      (n) => n >= settled + 3,
      "the rolling check under way",
    );
    const from = settled + 2;
    for (const t of tenants) await command.xadd(keys.events(t), "*", "e", event(t, "unannounced"));
    await eventually(
      () => seen.map((s) => s.length),
      (counts) => counts.every((c) => c === 1),
      "every stream's unannounced entry",
    );
    const keysPerRead = reads.mock.calls.slice(from).map((args) => (args.length - 3) / 2);
    expect(Math.max(...keysPerRead)).toBeLessThanOrEqual(2);
  });

  it("reads 20k followed tenants whose wakes were lost within a CPU budget (no search of the key list)", async () => {
    const { reader: r, keys, command, wake } = await reader(3_600_000);
    const wakeId = await wake.client("ID");
    const tenants = Array.from({ length: 20_000 }, (_, i) => `t${i}-${randomUUID().slice(0, 8)}`);
    let delivered = 0;
    const subscriber: StreamSubscriber = { receive: (entries) => (delivered += entries.length), lost: () => {} };
    for (let start = 0; start < tenants.length; start += 1_000)
      await Promise.all(tenants.slice(start, start + 1_000).map((t) => r.subscribe(t, subscriber)));
    // One entry per tenant that rang nobody, as if every wake had been lost.
    const appends = command.pipeline();
    for (const t of tenants) appends.xadd(keys.events(t), "*", "e", event(t, "unannounced"));
    await appends.exec();
    const cpuBefore = process.cpuUsage();
    // The wake connection drops: every followed stream is read (and every channel subscribed again).
    await admin.client("KILL", "ID", String(wakeId));
    await eventually(
      () => delivered,
      (n) => n === tenants.length,
      "every tenant's entry",
      120_000,
    );
    const cpu = process.cpuUsage(cpuBefore);
    // A CPU budget with a wide margin (measured: ~0.6 s): matching streams to tenants by
    // searching the key list cost seconds here, all of it in one turn of the loop. The loop's
    // delay itself is not asserted: it is wall-clock time, which a busy machine stretches.
    expect((cpu.user + cpu.system) / 1e3, "CPU ms").toBeLessThan(3_000);
  }, 180_000);

  it("never reads a Redis that came back without its data before telling subscribers their stream was lost", async () => {
    const redis = await new RestartableRedis(false).start();
    // Reads back to back, so one is in flight or due whenever Redis goes away.
    const { reader: r, stream, keys, command } = await reader(5, redis.url);
    try {
      const tenant = `t-${randomUUID()}`;
      const seen: string[] = [];
      await r.subscribe(tenant, {
        receive: (entries) => seen.push(...entries.map((e) => (e.event as { message: string }).message)),
        lost: () => seen.push("LOST"),
      });
      await stream.append(tenant, event(tenant, "before"));
      await eventually(
        () => seen,
        (s) => s.includes("before"),
        "the first entry",
      );
      for (let crash = 0; crash < 5; crash++) {
        const from = seen.length;
        // Appended without a wake just before the crash: lost with Redis, maybe never read.
        await command.xadd(keys.events(tenant), "*", "e", event(tenant, `unread ${crash}`));
        await redis.restart({ crash: true, downMs: 100 });
        await stream.append(tenant, event(tenant, `after ${crash}`));
        // The new stream's entry arrives, or the loss is reported (the resync covers the entry).
        await eventually(
          () => seen.slice(from),
          (s) => s.includes(`after ${crash}`) || s.includes("LOST"),
          `crash ${crash} to show`,
        );
        // Never the new stream as if nothing happened: before its first entry, the subscriber
        // got the entry Redis lost, or was told of the loss.
        const since = seen.slice(from);
        const afterAt = since.indexOf(`after ${crash}`);
        if (afterAt >= 0)
          expect(
            since.slice(0, afterAt).some((m) => m === `unread ${crash}` || m === "LOST"),
            `crash ${crash}: ${since.join(", ")}`,
          ).toBe(true);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      // Stopped while its Redis is still there: a stop waits for the read in flight.
      await r.stop();
      await redis.stop();
    }
  });

  /** A subscriber that records messages, and `LOST@<id>` where it is told to resync. */
  async function followWithLosses(r: TenantStreamReader, tenantId: string): Promise<string[]> {
    const seen: string[] = [];
    await r.subscribe(tenantId, {
      receive: (entries) => seen.push(...entries.map((e) => (e.event as { message: string }).message)),
      lost: (restartId) => seen.push(`LOST@${restartId}`),
    });
    return seen;
  }

  /**
   * A reader following a fresh tenant whose subscribers were sent two entries, "kept" and
   * "lost", with the subscription's first read over: wakes may deliver both before it goes
   * out, and a read after the loss a test then makes would see the stream as it is after it.
   */
  async function sentKeptAndLost(...options: Parameters<typeof reader>) {
    const made = await reader(...options);
    const { reader: r, stream } = made;
    const tenant = `t-${randomUUID()}`;
    const seen = await followWithLosses(r, tenant);
    const [kept, lost] = [
      await stream.append(tenant, event(tenant, "kept")),
      await stream.append(tenant, event(tenant, "lost")),
    ].map((appended) => ("id" in appended ? appended.id : ""));
    await eventually(
      () => seen,
      (s) => s.length === 2,
      "both entries",
    );
    await r.settled();
    return { ...made, tenant, seen, keptId: kept!, lostId: lost! };
  }

  /**
   * A failover: the promoted replica never had the second of two entries subscribers were
   * sent, and another process appends `text` first. Resolves once the reader told of a third
   * thing.
   */
  async function lostThenAppended(text: string) {
    const made = await sentKeptAndLost(3_600_000);
    const { keys, command, tenant, seen, lostId } = made;
    await command.xdel(keys.events(tenant), lostId);
    const other = new TenantEventStream(command, keys, { maxAgeMs: 60_000, minEvents: 100, maxEvents: 1_000 });
    const next = await other.append(tenant, event(tenant, text));
    await eventually(
      () => seen,
      (s) => s.length === 3,
      "the loss",
    );
    return { ...made, nextId: "id" in next ? next.id : "" };
  }

  it("tells subscribers to resync when the stream lost entries they were sent (a failover), then goes on", async () => {
    const { stream, keys, command, tenant, seen, lostId, nextId } = await lostThenAppended("after");
    // The entry after the hole is covered by the resync's snapshot, not delivered past the hole.
    expect(seen).toEqual(["kept", "lost", `LOST@${nextId}`]);
    expect(await command.get(keys.trimmed(tenant))).toBe(lostId);
    await stream.append(tenant, event(tenant, "later"));
    await eventually(
      () => seen,
      (s) => s.length === 4,
      "the next entry",
    );
    expect(seen.at(-1)).toBe("later");
  });

  it("tells subscribers to resync when the first entry after a loss is too large to ride on its wake", async () => {
    // Its wake carries its id and the id before it, not the entry: that is enough to see the hole.
    const { keys, command, tenant, seen, lostId, nextId } = await lostThenAppended(`large ${"x".repeat(10_000)}`);
    expect(seen).toEqual(["kept", "lost", `LOST@${nextId}`]);
    expect(await command.get(keys.trimmed(tenant))).toBe(lostId);
  });

  it("tells subscribers to resync when a read delivered the first entry after a loss before its wake came", async () => {
    // Every followed stream read each sweep: the entry below arrives by a read, not by a wake.
    const { stream, keys, command, tenant, seen, keptId, lostId } = await sentKeptAndLost(100, undefined, {
      checkPeriodMs: 100,
    });
    // A failover to a replica that never had the second entry; another process appends, and a
    // read brings its entry in before the wake of it arrives.
    await command.xdel(keys.events(tenant), lostId);
    const payload = event(tenant, "after");
    const after = (await command.xadd(keys.events(tenant), "*", "e", payload))!;
    await eventually(
      () => seen,
      (s) => s.length === 3,
      "the entry after the loss, read",
    );
    expect(seen).toEqual(["kept", "lost", "after"]);
    // Its wake names the entry before it in the stream: the kept one, not the lost one.
    await command.spublish(keys.wake(tenant), `${tenant}\n${keptId}\n${after}\n${payload}`);
    await eventually(
      () => seen,
      (s) => s.length === 4,
      "the loss",
    );
    expect(seen).toEqual(["kept", "lost", "after", `LOST@${after}`]);
    // A client that stopped at the lost entry resyncs when it comes back.
    await eventually(
      () => command.get(keys.trimmed(tenant)),
      (marker) => marker === lostId,
      "the lost entry's marker",
    );
    // Wakes of entries read without a loss change nothing.
    const next = await stream.append(tenant, event(tenant, "next"));
    await eventually(
      () => seen,
      (s) => s.length === 5,
      "the next entry",
    );
    expect(seen.at(-1)).toBe("next");
    expect("id" in next && compareStreamIds(next.id, after)).toBeGreaterThan(0);
  });

  it("tells subscribers to resync when a publisher finds the stream lost entries the reader never heard of", async () => {
    const { reader: r, stream, keys, command } = await reader(3_600_000);
    const tenant = `t-${randomUUID()}`;
    const seen = await followWithLosses(r, tenant);
    const kept = await stream.append(tenant, event(tenant, "kept"));
    await eventually(
      () => seen,
      (s) => s.length === 1,
      "the first entry",
    );
    // The wake may have delivered the first entry with the subscription's first read still to
    // come: one that went out between the two commands below would read the entry they lose.
    await r.settled();
    // Acknowledged to the publisher, lost by a failover before any wake of it reached the reader.
    const unheard = await command.xadd(keys.events(tenant), "*", "e", event(tenant, "unheard"));
    await command.xdel(keys.events(tenant), unheard!);
    (stream as unknown as { recent: Map<string, { appended: string }> }).recent.get(tenant)!.appended = unheard!;
    const next = await stream.append(tenant, event(tenant, "after"));
    await eventually(
      () => seen,
      (s) => s.length === 2,
      "the loss",
    );
    const nextId = "id" in next ? next.id : "";
    expect(seen).toEqual(["kept", `LOST@${nextId}`]);
    // Every id before the new entry is marked lost, the unheard one with them: a client that
    // stopped at the kept entry resyncs, and so does one that saw the unheard entry itself.
    expect(await command.get(keys.trimmed(tenant))).toBe(nextId);
    expect(compareStreamIds(unheard!, nextId)).toBeLessThan(0);
    expect(await stream.isBehindRetention(tenant, unheard!)).toBe(true);
    expect(await stream.isBehindRetention(tenant, "id" in kept ? kept.id : "")).toBe(true);
  });

  it("tells subscribers to resync when it reads, without its wake, the first entry after a loss", async () => {
    const { reader: r, stream, keys, command } = await reader(20, undefined, { checkPeriodMs: 200 });
    const tenant = `t-${randomUUID()}`;
    const seen = await followWithLosses(r, tenant);
    await stream.append(tenant, event(tenant, "kept"));
    await eventually(
      () => seen,
      (s) => s.length === 1,
      "the first entry",
    );
    // As the append after a failover writes it, and with its wake gone (a subscriber reconnecting).
    const afterLoss = await command.xadd(keys.events(tenant), "*", "e", event(tenant, "after"), "lost", "1");
    await eventually(
      () => seen,
      (s) => s.length === 2,
      "the loss, found by the rolling check",
    );
    expect(seen).toEqual(["kept", `LOST@${afterLoss}`]);
  });

  it("stops within a bound when Redis went away with a read in flight", async () => {
    const redis = await new RestartableRedis(false).start();
    // Reads back to back, so one is in flight when Redis dies.
    const { reader: r } = await reader(5, redis.url);
    await r.subscribe(`t-${randomUUID()}`, { receive: () => {}, lost: () => {} });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await redis.stop();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stopped = await Promise.race([
      r.stop().then(() => "stopped"),
      new Promise((resolve) => setTimeout(() => resolve("still reading"), 8_000)),
    ]);
    expect(stopped).toBe("stopped");
  });
});
