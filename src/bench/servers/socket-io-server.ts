import http from "node:http";
import type { AddressInfo } from "node:net";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { answerRequests } from "../ipc";
import { tokenVerifier, type CompetitorConfig } from "./competitor-config";
import { exitSoon, diagnosticRequests, serverStats } from "./server-stats";

/**
 * Seed 000's design: Socket.IO on the API's HTTP server at `/rt`, each client joining its
 * tenant's room after its token is verified, with `@socket.io/redis-adapter` so events
 * emitted from worker processes (through `@socket.io/redis-emitter`) reach every replica.
 *
 * @see https://socket.io/docs/v4/redis-adapter/
 */
let io: Server | undefined;
let pub: Redis | undefined;
let sub: Redis | undefined;

answerRequests({
  ...diagnosticRequests(),
  async init(config: CompetitorConfig) {
    const verify = tokenVerifier(config);
    pub = new Redis(config.redisUrl);
    sub = new Redis(config.redisUrl);
    const server = http.createServer();
    io = new Server(server, { path: "/rt", serveClient: false });
    io.adapter(createAdapter(pub, sub));
    io.use((socket, next) => {
      verify(socket.handshake.auth.token).then(
        (tenantId) => {
          if (!tenantId) return next(new Error("unauthorized"));
          socket.data.tenantId = tenantId;
          next();
        },
        (error: Error) => next(error),
      );
    });
    io.on("connection", (socket) => {
      void socket.join(`tenant:${socket.data.tenantId as string}`);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    // The adapter's pattern subscription must be in place before anything is emitted: a
    // PING on the same connection answers after it.
    await sub.ping();
    return { port: (server.address() as AddressInfo).port };
  },
  stats: (options: { gc?: boolean }) => serverStats(() => io?.engine.clientsCount ?? 0, options),
  async stop() {
    await new Promise<void>((resolve) => (io ? io.close(() => resolve()) : resolve()));
    pub?.disconnect();
    sub?.disconnect();
    exitSoon();
  },
});
