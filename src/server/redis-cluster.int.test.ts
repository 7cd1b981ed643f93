import { createTRPCClient, httpBatchLink } from "@trpc/client";
import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CapturedLog } from "../test/captured-log";
import {
  AgentRemote,
  connectClient,
  eventually,
  fastDemoAgents,
  openTestDatabase,
  registerTenant,
  startTestPulse,
  testClusterTarget,
  type TestPulse,
} from "../test/harness";
import { AgentQueues, queuePrefix } from "./agents/queue";
import { TRPC_PATH } from "./http-server";
import { createLogger } from "./logger";
import { connectRedis, RedisIncompatibleError, type RedisTarget } from "./redis";
import type { AppRouter } from "./trpc/root";

/**
 * Pulse on the test Redis Cluster (three masters, one replica each): registration and
 * sign-in (the login throttle), a setup chain through BullMQ, a watched run and a cancelled
 * one. Every command any cluster client of this process sends is watched, and the test
 * fails on any that Redis refused for its keys' slots (CROSSSLOT) or that ended in a
 * redirection the client did not follow (MOVED, ASK).
 *
 * Subscriptions follow one tenant only: the stream reader's one XREAD over several tenants'
 * streams spans slots until reads are grouped by slot (issue #16, per-tenant routing).
 */

/** Refusals that say a command's keys were not where the client sent them. */
const SLOT_ERRORS = /CROSSSLOT|MOVED|\bASK\b|same slots allocation group/;

const refused: { command: string; error: string }[] = [];
let commandsSent = 0;
const sendCommand = Cluster.prototype.sendCommand;

let app: TestPulse;
const log = new CapturedLog();
const holder = new AgentRemote("holder");

beforeAll(async () => {
  // Every cluster client here, BullMQ's duplicates included, is a Cluster: watch them all.
  Cluster.prototype.sendCommand = function (this: Cluster, ...args: Parameters<Cluster["sendCommand"]>) {
    const [command] = args;
    commandsSent += 1;
    (command as unknown as { promise: Promise<unknown> }).promise.catch((err: unknown) => {
      refused.push({
        command: (command as unknown as { name: string }).name,
        error: err instanceof Error ? err.message : String(err),
      });
    });
    return sendCommand.apply(this, args);
  };
  app = await startTestPulse({
    redis: testClusterTarget(),
    agents: [...fastDemoAgents(), holder.definition],
    logger: createLogger("warn", "pulse", log),
  });
});

afterAll(async () => {
  await app?.close();
  Cluster.prototype.sendCommand = sendCommand;
});

const anonymous = () => createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: `${app.baseUrl}${TRPC_PATH}` })] });

