import type { PrismaClient } from "../../generated/prisma/client";
import { whileDatabaseReturns } from "../database-unavailable";
import { PulseError } from "../errors";
import type { PulseMetrics, ResyncReason } from "../metrics/pulse-metrics";
import { fitsStreamId, type StreamEntry, type TenantEventStream } from "./event-stream";
import { compareStreamIds, STREAM_ORIGIN, type PulseEvent } from "./schema";
import type { StreamSubscriber, TenantStreamReader } from "./stream-reader";

/**
 * A fresh subscription starts with a `snapshot` of the current state; a subscription whose
 * `lastEventId` is older than the retained stream gets a `resync` holding the same, so the
 * client replaces its state instead of silently missing events.
 */
export type StateItem<TSnapshot> = { type: "snapshot"; snapshot: TSnapshot } | { type: "resync"; snapshot: TSnapshot };

export type FeedItem<TEvent extends PulseEvent, TSnapshot> = TEvent | StateItem<TSnapshot>;

export interface IdentifiedItem<TEvent extends PulseEvent, TSnapshot> {
  id: string;
  item: FeedItem<TEvent, TSnapshot>;
}

/**
 * Where a feed starts, decided from the client's cursor by `resolveCursor`: a snapshot (no
 * cursor), a replay after an id this tenant was given, or a resync when the events after
 * that id are gone.
 */
export type FeedStart =
  | { from: "snapshot" }
  | { from: "after"; id: string }
  | {
      from: "resync";
      /** For metrics: retention trimmed the events, or the stream was lost. */ reason?: "trimmed" | "lost";
    };

/**
 * What one subscriber reads. Every open subscription keeps its query, so the routers make
 * each a class instance, whose methods cost it nothing, rather than an object of closures
 * (under tsx, which keeps function names, each named closure also carries its own ~300 B).
 */
export interface FeedQuery<TEvent extends PulseEvent, TSnapshot> {
  readonly tenantId: string;
  readonly start: FeedStart;
  /** Which of the tenant's events this feed carries (run, role, or context events). */
  accept(event: PulseEvent): event is TEvent;
  /**
   * Where a replay from the stream's origin may begin instead, because nothing before it can
   * be accepted (one run's events begin when it was queued): a run page opened in a busy
   * tenant then reads the run's stretch of the stream, not all of it. Asked only for such a
   * replay; null when there is no such place.
   */
  replayFloor?(): Promise<string | null>;
  /** Current state from the database, for `snapshot` and `resync` items. */
  snapshot(): Promise<TSnapshot>;
}

/**
 * Decides where a feed resumes from a cursor the client sent back. Only ids the tenant's own
 * stream issued are accepted: an entry of the stream (or the origin), an id trimmed away by
 * retention or lost with the stream (both resync), or one a cluster failover may have lost
 * before anything was appended since (resync; see `CursorProbe.lostTailAbove`). Anything
 * else, including another tenant's ids, is NOT_FOUND, exactly like an id that never existed.
 */
export async function resolveCursor(
  deps: { stream: TenantEventStream; db: PrismaClient },
  tenantId: string,
  cursor: string | undefined,
  field: string,
): Promise<FeedStart> {
  if (cursor === undefined) return { from: "snapshot" };
  if (cursor === STREAM_ORIGIN) return { from: "after", id: cursor };
  const unknown = () => new PulseError("NOT_FOUND", `${field}: event not found`);
  if (!fitsStreamId(cursor)) throw unknown();
  const probe = await deps.stream.probe(tenantId, cursor);
  if (probe.exists) return { from: "after", id: cursor };
  if (probe.genesis && compareStreamIds(cursor, probe.genesis) >= 0) {
    // Within the current stream's life, only trimmed ids are missing from it.
    const trimmed = probe.trimmedThrough === null ? 1 : compareStreamIds(cursor, probe.trimmedThrough);
    if (trimmed === 0) return { from: "after", id: cursor };
    if (trimmed < 0) return { from: "resync", reason: "trimmed" };
    // Past the newest entry after a failover that nothing has appended since: possibly lost.
    if (probe.lostTailAbove !== undefined && compareStreamIds(cursor, probe.lostTailAbove) > 0)
      return { from: "resync", reason: "lost" };
    throw unknown();
  }
  // Older than the stream Redis holds (or it holds none): the tenant's only if it had events
  // before, i.e. the stream was lost and started again.
  const tenant = await deps.db.tenant.findUnique({ where: { id: tenantId }, select: { firstEventId: true } });
  if (tenant?.firstEventId && compareStreamIds(cursor, tenant.firstEventId) >= 0)
    return { from: "resync", reason: "lost" };
  throw unknown();
}

