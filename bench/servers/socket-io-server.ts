import http from "node:http";
import type { AddressInfo } from "node:net";
import { createAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { QueueEvents } from "bullmq";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { answerRequests } from "../ipc";
import { BENCH_ROLES, SOCKET_IO_STREAMS_OPTIONS, tenantChannel, type SocketIoAdapter } from "../workload";
import { COMPETITOR_LISTEN, tokenVerifier, type CompetitorConfig } from "./competitor-config";
import { connectionDropper, exitSoon, diagnosticRequests, serverStats } from "./server-stats";

/**
 * Seed 000's design: Socket.IO on the API's HTTP server at `/rt`, each client joining its
 * tenant's room after its token is verified, with `@socket.io/redis-adapter` so an event
 * emitted on one replica reaches the clients of every replica. Events come in through the
 * seed's bridge: a BullMQ QueueEvents per agent queue, whose `progress` events (an agent's
 * `job.updateProgress(event)`) are emitted to the event's tenant room. The seed's bridge
 * names the room from the tenant it was started for, which would send every job of a
 * shared queue to that tenant; this one takes it from the event, as a working port must.
 * Events a worker emits through `@socket.io/redis-emitter` (the bench's default way) arrive
 * through the adapter instead.
 *
 * With `adapter: "redis-streams"` (the reconnect storm) the same design runs on
 * `@socket.io/redis-streams-adapter` with connection-state recovery, as Socket.IO documents
 * it: a socket's session (its rooms and data) is kept in Redis when its connection drops, and
 * a client that comes back with its `pid` and last `offset` within `maxDisconnectionDuration`
 * gets its rooms back and the packets of the stream it missed. Events then come from a
 * worker emitting through the same adapter (event-publishers.ts), so no bridge runs.
 *
 * With `adapter: "memory"` (the storm's default) it is one node with Socket.IO's default
 * in-memory adapter and connection-state recovery: the server keeps each session and the
 * packets broadcast since, and bridges the events in from one Redis pub/sub channel per
 * tenant (a pattern subscription), emitting each to its tenant's room.
 *
 * @see https://socket.io/docs/v4/redis-adapter/
 * @see https://socket.io/docs/v4/connection-state-recovery
 */
let io: Server | undefined;
let pub: Redis | undefined;
let sub: Redis | undefined;
let bridges: QueueEvents[] = [];
/** The bridges' blocking connections: theirs to use, ours to close. */
let bridgeRedis: Redis[] = [];
let dropConnections: (() => number) | undefined;

/** Seed 000's bridge: one QueueEvents per agent queue, each job's progress emitted to its tenant's room. */
function startBridges(redisUrl: string): void {
  // From the stream's start: the bench's Redis is new, and no event sent before the first read may be missed.
  bridgeRedis = BENCH_ROLES.map(() => new Redis(redisUrl, { maxRetriesPerRequest: null }));
  bridges = BENCH_ROLES.map((role, i) => new QueueEvents(role, { connection: bridgeRedis[i]!, lastEventId: "0-0" }));
  for (const bridge of bridges) {
    bridge.on("progress", ({ data }) => {
      const event = data as { tenantId: string; type: string };
      // `io.local`: the bridge runs on every node and each reads every job, so each emits
      // to its own sockets only; a plain `io.to` would also publish the event through the
      // adapter, which this node then receives, decodes and drops as its own echo.
      io!.local.to(`tenant:${event.tenantId}`).emit(event.type, event);
    });
  }
}

answerRequests({
  ...diagnosticRequests(),
  async init(config: CompetitorConfig & { adapter: SocketIoAdapter }) {
    const verify = tokenVerifier(config);
    pub = new Redis(config.redisUrl);
    // Redis cuts a connection whose unread replies pass the bench's output-buffer limit (a
    // storm of session restores on the Streams adapter does): ioredis reconnects; say it once.
    pub.once("error", (error: Error) => console.error(`socket-io server: Redis connection: ${error.message}`));
    pub.on("error", () => undefined);
    const server = http.createServer();
    dropConnections = connectionDropper(server);
    if (config.adapter === "redis-streams") {
      io = new Server(server, {
        path: "/rt",
        serveClient: false,
        // Socket.IO's default of two minutes, stated because the storm relies on it: longer
        // than the storm's clients are away plus its timeout, so no session expires first.
        connectionStateRecovery: { maxDisconnectionDuration: 120_000 },
        adapter: createStreamsAdapter(pub, SOCKET_IO_STREAMS_OPTIONS),
      });
    } else if (config.adapter === "memory") {
      io = new Server(server, {
        path: "/rt",
        serveClient: false,
        connectionStateRecovery: { maxDisconnectionDuration: 120_000 },
      });
      sub = new Redis(config.redisUrl);
      await sub.psubscribe(tenantChannel("socket-io", "*"));
      sub.on("pmessage", (_pattern: string, _channel: string, message: string) => {
        const event = JSON.parse(message) as { tenantId: string; type: string };
        io!.to(`tenant:${event.tenantId}`).emit(event.type, event);
      });
    } else {
      sub = new Redis(config.redisUrl);
      io = new Server(server, { path: "/rt", serveClient: false });
      io.adapter(createAdapter(pub, sub));
    }
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
    if (config.adapter === "redis") startBridges(config.redisUrl);
    await Promise.all(bridges.map((bridge) => bridge.waitUntilReady()));
    // The storm's servers (those that recover sessions) keep Node's default backlog, 511: given
    // Pulse's 4096, this one took longer in 2 of 6 storms here and once stopped answering for
    // over a minute; the smaller queue paces its session restores. The others take Pulse's.
    const listen = config.adapter === "redis" ? COMPETITOR_LISTEN : { ...COMPETITOR_LISTEN, backlog: undefined };
    await new Promise<void>((resolve) => server.listen(listen, resolve));
    // The Redis adapter's pattern subscription must be in place before anything is emitted:
    // a PING on the same connection answers after it.
    await sub?.ping();
    return { port: (server.address() as AddressInfo).port };
  },
  stats: (options: { gc?: boolean }) => serverStats(() => io?.engine.clientsCount ?? 0, options),
  "drop-connections": () => dropConnections?.() ?? 0,
  async stop() {
    await Promise.all(bridges.map((bridge) => bridge.close()));
    for (const redis of bridgeRedis) redis.disconnect();
    if (io) await io.close();
    pub?.disconnect();
    sub?.disconnect();
    exitSoon();
  },
});
