import type { StreamEntry } from "../events/event-stream";
import type { LiveOutlet } from "../events/feed";
import { entryJson, requestPrefix, trackedDataTail } from "./frame-encoder";

/** What a wire needs of its socket: `GuardedWebSocket`, whose send also enforces the buffer cap. */
export interface WireSocket {
  send(data: string | Buffer, options?: { binary?: boolean }): void;
  /** Runs `write`, handing the frames it sends to the network in one write. */
  corked?(write: () => void): void;
  readonly readyState: number;
}

const OPEN = 1;
const TEXT = { binary: false } as const;

/**
 * Each entry's frames, one per request prefix: subscribers of one tenant mostly share their
 * request id (wsLink numbers a page's requests from 1), so an event is encoded to bytes
 * once for all of them, however many there are.
 */
const framesByEntry = new WeakMap<StreamEntry, Map<string, Buffer>>();

/**
 * One WebSocket subscription's own line to its socket. tRPC serves the subscription (input,
 * auth, snapshot, replay, errors, stop); once the feed is live, its events are written here
 * as tRPC data messages, byte for byte the frames tRPC's handler would send, without each
 * event passing through tRPC's per-subscription async iterators.
 *
 * tRPC does not tell a procedure its request id, so the wire learns it from the socket:
 * tRPC sends a subscription's `started` message synchronously right after first asking the
 * feed for an item, and the feed opens the wire synchronously in that call, so the first
 * frame the socket sends after the wire opens is that message. A wire that sees anything
 * else stays unclaimed and its feed keeps yielding through tRPC: slower, never wrong.
 *
 * @see https://trpc.io/docs/server/websockets
 */
export class SubscriptionWire implements LiveOutlet {
  private prefix: string | null = null;
  private closed = false;
  private onClosed?: () => void;

  constructor(private readonly socket: WireSocket) {}

  /** True once the wire knows its request id and until it closes. */
  get ready(): boolean {
    return this.prefix !== null && !this.closed;
  }

  /**
   * Offered the first frame its socket sends after the wire opened; takes its request id
   * when it is a `started` message. Returns whether it did.
   */
  claim(frame: unknown): boolean {
    if (this.prefix !== null || this.closed || typeof frame !== "string") return false;
    let message: { id?: unknown; jsonrpc?: unknown; result?: { type?: unknown } } | null;
    try {
      message = JSON.parse(frame) as typeof message;
    } catch {
      return false;
    }
    const id = message?.id;
    const jsonrpc = message?.jsonrpc;
    if (message?.result?.type !== "started" || !(typeof id === "string" || (typeof id === "number" && Number.isFinite(id)))) return false;
    if (jsonrpc !== undefined && typeof jsonrpc !== "string") return false;
    this.prefix = requestPrefix(id, jsonrpc);
    return true;
  }

  /**
   * Writes the entries as this subscription's next tracked items. Several at once (the
   * reader fell behind and read a batch) go to the network in one write, so the busier the
   * server, the less each event costs.
   */
  send(entries: readonly StreamEntry[]): void {
    if (this.prefix === null || this.closed || this.socket.readyState !== OPEN) return;
    if (entries.length > 1 && this.socket.corked) {
      this.socket.corked(() => {
        for (const entry of entries) this.write(entry);
      });
    } else {
      for (const entry of entries) this.write(entry);
    }
  }

  private write(entry: StreamEntry): void {
    const prefix = this.prefix!;
    let frames = framesByEntry.get(entry);
    if (!frames) framesByEntry.set(entry, (frames = new Map()));
    let frame = frames.get(prefix);
    if (!frame) frames.set(prefix, (frame = Buffer.from(prefix + trackedDataTail(entry.id, entryJson(entry.event)))));
    this.socket.send(frame, TEXT);
  }

  /** Ends the feed this wire carries when the wire closes (at once if it already has). */
  onClose(stop: () => void): void {
    if (this.closed) stop();
    else this.onClosed = stop;
  }

  /** No frame is written after this: the subscription stopped, or its connection's session ended or its socket is going. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const stop = this.onClosed;
    this.onClosed = undefined;
    stop?.();
  }
}