/**
 * Where a transport can take a subscription's replayed and live events in batches, each as
 * the subscription's tracked item, instead of the feed yielding them one by one
 * (`SubscriptionWire` over WebSocket): the replay a page at a time, live events straight
 * from the stream reader. The feed sends only while nothing it yielded is still unsent, so
 * the subscriber sees one ordered sequence either way.
 */
export interface LiveOutlet {
  /** Taken by the one feed that carries its live events: true the first time, false after (a second feed yields its items). */
  claim(): boolean;
  /** Whether the outlet can take events now; until then, and whenever it cannot, the feed yields them. */
  readonly ready: boolean;
  /** Sends the entries, in order, as the subscription's next items. */
  send(entries: readonly StreamEntry[]): void;
  /** Closes `feed` when the outlet closes for good (its connection's session ended, say): the feed ends then. */
  onClose(feed: { close(): void }): void;
}

/** Which push transport a feed's events are counted under. */
export type DeliveryTransport = "ws" | "sse";

/** What a feed reads of a tenant's stream: its replay's pages, and whether retention trimmed them. */
export type ReplayStream = Pick<TenantEventStream, "readAfter" | "isBehindRetention">;

/** Entries a replay reads at a time, and at most holds. */
export const REPLAY_PAGE = 500;
/** How long a subscription waits for an unreachable database to read its snapshot; live events queue meanwhile. */
const SNAPSHOT_WAIT_MS = 30_000;

/** A subscription outlives a short database outage: its snapshot waits, the socket stays. */
function snapshotWhenReachable<TSnapshot>(
  query: { snapshot(): Promise<TSnapshot> },
  signal?: AbortSignal,
): Promise<TSnapshot> {
  return whileDatabaseReturns(() => query.snapshot(), SNAPSHOT_WAIT_MS, signal);
}

/**
 * Reads a tenant's events for one subscriber: the snapshot or the replay after its cursor,
 * then live events from the process's shared stream reader, each exactly once, in stream
 * order. The live listener is registered before the replay is read, and anything the
 * replay already yielded is skipped by id, so the hand-over has neither gap nor duplicate.
 * The feed ends when `signal` aborts or the outlet closes.
 *
 * @see https://trpc.io/docs/server/subscriptions#tracked
 */
export async function* tenantFeed<TEvent extends PulseEvent, TSnapshot>(
  deps: {
    reader: TenantStreamReader;
    stream: ReplayStream;
    metrics?: PulseMetrics;
    transport?: DeliveryTransport;
  },
  query: FeedQuery<TEvent, TSnapshot>,
  signal?: AbortSignal,
  outlet?: LiveOutlet,
): AsyncGenerator<IdentifiedItem<TEvent, TSnapshot>> {
  const { metrics } = deps;
  const transport = deps.transport ?? "ws";
  // The live part is the reader's subscriber, the signal's listener and the outlet's
  // feed, one object: an idle subscriber keeps no closure for any of them.
  const live = new LiveEntries(query, outlet, metrics, transport);
  const startId = await deps.reader.subscribe(query.tenantId, live);
  signal?.addEventListener("abort", live, { once: true });
  outlet?.onClose(live);
  try {
    live.lastYielded = startId;
    yield* openingItems(deps, query, live, startId, signal, transport, outlet);
    while (!signal?.aborted) {
      // Everything yielded so far has been sent (the consumer asked for the next item), so
      // with nothing queued the outlet can carry on from here.
      live.direct = outlet?.ready === true && live.isEmpty;
      const entries = await live.take();
      live.direct = false;
      if (entries === null) break;
      if (!Array.isArray(entries)) {
        // Redis came back without the stream: whatever was appended and never read is gone,
        // so the client replaces its state from the database and follows the new stream.
        metrics?.resynced("lost");
        live.lastYielded = entries.restartId;
        yield { id: entries.restartId, item: { type: "resync", snapshot: await snapshotWhenReachable(query, signal) } };
        continue;
      }
      if (outlet?.ready) {
        // What arrived while the feed was busy (its replay, its snapshot) goes out as one batch.
        live.sendDirect(outlet, entries);
        continue;
      }
      for (const entry of entries) {
        if (compareStreamIds(entry.id, live.lastYielded) <= 0) continue;
        live.lastYielded = entry.id;
        if (!query.accept(entry.event)) continue;
        metrics?.eventDelivered(1, transport);
        yield { id: entry.id, item: entry.event };
      }
    }
  } finally {
    signal?.removeEventListener("abort", live);
    deps.reader.unsubscribe(query.tenantId, live);
    live.close();
  }
}

