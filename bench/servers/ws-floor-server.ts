import http from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { WebSocketServer, type WebSocket } from "ws";
import { answerRequests } from "../ipc";
import { tenantChannel } from "../workload";
import { tokenVerifier, type CompetitorConfig } from "./competitor-config";
import { exitSoon, diagnosticRequests, serverStats } from "./server-stats";
import { TenantChannelHub } from "./tenant-channel-hub";

/**
 * The floor: plain `ws`, the token verified once at the upgrade, and each event from Redis
 * pub/sub sent as the very bytes it was published with to every socket of its tenant: no
 * envelope, no per-subscriber work beyond the frame header. Nothing built on WebSockets
 * and Redis can deliver with less.
 */
let server: http.Server | undefined;
let wss: WebSocketServer | undefined;
let redis: Redis | undefined;

answerRequests({
  ...diagnosticRequests(),
  async init(config: CompetitorConfig) {
    const verify = tokenVerifier(config);
    redis = new Redis(config.redisUrl);
    const channelHub = new TenantChannelHub<WebSocket>(
      redis,
      (tenantId) => tenantChannel("ws-floor", tenantId),
      (members, message) => {
        for (const socket of members) socket.send(message, { binary: false });
      },
    );
    server = http.createServer((_req, res) => res.writeHead(404).end());
    const sockets = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 64 * 1024 });
    wss = sockets;
    sockets.on("connection", (socket, req) => {
      const url = new URL(req.url ?? "/", "http://localhost");
      socket.on("error", () => socket.terminate());
      void verify(url.searchParams.get("token")).then(async (tenantId) => {
        if (!tenantId) {
          socket.close(4401, "unauthorized");
          return;
        }
        socket.once("close", () => channelHub.remove(tenantId, socket));
        await channelHub.add(tenantId, socket);
        socket.send("ready");
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    return { port: (server.address() as AddressInfo).port };
  },
  stats: (options: { gc?: boolean }) => serverStats(() => wss?.clients.size ?? 0, options),
  async stop() {
    for (const socket of wss?.clients ?? []) socket.terminate();
    await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    redis?.disconnect();
    exitSoon();
  },
});
