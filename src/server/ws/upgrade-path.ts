import http from "node:http";
import type { Duplex } from "node:stream";
import { clientAddress } from "../http/client-address";
import type { OriginPolicy } from "../http/origin-policy";
import { requestOrigin, type RequestOriginOptions } from "../http/request-origin";
import type { WebSocketSecurity } from "../http/server-security";
import type { Logger } from "../logger";
import type { PulseMetrics } from "../metrics/pulse-metrics";
import type { ConnectionRegistry } from "./connection-registry";
import type { RpcSocketServer } from "./rpc-socket-server";

export interface UpgradePathOptions {
  /** The one path whose upgrades become tRPC WebSockets. */
  path: string;
  origins: OriginPolicy;
  origin: RequestOriginOptions;
  trustProxy: boolean;
  /** Counts connections per address and per process. */
  registry: ConnectionRegistry;
  sockets: Pick<RpcSocketServer<unknown>, "upgrade">;
  caps: Pick<WebSocketSecurity, "perIp" | "perProcess">;
  metrics: Pick<PulseMetrics, "refused">;
  logger: Logger;
  /** Upgrades of any other path (Next.js's hot reload in development); destroyed without it. */
  otherPaths?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => Promise<void> | void;
}

/** An `error` listener shared by every upgraded socket, rather than a closure each. */
function destroySocket(this: Duplex): void {
  this.destroy();
}

/**
 * The HTTP server's `upgrade` listener: a WebSocket to tRPC's path becomes a socket only from
 * an allowed origin and under the per-address and per-process caps; anything refused gets a
 * plain HTTP answer before any WebSocket exists.
 *
 * @see https://github.com/websockets/ws#multiple-servers-sharing-a-single-https-server
 */
export class UpgradePath {
  /** Whether the last upgrade found this process full: its warning is logged once per spell. */
  private full = false;

  constructor(private readonly options: UpgradePathOptions) {}

  handle(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // A client that resets mid-handshake must not become an unhandled error.
    socket.on("error", destroySocket);
    const { options } = this;
    const path = (req.url ?? "/").split("?")[0];
    if (path !== options.path) {
      if (options.otherPaths) void options.otherPaths(req, socket, head);
      else socket.destroy();
      return;
    }
    // Cross-site WebSocket hijacking: a page from another origin never gets a socket.
    if (!options.origins.allows(req.headers.origin, requestOrigin(req, options.origin))) {
      options.metrics.refused("origin");
      options.logger.debug({ origin: req.headers.origin?.slice(0, 200) }, "websocket refused: origin not allowed");
      refuseUpgrade(socket, 403, "FORBIDDEN", "origin not allowed");
      return;
    }
    const ip = clientAddress(req, options.trustProxy);
    if (this.refusedOverCap(socket, ip)) return;
    options.sockets.upgrade(req, socket, head, ip);
  }

  /** Refuses the upgrade when its address or this process holds its cap of connections. */
  private refusedOverCap(socket: Duplex, ip: string): boolean {
    const { registry, caps, metrics, logger } = this.options;
    const over = registry.refusalFor(ip);
    if (over === "per_process") {
      // Full: the client backs off and retries, here or (behind a load balancer) elsewhere.
      metrics.refused("per_process");
      // Once per spell of being full, not once per refused client.
      if (!this.full) {
        logger.warn(
          { connections: registry.size },
          "websocket refused: this process holds its cap of connections (WS_MAX_CONNECTIONS)",
        );
      }
      this.full = true;
      const message = `this server holds its ${caps.perProcess} connections; retry shortly`;
      refuseUpgrade(socket, 503, "SERVICE_UNAVAILABLE", message, "Retry-After: 5\r\n");
      return true;
    }
    if (over === "per_ip") {
      metrics.refused("per_ip");
      logger.debug({ ip }, "websocket refused: over the per-address cap");
      refuseUpgrade(socket, 429, "TOO_MANY_REQUESTS", `at most ${caps.perIp} open connections per address`);
      return true;
    }
    this.full = false;
    return false;
  }
}

/** Refuses a WebSocket upgrade with a plain HTTP answer, before any WebSocket exists. */
function refuseUpgrade(socket: Duplex, status: number, code: string, message: string, extraHeaders = ""): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n${extraHeaders}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}