/**
 * What a feed yields before its live part: the snapshot, the resync, or the replay after
 * the cursor. A generator of its own, finished before the feed goes live: a generator's
 * frame keeps what it last worked with, and an idle subscriber should not keep its
 * snapshot or replay for the rest of its life.
 */
async function* openingItems<TEvent extends PulseEvent, TSnapshot>(
  deps: { stream: ReplayStream; metrics?: PulseMetrics },
  query: FeedQuery<TEvent, TSnapshot>,
  live: LiveEntries<TEvent>,
  startId: string,
  signal: AbortSignal | undefined,
  transport: DeliveryTransport,
  outlet: LiveOutlet | undefined,
): AsyncGenerator<IdentifiedItem<TEvent, TSnapshot>> {
  const { metrics } = deps;
  const { start } = query;
  if (start.from === "snapshot") {
    metrics?.snapshots.inc();
    yield { id: startId, item: { type: "snapshot", snapshot: await snapshotWhenReachable(query, signal) } };
    return;
  }
  if (start.from === "after") {
    const from = start.id === STREAM_ORIGIN ? ((await query.replayFloor?.()) ?? STREAM_ORIGIN) : start.id;
    const replay = new Replay(deps.stream, query, from, startId);
    let page = await replay.nextPage();
    if (page !== "resync") {
      metrics?.replayStarted();
      while (page !== null && page !== "resync") {
        // Stopped meanwhile (its signal aborted, its outlet closed): nothing more is sent or read.
        if (!live.open) return;
        if (outlet?.ready) {
          // Over a WebSocket the page goes to the socket as it was read, in one write, each
          // entry encoded once for all the tenant's subscribers resuming from the same place
          // (they share the page's entries: `TenantEventStream.readAfter`). Nothing of this
          // subscription precedes it on the wire but tRPC's `started`, which
          // `RpcConnection.subscribe` sends before the feed's first `next()` runs this body.
          if (page.length > 0) outlet.send(page);
          metrics?.eventReplayed(page.length);
          metrics?.eventDelivered(page.length, transport);
        } else {
          for (const entry of page) {
            metrics?.eventReplayed();
            metrics?.eventDelivered(1, transport);
            yield { id: entry.id, item: entry.event };
          }
        }
        page = await replay.nextPage();
      }
      // The cursor may stand after the replay's last accepted entry (or after the reader's
      // start, when it arrived meanwhile); the live part starts after whichever is newer.
      if (compareStreamIds(replay.lastAccepted, live.lastYielded) > 0) live.lastYielded = replay.lastAccepted;
      if (page === null) return;
      // Retention trimmed what was still to be read: the resync's snapshot replaces what the
      // client was sent so far, as after a lost stream.
    }
  }
  metrics?.resynced(start.from === "resync" ? (start.reason ?? "cursor") : "trimmed");
  yield { id: startId, item: { type: "resync", snapshot: await snapshotWhenReachable(query, signal) } };
}

/** A stream entry whose event a feed's query accepted. */
interface AcceptedEntry<TEvent extends PulseEvent> extends StreamEntry {
  event: TEvent;
}

