import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../test/harness";
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
});
