import { Emitter } from "@socket.io/redis-emitter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { Queue, type Job } from "bullmq";
import { Redis } from "ioredis";
import pg from "pg";
import { Server } from "socket.io";
import type { EventBus } from "../src/server/events/bus";
import type { PublishOne } from "./open-loop";
import {
  benchEvent,
  stampedEvent,
  tenantChannel,
  type BenchTenant,
  type Design,
  SOCKET_IO_STREAMS_OPTIONS,
  type RunTarget,
  type SocketIoAdapter,
  type SocketIoPublish,
} from "./workload";

/** How one design's events leave a worker process, for whichever tenants a scenario has. */
export interface EventPublisher {
  /** Prepares the scenario's runs; the result publishes event `seq` for run `run` of tenant `tenant` of `tenants`. */
  forTenants(tenants: readonly BenchTenant[]): Promise<PublishOne>;
  close(): Promise<void>;
}

function runOf(tenants: readonly BenchTenant[], tenant: number, run: number): RunTarget {
  const target = tenants[tenant]?.runs[run];
  if (!target) throw new Error(`no run ${run} for tenant ${tenant}`);
  return target;
}

/** Pulse as a worker publishes: `EventBus.publish` (validate, database, Redis stream). */
export function pulsePublisher(bus: EventBus): EventPublisher {
  return {
    forTenants: async (tenants) => async (seq, tenant, run, intendedUs) =>
      (await bus.publish(benchEvent(seq, runOf(tenants, tenant, run), intendedUs))) !== null,
    close: async () => {},
  };
}

/** Stamps `seq` and `at` as Pulse's bus does, with a counter per run. */
function stamper() {
  const counters = new Map<string, number>();
  return (target: RunTarget, seq: number, intendedUs: number) => {
    const counter = (counters.get(target.runId) ?? 0) + 1;
    counters.set(target.runId, counter);
    return stampedEvent(benchEvent(seq, target, intendedUs), counter);
  };
}

/**
 * Seed 000's worker side, as its bridge expects it: the agent's job reports through BullMQ
 * (`job.updateProgress`, a script that writes the job's hash and appends to the queue's
 * event stream), and the API process's QueueEvents bridge emits it to the tenant's room
 * (socket-io-server.ts). Every run is a job waiting in its role's queue, as a run is.
 *
 * @see https://docs.bullmq.io/guide/events
 */
export function socketIoBridgePublisher(redisUrl: string): EventPublisher {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queues = new Map<string, Queue>();
  const stamp = stamper();
  const queueOf = (name: string) => {
    let queue = queues.get(name);
    if (!queue) queues.set(name, (queue = new Queue(name, { connection })));
    return queue;
  };
  return {
    async forTenants(tenants) {
      const jobs = new Map<string, Job>();
      const runs = tenants.flatMap((t) => t.runs);
      for (const name of new Set(runs.map((r) => r.queue))) {
        const queued = runs.filter((r) => r.queue === name);
        const added = await queueOf(name).addBulk(
          queued.map((r) => ({
            name: r.agentRole,
            data: { tenantId: r.tenantId, runId: r.runId },
            opts: { jobId: r.jobId },
          })),
        );
        added.forEach((job, i) => jobs.set(queued[i]!.jobId, job));
      }
      return async (seq, tenant, run, intendedUs) => {
        const target = runOf(tenants, tenant, run);
        await jobs.get(target.jobId)!.updateProgress(stamp(target, seq, intendedUs));
        return true;
      };
    },
    async close() {
      await Promise.all([...queues.values()].map((queue) => queue.close()));
      connection.disconnect();
    },
  };
}

/**
 * Socket.IO fed its cheapest way (the bench's default): `@socket.io/redis-emitter`
 * publishes `io.to(room).emit(...)` from the worker straight onto the adapter's Redis
 * channel. One Redis hop, no BullMQ. With `persist` (`--socket-io-publish=emitter-postgres`),
 * each step and log event (not progress, which Pulse keeps in Redis) is first inserted into a
 * table of the same PostgreSQL database Pulse writes to (in a schema of its own), so "with
 * persistence" compares like for like with Pulse's publish.
 *
 * @see https://socket.io/docs/v4/redis-adapter/#emitter
 */