/**
 * The entries a query accepts after the cursor up to `until`, read a page at a time, so a
 * long replay holds one page, not all of it. A cursor past `until` (an entry appended after
 * the live listener registered) needs no replay. Retention is checked after each page is
 * read: the trimmed marker rises before entries are removed, so a page read before the
 * check is complete. The page's entries are kept as read (the same objects for every
 * caller reading it at the same time), only those the query accepts.
 */
class Replay<TEvent extends PulseEvent> {
  /** The last entry handed out, or the cursor before any was. */
  lastAccepted: string;
  private after: string;
  private done = false;

  constructor(
    private readonly stream: ReplayStream,
    private readonly query: { tenantId: string; accept(event: PulseEvent): event is TEvent },
    cursor: string,
    private readonly until: string,
  ) {
    this.lastAccepted = this.after = cursor;
  }

  /**
   * The next page's accepted entries (possibly none), null once the replay reached `until`,
   * or "resync" when retention trimmed entries it had yet to read.
   */
  async nextPage(): Promise<AcceptedEntry<TEvent>[] | null | "resync"> {
    if (this.done || compareStreamIds(this.after, this.until) >= 0) return null;
    const { tenantId } = this.query;
    const page = await this.stream.readAfter(tenantId, this.after, REPLAY_PAGE);
    if (await this.stream.isBehindRetention(tenantId, this.after)) return "resync";
    const accepted: AcceptedEntry<TEvent>[] = [];
    for (const entry of page) {
      if (compareStreamIds(entry.id, this.until) > 0) {
        this.done = true;
        break;
      }
      if (this.query.accept(entry.event)) accepted.push(entry as AcceptedEntry<TEvent>);
    }
    if (page.length < REPLAY_PAGE) this.done = true;
    else this.after = page.at(-1)!.id;
    this.lastAccepted = accepted.at(-1)?.id ?? this.lastAccepted;
    return accepted;
  }
}

export interface EventPage<TEvent extends PulseEvent, TSnapshot> {
  items: IdentifiedItem<TEvent, TSnapshot>[];
  /** Pass back as `cursor` to continue exactly after this page. */
  cursor: string;
  /** True when the stream holds more after `cursor`: ask again at once (the page may even be empty), not after the polling interval. */
  more: boolean;
}

/** Stream pages one filtered poll reads at most looking for a matching event, so a quiet filter on a busy tenant costs a bounded read. */
const MAX_SCANNED_PAGES = 10;

/**
 * The polling twin of `tenantFeed`: the same items with the same ids, a page at a time, so
 * a client can switch between the socket and polling without losing or repeating events.
 */
export async function readEventPage<TEvent extends PulseEvent, TSnapshot>(
  stream: TenantEventStream,
  query: FeedQuery<TEvent, TSnapshot>,
  limit: number,
  metrics?: PulseMetrics,
): Promise<EventPage<TEvent, TSnapshot>> {
  const newest = await stream.lastId(query.tenantId);
  const { start } = query;
  if (start.from === "snapshot") {
    metrics?.snapshots.inc();
    return {
      items: [{ id: newest, item: { type: "snapshot", snapshot: await query.snapshot() } }],
      cursor: newest,
      more: false,
    };
  }
  const resync = async (reason: ResyncReason): Promise<EventPage<TEvent, TSnapshot>> => {
    metrics?.resynced(reason);
    return {
      items: [{ id: newest, item: { type: "resync", snapshot: await query.snapshot() } }],
      cursor: newest,
      more: false,
    };
  };
  if (start.from === "resync") return resync(start.reason ?? "cursor");
  let page = await stream.readAfter(query.tenantId, start.id, limit);
  if (await stream.isBehindRetention(query.tenantId, start.id)) return resync("trimmed");
  let cursor = start.id;
  let items: IdentifiedItem<TEvent, TSnapshot>[];
  // A filter (one run, one role) may match nothing in a full page while later pages hold its events: read on.
  for (let scanned = 1; ; scanned++) {
    items = page.flatMap((e) => (query.accept(e.event) ? [{ id: e.id, item: e.event }] : []));
    cursor = page.at(-1)?.id ?? cursor;
    if (items.length > 0 || page.length < limit || scanned >= MAX_SCANNED_PAGES) break;
    page = await stream.readAfter(query.tenantId, cursor, limit);
  }
  metrics?.eventsPolled(items.length);
  return { items, cursor, more: page.length === limit };
}

