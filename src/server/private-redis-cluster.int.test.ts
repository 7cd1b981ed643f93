import { randomUUID } from "node:crypto";
import keySlot from "cluster-key-slot";
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { eventually } from "../test/harness";
import { nextStreamId, TenantEventStream, TenantStreamKeys } from "./events/event-stream";
import { resolveCursor } from "./events/feed";
import { PrivateRedisCluster } from "./private-redis-cluster";
import { connectRedis, type RedisClient } from "./redis";

/** A cluster of this file's own: the test kills one of its masters. */
let cluster: PrivateRedisCluster;
let client: RedisClient;

beforeAll(async () => {
  cluster = await new PrivateRedisCluster({ nodeTimeoutMs: 2_000 }).start();
  client = connectRedis(cluster.target, "private-cluster-test");
});

afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

describe("PrivateRedisCluster", () => {
  it("starts three masters with a replica each, every slot served", async () => {
    const nodes = await cluster.nodes();
    expect(nodes).toHaveLength(6);
    const masters = nodes.filter((n) => n.role === "master");
    expect(masters).toHaveLength(3);
    expect(masters.reduce((sum, m) => sum + m.slots.reduce((s, [a, b]) => s + b - a + 1, 0), 0)).toBe(16_384);
    for (const master of masters) expect(nodes.filter((n) => n.masterId === master.id)).toHaveLength(1);
  });

  it("promotes a killed master's replica, which then serves its slots and its data", async () => {
    await client.set("{chaos}:kept", "yes");
    const slot = (await client.cluster("KEYSLOT", "{chaos}:kept")) as number;
    const before = await cluster.masterOf(slot);
    const victimId = (await cluster.nodes()).find((n) => n.port === before)!.id;
    const itsReplica = (await cluster.nodes()).find((n) => n.masterId === victimId)!.port;
    // The replica must have the write before its master goes.
    const replicaClient = connectRedis(`redis://127.0.0.1:${itsReplica}`, "private-cluster-replica");
    try {
      await replicaClient.readonly();
      await eventually(
        () => replicaClient.get("{chaos}:kept"),
        (v) => v === "yes",
        "the replica to have the write",
      );
    } finally {
      replicaClient.disconnect();
    }

    await cluster.kill(before);
    const after = await eventually(
      () => cluster.masterOf(slot).catch(() => before),
      (port) => port !== before,
      "the replica to take over the slot",
    );
    expect(after).toBe(itsReplica);
    await cluster.waitUntilServing();
    expect(
      await eventually(
        () => client.get("{chaos}:kept").catch(() => null),
        (v) => v === "yes",
        "the key through the promoted replica",
      ),
    ).toBe("yes");
  });

  it("an append served by another node than the last one (a failover) marks every earlier id of the tenant's stream as lost", async () => {
    const keys = new TenantStreamKeys(`failover-${randomUUID().slice(0, 8)}`);
    const stream = new TenantEventStream(client, keys, { maxAgeMs: 60_000, minEvents: 100, maxEvents: 1_000 });
    // A tenant on a master that still has a replica (the test above killed one).
    const { tenant, replica } = await tenantWithReplica();
    const append = async () => {
      const appended = await stream.append(tenant, JSON.stringify({ n: randomUUID() }));
      if (!("id" in appended)) throw new Error("refused");
      return appended.id;
    };
    const before = [await append(), await append()];
    expect(await client.get(keys.trimmed(tenant))).toBeNull();
    // A manual failover loses nothing, but an append cannot tell it from one that did.
    const node = new Redis({ host: "127.0.0.1", port: replica });
    try {
      await node.call("CLUSTER", "FAILOVER");
    } finally {
      node.disconnect();
    }
    await eventually(
      () => cluster.masterOf(keySlot(`{${tenant}}`)),
      (port) => port === replica,
      "the replica to take over",
    );
    const first = await append();
    // Every cursor before the first entry after the failover resyncs.
    expect(await client.get(keys.trimmed(tenant))).toBe(first);
    for (const id of before) expect(await stream.isBehindRetention(tenant, id)).toBe(true);
    expect(await stream.isBehindRetention(tenant, first)).toBe(false);
    // An id of a lost tail (acknowledged by the old master, never replicated): a resync, not NOT_FOUND.
    const lostId = nextStreamId(before[1]!);
    expect(await resolveCursor({ stream, db: undefined as never }, tenant, lostId, "lastEventId")).toEqual({
      from: "resync",
      reason: "trimmed",
    });
    // The next append is on the same node: nothing more is marked.
    await append();
    expect(await client.get(keys.trimmed(tenant))).toBe(first);
  });

  it("an append resent after an error that came after it landed finds its own entry instead of appending twice", async () => {
    const keys = new TenantStreamKeys(`resent-${randomUUID().slice(0, 8)}`);
    const stream = new TenantEventStream(client, keys, { maxAgeMs: 60_000, minEvents: 100, maxEvents: 1_000 });
    const tenant = `t-${randomUUID()}`;
    await stream.append(tenant, JSON.stringify({ n: "before" }));
    // The append lands, and its answer is lost with the connection.
    const sent = client as unknown as { pulseAppend(...args: unknown[]): Promise<unknown> };
    const send = sent.pulseAppend.bind(client);
    const lostReply = vi.spyOn(sent, "pulseAppend").mockImplementationOnce(async (...args) => {
      await send(...args);
      throw new Error("Connection is closed.");
    });
    try {
      const appended = await stream.append(tenant, JSON.stringify({ n: "once" }), undefined, { retryForMs: 10_000 });
      const entries = await stream.readAfter(tenant, "0-0", 10);
      expect(entries.map((e) => e.event as unknown)).toEqual([{ n: "before" }, { n: "once" }]);
      expect(appended).toEqual({ id: entries[1]!.id, genesis: null });
    } finally {
      lostReply.mockRestore();
    }
  });

  it("an id of a lost tail handed back before anything is appended after the failover resyncs; an id never issued stays unknown", async () => {
    const keys = new TenantStreamKeys(`lost-tail-${randomUUID().slice(0, 8)}`);
    const stream = new TenantEventStream(client, keys, { maxAgeMs: 60_000, minEvents: 100, maxEvents: 1_000 });
    const { tenant, master, replica } = await tenantWithReplica();
    const append = async () => {
      const appended = await stream.append(tenant, JSON.stringify({ n: randomUUID() }), undefined, {
        retryForMs: 30_000,
      });
      if (!("id" in appended)) throw new Error("refused");
      return appended.id;
    };
    const kept = [await append(), await append()];
    await eventually(
      () => onNode(replica, (node) => node.readonly().then(() => node.xlen(keys.events(tenant)))),
      (length) => length === 2,
      "the replica to hold the kept entries",
    );
    // The replica stops hearing its master, which acknowledges one more append and dies with it.
    cluster.freeze(replica);
    await onNode(master, (node) => node.call("CLIENT", "KILL", "TYPE", "replica"));
    const lost = await append();
    await cluster.kill(master);
    cluster.thaw(replica);
    await eventually(
      () => cluster.masterOf(keySlot(`{${tenant}}`)).catch(() => master),
      (port) => port === replica,
      "the replica to take over",
    );
    await cluster.waitUntilServing();
    const resolve = (id: string) => resolveCursor({ stream, db: undefined as never }, tenant, id, "lastEventId");
    expect(await stream.readAfter(tenant, kept[1]!, 10)).toEqual([]);
    expect(await resolve(kept[1]!)).toEqual({ from: "after", id: kept[1] });
    expect(await resolve(lost)).toEqual({ from: "resync", reason: "lost" });
    // An id from the future was never issued, failover or not.
    await expect(resolve(`${Date.now() + 3_600_000}-0`)).rejects.toThrow("event not found");
    // Once the promoted replica appends, the hole is marked and the lost id resyncs as before.
    await append();
    expect(await resolve(lost)).toEqual({ from: "resync", reason: "trimmed" });
  });

  it("an append sent while its slot has no master for longer than the client retries is sent again until it lands", async () => {
    // A client that gives up after about a second (Pulse's waits ~30 s): the outage below outlasts it.
    const impatient = new Cluster(
      cluster.target.cluster.nodes.map((n) => ({ ...n })),
      {
        redisOptions: { maxRetriesPerRequest: null },
        maxRedirections: 3,
        retryDelayOnClusterDown: 300,
        retryDelayOnFailover: 300,
        slotsRefreshInterval: 1_000,
      },
    );
    impatient.on("error", () => {});
    try {
      const keys = new TenantStreamKeys(`outage-${randomUUID().slice(0, 8)}`);
      const stream = new TenantEventStream(impatient, keys, { maxAgeMs: 60_000, minEvents: 100, maxEvents: 1_000 });
      const { tenant, master, replica } = await tenantWithReplica();
      await stream.append(tenant, JSON.stringify({ n: "before" }));
      const attempts = vi.spyOn(
        impatient as unknown as { pulseAppend(...args: unknown[]): Promise<unknown> },
        "pulseAppend",
      );
      // The master dies and its replica cannot take over until it is thawed.
      cluster.freeze(replica);
      await cluster.kill(master);
      const appended = stream.append(tenant, JSON.stringify({ n: "during" }), undefined, { retryForMs: 60_000 });
      await eventually(
        () => attempts.mock.calls.length,
        (n) => n >= 2,
        "the client to give up once and the append to be sent again",
      );
      cluster.thaw(replica);
      const { id } = (await appended) as { id: string };
      expect((await stream.readAfter(tenant, "0-0", 10)).map((e) => [e.id, e.event as unknown]).at(-1)).toEqual([
        id,
        { n: "during" },
      ]);
    } finally {
      impatient.disconnect();
    }
  });
});

/** A connection to one node of the cluster, for what only that node answers (its own clients, a replica's copy). */
async function onNode<T>(port: number, use: (node: Redis) => Promise<T>): Promise<T> {
  const node = new Redis({ host: "127.0.0.1", port, maxRetriesPerRequest: 0, retryStrategy: () => null });
  node.on("error", () => {});
  try {
    return await use(node);
  } finally {
    node.disconnect();
  }
}

/** A new tenant id whose slot's master still has a replica to promote (tests here kill masters). */
async function tenantWithReplica(): Promise<{ tenant: string; master: number; replica: number }> {
  for (;;) {
    const tenant = `t-${randomUUID()}`;
    const master = await cluster.masterOf(keySlot(`{${tenant}}`));
    const replica = await cluster.replicaOf(master);
    if (replica !== null) return { tenant, master, replica };
  }
}
