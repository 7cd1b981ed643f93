import { Emitter } from "@socket.io/redis-emitter";
import { Redis } from "ioredis";
import type { EventBus } from "../server/events/bus";
import type { PublishOne } from "./open-loop";
import { benchEvent, stampedEvent, tenantChannel, type BenchTenant, type Design, type RunTarget } from "./workload";

/** How one design's events leave a worker process, for whichever tenants a scenario has. */
export interface EventPublisher {
  /** Publishes event `seq` for run `run` of tenant `tenant` of `tenants`. */
  forTenants(tenants: readonly BenchTenant[]): PublishOne;
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
    forTenants: (tenants) => async (seq, tenant, run, intendedUs) => (await bus.publish(benchEvent(seq, runOf(tenants, tenant, run), intendedUs))) !== null,
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
 * Seed 000's worker side: `@socket.io/redis-emitter` publishes `io.to(room).emit(...)` on
 * the adapter's Redis channel, where every Socket.IO server picks it up.
 *
 * @see https://socket.io/docs/v4/redis-adapter/#emitter
 */
export function socketIoPublisher(redisUrl: string): EventPublisher {
  const redis = new Redis(redisUrl);
  const emitter = new Emitter(redis);
  const stamp = stamper();
  return {
    forTenants: (tenants) => (seq, tenant, run, intendedUs) => {
      const target = runOf(tenants, tenant, run);
      const event = stamp(target, seq, intendedUs);
      emitter.to(`tenant:${target.tenantId}`).emit(event.type as string, event);
      return true;
    },
    close: async () => void redis.disconnect(),
  };
}

/** The SSE and plain-ws designs' worker side: one PUBLISH of the event's JSON on its tenant's channel. */
export function pubSubPublisher(design: "sse" | "ws-floor", redisUrl: string): EventPublisher {
  const redis = new Redis(redisUrl);
  const stamp = stamper();
  return {
    forTenants: (tenants) => async (seq, tenant, run, intendedUs) => {
      const target = runOf(tenants, tenant, run);
      await redis.publish(tenantChannel(design, target.tenantId), JSON.stringify(stamp(target, seq, intendedUs)));
      return true;
    },
    close: async () => void redis.disconnect(),
  };
}

export function competitorPublisher(design: Exclude<Design, "pulse">, redisUrl: string): EventPublisher {
  return design === "socket-io" ? socketIoPublisher(redisUrl) : pubSubPublisher(design, redisUrl);
}
