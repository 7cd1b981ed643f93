import type { TestProject } from "vitest/node";
import { PrivateRedisServer } from "../server/redis";

/**
 * One private redis-server for the whole run, on a free loopback port, so tests never touch
 * a Redis the machine uses for anything else. Test files isolate themselves with their own
 * key prefix (see `src/test/harness.ts`).
 */
export default async function setup(project: TestProject) {
  const redis = await new PrivateRedisServer().start();
  project.provide("redisUrl", redis.url);
  project.provide("databaseUrl", process.env.DATABASE_URL ?? "");
  return async () => {
    await redis.stop();
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
    /** Set when the run should also exercise PostgreSQL (`.ci/run` sets it where one is reachable). */
    databaseUrl: string;
  }
}
