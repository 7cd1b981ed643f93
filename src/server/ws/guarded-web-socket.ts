import WebSocket from "ws";
import type { ConnectionGuard } from "./connection-guard";

/**
 * The server's WebSocket class (`WebSocketServer`'s `WebSocket` option): every incoming
 * frame passes its connection's guard before tRPC's handler sees it, and output to a reader
 * that stopped reading is bounded, so neither floods nor slow clients grow the heap.
 *
 * @see https://github.com/websockets/ws/blob/master/doc/ws.md#new-websocketserveroptions-callback
 */
export class GuardedWebSocket extends WebSocket {
  guard?: ConnectionGuard;

  override emit(event: string | symbol, ...args: any[]): boolean {
    if (event === "message" && this.guard && !this.guard.inspect(args[0], args[1] === true)) return false;
    return super.emit(event, ...args);
  }

  override send(data: any, options?: any, cb?: any): void {
    const limit = this.guard?.limits.maxBufferedBytes;
    if (limit !== undefined && this.readyState === WebSocket.OPEN && this.bufferedAmount > limit) {
      // Closing politely would queue behind the same backlog; the reader has to reconnect and resume.
      this.guard?.sendBufferExceeded(this.bufferedAmount);
      this.terminate();
      return;
    }
    super.send(data, options, cb);
  }
}
