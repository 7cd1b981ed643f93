import type { Cluster, Redis } from "ioredis";
import { z } from "zod";
import type { Logger } from "../logger";

/** What a revocation names: one session (logout), every session of a user (removed), or one share link (stopped). */
const revocationSchema = z.object({
  kind: z.enum(["session", "user", "share"]),
  id: z.string().min(1).max(200),
});

/** A session, a user's every session, or a share link that stopped being valid: open connections holding it end. */
export type Revocation = z.infer<typeof revocationSchema>;

/** What revoking services need of the channel: sending, once the database change has committed. */
export interface RevocationPublisher {
  publish(revocation: Revocation): Promise<void>;
}

/** Who reacts to revocations: each HTTP server's connection registry. */
export interface RevocationListener {
  revoked(revocation: Revocation): void;
  /** The channel is subscribed (again): revocations published while it was not may have been missed. */
  resubscribed(): void;
}

export interface RevocationChannelOptions {
  /** Sends revocations; any command connection of the process. */
  publisher: Redis | Cluster;
  /** Opens the connection that listens, on the first `listen`, so processes serving no WebSockets never open it. */
  subscriber: () => Redis | Cluster;
  /** One global channel: revocations are rare, so a plain PUBLISH reaching every node of a cluster costs nothing. */
  channel: string;
  logger: Logger;
}

/**
 * Revocations travel between processes on a Redis pub/sub channel, so that a logout on one
 * replica ends that session's open WebSockets on every replica at once, without any
 * process re-reading every session on a timer. Pub/sub loses what is published while a
 * subscriber is disconnected: listeners hear `resubscribed` after every (re)subscription and
 * re-check their connections in the database then.
 *
 * @see https://redis.io/docs/latest/develop/interact/pubsub/#delivery-semantics
 */
export class RevocationChannel implements RevocationPublisher {
  private readonly listeners = new Set<RevocationListener>();
  private subscriber?: Redis | Cluster;

  constructor(private readonly options: RevocationChannelOptions) {}

  /**
   * Tells every process. A failure is logged, not thrown: the database change is made and
   * refuses the revoked token at once over HTTP; open sockets then end at the next resubscribe
   * or safety check.
   */
  async publish(revocation: Revocation): Promise<void> {
    try {
      await this.options.publisher.publish(this.options.channel, JSON.stringify(revocation));
    } catch (err) {
      this.options.logger.warn(
        { err, kind: revocation.kind },
        "could not publish a revocation; open connections end at the next safety check",
      );
    }
  }

  /** Hears every revocation from now on, until the returned function is called. */
  listen(listener: RevocationListener): () => void {
    this.listeners.add(listener);
    this.subscriber ??= this.open();
    return () => this.listeners.delete(listener);
  }

  private open(): Redis | Cluster {
    const subscriber = this.options.subscriber();
    subscriber.on("message", (channel: string, message: string) => {
      if (channel === this.options.channel) this.deliver(message);
    });
    // Subscribing on every "ready" (not leaving it to ioredis's auto-resubscribe) tells when the subscription is live again.
    subscriber.on("ready", () => void this.subscribe(subscriber));
    if (subscriber.status === "ready") void this.subscribe(subscriber);
    return subscriber;
  }

  private async subscribe(subscriber: Redis | Cluster): Promise<void> {
    try {
      await subscriber.subscribe(this.options.channel);
    } catch (err) {
      this.options.logger.warn(
        { err },
        "could not subscribe to revocations; retrying when the connection is ready again",
      );
      return;
    }
    for (const listener of this.listeners) listener.resubscribed();
  }

  private deliver(message: string): void {
    let revocation: Revocation;
    try {
      revocation = revocationSchema.parse(JSON.parse(message));
    } catch (err) {
      this.options.logger.warn({ err, bytes: message.length }, "ignored a malformed message on the revocation channel");
      return;
    }
    for (const listener of this.listeners) listener.revoked(revocation);
  }
}
