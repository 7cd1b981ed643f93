import type { Cluster, Redis } from "ioredis";
import type { TenantStreamKeys } from "./event-stream";

export interface TenantWakeSubscriptionsOptions {
  /**
   * A connection of its own in subscriber mode; on a cluster, a `Cluster` created with
   * `shardedSubscribers: true`, which keeps one subscriber per master.
   */
  redis: Redis | Cluster;
  keys: TenantStreamKeys;
  /** A wake message of a tenant whose channel is listened to. */
  onWake(message: string): void;
  /**
   * Subscriptions were made again after a subscriber connection dropped: what rang while
   * it was down is lost, so every listened tenant's stream may hold unannounced entries.
   */
  onResubscribed(): void;
}

/**
 * The tenants' sharded wake channels one process listens to: SSUBSCRIBE when the reader
 * starts following a tenant, SUNSUBSCRIBE when it stops, so Redis sends a process only the
 * wakes of tenants it serves. Calls go out on one connection per shard in the order they
 * were made, so a quick unlisten and listen of a tenant leave it subscribed, and the reverse
 * leaves it not. ioredis subscribes again by itself after a reconnect.
 *
 * @see https://redis.io/docs/latest/commands/ssubscribe/
 * @see https://github.com/redis/ioredis#sharded-pubsub
 */
export class TenantWakeSubscriptions {
  constructor(private readonly options: TenantWakeSubscriptionsOptions) {
    const { redis } = options;
    redis.on("smessage", (_channel: string, message: string) => options.onWake(message));
    // A standalone connection subscribes again before it reports ready; a cluster's
    // subscriber group reports once it has replaced a dropped shard subscriber.
    redis.on(redis.isCluster ? "subscribersReady" : "ready", () => options.onResubscribed());
  }

  /** Listens to a tenant's wakes; resolves once Redis has confirmed the subscription. */
  async listen(tenantId: string): Promise<void> {
    await this.options.redis.ssubscribe(this.options.keys.wake(tenantId));
  }

  /** Stops listening to a tenant's wakes. */
  unlisten(tenantId: string): void {
    this.options.redis.sunsubscribe(this.options.keys.wake(tenantId)).catch(() => {
      // Only when the connection is gone for good (shutdown), taking the subscription with it.
    });
  }
}
