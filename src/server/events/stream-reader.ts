import type { Redis } from "ioredis";
import type { Logger } from "../logger";
import type { PulseMetrics } from "../metrics/pulse-metrics";
import { parseEntries, type StreamEntry, type TenantEventStream } from "./event-stream";
import { compareStreamIds, STREAM_ORIGIN } from "./schema";

export type EntryListener = (entries: StreamEntry[]) => void;

/**
 * Told that the tenant's stream is not the one the reader was following (Redis came back
 * without its data): entries nobody read yet are gone, so subscribers must resync. Entries
 * after `restartId` are delivered as usual.
 */
export type LostStreamListener = (restartId: string) => void;

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
  /** Reports followed tenants, fan-out lag and read errors; optional so the reader can be built alone. */
  metrics?: PulseMetrics;
  blockMs?: number;
  batchSize?: number;
}

interface TenantCursor {
  lastId: string;
  /** The first id of the stream being followed (null: none existed yet), to notice a new one. */
  genesis: string | null;
  listeners: Set<EntryListener>;
  lost: Map<EntryListener, LostStreamListener>;
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
  /** Set when the blocking connection (re)connects: the streams may be new ones since. */
  private recheck = false;
  private readonly blockMs: number;
  private readonly batchSize: number;

  constructor(private readonly options: TenantStreamReaderOptions) {
    this.blockMs = options.blockMs ?? 5_000;
    this.batchSize = options.batchSize ?? 512;
    // ioredis resends a blocked XREAD after reconnecting, so a Redis that lost its data need
    // not make the loop fail: every (re)connect is a reason to check the streams.
    options.blockingRedis.on("ready", () => {
      this.recheck = true;
      this.blockingClientId = undefined;
    });
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
  async subscribe(tenantId: string, listener: EntryListener, onLost?: LostStreamListener): Promise<StreamSubscription> {
    let cursor = this.tenants.get(tenantId);
    if (!cursor) {
      const { stream, controlRedis } = this.options;
      const [lastId, genesis] = await Promise.all([stream.lastId(tenantId), controlRedis.get(stream.keys.genesis(tenantId))]);
      // Another subscriber may have registered the tenant while we waited.
      cursor = this.tenants.get(tenantId) ?? { lastId, genesis, listeners: new Set(), lost: new Map() };
      if (!this.tenants.has(tenantId)) {
        this.tenants.set(tenantId, cursor);
        this.options.metrics?.readerTenants.set(this.tenants.size);
        this.interrupt();
      }
    }
    cursor.listeners.add(listener);
    if (onLost) cursor.lost.set(listener, onLost);
    const registered = cursor;
    return {
      startId: registered.lastId,
      unsubscribe: () => {
        registered.listeners.delete(listener);
        registered.lost.delete(listener);
        if (registered.listeners.size === 0 && this.tenants.get(tenantId) === registered) {
          this.tenants.delete(tenantId);
          this.options.metrics?.readerTenants.set(this.tenants.size);
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

  /**
   * Notices tenants whose stream is not the one being followed: its first id changed, or it
   * is gone, or it began after the last entry read. The cursor moves to the new stream's
   * end and the tenant's subscribers are told, so they resync rather than silently miss
   * what was appended and lost before anyone read it.
   */
  private async findLostStreams(): Promise<void> {
    const { stream, controlRedis, logger } = this.options;
    for (const [tenantId, cursor] of this.tenants) {
      const current = await controlRedis.get(stream.keys.genesis(tenantId));
      let lost: boolean;
      if (cursor.genesis !== null) lost = current !== cursor.genesis;
      else if (current !== null) lost = cursor.lastId !== STREAM_ORIGIN && compareStreamIds(current, cursor.lastId) > 0;
      // No marker: lost, unless a stream older than the marker is still there.
      else lost = cursor.lastId !== STREAM_ORIGIN && (await controlRedis.exists(stream.keys.events(tenantId))) === 0;
      if (lost) {
        const restartId = await stream.lastId(tenantId);
        logger.warn({ tenantId, lastId: cursor.lastId, restartId }, "stream reader: the tenant's stream was lost (Redis without its data); subscribers resync");
        cursor.lastId = restartId;
        for (const onLost of cursor.lost.values()) onLost(restartId);
      }
      cursor.genesis = current;
    }
  }

  private async run(): Promise<void> {
    const { blockingRedis, stream, logger, metrics } = this.options;
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
        if (this.recheck) {
          this.recheck = false;
          await this.findLostStreams();
        }
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
          if (metrics) {
            const now = Date.now();
            for (const entry of entries) metrics.observeReaderLag(entry.id, now);
          }
          for (const listener of cursor.listeners) listener(entries);
        }
      } catch (error) {
        if (!this.running) break;
        // The connection id changes when ioredis reconnects.
        this.blockingClientId = undefined;
        failures += 1;
        metrics?.readerErrors.inc();
        this.recheck = true;
        logger.warn({ err: error, failures }, "stream reader: XREAD failed, retrying");
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** failures, 2_000)));
      }
    }
  }
}
