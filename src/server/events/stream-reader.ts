import type { RedisClient } from "../redis";
import type { Logger } from "../logger";
import type { PulseMetrics } from "../metrics/pulse-metrics";
import { parseEntries, wakeCarried, wakeTenant, type StreamEntry, type TenantEventStream } from "./event-stream";
import { compareStreamIds, STREAM_ORIGIN } from "./schema";
import { planStreamReads } from "./stream-read-plan";
import { TenantWakeSubscriptions } from "./tenant-wake-subscriptions";

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
  /**
   * A connection of its own for the tenants' sharded wake channels (subscriber mode); on a
   * cluster, a `Cluster` created with `shardedSubscribers: true`.
   */
  wakeRedis: RedisClient;
  /** For the reader's occasional lookups (stream markers). */
  controlRedis: RedisClient;
  stream: TenantEventStream;
  logger: Logger;
  /** Reports followed tenants, what the reader received, fan-out lag and read errors; optional so the reader can be built alone. */
  metrics?: PulseMetrics;
  /** How often the rolling check runs (default 1 s). */
  sweepMs?: number;
  /**
   * The rolling check reads every followed stream at least this often though no wake rang
   * (default 30 s): the bound on how late an event whose wake was lost without its
   * connection dropping arrives, as long as the followed tenants fit `maxChecksPerSweep`.
   */
  checkPeriodMs?: number;
  /**
   * At most this many streams per rolling check (default 1 000), so its cost per second
   * stays flat however many idle tenants are followed: past `maxChecksPerSweep ×
   * checkPeriodMs / sweepMs` tenants (30k by default), the period grows instead.
   */
  maxChecksPerSweep?: number;
  /** Entries per stream per read. */
  batchSize?: number;
  /** Streams per XREAD call (default 500): no call's arguments grow with the followed tenants. */
  maxKeysPerRead?: number;
  /** XREAD calls in flight at once (default 8), pipelined on the read connection or spread over a cluster's nodes. */
  maxReadsInFlight?: number;
}

interface TenantCursor {
  lastId: string;
  /** The first id of the stream being followed (null: none existed yet), to notice a new one. */
  genesis: string | null;
  subscribers: Set<StreamSubscriber>;
  /** The newest id a wake announced: a read that passes it without finding it shows the stream lost it. */
  announced?: string;
  /**
   * The first entry of each read that came before its wake, with the id delivered just before
   * it; usually none (wakes come first). The wake says what the entry followed in the stream:
   * an older id shows the stream lost what the reader delivered in between (see `rang`). Only
   * a read's first entry can follow one lost so: a read returns the stream's entries as they
   * stand, one after another.
   */
  readAhead?: Map<string, string>;
  /** Set until the wake subscription is confirmed and the cursor fixed; the stream is not read meanwhile. */
  opening?: Promise<void>;
}

/** Tenants' markers looked up at once when checking for lost streams: a pipeline each, not a round trip per tenant. */
const LOST_STREAM_CHECK_CHUNK = 500;

/**
 * Read-ahead entries a tenant's cursor remembers at most, waiting for their wakes; the oldest
 * are forgotten (a wake that never comes: lost with its connection, or from an older version
 * that rang for a large entry with the tenant alone).
 */
const READ_AHEAD_LIMIT = 16;

/**
 * The one Redis reader of an API process. Every append rings its tenant's wake channel
 * with the tenant's id, the entry's id and the id before it, and mostly the entry; the
 * reader listens to the channels of the tenants it follows only. An entry that follows the
 * reader's cursor is delivered straight from its wake, with no read at all. Otherwise the
 * reader reads the followed streams that rang, from where it left each. Either way it fans
 * each batch out in memory, so a subscriber costs a Set entry, never a Redis connection,
 * and a read costs the tenants with news, not every tenant followed. The streams stay the
 * record: when a wake connection comes back every followed stream is read, and a rolling
 * check reads a bounded slice of them each `sweepMs`, so a lost wake delays an event,
 * never loses it.
 */
