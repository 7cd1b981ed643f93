import http from "node:http";
import type { AddressInfo } from "node:net";
import type { AnyTRPCRouter } from "@trpc/server";
import { applyWSSHandler } from "@trpc/server/adapters/ws";
import type { TRPCRequestInfo } from "@trpc/server/http";
import WebSocket, { WebSocketServer } from "ws";
import { resolveServerSecurity, type WebSocketSecurity } from "../server/http/server-security";
import { createLogger } from "../server/logger";
import { ConnectionRegistry } from "../server/ws/connection-registry";
import { RpcHandler, type RpcHandlerOptions } from "../server/ws/rpc-connection";
import { RpcSocketServer } from "../server/ws/rpc-socket-server";
import { eventually } from "./harness";

/** A createContext both handlers can run: it reads only tRPC's `info`. */
export type SharedCreateContext<TContext> = (opts: { info: TRPCRequestInfo }) => TContext | Promise<TContext>;

/** One WebSocket server speaking tRPC's protocol for a router: tRPC's own handler or Pulse's. */
export interface HandlerUnderTest {
  readonly name: "trpc" | "pulse";
  readonly url: string;
  broadcastReconnect(): void;
  close(): Promise<void>;
}

export interface HandlerPairOptions<TContext> {
  router: AnyTRPCRouter;
  createContext: SharedCreateContext<TContext>;
  onError?: RpcHandlerOptions<TContext>["onError"];
  /** Keep-alive: both handlers ping a connection quiet for this long. */
  pingMs?: number;
  /** Pulse's per-connection limits beyond the defaults. */
  limits?: Partial<WebSocketSecurity>;
  /** Pulse's handler only: the context of one subscription, with its wire (see `RpcHandlerOptions`). */
  subscriptionContext?: RpcHandlerOptions<TContext>["subscriptionContext"];
}

/** tRPC's `applyWSSHandler` on a plain `ws` server on 127.0.0.1. */
export async function startTrpcHandler<TContext>(options: HandlerPairOptions<TContext>): Promise<HandlerUnderTest> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => wss.once("listening", resolve));
  const handler = applyWSSHandler({
    wss,
    router: options.router,
    createContext: ({ info }) => options.createContext({ info }) as never,
    keepAlive: { enabled: true, pingMs: options.pingMs ?? 600_000, pongWaitMs: 600_000 },
  });
  return {
    name: "trpc",
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    broadcastReconnect: () => handler.broadcastReconnectNotification(),
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** Pulse's handler (`RpcSocketServer` over `RpcHandler`, as http-server.ts wires it) on 127.0.0.1. */
export async function startPulseHandler<TContext>(
  options: HandlerPairOptions<TContext>,
): Promise<HandlerUnderTest & { sockets: RpcSocketServer<TContext>; registry: ConnectionRegistry }> {
  const pingMs = options.pingMs ?? 600_000;
  // Connections here never authenticate, which Pulse's guard would close after authTimeoutMs.
  const limits = {
    ...resolveServerSecurity().ws,
    authTimeoutMs: 600_000,
    pingMs,
    pongWaitMs: 600_000,
    ...options.limits,
  };
  const logger = createLogger("silent");
  const registry = new ConnectionRegistry({
    auth: { stillActive: async () => ({ sessions: new Set(), shares: new Set() }) },
    caps: limits,
    checkIntervalMs: 600_000,
    shortestRuleMs: pingMs,
    logger,
  });
  registry.start();
  const rpc = new RpcHandler<TContext>({
    router: options.router,
    createContext: ({ info }) => options.createContext({ info }),
    onError: options.onError,
    subscriptionContext: options.subscriptionContext,
  });
  const sockets = new RpcSocketServer({ handler: rpc, registry, limits, observers: { logger } });
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on("upgrade", (req, socket, head) => sockets.upgrade(req, socket, head, "127.0.0.1"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    name: "pulse",
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets,
    registry,
    broadcastReconnect: () => sockets.broadcastReconnect(),
    async close() {
      registry.stop();
      await sockets.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What a client received: each text frame, and how the socket closed. */
export class RecordingClient {
  readonly frames: string[] = [];
  closeCode: number | null = null;
  readonly ws: WebSocket;
  readonly opened: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on("message", (data, isBinary) =>
      this.frames.push(isBinary ? `binary:${(data as Buffer).toString("hex")}` : String(data)),
    );
    this.ws.on("close", (code) => (this.closeCode = code));
    this.ws.on("error", () => undefined);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", () => resolve());
      this.ws.once("error", reject);
    });
  }

  /** Sends an object as JSON, a string as it is, a Buffer as a binary frame. */
  send(frame: unknown): void {
    if (Buffer.isBuffer(frame)) this.ws.send(frame, { binary: true });
    else this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The frames parsed as JSON where they are. */
  get messages(): any[] {
    return this.frames.map((frame) => {
      try {
        return JSON.parse(frame);
      } catch {
        return frame;
      }
    });
  }

  /** Waits until `predicate` holds for the messages received so far. */
  async until(predicate: (messages: any[]) => boolean, what: string): Promise<void> {
    await eventually(() => this.messages, predicate, what);
  }

  /** Waits for the socket to close. */
  async closed(): Promise<number> {
    return (await eventually(
      () => this.closeCode,
      (code) => code !== null,
      "the socket closed",
    ))!;
  }

  close(): void {
    this.ws.terminate();
  }
}