describe("Pulse on a Redis Cluster", () => {
  it("registers, signs in, runs a chain through BullMQ, watches and cancels runs, with no command refused for its slots", async () => {
    // Registration: the login throttle's address count, the tenant's setup chain queued.
    const tenant = await registerTenant(app);
    const other = await registerTenant(app);
    // Sign-in: a wrong password is counted, a right one clears the account's count.
    await expect(
      anonymous().auth.login.mutate({ email: tenant.email, password: "not the password" }),
    ).rejects.toThrow();
    const signedIn = await anonymous().auth.login.mutate({ email: tenant.email, password: "correct horse battery" });
    expect(signedIn.user.tenantId).toBe(tenant.tenantId);

    const client = connectClient(app, tenant.token);
    const otherClient = connectClient(app, other.token);
    try {
      for (const c of [client, otherClient]) {
        await eventually(
          () => c.trpc.agent.list.query({ agentRole: "context-file-writer" }),
          (list) => list.runs[0]?.status === "completed",
          "a tenant's setup chain to complete",
        );
      }

      // One tenant watched live over the WebSocket while a run of it goes and is cancelled.
      const received: { data: { type: string; runId?: string } }[] = [];
      const sub = client.trpc.agent.onStatus.subscribe(
        {},
        { onData: (item) => received.push(item as unknown as (typeof received)[number]) },
      );
      try {
        await eventually(
          () => received.length,
          (n) => n > 0,
          "the snapshot",
        );
        const run = await app.pulse.services.runs.start(tenant.tenantId, holder.role);
        holder.tick(2);
        await eventually(
          () => received.filter((e) => e.data.type === "agent:progress" && e.data.runId === run.id).length,
          (n) => n >= 2,
          "the held run's progress over the WebSocket",
        );
        await client.trpc.agent.cancel.mutate({ runId: run.id });
        await eventually(
          () => received,
          (r) => r.some((e) => e.data.type === "agent:cancelled" && e.data.runId === run.id),
          "the cancellation over the WebSocket",
        );
        // The worker hears the cancel message and lets go of the job.
        const inspector = connectRedis(testClusterTarget(), `${app.prefix}:inspect`);
        const queues = new AgentQueues({ connection: inspector, prefix: app.prefix, attempts: 1 });
        try {
          await eventually(
            async () => (await queues.get(holder.role).getJob(run.id))?.getState(),
            (state) => state !== "active",
            "the worker to drop the cancelled job",
          );
        } finally {
          await queues.close();
          inspector.disconnect();
        }
      } finally {
        sub.unsubscribe();
      }

      // A run cancelled while it waits is removed from its queue.
      const waiting = await app.pulse.services.runs.start(other.tenantId, holder.role, {});
      await otherClient.trpc.agent.cancel.mutate({ runId: waiting.id });
      holder.finish();
    } finally {
      await client.close();
      await otherClient.close();
    }

    expect(await app.pulse.health.report()).toEqual({ status: "ok", reasons: [] });
    expect(commandsSent).toBeGreaterThan(100);
    expect(refused.filter((r) => SLOT_ERRORS.test(r.error))).toEqual([]);
    expect(log.lines.filter((l) => SLOT_ERRORS.test(JSON.stringify(l)))).toEqual([]);
    expect(log.errors()).toEqual([]);
  });

  it("keeps each queue's keys in one slot of its own, apart from the tenants' keys", async () => {
    const redis = connectRedis(testClusterTarget(), `${app.prefix}:slots`);
    try {
      const roles = ["client-researcher", "competitor-researcher", "context-file-writer", holder.role];
      const slotOf = (key: string) => redis.cluster("KEYSLOT", key) as Promise<number>;
      const slots = await Promise.all(
        roles.map(async (role) => {
          const prefix = queuePrefix(app.prefix, role);
          const [wait, meta, job] = await Promise.all([
            slotOf(`${prefix}:${role}:wait`),
            slotOf(`${prefix}:${role}:meta`),
            slotOf(`${prefix}:${role}:some-job-id`),
          ]);
          expect(new Set([wait, meta, job]).size).toBe(1);
          return wait;
        }),
      );
      expect(new Set(slots).size).toBe(roles.length);
    } finally {
      redis.disconnect();
    }
  });
});

describe("a Redis of the wrong kind", () => {
  /** What starting Pulse on `redis` throws. */
  async function startFailure(redis: RedisTarget): Promise<unknown> {
    const database = await openTestDatabase("pglite");
    try {
      const app = await startTestPulse({ database, redis, runWorkers: true });
      await app.close();
      return null;
    } catch (error) {
      return error;
    } finally {
      await database.close();
    }
  }

  it("stops a standalone client pointed at a cluster node with one line naming REDIS_CLUSTER_NODES", async () => {
    const [node] = inject("redisClusterNodes").split(",");
    const error = await startFailure({ url: `redis://${node}` });
    expect(error).toBeInstanceOf(RedisIncompatibleError);
    expect((error as Error).message).toBe(
      `REDIS_URL points at a Redis Cluster node (${node}); set REDIS_CLUSTER_NODES to the cluster's nodes instead`,
    );
  });

  it("stops a cluster client whose seed node is a standalone Redis with one line naming REDIS_URL", async () => {
    const { port } = new URL(inject("redisUrl"));
    const error = await startFailure({ cluster: { nodes: [{ host: "127.0.0.1", port: Number(port) }] } });
    expect(error).toBeInstanceOf(RedisIncompatibleError);
    expect((error as Error).message).toBe(
      `REDIS_CLUSTER_NODES lists 127.0.0.1:${port}, which is not in cluster mode; set REDIS_URL for a standalone Redis`,
    );
  });
});
