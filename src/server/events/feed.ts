import type { StreamEntry, TenantEventStream } from "./event-stream";
import { compareStreamIds, type PulseEvent } from "./schema";
import type { TenantStreamReader } from "./stream-reader";

/**
 * A fresh subscription starts with a `snapshot` of the current state; a subscription whose
 * `lastEventId` is older than the retained stream gets a `resync` holding the same, so the
 * client replaces its state instead of silently missing events.
 */
export type StateItem<TSnapshot> =
  | { type: "snapshot"; snapshot: TSnapshot }
  | { type: "resync"; snapshot: TSnapshot };

export type FeedItem<TEvent extends PulseEvent, TSnapshot> = TEvent | StateItem<TSnapshot>;

export interface IdentifiedItem<TEvent extends PulseEvent, TSnapshot> {
  id: string;
  item: FeedItem<TEvent, TSnapshot>;
}

export interface FeedQuery<TEvent extends PulseEvent, TSnapshot> {
  tenantId: string;
  /** The last event id the client applied; absent for a fresh start. */
  cursor?: string;
  /** Which of the tenant's events this feed carries (run, role, or context events). */
  accept: (event: PulseEvent) => event is TEvent;
  /** Current state from the database, for `snapshot` and `resync` items. */
  snapshot: () => Promise<TSnapshot>;
}

const REPLAY_PAGE = 500;

/**
 * Reads a tenant's events for one subscriber: the snapshot or the replay after its cursor,
 * then live events from the process's shared stream reader, each exactly once, in stream
 * order. The live listener is registered before the replay is read, and anything the
 * replay already yielded is skipped by id, so the hand-over has neither gap nor duplicate.
 *
 * @see https://trpc.io/docs/server/subscriptions#tracked
 */
export async function* tenantFeed<TEvent extends PulseEvent, TSnapshot>(
  deps: { reader: TenantStreamReader; stream: TenantEventStream },
  query: FeedQuery<TEvent, TSnapshot>,
  signal?: AbortSignal,
): AsyncGenerator<IdentifiedItem<TEvent, TSnapshot>> {
  const live = new EntryQueue();
  const subscription = await deps.reader.subscribe(query.tenantId, (entries) => live.push(entries));
  const stop = () => live.close();
  signal?.addEventListener("abort", stop, { once: true });
  try {
    let lastYielded = subscription.startId;
    if (query.cursor === undefined) {
      yield { id: subscription.startId, item: { type: "snapshot", snapshot: await query.snapshot() } };
    } else {
      const replay = await replayAfter(deps.stream, query, subscription.startId);
      if (replay === "resync") {
        yield { id: subscription.startId, item: { type: "resync", snapshot: await query.snapshot() } };
      } else {
        for (const entry of replay) {
          if (query.accept(entry.event)) yield { id: entry.id, item: entry.event };
        }
        // The cursor may stand after the replay's last accepted entry; either way the live
        // part starts after whichever is newer.
        const lastReplayed = replay.at(-1)?.id ?? query.cursor;
        lastYielded = compareStreamIds(lastReplayed, lastYielded) > 0 ? lastReplayed : lastYielded;
      }
    }
    while (!signal?.aborted) {
      const entries = await live.take();
      if (entries === null) break;
      for (const entry of entries) {
        if (compareStreamIds(entry.id, lastYielded) <= 0) continue;
        lastYielded = entry.id;
        if (query.accept(entry.event)) yield { id: entry.id, item: entry.event };
      }
    }
  } finally {
    signal?.removeEventListener("abort", stop);
    subscription.unsubscribe();
    live.close();
  }
}

/**
 * Every entry after the cursor up to `until`, or "resync" when the cursor is behind the
 * retained stream or ahead of its newest entry (the stream was lost, e.g. a Redis restart
 * without persistence). Retention is checked after each page is read: the trimmed marker
 * rises before entries are removed, so a page read before the check is complete.
 */
async function replayAfter(
  stream: TenantEventStream,
  query: { tenantId: string; cursor?: string },
  until: string,
): Promise<StreamEntry[] | "resync"> {
  const cursor = query.cursor!;
  if (compareStreamIds(cursor, until) > 0) return "resync";
  const entries: StreamEntry[] = [];
  let after = cursor;
  while (compareStreamIds(after, until) < 0) {
    const page = await stream.readAfter(query.tenantId, after, REPLAY_PAGE);
    if (await stream.isBehindRetention(query.tenantId, after)) return "resync";
    for (const entry of page) {
      if (compareStreamIds(entry.id, until) > 0) return entries;
      entries.push(entry);
    }
    if (page.length < REPLAY_PAGE) break;
    after = page.at(-1)!.id;
  }
  return entries;
}

export interface EventPage<TEvent extends PulseEvent, TSnapshot> {
  items: IdentifiedItem<TEvent, TSnapshot>[];
  /** Pass back as `cursor` to continue exactly after this page. */
  cursor: string;
}

/**
 * The polling twin of `tenantFeed`: the same items with the same ids, a page at a time, so
 * a client can switch between the socket and polling without losing or repeating events.
 */
export async function readEventPage<TEvent extends PulseEvent, TSnapshot>(
  stream: TenantEventStream,
  query: FeedQuery<TEvent, TSnapshot>,
  limit: number,
): Promise<EventPage<TEvent, TSnapshot>> {
  const newest = await stream.lastId(query.tenantId);
  if (query.cursor === undefined) {
    return { items: [{ id: newest, item: { type: "snapshot", snapshot: await query.snapshot() } }], cursor: newest };
  }
  const resync = async (): Promise<EventPage<TEvent, TSnapshot>> => ({
    items: [{ id: newest, item: { type: "resync", snapshot: await query.snapshot() } }],
    cursor: newest,
  });
  if (compareStreamIds(query.cursor, newest) > 0) return resync();
  const page = await stream.readAfter(query.tenantId, query.cursor, limit);
  if (await stream.isBehindRetention(query.tenantId, query.cursor)) return resync();
  return {
    items: page.flatMap((e) => (query.accept(e.event) ? [{ id: e.id, item: e.event }] : [])),
    cursor: page.at(-1)?.id ?? query.cursor,
  };
}

/** Live entries waiting for a subscriber that is still yielding earlier ones. */
class EntryQueue {
  private batches: StreamEntry[][] = [];
  private waiting?: (entries: StreamEntry[] | null) => void;
  private closed = false;

  push(entries: StreamEntry[]): void {
    if (this.closed) return;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve(entries);
    } else {
      this.batches.push(entries);
    }
  }

  take(): Promise<StreamEntry[] | null> {
    if (this.batches.length > 0) {
      const all = this.batches.length === 1 ? this.batches[0]! : this.batches.flat();
      this.batches = [];
      return Promise.resolve(all);
    }
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  close(): void {
    this.closed = true;
    this.batches = [];
    this.waiting?.(null);
    this.waiting = undefined;
  }
}
