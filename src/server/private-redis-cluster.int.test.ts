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
    let tenant = "";
    let replica: number | null = null;
    while (replica === null) {
      tenant = `t-${randomUUID()}`;
      replica = await cluster.replicaOf(await cluster.masterOf(keySlot(`{${tenant}}`)));
    }
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
      let tenant = "";
      let master = 0;
      let replica: number | null = null;
      while (replica === null) {
        tenant = `t-${randomUUID()}`;
        master = await cluster.masterOf(keySlot(`{${tenant}}`));
        replica = await cluster.replicaOf(master);
      }
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
