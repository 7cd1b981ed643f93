import { randomUUID } from "node:crypto";
import keySlot from "cluster-key-slot";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
      await eventually(() => replicaClient.get("{chaos}:kept"), (v) => v === "yes", "the replica to have the write");
    } finally {
      replicaClient.disconnect();
    }

    await cluster.kill(before);
    const after = await eventually(() => cluster.masterOf(slot).catch(() => before), (port) => port !== before, "the replica to take over the slot");
    expect(after).toBe(itsReplica);
    await cluster.waitUntilServing();
    expect(await eventually(() => client.get("{chaos}:kept").catch(() => null), (v) => v === "yes", "the key through the promoted replica")).toBe("yes");
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
    await eventually(() => cluster.masterOf(keySlot(`{${tenant}}`)), (port) => port === replica, "the replica to take over");
    const first = await append();
    const [ms, seq] = first.split("-");
    const justBefore = seq === "0" ? `${Number(ms) - 1}-18446744073709551615` : `${ms}-${Number(seq) - 1}`;
    expect(await client.get(keys.trimmed(tenant))).toBe(justBefore);
    for (const id of before) expect(await stream.isBehindRetention(tenant, id)).toBe(true);
    expect(await stream.isBehindRetention(tenant, first)).toBe(false);
    // An id of a lost tail (acknowledged by the old master, never replicated): a resync, not NOT_FOUND.
    const lostId = nextStreamId(before[1]!);
    expect(await resolveCursor({ stream, db: undefined as never }, tenant, lostId, "lastEventId")).toEqual({ from: "resync", reason: "trimmed" });
    // The next append is on the same node: nothing more is marked.
    await append();
    expect(await client.get(keys.trimmed(tenant))).toBe(justBefore);
  });
});
