import type { Duplex } from "node:stream";
import WebSocket from "ws";
import type { ConnectionGuard } from "./connection-guard";

type BufferLike = Parameters<WebSocket["send"]>[0];
type SendOptions = { mask?: boolean; binary?: boolean; compress?: boolean; fin?: boolean };

/** Where a socket's frames go: its connection's protocol handler (`RpcConnection`). */
export interface FrameReceiver {
  receive(data: unknown, isBinary: boolean): void;
  /** The socket closed. */
  closed(): void;
}

/**
 * The server's WebSocket class (`WebSocketServer`'s `WebSocket` option): every incoming
 * frame goes straight to its connection's handler, which lets its guard decide on it, with
 * no listener (and no closure) per socket; output to a reader that stopped reading is
 * bounded, so neither floods nor slow clients grow the heap.
 *
 * @see https://github.com/websockets/ws/blob/master/doc/ws.md#new-websocketserveroptions-callback
 */
export class GuardedWebSocket extends WebSocket {
  guard?: ConnectionGuard;
  receiver?: FrameReceiver;
  private corkDepth = 0;

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === "message" && this.receiver) {
      this.receiver.receive(args[0], args[1] === true);
      return true;
    }
    // A protocol error (an oversized or malformed frame): ws closes the socket itself, with
    // the matching code; without a listener, an "error" event would throw.
    if (event === "error" && this.listenerCount("error") === 0) {
      this.guard?.debug({ err: args[0] as unknown }, "websocket protocol error");
      return false;
    }
    return super.emit(event, ...args);
  }

  /**
   * Runs `write`, handing every frame it sends to the network in one write (one syscall)
   * instead of one each: ws writes a frame as header and payload, each a write of its own.
   * Inside the batch the cap is checked before each frame as everywhere (`hasRoom`).
   */
  corked(write: () => void): void {
    if (!this.hasRoom()) return;
    // ws keeps its net.Socket in `_socket`; without one (not connected yet) frames go out one by one.
    const socket = this.netSocket();
    if (typeof socket?.cork !== "function") return write();
    socket.cork();
    this.corkDepth += 1;
    try {
      write();
    } finally {
      this.corkDepth -= 1;
      socket.uncork();
    }
  }

  /**
   * Whether another frame may be built and sent: writers ask before building one, so a
   * reader that stopped reading makes the server hold at most the cap and one frame. Inside
   * a corked batch, what the batch wrote so far is first handed to the network, so only what
   * the reader left unsent counts: a reading client takes a batch far larger than the cap.
   */
  hasRoom(): boolean {
    if (this.readyState !== WebSocket.OPEN) return false;
    if (!this.overBufferCap()) return true;
    const socket = this.netSocket();
    if (this.corkDepth > 0 && typeof socket?.uncork === "function") {
      socket.uncork();
      socket.cork();
      if (!this.overBufferCap()) return true;
    }
    // Closing politely would queue behind the same backlog; the reader has to reconnect and resume.
    this.guard?.sendBufferExceeded(this.bufferedAmount);
    this.terminate();
    return false;
  }

  override send(data: BufferLike, cb?: (err?: Error) => void): void;
  override send(data: BufferLike, options: SendOptions, cb?: (err?: Error) => void): void;
  override send(data: BufferLike, options?: SendOptions | ((err?: Error) => void), cb?: (err?: Error) => void): void {
    if (!this.hasRoom()) return;
    if (typeof options === "function") super.send(data, options);
    else super.send(data, options ?? {}, cb);
  }

  private netSocket(): Duplex | undefined {
    return (this as unknown as { _socket?: Duplex })._socket;
  }

  /** Whether a reader left more than the cap unsent. */
  private overBufferCap(): boolean {
    const limit = this.guard?.limits.maxBufferedBytes;
    return limit !== undefined && this.bufferedAmount > limit;
  }
}