/**
 * One subscriber's live entries: queued while the feed is still yielding earlier ones, or
 * handed straight to the outlet while `direct`. Its own object, with methods, rather than
 * closures over the feed's variables: every idle subscriber keeps one.
 */
class LiveEntries<TEvent extends PulseEvent> implements StreamSubscriber {
  /** The newest entry this subscriber was given or skipped, by the feed or the outlet. */
  lastYielded = STREAM_ORIGIN;
  /** While set, the reader's entries go straight to the outlet; the feed then only waits for a lost stream or the end. */
  direct = false;
  private batches: (StreamEntry[] | LostStream)[] = [];
  private waiting?: (entries: StreamEntry[] | LostStream | null) => void;
  private closed = false;

  constructor(
    private readonly query: { accept(event: PulseEvent): event is TEvent },
    private readonly outlet: LiveOutlet | undefined,
    private readonly metrics: PulseMetrics | undefined,
    private readonly transport: DeliveryTransport,
  ) {}

  /** The stream reader's entries for this tenant. */
  receive(entries: StreamEntry[]): void {
    if (this.direct && this.outlet?.ready) this.sendDirect(this.outlet, entries);
    else this.push(entries);
  }

  /** The subscription's signal aborted (this object is its listener): the feed ends. */
  handleEvent(): void {
    this.close();
  }

  /** Sends what the subscriber was not given yet of `entries` (its query's events) to the outlet. */
  sendDirect(outlet: LiveOutlet, entries: StreamEntry[]): void {
    const after = this.lastYielded;
    const last = entries[entries.length - 1]!;
    if (compareStreamIds(last.id, after) <= 0) return;
    this.lastYielded = last.id;
    // Only the batch that overlaps the hand-over holds entries already given (a batch of one,
    // most live deliveries, was just found newer).
    const overlaps = entries.length > 1 && compareStreamIds(entries[0]!.id, after) <= 0;
    const wanted =
      !overlaps && entries.every((entry) => this.query.accept(entry.event))
        ? entries
        : entries.filter((entry) => compareStreamIds(entry.id, after) > 0 && this.query.accept(entry.event));
    if (wanted.length === 0) return;
    outlet.send(wanted);
    this.metrics?.eventDelivered(wanted.length, this.transport);
  }

  private push(entries: StreamEntry[] | LostStream): void {
    if (this.closed) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve(entries);
    } else {
      this.batches.push(entries);
    }
  }

  /** False once the feed ended (its signal aborted, its outlet closed). */
  get open(): boolean {
    return !this.closed;
  }

  get isEmpty(): boolean {
    return this.batches.length === 0;
  }

  /** Marks where the stream was lost, in order with the entries around it; the feed takes over from the outlet. */
  lost(restartId: string): void {
    this.direct = false;
    this.push({ restartId });
  }

  /** The entries waiting (up to a lost-stream mark), the mark itself, or null once closed. */
  take(): Promise<StreamEntry[] | LostStream | null> {
    if (this.batches.length > 0) {
      const first = this.batches[0]!;
      if (!Array.isArray(first)) {
        this.batches.shift();
        return Promise.resolve(first);
      }
      const mark = this.batches.findIndex((b) => !Array.isArray(b));
      const ready = (mark < 0 ? this.batches : this.batches.slice(0, mark)) as StreamEntry[][];
      this.batches = mark < 0 ? [] : this.batches.slice(mark);
      return Promise.resolve(ready.length === 1 ? ready[0]! : ready.flat());
    }
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  close(): void {
    this.direct = false;
    this.closed = true;
    this.batches = [];
    this.waiting?.(null);
    this.waiting = undefined;
  }
}

/** Where a tenant's stream started again after Redis lost it. */
interface LostStream {
  restartId: string;
}