export function socketIoEmitterPublisher(redisUrl: string, persist: pg.Pool | null): EventPublisher {
  const redis = new Redis(redisUrl);
  const emitter = new Emitter(redis);
  const stamp = stamper();
  // A schema of its own: a table in Pulse's (public) would make Pulse's migrations refuse the
  // database as not empty when Socket.IO happens to be set up first.
  const ready = persist
    ?.query("CREATE SCHEMA IF NOT EXISTS socket_io")
    .then(() =>
      persist.query(
        "CREATE TABLE IF NOT EXISTS socket_io.run_event (run_id text NOT NULL, seq integer NOT NULL, type text NOT NULL, payload jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run_id, seq))",
      ),
    );
  return {
    forTenants: async (tenants) => {
      await ready;
      return async (seq, tenant, run, intendedUs) => {
        const target = runOf(tenants, tenant, run);
        const event = stamp(target, seq, intendedUs);
        // As Pulse's bus: steps and logs are rows; progress lives in Redis only.
        if (persist && event.type !== "agent:progress") {
          await persist.query("INSERT INTO socket_io.run_event (run_id, seq, type, payload) VALUES ($1, $2, $3, $4)", [
            target.runId,
            event.seq,
            event.type,
            JSON.stringify(event),
          ]);
        }
        emitter.to(`tenant:${target.tenantId}`).emit(event.type as string, event);
        return true;
      };
    },
    close: async () => {
      redis.disconnect();
      await persist?.end();
    },
  };
}

/**
 * Socket.IO on the Redis Streams adapter (the reconnect storm), fed its cheapest supported
 * way. `@socket.io/redis-emitter` does not reach this adapter: it PUBLISHes to the Redis
 * adapter's pub/sub channels, while this adapter reads broadcasts from its stream (and a
 * packet that never went through the stream has no offset to recover from). Socket.IO ships
 * no emitter for streams (its maintainer, socket.io-redis-streams-adapter#8: "we will have to
 * implement a custom emitter publishing to the Redis streams"); the way offered there is a
 * Socket.IO server with no listener and the same adapter in the worker, whose `io.to(room).emit`
 * is one XADD of the adapter's own entry. That keeps the event to one Redis write, as the
 * emitter's PUBLISH is, without the bench writing the adapter's internal format itself; the
 * cost it adds (the worker's adapter also reads the stream, every entry once) falls on the
 * worker, not on the server measured.
 *
 * @see https://github.com/socketio/socket.io-redis-streams-adapter/issues/8
 */
export function socketIoStreamsPublisher(redisUrl: string): EventPublisher {
  const redis = new Redis(redisUrl);
  const io = new Server({ adapter: createStreamsAdapter(redis, SOCKET_IO_STREAMS_OPTIONS) });
  const stamp = stamper();
  return {
    forTenants: async (tenants) => async (seq, tenant, run, intendedUs) => {
      const target = runOf(tenants, tenant, run);
      const event = stamp(target, seq, intendedUs);
      io.to(`tenant:${target.tenantId}`).emit(event.type as string, event);
      return true;
    },
    async close() {
      // `io.close()` expects a listener to close; the adapter is the only thing this server runs.
      await io.of("/").adapter.close();
      await redis.quit();
    },
  };
}

/**
 * The SSE and plain-ws designs' worker side, and single-node Socket.IO's in the storm: one
 * PUBLISH of the event's JSON on its tenant's channel.
 */
export function pubSubPublisher(design: Exclude<Design, "pulse">, redisUrl: string): EventPublisher {
  const redis = new Redis(redisUrl);
  const stamp = stamper();
  return {
    forTenants: async (tenants) => async (seq, tenant, run, intendedUs) => {
      const target = runOf(tenants, tenant, run);
      await redis.publish(tenantChannel(design, target.tenantId), JSON.stringify(stamp(target, seq, intendedUs)));
      return true;
    },
    close: async () => void redis.disconnect(),
  };
}

export function competitorPublisher(
  design: Exclude<Design, "pulse">,
  redisUrl: string,
  socketIo: SocketIoPublish,
  databaseUrl: string | null,
  socketIoAdapter: SocketIoAdapter,
): EventPublisher {
  if (design !== "socket-io") return pubSubPublisher(design, redisUrl);
  // `--socket-io-publish` picks among the Redis adapter's ways; the streams adapter has one.
  if (socketIoAdapter === "redis-streams") return socketIoStreamsPublisher(redisUrl);
  if (socketIoAdapter === "memory") return pubSubPublisher(design, redisUrl);
  if (socketIo === "bridge") return socketIoBridgePublisher(redisUrl);
  if (socketIo === "emitter") return socketIoEmitterPublisher(redisUrl, null);
  if (!databaseUrl) throw new Error("--socket-io-publish=emitter-postgres needs PostgreSQL (--database-url)");
  // As many connections as Pulse's worker pool would use by default.
  return socketIoEmitterPublisher(redisUrl, new pg.Pool({ connectionString: databaseUrl, max: 10 }));
}
