import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Redis } from "ioredis";
import { WebSocketServer, type WebSocket } from "ws";
import { answerRequests } from "../ipc";
import { tenantChannel } from "../workload";
import { COMPETITOR_LISTEN, tokenVerifier, type CompetitorConfig } from "./competitor-config";
import { exitSoon, diagnosticRequests, serverStats } from "./server-stats";
import { TenantChannelHub } from "./tenant-channel-hub";

/**
 * The floor: plain `ws`, the token verified once at the upgrade, and each event from Redis
 * pub/sub sent as the very bytes it was published with to every socket of its tenant: no
 * envelope, no per-subscriber work beyond the frame header. Like a careful `ws` server, it
 * batches: the messages that arrive in one read of the Redis connection are gathered per
 * tenant and sent in one microtask, each socket corked around its frames so they leave in
 * one write. It is the least a careful server does, not a proven minimum.
 */
let server: http.Server | undefined;
let wss: WebSocketServer | undefined;
let redis: Redis | undefined;

/** The underlying TCP socket `ws` writes to: corking it turns a batch's frames into one write. */
function tcpOf(socket: WebSocket): Socket | undefined {
  return (socket as unknown as { _socket?: Socket })._socket;
}

/** Gathers each tenant's messages until the current read is handled, then sends each socket its batch corked. */
function batchPerMicrotask(): (members: ReadonlySet<WebSocket>, message: Buffer) => void {
  const pending = new Map<ReadonlySet<WebSocket>, Buffer[]>();
  const flush = () => {
    for (const [members, messages] of pending) {
      for (const socket of members) {
        const tcp = tcpOf(socket);
        tcp?.cork();
        for (const message of messages) socket.send(message, { binary: false });
        tcp?.uncork();
      }
    }
    pending.clear();
  };
  return (members, message) => {
    if (pending.size === 0) queueMicrotask(flush);
    const messages = pending.get(members);
    if (messages) messages.push(message);
    else pending.set(members, [message]);
  };
}

answerRequests({
  ...diagnosticRequests(),
  async init(config: CompetitorConfig) {
    const verify = tokenVerifier(config);
    redis = new Redis(config.redisUrl);
    const channelHub = new TenantChannelHub<WebSocket>(
      redis,
      (tenantId) => tenantChannel("ws-floor", tenantId),
      batchPerMicrotask(),
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
    await new Promise<void>((resolve) => server!.listen(COMPETITOR_LISTEN, resolve));
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
