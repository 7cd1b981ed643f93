import type { RedisClient } from "../redis";
import type { Logger } from "../logger";
import type { PulseMetrics } from "../metrics/pulse-metrics";
import { parseEntries, wakeCarried, wakeTenant, type StreamEntry, type TenantEventStream } from "./event-stream";
import { compareStreamIds, STREAM_ORIGIN } from "./schema";

/**
 * What the reader hands a tenant's entries to (a feed's live part). An object with
 * methods rather than callbacks: an idle subscriber then costs the reader one Set entry.
 */
export interface StreamSubscriber {
  /** The tenant's next entries, in stream order. */
  receive(entries: StreamEntry[]): void;
  /**
   * The tenant's stream is not the one the reader was following (Redis came back without
   * its data): entries nobody read yet are gone, so the subscriber must resync. Entries
   * after `restartId` are delivered as usual.
   */
  lost(restartId: string): void;
}

export interface TenantStreamReaderOptions {
  /** A connection of the reader's own for its reads, so they never queue behind other commands. */
  readRedis: RedisClient;
  /** A connection in subscriber mode, for the wake channel. */
  wakeRedis: RedisClient;
  /** For the reader's occasional lookups (stream markers). */
  controlRedis: RedisClient;
  stream: TenantEventStream;
  logger: Logger;
  /** Reports followed tenants, fan-out lag and read errors; optional so the reader can be built alone. */
  metrics?: PulseMetrics;
  /**
   * How often every followed stream is read whether or not it rang (default 1 s): the bound
   * on how late an event whose wake was lost (a dropped subscriber connection) arrives.
   */
  sweepMs?: number;
  batchSize?: number;
}

interface TenantCursor {
  lastId: string;
  /** The first id of the stream being followed (null: none existed yet), to notice a new one. */
  genesis: string | null;
  subscribers: Set<StreamSubscriber>;
}

/**
 * The one Redis reader of an API process. Every append rings a wake channel with its
 * tenant's id and, mostly, the entry and the id before it: an entry that follows the
 * reader's cursor is delivered straight from its wake, with no read at all. Otherwise the
 * reader reads the followed streams that rang, from where it left each. Either way it fans
 * each batch out in memory, so a subscriber costs a Set entry, never a Redis connection,
 * and a read costs the tenants with news, not every tenant followed. The streams stay the
 * record: every `sweepMs` all of them are read anyway, and a (re)connect reads all at
 * once, so a lost wake delays an event, never loses it.
 */
export class TenantStreamReader {
  private readonly tenants = new Map<string, TenantCursor>();
  /** Entries taken from wakes in this turn of the event loop, by tenant, to deliver at its end. */
  private carried = new Map<TenantCursor, StreamEntry[]>();
  /** Followed tenants whose stream may hold entries the reader has not read. */
  private readonly dirty = new Set<string>();
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private lastSweepAt = 0;
  /** Bumped whenever the read connection closes: a read that straddles one is not trusted. */
  private connection = 0;
  /** Set when the read connection (re)connects: the streams may be new ones since. */
  private recheck = false;
  private readonly sweepMs: number;
  private readonly batchSize: number;

  constructor(private readonly options: TenantStreamReaderOptions) {
    this.sweepMs = options.sweepMs ?? 1_000;
    this.batchSize = options.batchSize ?? 512;
    options.readRedis.on("close", () => (this.connection += 1));
    options.readRedis.on("ready", () => {
      this.recheck = true;
      this.readAll();
    });
    // Wakes published while the subscriber connection was down are gone: read everything.
    options.wakeRedis.on("ready", () => this.readAll());
    options.wakeRedis.on("message", (_channel: string, message: string) => this.rang(message));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.options.wakeRedis.subscribe(this.options.stream.keys.wake()).catch((err: unknown) => {
      // ioredis subscribes again by itself once connected; until then the sweep reads.
      this.options.logger.warn({ err }, "stream reader: could not subscribe to the wake channel yet");
    });
    this.loop = this.run();
  }

  /**
   * Stops reading, waiting for the read in flight at most `graceMs`: a read sent to a Redis
   * that went away waits for it to return, and must not hold up a shutdown. Such a read
   * fails once its connection is closed, and the loop ends then.
   */
  async stop(graceMs = 2_000): Promise<void> {
    this.running = false;
    this.wake?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loop, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }

  /** Number of tenants with at least one local subscriber. */
  get tenantCount(): number {
    return this.tenants.size;
  }

