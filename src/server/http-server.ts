import http from "node:http";
import type { Duplex } from "node:stream";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { applyWSSHandler } from "@trpc/server/adapters/ws";
import { WebSocketServer } from "ws";
import type { Logger } from "./logger";
import type { Pulse } from "./pulse";
import { appRouter } from "./trpc/root";
import type { Context } from "./trpc/trpc";

export const TRPC_PATH = "/api/trpc";
export const SESSION_COOKIE = "pulse_session";

/** Serves the dashboard: Next.js's request handler, and its upgrade handler in development. */
export interface WebHandler {
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> | void;
  upgrade?(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> | void;
}

export interface PulseServerOptions {
  pulse: Pulse;
  logger: Logger;
  web?: WebHandler;
  /** Mark the session cookie Secure (behind HTTPS). */
  secureCookies: boolean;
}

export interface PulseServer {
  server: http.Server;
  /** Tells every WebSocket client to reconnect (to another replica) before this one stops. */
  broadcastReconnect(): void;
  close(): Promise<void>;
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return undefined;
}

function bearer(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)$/i);
  return match?.[1];
}

/**
 * One HTTP server for everything on one port: tRPC over HTTP at /api/trpc, tRPC over
 * WebSocket on upgrades to the same path, and the Next.js dashboard for the rest.
 *
 * @see https://trpc.io/docs/server/websockets
 */
export function createPulseServer(options: PulseServerOptions): PulseServer {
  const { pulse, logger, web } = options;
  const services = pulse.services;

  const cookieHeader = (token: string | null, maxAge: number) =>
    [
      `${SESSION_COOKIE}=${token ? encodeURIComponent(token) : ""}`,
      "Path=/",
      "HttpOnly",
      "SameSite=Lax",
      `Max-Age=${token ? maxAge : 0}`,
      ...(options.secureCookies ? ["Secure"] : []),
    ].join("; ");

  const trpcHttp = createHTTPHandler({
    router: appRouter,
    basePath: `${TRPC_PATH}/`,
    async createContext({ req, res }): Promise<Context> {
      const token = bearer(req.headers.authorization) ?? readCookie(req.headers.cookie, SESSION_COOKIE);
      return {
        services,
        session: await services.auth.verify(token),
        setSessionCookie: (value, maxAge = 0) => res.appendHeader("Set-Cookie", cookieHeader(value, maxAge)),
      };
    },
    onError({ error, path }) {
      if (error.code === "INTERNAL_SERVER_ERROR") logger.error({ err: error, path }, "procedure failed");
    },
  });

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });
  const wsHandler = applyWSSHandler({
    wss,
    router: appRouter,
    keepAlive: { enabled: true, pingMs: 30_000, pongWaitMs: 5_000 },
    async createContext({ info }): Promise<Context> {
      const token = info.connectionParams?.token;
      return {
        services,
        session: await services.auth.verify(typeof token === "string" ? token : undefined, "socket-or-session"),
        setSessionCookie: () => {},
      };
    },
    onError({ error, path }) {
      if (error.code === "INTERNAL_SERVER_ERROR") logger.error({ err: error, path }, "subscription failed");
    },
  });

  const server = http.createServer((req, res) => {
    const path = req.url ?? "/";
    if (path === TRPC_PATH || path.startsWith(`${TRPC_PATH}/`) || path.startsWith(`${TRPC_PATH}?`)) {
      trpcHttp(req, res);
      return;
    }
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      return;
    }
    if (web) {
      Promise.resolve(web.handle(req, res)).catch((err) => {
        logger.error({ err, path }, "web request failed");
        if (!res.headersSent) res.writeHead(500).end("Internal Server Error");
      });
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("Not Found");
  });

  server.on("upgrade", (req, socket, head) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === TRPC_PATH) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
    } else if (web?.upgrade) {
      void web.upgrade(req, socket, head);
    } else {
      socket.destroy();
    }
  });

  return {
    server,
    broadcastReconnect: () => wsHandler.broadcastReconnectNotification(),
    async close() {
      wsHandler.broadcastReconnectNotification();
      for (const client of wss.clients) client.close(1001, "server shutting down");
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
