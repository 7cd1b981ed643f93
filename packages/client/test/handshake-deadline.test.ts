import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket as NodeWebSocket, WebSocketServer } from "ws";
import { withHandshakeDeadline } from "../src/client.js";

/**
 * The client's WebSocket with a deadline on its opening handshake, on real loopback sockets
 * (`ws`'s WebSocket stands in for the browser's: Node 20 has none built in).
 */

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function listening(server: net.Server | WebSocketServer): Promise<number> {
  if (server instanceof WebSocketServer) {
    await new Promise<void>((resolve) => server.once("listening", resolve));
  } else {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  }
  return (server.address() as AddressInfo).port;
}

/** Resolves with the events the socket fired, in order, once it closed or `ms` passed. */
function eventsOf(socket: WebSocket, ms: number): Promise<string[]> {
  const seen: string[] = [];
  return new Promise((resolve) => {
    for (const type of ["open", "error", "close"]) socket.addEventListener(type, () => seen.push(type));
    socket.addEventListener("close", () => resolve(seen));
    setTimeout(() => resolve(seen), ms);
  });
}

const Deadlined = withHandshakeDeadline(NodeWebSocket as unknown as typeof WebSocket, 300);

describe("withHandshakeDeadline", () => {
  it("fails a socket whose server accepted the connection and never answers the upgrade", async () => {
    const held = new Set<net.Socket>();
    const silent = net.createServer((socket) => held.add(socket));
    closers.push(async () => {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });
    const port = await listening(silent);
    const socket = new Deadlined(`ws://127.0.0.1:${port}/`);
    // The undecorated socket would still be connecting after 5 s; this one fails at its deadline.
    expect(await eventsOf(socket, 5_000)).toEqual(["error", "close"]);
    expect(held.size).toBe(1);
  });

  it("leaves a socket that opened in time open past its deadline", async () => {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const port = await listening(server);
    const socket = new Deadlined(`ws://127.0.0.1:${port}/`);
    closers.unshift(async () => socket.close());
    expect(await eventsOf(socket, 1_000)).toEqual(["open"]);
    expect(socket.readyState).toBe(NodeWebSocket.OPEN);
  });
});
