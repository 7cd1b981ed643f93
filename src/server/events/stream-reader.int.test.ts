import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { RestartableRedis } from "../../test/chaos/restartable-redis";
import { connectClient, eventually, registerTenant, startTestPulse, type TestPulse } from "../../test/harness";
import { createLogger } from "../logger";
import { redisOptions } from "../redis";
import { TenantEventStream, TenantStreamKeys, type StreamEntry } from "./event-stream";
import { TenantStreamReader } from "./stream-reader";

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
        client.trpc.agent.onStatus.subscribe({}, { onData: (e) => received[i]!.push((e.data as { type: string }).type) }),
      ),
    );
    try {
      await eventually(() => received.map((r) => r.filter((t) => t === "snapshot").length), (n) => n.every((c) => c === 10), "30 snapshots");
      expect(app.pulse.services.reader.tenantCount).toBe(3);
      // The process's fixed set: commands, queues, the stream reader's two, and the revocation channel's.
      const fixed = ["command", "queues", "revocations", "stream-reader", "stream-wake"].map((n) => `${app.prefix}:${n}`);
      expect(await pulseConnections(admin, app.prefix)).toEqual(fixed);
    } finally {
      subscriptions.forEach((s) => s.unsubscribe());
      await Promise.all(clients.map((c) => c.close()));
    }
    await eventually(() => app.pulse.services.reader.tenantCount, (n) => n === 0, "the reader to drop tenants without subscribers");
  });

  it("closes every connection it opened on shutdown", async () => {
    const other = await startTestPulse();
    expect((await pulseConnections(admin, other.prefix)).length).toBeGreaterThan(0);
    await other.close();
    await eventually(() => pulseConnections(admin, other.prefix), (names) => names.length === 0, "all connections closed");
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
   * connections are up and Redis has its wake subscription: until then appends ring nobody,
   * and a connection that comes up makes the reader read every followed stream.
   */
  async function reader(sweepMs: number, url: string = inject("redisUrl")) {
    const [command, read, wake] = [0, 1, 2].map(() => {
      const connection = new Redis(url, redisOptions());
      connection.on("error", () => {});
      return connection;
    });
    connections.push(command!, read!, wake!);
    const keys = new TenantStreamKeys(`wake-${randomUUID().slice(0, 8)}`);
    const stream = new TenantEventStream(command!, keys, { maxAgeMs: 60_000, minEvents: 100, maxEvents: 1_000 });
    const r = new TenantStreamReader({ readRedis: read!, wakeRedis: wake!, controlRedis: command!, stream, logger: createLogger(process.env.TEST_LOG_LEVEL ?? "silent"), sweepMs });
    r.start();
    readers.push(r);
    await Promise.all([command!, read!, wake!].map((c) => (c.status === "ready" ? undefined : once(c, "ready"))));
    await eventually(async () => ((await command!.pubsub("NUMSUB", keys.wake())) as [string, number])[1], (n) => n === 1, "the wake subscription");
    return { reader: r, stream, keys, command: command!, read: read! };
  }

  const event = (tenantId: string, message: string) =>
    JSON.stringify({ type: "agent:log", tenantId, runId: "r", jobId: "r", queue: "q", agentRole: "q", attempt: 1, level: "info", message, seq: 1, at: new Date().toISOString() });

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
    await eventually(() => busySeen.length, (n) => n === 20, "every append of the busy tenant");
    expect(busySeen.map((e) => (e.event as { message: string }).message)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    await stream.append(quiet, event(quiet, "at last"));
    await eventually(() => quietSeen.length, (n) => n === 1, "the quiet tenant's one append");
  });

  /**
   * A reader (no sweep for an hour) following a fresh tenant whose first entry it has
   * delivered, with its stream reads counted from then on.
   */
  async function afterFirstEntry() {
    const { reader: r, stream, keys, command, read } = await reader(3_600_000);
    const tenant = `t-${randomUUID()}`;
    const seen = await follow(r, tenant);
    await stream.append(tenant, event(tenant, "first"));
    await eventually(() => seen.length, (n) => n === 1, "the first entry");
    return { stream, keys, command, tenant, seen, reads: vi.spyOn(read, "xread") };
  }

  const messages = (seen: StreamEntry[]) => seen.map((e) => (e.event as { message: string }).message);

  it("delivers the entries that ride on their wakes without reading the stream", async () => {
    const { stream, tenant, seen, reads } = await afterFirstEntry();
    for (let i = 0; i < 20; i++) await stream.append(tenant, event(tenant, `m${i}`));
    await eventually(() => seen.length, (n) => n === 21, "every entry");
    expect(messages(seen)).toEqual(["first", ...Array.from({ length: 20 }, (_, i) => `m${i}`)]);
    expect(reads).not.toHaveBeenCalled();
  });

  it("does not read the stream for a wake whose entry a read already delivered", async () => {
    const { stream, keys, command, tenant, seen, reads } = await afterFirstEntry();
    // The wake of "first" again, arriving after the reader has it (as when a read overtook it).
    const payload = event(tenant, "first");
    await command.publish(keys.wake(), `${tenant}\n0-0\n${seen[0]!.id}\n${payload}`);
    await stream.append(tenant, event(tenant, "second"));
    await eventually(() => seen.length, (n) => n === 2, "the second entry");
    expect(messages(seen)).toEqual(["first", "second"]);
    expect(reads).not.toHaveBeenCalled();
  });

  it("reads the stream when a wake's entry does not follow what it delivered, or is too large to ride along, in order", async () => {
    const { stream, keys, command, tenant, seen, reads } = await afterFirstEntry();
    // Appended behind the bus's back (no wake): the next wake's entry does not follow the cursor.
    await command.xadd(keys.events(tenant), "*", "e", event(tenant, "unannounced"));
    await stream.append(tenant, event(tenant, "announced"));
    await eventually(() => seen.length, (n) => n === 3, "both entries");
    expect(reads).toHaveBeenCalled();
    // Too large to ride on its wake: read from the stream.
    await stream.append(tenant, event(tenant, `large ${"x".repeat(10_000)}`));
    await stream.append(tenant, event(tenant, "after the large one"));
    await eventually(() => seen.length, (n) => n === 5, "the large entry and the next");
    expect(messages(seen).map((m) => m.slice(0, 20))).toEqual(["first", "unannounced", "announced", `large ${"x".repeat(14)}`, "after the large one"]);
    expect(new Set(seen.map((e) => e.id)).size).toBe(5);
  });

  it("still delivers an entry whose wake never came, at the next sweep", async () => {
    const { reader: r, keys, command } = await reader(200);
    const tenant = `t-${randomUUID()}`;
    const seen = await follow(r, tenant);
    // Appended behind the bus's back: no wake is published.
    await command.xadd(keys.events(tenant), "*", "e", event(tenant, "unannounced"));
    await eventually(() => seen.length, (n) => n === 1, "the unannounced entry");
  });

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
      await eventually(() => seen, (s) => s.includes("before"), "the first entry");
      for (let crash = 0; crash < 5; crash++) {
        const from = seen.length;
        // Appended without a wake just before the crash: lost with Redis, maybe never read.
        await command.xadd(keys.events(tenant), "*", "e", event(tenant, `unread ${crash}`));
        await redis.restart({ crash: true, downMs: 100 });
        await stream.append(tenant, event(tenant, `after ${crash}`));
        // The new stream's entry arrives, or the loss is reported (the resync covers the entry).
        await eventually(() => seen.slice(from), (s) => s.includes(`after ${crash}`) || s.includes("LOST"), `crash ${crash} to show`);
        // Never the new stream as if nothing happened: before its first entry, the subscriber
        // got the entry Redis lost, or was told of the loss.
        const since = seen.slice(from);
        const afterAt = since.indexOf(`after ${crash}`);
        if (afterAt >= 0) expect(since.slice(0, afterAt).some((m) => m === `unread ${crash}` || m === "LOST"), `crash ${crash}: ${since.join(", ")}`).toBe(true);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      // Stopped while its Redis is still there: a stop waits for the read in flight.
      await r.stop();
      await redis.stop();
    }
  });

  it("stops within a bound when Redis went away with a read in flight", async () => {
    const redis = await new RestartableRedis(false).start();
    // Reads back to back, so one is in flight when Redis dies.
    const { reader: r } = await reader(5, redis.url);
    await r.subscribe(`t-${randomUUID()}`, { receive: () => {}, lost: () => {} });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await redis.stop();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stopped = await Promise.race([r.stop().then(() => "stopped"), new Promise((resolve) => setTimeout(() => resolve("still reading"), 8_000))]);
    expect(stopped).toBe("stopped");
  });
});