  /**
   * Registers a subscriber for a tenant's new entries, until `unsubscribe`. The id it
   * resolves to is fixed before it resolves: entries after it are delivered live, entries
   * up to it are the caller's to replay, so nothing falls between the two.
   */
  async subscribe(tenantId: string, subscriber: StreamSubscriber): Promise<string> {
    let cursor = this.tenants.get(tenantId);
    if (!cursor) {
      const { stream, controlRedis } = this.options;
      const [lastId, genesis] = await Promise.all([stream.lastId(tenantId), controlRedis.get(stream.keys.genesis(tenantId))]);
      // Another subscriber may have registered the tenant while we waited.
      cursor = this.tenants.get(tenantId) ?? { lastId, genesis, subscribers: new Set() };
      if (!this.tenants.has(tenantId)) {
        this.tenants.set(tenantId, cursor);
        this.options.metrics?.readerTenants.set(this.tenants.size);
        // Whatever rang while the tenant was not followed yet is read now.
        this.dirty.add(tenantId);
        this.wake?.();
      }
    }
    cursor.subscribers.add(subscriber);
    return cursor.lastId;
  }

  /** Stops delivering to a subscriber; a tenant without subscribers is no longer read. */
  unsubscribe(tenantId: string, subscriber: StreamSubscriber): void {
    const cursor = this.tenants.get(tenantId);
    if (!cursor?.subscribers.delete(subscriber) || cursor.subscribers.size > 0) return;
    this.tenants.delete(tenantId);
    this.dirty.delete(tenantId);
    this.options.metrics?.readerTenants.set(this.tenants.size);
  }

  /**
   * A wake: the entry it carries goes to the tenant's subscribers at once when it is the
   * very next one after the cursor (the id before it is the cursor), with no read of the
   * stream; one the reader already has is ignored; anything else (a gap, a wake without an
   * entry, streams not yet checked after a reconnect) marks the stream for reading, which
   * finds whatever the wake left out.
   */
  private rang(message: string): void {
    const tenantId = wakeTenant(message);
    const cursor = this.tenants.get(tenantId);
    if (!cursor) return;
    const carried = this.recheck ? null : wakeCarried(message);
    if (carried?.previousId === cursor.lastId) {
      cursor.lastId = carried.id;
      this.carry(cursor, carried.entry());
      return;
    }
    // A read already brought this entry (it overtook its wake): there is nothing to read.
    if (carried && compareStreamIds(carried.id, cursor.lastId) <= 0) return;
    this.dirty.add(tenantId);
    this.wake?.();
  }

  /**
   * Wakes arrive many to a network read; their entries are handed over once that read's
   * wakes are all in, a batch per tenant, so a subscriber gets several at once in one write.
   */
  private carry(cursor: TenantCursor, entry: StreamEntry): void {
    const batch = this.carried.get(cursor);
    if (batch) {
      batch.push(entry);
      return;
    }
    if (this.carried.size === 0) queueMicrotask(() => this.deliverCarried());
    this.carried.set(cursor, [entry]);
  }

  private deliverCarried(): void {
    const carried = this.carried;
    this.carried = new Map();
    for (const [cursor, entries] of carried) this.deliver(cursor, entries);
  }

  /** Hands a tenant's next entries, in order and after its cursor, to its subscribers. */
  private deliver(cursor: TenantCursor, entries: StreamEntry[]): void {
    if (compareStreamIds(entries.at(-1)!.id, cursor.lastId) > 0) cursor.lastId = entries.at(-1)!.id;
    const { metrics } = this.options;
    if (metrics) {
      const now = Date.now();
      for (const entry of entries) metrics.observeReaderLag(entry.id, now);
    }
    for (const subscriber of cursor.subscribers) subscriber.receive(entries);
  }

  /** Marks every followed stream for reading (a sweep, or a connection that came back). */
  private readAll(): void {
    for (const tenantId of this.tenants.keys()) this.dirty.add(tenantId);
    this.wake?.();
  }

