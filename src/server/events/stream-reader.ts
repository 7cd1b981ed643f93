import type { Redis } from "ioredis";
import type { Logger } from "../logger";
import { parseEntries, type StreamEntry, type TenantEventStream } from "./event-stream";

export type EntryListener = (entries: StreamEntry[]) => void;

export interface StreamSubscription {
  /** Every entry after this id reaches the listener; replay up to it from the stream. */
  startId: string;
  unsubscribe(): void;
}

export interface TenantStreamReaderOptions {
  /** A connection of the reader's own: XREAD BLOCK holds it. */
  blockingRedis: Redis;
  /** A second connection, used to wake the blocked read when the set of streams changes. */
  controlRedis: Redis;
  stream: TenantEventStream;
  logger: Logger;
  blockMs?: number;
  batchSize?: number;
}

interface TenantCursor {
  lastId: string;
  listeners: Set<EntryListener>;
}

/**
 * The one Redis reader of an API process. It blocks on XREAD over the streams of every
 * tenant that has a local subscriber and fans each batch out in memory, so a subscriber
 * costs a Set entry, never a Redis connection.
 */
export class TenantStreamReader {
  private readonly tenants = new Map<string, TenantCursor>();
  private running = false;
  private loop?: Promise<void>;
  private blockingClientId?: number;
  private wake?: () => void;
  /** Bumped whenever the set of tenants changes; the loop notes which one its read uses. */
  private generation = 0;
  private readGeneration = -1;
  private reading = false;
  private readonly blockMs: number;
  private readonly batchSize: number;

  constructor(private readonly options: TenantStreamReaderOptions) {
    this.blockMs = options.blockMs ?? 5_000;
    this.batchSize = options.batchSize ?? 512;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.interrupt();
    await this.loop;
  }

  /** Number of tenants with at least one local subscriber. */
  get tenantCount(): number {
    return this.tenants.size;
  }

  /**
   * Registers a listener for a tenant's new entries. The returned `startId` is fixed before
   * this resolves: entries after it are delivered live, entries up to it are the caller's
   * to replay, so nothing falls between the two.
   */
  async subscribe(tenantId: string, listener: EntryListener): Promise<StreamSubscription> {
    let cursor = this.tenants.get(tenantId);
    if (!cursor) {
      const lastId = await this.options.stream.lastId(tenantId);
      // Another subscriber may have registered the tenant while we waited.
      cursor = this.tenants.get(tenantId) ?? { lastId, listeners: new Set() };
      if (!this.tenants.has(tenantId)) {
        this.tenants.set(tenantId, cursor);
        this.interrupt();
      }
    }
    cursor.listeners.add(listener);
    const registered = cursor;
    return {
      startId: registered.lastId,
      unsubscribe: () => {
        registered.listeners.delete(listener);
        if (registered.listeners.size === 0 && this.tenants.get(tenantId) === registered) {
          this.tenants.delete(tenantId);
          this.interrupt();
        }
      },
    };
  }

  /**
   * Wakes the loop: from its idle wait, or from a blocked XREAD via CLIENT UNBLOCK. The
   * unblock travels on another connection and may overtake the XREAD it is meant for, so it
   * is repeated until the loop has started a read that includes the change.
   */
  private interrupt(): void {
    const wanted = ++this.generation;
    this.wake?.();
    const unblock = (attempt: number) => {
      if (!this.running || this.readGeneration >= wanted || attempt > 20) return;
      if (this.reading && this.blockingClientId !== undefined) {
        this.options.controlRedis.client("UNBLOCK", this.blockingClientId).catch(() => {});
      }
      setTimeout(() => unblock(attempt + 1), 10 * (attempt + 1)).unref();
    };
    unblock(0);
  }

  private async run(): Promise<void> {
    const { blockingRedis, stream, logger } = this.options;
    let failures = 0;
    while (this.running) {
      if (this.tenants.size === 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if (this.tenants.size > 0 || !this.running) resolve();
        });
        this.wake = undefined;
        continue;
      }
      try {
        this.blockingClientId ??= Number(await blockingRedis.client("ID"));
        this.readGeneration = this.generation;
        const ids = [...this.tenants.keys()];
        const keys = ids.map((t) => stream.keys.events(t));
        const cursors = ids.map((t) => this.tenants.get(t)!.lastId);
        this.reading = true;
        const result = (await blockingRedis
          .xread("COUNT", this.batchSize, "BLOCK", this.blockMs, "STREAMS", ...keys, ...cursors)
          .finally(() => (this.reading = false))) as [string, [string, string[]][]][] | null;
        failures = 0;
        if (!result) continue;
        for (const [key, raw] of result) {
          const index = keys.indexOf(key);
          const cursor = this.tenants.get(ids[index]!);
          const entries = parseEntries(raw);
          if (!cursor || entries.length === 0) continue;
          cursor.lastId = entries.at(-1)!.id;
          for (const listener of cursor.listeners) listener(entries);
        }
      } catch (error) {
        if (!this.running) break;
        // The connection id changes when ioredis reconnects.
        this.blockingClientId = undefined;
        failures += 1;
        logger.warn({ err: error, failures }, "stream reader: XREAD failed, retrying");
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** failures, 2_000)));
      }
    }
  }
}
