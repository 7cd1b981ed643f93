import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { DEFAULT_SERVER_SECURITY } from "../http/server-security";
import { ConnectionGuard } from "./connection-guard";
import { GuardedWebSocket } from "./guarded-web-socket";

const CAP = 16 * 1024;
const FRAME = Buffer.from(JSON.stringify({ x: "y".repeat(1_000) }));

let wss: WebSocketServer | undefined;
afterEach(async () => {
  for (const client of wss?.clients ?? []) client.terminate();
  await new Promise((resolve) => wss?.close(resolve));
});

/** A guarded server socket with a small send-buffer cap, and the client connected to it. */
async function pair(): Promise<{ server: GuardedWebSocket; client: WebSocket; received: () => number }> {
  wss = new WebSocketServer({ port: 0, host: "127.0.0.1", WebSocket: GuardedWebSocket });
  const connected = new Promise<GuardedWebSocket>((resolve) =>
    wss!.once("connection", (ws: GuardedWebSocket) => resolve(ws)),
  );
  await new Promise((resolve) => wss!.once("listening", resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  let count = 0;
  client.on("message", () => (count += 1));
  const server = await connected;
  if (client.readyState !== WebSocket.OPEN) await new Promise((resolve) => client.once("open", resolve));
  server.guard = new ConnectionGuard(server, "127.0.0.1", { ...DEFAULT_SERVER_SECURITY.ws, maxBufferedBytes: CAP });
  return { server, client, received: () => count };
}

async function until(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("GuardedWebSocket's send-buffer cap", () => {
  it("lets a reading client take a corked batch far larger than the cap", async () => {
    const { server, received } = await pair();
    server.corked(() => {
      for (let i = 0; i < 100; i++) server.send(FRAME, { binary: false });
    });
    await until(() => received() === 100, "the whole batch");
    expect(server.readyState).toBe(WebSocket.OPEN);
  });

  it("terminates a client that stopped reading once its unsent output passes the cap, batch or not, holding at most one frame beyond it", async () => {
    for (const batched of [false, true]) {
      const { server, client } = await pair();
      const held: number[] = [];
      const guard = server.guard!;
      const report = guard.sendBufferExceeded.bind(guard);
      guard.sendBufferExceeded = (bufferedBytes) => {
        held.push(bufferedBytes);
        report(bufferedBytes);
      };
      // The client's side stops taking bytes: the kernel buffers fill, then ws's own queue grows.
      (client as unknown as { _socket: { pause(): void } })._socket.pause();
      const closed = new Promise((resolve) => server.once("close", resolve));
      for (let sent = 0; sent < 100_000 && server.readyState === WebSocket.OPEN; sent += 100) {
        const burst = () => {
          for (let i = 0; i < 100; i++) server.send(FRAME, { binary: false });
        };
        if (batched) server.corked(burst);
        else burst();
        await new Promise((r) => setImmediate(r));
      }
      await closed;
      expect(server.readyState).toBe(WebSocket.CLOSED);
      // ws adds a few bytes of header to each frame.
      expect(held, batched ? "batched" : "one by one").toEqual([expect.any(Number)]);
      expect(held[0]!, batched ? "batched" : "one by one").toBeLessThanOrEqual(CAP + FRAME.length + 16);
      client.terminate();
    }
  });
});