  /** Waits for the read connection to be ready again, at most `ms`. */
  private untilReadable(ms: number): Promise<void> {
    const { readRedis } = this.options;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        readRedis.off("ready", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      readRedis.once("ready", done);
    });
  }

  /** Resolves on a wake, on stop, or when the next sweep is due. */
  private idle(): Promise<void> {
    const untilSweep = Math.max(0, this.lastSweepAt + this.sweepMs - Date.now());
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, untilSweep);
      this.wake = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    }).finally(() => (this.wake = undefined));
  }

  /**
   * Notices tenants whose stream is not the one being followed: its first id changed, or it
   * is gone, or it began after the last entry read. The cursor moves to the new stream's
   * end and the tenant's subscribers are told, so they resync rather than silently miss
   * what was appended and lost before anyone read it.
   */
  private async findLostStreams(): Promise<void> {
    const { stream, controlRedis, logger } = this.options;
    // Every followed tenant's marker at once (one pipeline), not one round trip each.
    const followed = [...this.tenants];
    const markers = await Promise.all(followed.map(([tenantId]) => controlRedis.get(stream.keys.genesis(tenantId))));
    for (const [index, [tenantId, cursor]] of followed.entries()) {
      const current = markers[index] ?? null;
      let lost: boolean;
      if (cursor.genesis !== null) lost = current !== cursor.genesis;
      else if (current !== null) lost = cursor.lastId !== STREAM_ORIGIN && compareStreamIds(current, cursor.lastId) > 0;
      // No marker: lost, unless a stream older than the marker is still there.
      else lost = cursor.lastId !== STREAM_ORIGIN && (await controlRedis.exists(stream.keys.events(tenantId))) === 0;
      if (lost) {
        const restartId = await stream.lastId(tenantId);
        logger.warn({ tenantId, lastId: cursor.lastId, restartId }, "stream reader: the tenant's stream was lost (Redis without its data); subscribers resync");
        cursor.lastId = restartId;
        for (const subscriber of cursor.subscribers) subscriber.lost(restartId);
      }
      cursor.genesis = current;
    }
  }

  private async run(): Promise<void> {
    const { readRedis, stream, logger, metrics } = this.options;
    let failures = 0;
    while (this.running) {
      if (Date.now() - this.lastSweepAt >= this.sweepMs) {
        this.lastSweepAt = Date.now();
        for (const tenantId of this.tenants.keys()) this.dirty.add(tenantId);
      }
      if (this.dirty.size === 0) {
        await this.idle();
        continue;
      }
      if (readRedis.status !== "ready") {
        // Connecting, or Redis is away: a read now would only wait for it.
        await this.untilReadable(1_000);
        continue;
      }
      try {
        // Checked again after each check: the connection may have come back meanwhile, and
        // nothing may be read from a Redis whose streams were not checked (see below).
        while (this.recheck) {
          this.recheck = false;
          await this.findLostStreams();
        }
        const ids = [...this.dirty].filter((t) => this.tenants.has(t));
        // Cleared before the read: a wake that arrives meanwhile is read next time round.
        this.dirty.clear();
        if (ids.length === 0) continue;
        const keys = ids.map((t) => stream.keys.events(t));
        const cursors = ids.map((t) => this.tenants.get(t)!.lastId);
        const connection = this.connection;
        const result = (await readRedis.xread("COUNT", this.batchSize, "STREAMS", ...keys, ...cursors)) as [string, [string, string[]][]][] | null;
        failures = 0;
        if (connection !== this.connection) {
          // Sent before the connection dropped and answered after (ioredis resends what was
          // unanswered): the answer may come from a Redis that returned without its data,
          // read with cursors of the stream it lost, and would deliver the new stream as if
          // nothing had been lost. The streams are checked again and read afresh instead.
          this.recheck = true;
          this.readAll();
          continue;
        }
        if (!result) continue;
        for (const [key, raw] of result) {
          const index = keys.indexOf(key);
          const tenantId = ids[index]!;
          const cursor = this.tenants.get(tenantId);
          if (!cursor) continue;
          // A full batch may have more behind it.
          if (raw.length === this.batchSize) this.dirty.add(tenantId);
          // Wakes may have delivered the first of these while the read was on its way.
          const entries = parseEntries(raw);
          const fresh = entries.findIndex((entry) => compareStreamIds(entry.id, cursor.lastId) > 0);
          if (fresh < 0) continue;
          this.deliver(cursor, fresh === 0 ? entries : entries.slice(fresh));
        }
      } catch (error) {
        if (!this.running) break;
        failures += 1;
        metrics?.readerErrors.inc();
        this.recheck = true;
        this.readAll();
        logger.warn({ err: error, failures }, "stream reader: XREAD failed, retrying");
        await this.untilReadable(Math.min(100 * 2 ** failures, 2_000));
      }
    }
  }
}

