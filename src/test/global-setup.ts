import type { TestProject } from "vitest/node";
import { PrivateRedisServer } from "../server/private-redis-server";
import { acquireTestServer } from "./shared-test-server";

/**
 * One private redis-server for the whole run (shared by every project), on a free loopback
 * port, so tests never touch a Redis the machine uses for anything else. Test files isolate
 * themselves with their own key prefix (see `src/test/harness.ts`); a test that kills
 * Redis starts one of its own. The test Redis Cluster is `cluster-global-setup.ts`'s.
 */
export default async function setup(project: TestProject) {
  const { server, release } = await acquireTestServer("redis", () => new PrivateRedisServer().start());
  project.provide("redisUrl", server.url);
  project.provide("databaseUrl", process.env.DATABASE_URL ?? "");
  return release;
}

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
    /** The test cluster's nodes, `127.0.0.1:port,…` (REDIS_CLUSTER_NODES's form); only in projects with the cluster setup. */
    redisClusterNodes: string;
    /** Set when the run should also exercise PostgreSQL (`.ci/run` sets it where one is reachable). */
    databaseUrl: string;
  }
}
