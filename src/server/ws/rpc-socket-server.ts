import type http from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import type { WebSocketSecurity } from "../http/server-security";
import { ConnectionGuard, type ConnectionObservers } from "./connection-guard";
import type { ConnectionRegistry } from "./connection-registry";
import { GuardedWebSocket } from "./guarded-web-socket";
import type { RpcHandler } from "./rpc-connection";

export interface RpcSocketServerOptions<TContext> {
  /** tRPC's protocol over each socket, for whichever router it was given. */
  handler: RpcHandler<TContext>;
  /** Counts the connections against their caps and runs their time rules (keep-alive among them). */
  registry: ConnectionRegistry;
  /** Frame size and per-connection limits. */
  limits: WebSocketSecurity;
  observers?: ConnectionObservers;
}

/**
 * The WebSocket side of tRPC on one path: upgrades already admitted by the HTTP server
 * (origin, caps) become guarded sockets whose frames go to their `RpcConnection`. It serves
 * any router its handler was given, so the conformance test runs it beside tRPC's own
 * `applyWSSHandler` on the same router.
 *
 * @see https://trpc.io/docs/server/websockets
 */
export class RpcSocketServer<TContext> {
  private readonly wss: WebSocketServer;
  /** Every socket's `close` listener, one for all of them: the socket names its guard and its connection. */
  private readonly onSocketClose: (this: WebSocket, code: number) => void;

  constructor(private readonly options: RpcSocketServerOptions<TContext>) {
    const { registry } = options;
    this.onSocketClose = function (code) {
      const { guard, receiver } = this as GuardedWebSocket;
      if (guard) registry.closed(guard, { code });
      receiver?.closed();
    };
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: options.limits.maxPayloadBytes,
      WebSocket: GuardedWebSocket,
    });
  }

  /** Completes an admitted upgrade from `ip` and starts serving the socket. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, ip: string): void {
    const url = req.url;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.open(ws as GuardedWebSocket, ip, url));
  }

  /**
   * Starts a WebSocket connection's life: its guard, its place in the registry, and its
   * side of tRPC's protocol. Kept out of the upgrade listener, so nothing per connection
   * holds that listener's scope (and with it the upgrade request) for the socket's whole life.
   */
  private open(ws: GuardedWebSocket, ip: string, url: string | undefined): void {
    const { registry, limits, observers } = this.options;
    const guard = new ConnectionGuard(ws, ip, limits, Date.now, observers);
    ws.guard = guard;
    registry.open(guard);
    ws.on("close", this.onSocketClose);
    ws.receiver = this.options.handler.connect(ws, guard, url);
  }

  /** Tells every client to reconnect (tRPC's `reconnect` notification), e.g. to another replica before this one stops. */
  broadcastReconnect(): void {
    const notice = JSON.stringify({ id: null, method: "reconnect" });
    for (const client of this.wss.clients) if (client.readyState === client.OPEN) client.send(notice);
  }

  /** Closes every socket (1001: its subscriptions' signals abort as it goes) and the server. */
  async close(): Promise<void> {
    for (const client of this.wss.clients) client.close(1001, "server shutting down");
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
