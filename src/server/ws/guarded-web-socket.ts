import type { Duplex } from "node:stream";
import WebSocket from "ws";
import type { ConnectionGuard } from "./connection-guard";

/** Where a socket's frames go: its connection's protocol handler (`RpcConnection`). */
export interface FrameReceiver {
  receive(data: unknown, isBinary: boolean): void;
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

  override emit(event: string | symbol, ...args: any[]): boolean {
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
   * The send-buffer cap is checked once, before the batch: inside it, nothing has had a
   * chance to leave yet, so a healthy reader would look like a stalled one. A socket thus
   * holds at most one batch beyond the cap.
   */
  corked(write: () => void): void {
    if (this.overBufferCap()) return;
    // ws keeps its net.Socket in `_socket`; without one (not connected yet) frames go out one by one.
    const socket = (this as unknown as { _socket?: Duplex })._socket;
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

  override send(data: any, options?: any, cb?: any): void {
    if (this.corkDepth === 0 && this.overBufferCap()) return;
    super.send(data, options, cb);
  }

  /** Terminates the socket when a slow reader left more than the cap unsent, and says so. */
  private overBufferCap(): boolean {
    const limit = this.guard?.limits.maxBufferedBytes;
    if (limit === undefined || this.readyState !== WebSocket.OPEN || this.bufferedAmount <= limit) return false;
    // Closing politely would queue behind the same backlog; the reader has to reconnect and resume.
    this.guard?.sendBufferExceeded(this.bufferedAmount);
    this.terminate();
    return true;
  }
}
