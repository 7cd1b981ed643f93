import type { TestProject } from "vitest/node";
import { PrivateRedisCluster } from "../server/private-redis-cluster";
import { acquireTestServer } from "./shared-test-server";

/**
 * The test Redis Cluster (three masters, one replica each, on free loopback ports), for the
 * projects whose files run on it (see vitest.config.ts): started only when one of their
 * files is in the run, once for all of them. A test that kills nodes starts a cluster of its own.
 */
export default async function setup(project: TestProject) {
  const { server, release } = await acquireTestServer("cluster", () => new PrivateRedisCluster().start());
  project.provide("redisClusterNodes", server.nodesList);
  return release;
}