export class TenantStreamReader {
  private readonly tenants = new Map<string, TenantCursor>();
  /** Entries taken from wakes in this turn of the event loop, by tenant, to deliver at its end. */
  private carried = new Map<TenantCursor, StreamEntry[]>();
  /** Followed tenants whose stream may hold entries the reader has not read. */
  private readonly dirty = new Set<string>();
  /** The round of reads under way, if any (see `settled`). */
  private reading: Promise<{ error: unknown; reads: number } | null> | null = null;
  private readonly wakes: TenantWakeSubscriptions;
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private lastSweepAt = 0;
  /** Where the rolling check goes on from: a live iterator over `tenants`, which skips tenants that left. */
  private rolling?: Iterator<string>;
  /**
   * When every followed stream is read once more after a resubscription: the read made at
   * once may have passed Redis before the subscriptions did, and what was appended between
   * the two rang nobody.
   */
  private settleReadAt?: number;
  /** Bumped whenever the read connection closes: a read that straddles one is not trusted. */
  private connection = 0;
  /** Set when the read connection (re)connects: the streams may be new ones since. */
  private recheck = false;
  private readonly sweepMs: number;
  private readonly checkPeriodMs: number;
  private readonly maxChecksPerSweep: number;
  private readonly batchSize: number;
  private readonly maxKeysPerRead: number;
  private readonly maxReadsInFlight: number;

