import type { TestProject } from "vitest/node";
import { PrivateRedisCluster } from "../server/private-redis-cluster";
import { PrivateRedisServer } from "../server/redis";

/**
 * One private redis-server and one private Redis Cluster (three masters, one replica each)
 * for the whole run, on free loopback ports, so tests never touch a Redis the machine uses
 * for anything else. Test files isolate themselves with their own key prefix (see
 * `src/test/harness.ts`); a test that kills nodes starts a cluster of its own.
 */
export default async function setup(project: TestProject) {
  const [redis, cluster] = await Promise.allSettled([new PrivateRedisServer().start(), new PrivateRedisCluster().start()]);
  const stop = async () => {
    if (redis.status === "fulfilled") await redis.value.stop();
    if (cluster.status === "fulfilled") await cluster.value.stop();
  };
  if (redis.status === "rejected" || cluster.status === "rejected") {
    await stop();
    throw redis.status === "rejected" ? redis.reason : (cluster as PromiseRejectedResult).reason;
  }
  project.provide("redisUrl", redis.value.url);
  project.provide("redisClusterNodes", cluster.value.nodesList);
  project.provide("databaseUrl", process.env.DATABASE_URL ?? "");
  return stop;
}

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
    /** The test cluster's nodes, `127.0.0.1:port,…` (REDIS_CLUSTER_NODES's form). */
    redisClusterNodes: string;
    /** Set when the run should also exercise PostgreSQL (`.ci/run` sets it where one is reachable). */
    databaseUrl: string;
  }
}
