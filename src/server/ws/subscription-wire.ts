import type { StreamEntry } from "../events/event-stream";
import type { LiveOutlet } from "../events/feed";
import { requestPrefix, trackedDataFrame } from "./frame-encoder";

/** What a wire needs of its socket: `GuardedWebSocket`, whose send also enforces the buffer cap. */
export interface WireSocket {
  send(data: string | Buffer, options?: { binary?: boolean }): void;
  /** Runs `write`, handing the frames it sends to the network in one write. */
  corked?(write: () => void): void;
  /** Whether another frame may be built: false once a reader left more than its send-buffer cap unsent. */
  hasRoom?(): boolean;
  readonly readyState: number;
}

const OPEN = 1;
const TEXT = { binary: false } as const;

/** What `untilStopped` resolves with when the subscription was stopped before its next item came. */
export const STOPPED = Symbol("stopped");

/**
 * Each entry's frames, one per request prefix: subscribers of one tenant mostly share their
 * request id (wsLink numbers a page's requests from 1), so an event is encoded to bytes
 * once for all of them, however many there are.
 */
const framesByEntry = new WeakMap<StreamEntry, Map<string, Buffer>>();

/**
 * One WebSocket subscription's own line to its socket. tRPC's procedure serves the
 * subscription (input, auth, snapshot, replay, errors); once its feed is live, the feed's
 * events are written here as tRPC data messages for the subscription's request id, byte for
 * byte the frames a tRPC handler would send, without each event passing through an async
 * iterator per subscriber. `RpcConnection` opens one for each subscription request.
 *
 * @see https://trpc.io/docs/server/websockets
 */
export class SubscriptionWire implements LiveOutlet {
  private closed = false;
  private claimed = false;
  private feed?: { close(): void };
  /** The procedure's `signal`, aborted when the subscription is stopped from outside, as tRPC's handler aborts it. */
  private readonly stopping = new AbortController();
  /** Ends the connection's wait for the next item when the subscription is stopped (see `untilStopped`). */
  private interrupt?: (stopped: typeof STOPPED) => void;

  /** The start of every message answering the subscription's request. */
  readonly prefix: string;

  constructor(
    private readonly socket: WireSocket,
    /** The subscription request this wire answers. */
    readonly requestId: string | number,
    jsonrpc: string | undefined,
  ) {
    this.prefix = requestPrefix(requestId, jsonrpc);
  }

  /** The first feed to ask carries its live events over this wire (see `trackedFeed`). */
  claim(): boolean {
    if (this.claimed) return false;
    this.claimed = true;
    return true;
  }

  /** True until the wire closes. */
  get ready(): boolean {
    return !this.closed;
  }

  /** The signal the subscription's procedure gets: aborted on `subscription.stop`, the socket's close and the session's end. */
  get signal(): AbortSignal {
    return this.stopping.signal;
  }

  /**
   * The subscription's next item, or `STOPPED` as soon as it is stopped: like tRPC's handler,
   * the connection does not wait for an iterator that ignores its signal to yield again.
   */
  untilStopped<T>(next: Promise<T>): Promise<T | typeof STOPPED> {
    if (this.stopping.signal.aborted) return Promise.resolve(STOPPED);
    return new Promise((resolve, reject) => {
      this.interrupt = resolve;
      next.then(resolve, reject);
    });
  }

  /**
   * Writes the entries as this subscription's next tracked items. Several at once (the
   * reader fell behind and read a batch) go to the network in one write, so the busier the
   * server, the less each event costs.
   */
  send(entries: readonly StreamEntry[]): void {
    if (this.closed || this.socket.readyState !== OPEN) return;
    if (entries.length > 1 && this.socket.corked) {
      this.socket.corked(() => this.writeAll(entries));
    } else {
      this.writeAll(entries);
    }
  }

  /** Writes each entry while the socket has room: no frame is built for a reader over its cap. */
  private writeAll(entries: readonly StreamEntry[]): void {
    for (const entry of entries) {
      if (this.socket.hasRoom?.() === false) return;
      this.write(entry);
    }
  }

  private write(entry: StreamEntry): void {
    const prefix = this.prefix;
    let frames = framesByEntry.get(entry);
    if (!frames) framesByEntry.set(entry, (frames = new Map()));
    let frame = frames.get(prefix);
    if (!frame) frames.set(prefix, (frame = Buffer.from(trackedDataFrame(prefix, entry.id, entry.event))));
    this.socket.send(frame, TEXT);
  }

  /** Ends the feed this wire carries when the wire closes (at once if it already has). */
  onClose(feed: { close(): void }): void {
    if (this.closed) feed.close();
    else this.feed = feed;
  }

  /**
   * Stopped from outside (the client's `subscription.stop`, the session's end, the socket's
   * close): no frame is written after this, the feed ends, the procedure's signal aborts and
   * the connection stops waiting for the next item.
   */
  stop(): void {
    this.close();
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    const interrupt = this.interrupt;
    this.interrupt = undefined;
    interrupt?.(STOPPED);
  }

  /** No frame is written after this: the subscription ended, or was stopped (`stop`). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const feed = this.feed;
    this.feed = undefined;
    feed?.close();
  }
}