  constructor(private readonly options: TenantStreamReaderOptions) {
    this.sweepMs = options.sweepMs ?? 1_000;
    this.checkPeriodMs = options.checkPeriodMs ?? 30_000;
    this.maxChecksPerSweep = options.maxChecksPerSweep ?? 1_000;
    this.batchSize = options.batchSize ?? 512;
    this.maxKeysPerRead = options.maxKeysPerRead ?? 500;
    this.maxReadsInFlight = options.maxReadsInFlight ?? 8;
    const { readRedis } = options;
    const reconnected = (cause: string) => {
      this.recheck = true;
      this.readAll(cause);
    };
    readRedis.on("close", () => (this.connection += 1));
    readRedis.on("ready", () =>
      reconnected(this.connection === 0 ? "the read connection is ready" : "the read connection is ready again"),
    );
    if (readRedis.isCluster) {
      // One node of a cluster goes (a failover) without the cluster closing: its replica may have come up without the last appends.
      readRedis.on("-node", () => (this.connection += 1));
      readRedis.on("+node", (node: { options?: { host?: string; port?: number } }) =>
        reconnected(
          `cluster node ${node.options?.host ?? "?"}:${node.options?.port ?? "?"} joined the read connection`,
        ),
      );
    }
    this.wakes = new TenantWakeSubscriptions({
      redis: options.wakeRedis,
      keys: options.stream.keys,
      onWake: (message) => this.rang(message),
      // Wakes published while a subscriber connection was down are gone: read everything, now and once settled.
      onResubscribed: () => this.resubscribed(),
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
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

  /**
   * Resolves once every read asked for so far has been answered, such as the first read of
   * each tenant just subscribed: a measurement of what follows (the fan-in test) then counts
   * only what its own appends cause.
   */
  async settled(): Promise<void> {
    while (this.running && (this.dirty.size > 0 || this.reading)) {
      await (this.reading ?? new Promise<void>((resolve) => setTimeout(resolve, 10)));
    }
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
      cursor = { lastId: STREAM_ORIGIN, genesis: null, subscribers: new Set() };
      this.tenants.set(tenantId, cursor);
      this.options.metrics?.readerTenants.set(this.tenants.size);
      cursor.opening = this.open(tenantId, cursor);
    }
    // Counted at once, so a tenant's last subscriber leaving while another opens it keeps the channel.
    cursor.subscribers.add(subscriber);
    try {
      await cursor.opening;
    } catch (error) {
      this.unsubscribe(tenantId, subscriber);
      throw error;
    }
    return cursor.lastId;
  }

  /**
   * Starts following a tenant: its wake subscription confirmed and its cursor fixed (in
   * parallel), then one read, which finds whatever was appended before the subscription
   * took effect; every later append rings.
   */
  private async open(tenantId: string, cursor: TenantCursor): Promise<void> {
    const { stream, controlRedis } = this.options;
    try {
      const [, lastId, genesis] = await Promise.all([
        this.wakes.listen(tenantId),
        stream.lastId(tenantId),
        controlRedis.get(stream.keys.genesis(tenantId)),
      ]);
      cursor.lastId = lastId;
      cursor.genesis = genesis;
    } catch (error) {
      this.forget(tenantId, cursor);
      throw error;
    }
    cursor.opening = undefined;
    if (this.tenants.get(tenantId) !== cursor) return;
    this.dirty.add(tenantId);
    this.wake?.();
  }

  /** Stops delivering to a subscriber; a tenant without subscribers is no longer read or listened to. */
  unsubscribe(tenantId: string, subscriber: StreamSubscriber): void {
    const cursor = this.tenants.get(tenantId);
    if (!cursor?.subscribers.delete(subscriber) || cursor.subscribers.size > 0) return;
    this.forget(tenantId, cursor);
  }

  private forget(tenantId: string, cursor: TenantCursor): void {
    if (this.tenants.get(tenantId) !== cursor) return;
    this.tenants.delete(tenantId);
    this.dirty.delete(tenantId);
    this.wakes.unlisten(tenantId);
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
    this.options.metrics?.wakeReceived();
    const tenantId = wakeTenant(message);
    const cursor = this.tenants.get(tenantId);
    // An opening tenant is read once it is open, which finds this entry.
    if (!cursor || cursor.opening) return;
    const announced = wakeCarried(message);
    if (announced && cursor.readAhead && this.readAheadLost(tenantId, cursor, announced)) return;
    // What the reader knew exists before this wake: what it delivered, and what wakes announced.
    const known =
      cursor.announced && compareStreamIds(cursor.announced, cursor.lastId) > 0 ? cursor.announced : cursor.lastId;
    if (announced && (!cursor.announced || compareStreamIds(announced.id, cursor.announced) > 0))
      cursor.announced = announced.id;
    const carried = this.recheck ? null : announced;
    const entry = carried?.previousId === cursor.lastId && known === cursor.lastId ? carried.entry() : null;
    if (entry) {
      cursor.lastId = entry.id;
      this.carry(cursor, entry);
      return;
    }
    // A read already brought this entry (it overtook its wake): there is nothing to read.
    if (carried && compareStreamIds(carried.id, cursor.lastId) <= 0) return;
    // The entry before this one is older than one the reader knew of: the stream lost the entries
    // after it (a failover to a replica that never received them, which the append that found it
    // out reports as following the origin). Subscribers resync: what they were sent of the lost
    // entries is not all in the database (progress reaches it later, and Redis's copy of a run's
    // latest progress went back with the stream), and what they were not sent is gone.
    if (carried && compareStreamIds(carried.previousId, known) < 0) {
      this.lostTail(tenantId, known);
      this.resync(cursor, carried.id);
      // It may also be a new stream (a Redis back without its data) whose wake came before the
      // read connection noticed the drop: the streams are checked before anything is read.
      this.recheck = true;
    }
    this.dirty.add(tenantId);
    this.wake?.();
  }

  /**
   * The wake of an entry a read delivered first: it names the entry before it in the stream.
   * When that is older than the entry the reader delivered before it, the stream lost what the
   * reader delivered in between (a failover, and a read that overtook the wake of the first
   * append after it): subscribers resync after everything delivered, as when the wake comes
   * first. Forgets the entries up to this one either way: their wakes came, or never will.
   */
  private readAheadLost(tenantId: string, cursor: TenantCursor, wake: { previousId: string; id: string }): boolean {
    const readAhead = cursor.readAhead!;
    const deliveredBefore = readAhead.get(wake.id);
    for (const id of readAhead.keys()) {
      if (compareStreamIds(id, wake.id) > 0) break;
      readAhead.delete(id);
    }
    if (readAhead.size === 0) cursor.readAhead = undefined;
    if (deliveredBefore === undefined || compareStreamIds(wake.previousId, deliveredBefore) >= 0) return false;
    this.lostTail(tenantId, deliveredBefore);
    this.resync(cursor, cursor.lastId);
    return true;
  }

  /** Remembers what the first entry a read is about to deliver follows, unless its wake came already. */
  private rememberReadAhead(cursor: TenantCursor, first: StreamEntry): void {
    if (cursor.announced && compareStreamIds(first.id, cursor.announced) <= 0) return;
    const readAhead = (cursor.readAhead ??= new Map());
    readAhead.set(first.id, cursor.lastId);
    if (readAhead.size > READ_AHEAD_LIMIT) readAhead.delete(readAhead.keys().next().value!);
  }

  /**
   * Whether the stream no longer holds the entry this reader delivered last, or is marked as
   * having lost entries after it (retention, or a publisher that found the stream lost its tail).
   */
  private async lostAfter(tenantId: string, id: string): Promise<boolean> {
    const probe = await this.options.stream.probe(tenantId, id);
    return !probe.exists || (probe.trimmedThrough !== null && compareStreamIds(probe.trimmedThrough, id) > 0);
  }

  /** Where subscribers of a stream that lost entries after `lastId` resync: past both the hole and the newest entry. */
  private async restartAfterLoss(tenantId: string, lastId: string): Promise<string> {
    const { stream } = this.options;
    const [newest, lost] = await Promise.all([
      stream.lastId(tenantId),
      this.options.controlRedis.get(stream.keys.trimmed(tenantId)),
    ]);
    const restart = lost !== null && compareStreamIds(lost, newest) > 0 ? lost : newest;
    return compareStreamIds(restart, lastId) > 0 ? restart : lastId;
  }

  /** Tells the tenant's subscribers to resync at `restartId`, after the entries already handed to them. */
  private resync(cursor: TenantCursor, restartId: string): void {
    const carried = this.carried.get(cursor);
    if (carried) {
      this.carried.delete(cursor);
      this.deliver(cursor, carried);
    }
    cursor.lastId = restartId;
    cursor.readAhead = undefined;
    if (!cursor.announced || compareStreamIds(restartId, cursor.announced) > 0) cursor.announced = restartId;
    for (const subscriber of cursor.subscribers) subscriber.lost(restartId);
  }

  private lostTail(tenantId: string, lastDelivered: string): void {
    const { stream, logger } = this.options;
    logger.warn(
      { tenantId, lastDelivered },
      "stream reader: the tenant's stream lost entries it had delivered (a failover); resuming clients resync",
    );
    stream
      .markLostThrough(tenantId, lastDelivered)
      .catch((err: unknown) => logger.warn({ err, tenantId }, "stream reader: recording the lost entries failed"));
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

  /**
   * Wakes published while a subscriber connection was down are gone: every open tenant's
   * stream is read now and once more when settled. Tenants still opening (all of them, at a
   * first connect) are read once their subscription is confirmed anyway.
   */
  private resubscribed(): void {
    for (const cursor of this.tenants.values()) {
      if (cursor.opening) continue;
      this.settleReadAt = Date.now() + this.sweepMs;
      this.readAll("the wake subscriptions were made again");
      return;
    }
  }

  /**
   * Marks every followed stream for reading (a connection that came back). Logged with its
   * cause: each such read costs a read of every followed stream, and shows in what the
   * subscribers are sent again (skipped by their ids) and in Redis's load.
   */
  private readAll(cause: string): void {
    if (this.tenants.size > 0)
      this.options.logger.info({ cause, tenants: this.tenants.size }, "stream reader: reading every followed stream");
    for (const tenantId of this.tenants.keys()) this.dirty.add(tenantId);
    this.wake?.();
  }

  /**
   * The rolling check: marks the next slice of followed streams for reading, sized so each
   * is read within `checkPeriodMs`, but never more than `maxChecksPerSweep` of them. A
   * wake is lost only with its connection (which reads everything when it comes back) or
   * in a fault nobody noticed: this bounds how late such an entry arrives.
   */
  private sweep(now: number): void {
    if (this.settleReadAt !== undefined && now >= this.settleReadAt) {
      this.settleReadAt = undefined;
      this.readAll("once settled after the wake subscriptions were made again");
      return;
    }
    const followed = this.tenants.size;
    const slice = Math.min(
      followed,
      this.maxChecksPerSweep,
      Math.max(1, Math.ceil((followed * this.sweepMs) / this.checkPeriodMs)),
    );
    for (let i = 0; i < slice; i++) {
      let next = this.rolling?.next();
      if (!next || next.done) {
        this.rolling = this.tenants.keys();
        next = this.rolling.next();
        if (next.done) return;
      }
      this.dirty.add(next.value);
    }
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
    const { stream, controlRedis } = this.options;
    const followed = [...this.tenants].filter(([, cursor]) => !cursor.opening);
    for (let start = 0; start < followed.length; start += LOST_STREAM_CHECK_CHUNK) {
      const chunk = followed.slice(start, start + LOST_STREAM_CHECK_CHUNK);
      const markers = await Promise.all(chunk.map(([tenantId]) => controlRedis.get(stream.keys.genesis(tenantId))));
      await Promise.all(
        chunk.map(([tenantId, cursor], index) => this.checkStream(tenantId, cursor, markers[index] ?? null)),
      );
    }
  }

  private async checkStream(tenantId: string, cursor: TenantCursor, current: string | null): Promise<void> {
    const { stream, controlRedis, logger } = this.options;
    let lost: boolean;
    if (cursor.genesis !== null) lost = current !== cursor.genesis;
    else if (current !== null) lost = cursor.lastId !== STREAM_ORIGIN && compareStreamIds(current, cursor.lastId) > 0;
    // No marker: lost, unless a stream older than the marker is still there.
    else lost = cursor.lastId !== STREAM_ORIGIN && (await controlRedis.exists(stream.keys.events(tenantId))) === 0;
    if (lost) {
      const restartId = await stream.lastId(tenantId);
      logger.warn(
        { tenantId, lastId: cursor.lastId, restartId },
        "stream reader: the tenant's stream was lost (Redis without its data); subscribers resync",
      );
      cursor.lastId = restartId;
      cursor.readAhead = undefined;
      for (const subscriber of cursor.subscribers) subscriber.lost(restartId);
    } else if (cursor.lastId !== STREAM_ORIGIN && (await this.lostAfter(tenantId, cursor.lastId))) {
      this.lostTail(tenantId, cursor.lastId);
      this.resync(cursor, await this.restartAfterLoss(tenantId, cursor.lastId));
    }
    cursor.genesis = current;
  }

  private async run(): Promise<void> {
    const { readRedis, logger, metrics } = this.options;
    let failures = 0;
    while (this.running) {
      const now = Date.now();
      if (now - this.lastSweepAt >= this.sweepMs) {
        this.lastSweepAt = now;
        this.sweep(now);
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
      let failed: { error: unknown; reads: number } | null;
      try {
        // Checked again after each check: the connection may have come back meanwhile, and
        // nothing may be read from a Redis whose streams were not checked (see below).
        while (this.recheck) {
          this.recheck = false;
          await this.findLostStreams();
        }
        this.reading = this.readDirty();
        try {
          failed = await this.reading;
        } finally {
          this.reading = null;
        }
      } catch (error) {
        this.recheck = true;
        failed = { error, reads: 1 };
      }
      if (!this.running) break;
      if (!failed) {
        failures = 0;
        continue;
      }
      failures += 1;
      metrics?.readerErrors.inc(failed.reads);
      logger.warn(
        { err: failed.error, failures, reads: failed.reads },
        "stream reader: reading the streams failed, retrying",
      );
      await this.untilReadable(Math.min(100 * 2 ** failures, 2_000));
    }
  }

  /**
   * Reads the dirty streams, at most `maxKeysPerRead` in a call and on a cluster a slot's
   * streams together, `maxReadsInFlight` calls at a time. A call that fails leaves its
   * streams dirty for the next round, and only those: wakes keep being delivered meanwhile.
   */
  private async readDirty(): Promise<{ error: unknown; reads: number } | null> {
    const { readRedis, stream } = this.options;
    const ids = [...this.dirty].filter((tenantId) => {
      const cursor = this.tenants.get(tenantId);
      return cursor !== undefined && !cursor.opening;
    });
    // Cleared before the read: a wake that arrives meanwhile is read next time round.
    this.dirty.clear();
    if (ids.length === 0) return null;
    const keys = ids.map((tenantId) => stream.keys.events(tenantId));
    const calls = planStreamReads(keys, { bySlot: readRedis.isCluster, maxKeys: this.maxKeysPerRead });
    const connection = this.connection;
    let failed: { error: unknown; reads: number } | null = null;
    let straddled = false;
    let next = 0;
    const readCalls = async () => {
      while (next < calls.length && this.running) {
        const call = calls[next++]!;
        const tenantOf = new Map(call.map((index) => [keys[index]!, ids[index]!]));
        const cursors = call.map((index) => this.tenants.get(ids[index]!)?.lastId ?? STREAM_ORIGIN);
        let result: [string, [string, string[]][]][] | null;
        try {
          result = (await readRedis.xread(
            "COUNT",
            this.batchSize,
            "STREAMS",
            ...tenantOf.keys(),
            ...cursors,
          )) as typeof result;
        } catch (error) {
          for (const tenantId of tenantOf.values()) this.dirty.add(tenantId);
          failed = { error, reads: (failed?.reads ?? 0) + 1 };
          continue;
        }
        if (connection !== this.connection) {
          straddled = true;
          continue;
        }
        if (result) this.take(result, tenantOf);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.maxReadsInFlight, calls.length) }, readCalls));
    if (straddled) {
      // Sent before the connection dropped and answered after (ioredis resends what was
      // unanswered): the answer may come from a Redis that returned without its data,
      // read with cursors of the stream it lost, and would deliver the new stream as if
      // nothing had been lost. The streams are checked again and read afresh instead.
      this.recheck = true;
      this.readAll("a read was answered across a reconnect");
    }
    return failed;
  }

  /**
   * A read that goes past an id a wake announced, without it: the stream lost entries the
   * subscribers never received (a failover to a replica that never had them), and replaying
   * what is left would skip them silently. The hole is recorded and the subscribers resync
   * from the newest entry read instead.
   */
  private passedLostEntries(tenantId: string, cursor: TenantCursor, entries: readonly StreamEntry[]): boolean {
    const announced = cursor.announced;
    if (!announced || compareStreamIds(announced, cursor.lastId) <= 0) return false;
    const newest = entries.at(-1);
    if (!newest || compareStreamIds(newest.id, announced) <= 0 || entries.some((e) => e.id === announced)) return false;
    this.lostTail(tenantId, announced);
    this.resync(cursor, newest.id);
    return true;
  }

  /** Hands one XREAD answer's entries to their tenants' subscribers. */
  private take(result: [string, [string, string[]][]][], tenantOf: Map<string, string>): void {
    for (const [key, raw] of result) {
      const tenantId = tenantOf.get(key);
      const cursor = tenantId === undefined ? undefined : this.tenants.get(tenantId);
      if (!cursor || cursor.opening) continue;
      this.options.metrics?.entriesRead(raw.length);
      // A full batch may have more behind it.
      if (raw.length === this.batchSize) this.dirty.add(tenantId!);
      // Wakes may have delivered the first of these while the read was on its way.
      const entries = parseEntries(raw);
      if (this.passedLostEntries(tenantId!, cursor, entries)) continue;
      const fresh = entries.findIndex((entry) => compareStreamIds(entry.id, cursor.lastId) > 0);
      if (fresh < 0) continue;
      // The first entry after a loss, read rather than heard (its wake came while the streams
      // were being checked, or not at all): the subscribers resync past it.
      if (entries.some((entry, i) => i >= fresh && entry.afterLoss)) {
        this.resync(cursor, entries.at(-1)!.id);
        continue;
      }
      const delivered = fresh === 0 ? entries : entries.slice(fresh);
      this.rememberReadAhead(cursor, delivered[0]!);
      this.deliver(cursor, delivered);
    }
  }
}
