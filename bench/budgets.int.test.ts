import { randomUUID } from "node:crypto";
import WebSocket from "ws";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { BUDGETS, MARGINS } from "./budgets";
import { BenchProcess } from "./ipc";
import type { ServerStats } from "./servers/server-stats";
import type { BenchTenant } from "./workload";

/**
 * The budgets of `budgets.ts`, measured on Pulse as `npm start` composes it (the bench's
 * server, in a child process started with --expose-gc): heap per idle connection and per
 * idle subscription from the server's heap after full collections (its object spaces, not
 * the code the JIT compiled meanwhile), and the publisher's CPU time per progress event from
 * `process.cpuUsage` (the cheapest of a few rounds). No wall-clock figure is asserted.
 */
const CONNECTIONS = 300;
/** Connections opened, subscribed and closed before the first reading, so code compiled for them is not counted as theirs. */
const WARM_UP = 30;
const RUNS = 4;
const EVENTS_PER_RUN = 500;
const ROUNDS = 3;

let server: BenchProcess;
let baseUrl = "";
let tenants: BenchTenant[] = [];
const sockets: WebSocket[] = [];

beforeAll(async () => {
  server = BenchProcess.start({
    name: "pulse server (budgets)",
    script: "bench/servers/pulse-server.ts",
    quiet: true,
    env: {
      ...process.env,
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      PORT: "0",
      REDIS_URL: inject("redisUrl"),
      REDIS_PREFIX: `budgets-${randomUUID().slice(0, 8)}`,
      DATABASE_URL: "",
      PGLITE_DIR: "memory://",
      AUTH_SECRET: randomUUID(),
      PULSE_WEB: "false",
      PULSE_WORKERS: "false",
      PULSE_DEMO: "false",
      LOG_LEVEL: "warn",
      WS_MAX_CONNECTIONS_PER_TENANT: "100000",
      WS_MAX_CONNECTIONS_PER_USER: "100000",
      WS_MAX_CONNECTIONS_PER_IP: "100000",
    },
  });
  const { port } = await server.request<{ port: number }>("init", {}, 120_000);
  baseUrl = `ws://127.0.0.1:${port}/api/trpc?connectionParams=1`;
  const spec = { label: "budgets", tenants: 1, connectionsPerTenant: CONNECTIONS + WARM_UP, runsPerTenant: RUNS };
  tenants = await server.request<BenchTenant[]>("setup", spec, 120_000);
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.terminate();
  await server?.stop();
});

const heapAfterGc = async () => (await server.request<ServerStats>("stats", { gc: true })).objectHeapUsed;

/** Resolves with the first frame of `socket` that contains `text`, answering the server's keep-alive meanwhile. */
function frameWith(socket: WebSocket, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (data: WebSocket.RawData) => {
      const frame = data.toString();
      if (frame === "PING") return socket.send("PONG");
      if (!frame.includes(text)) return;
      socket.off("message", onMessage);
      resolve();
    };
    socket.on("message", onMessage);
    socket.once("close", (code) => reject(new Error(`socket closed (${code}) before a frame with ${text}`)));
  });
}

/** A signed-in connection, as wsLink opens one: the token in the first frame; answered once its context exists. */
async function openConnection(token: string): Promise<WebSocket> {
  const socket = new WebSocket(baseUrl, { perMessageDeflate: false });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  const answered = frameWith(socket, '"id":0');
  socket.send(JSON.stringify({ method: "connectionParams", data: { token } }));
  socket.send(JSON.stringify({ id: 0, method: "query", params: { path: "auth.me" } }));
  await answered;
  return socket;
}

/** Opens a connection per token, a few at a time as clients arrive; resolves once all are answered. */
async function openConnections(tokens: readonly string[]): Promise<WebSocket[]> {
  const connections: WebSocket[] = [];
  for (let i = 0; i < tokens.length; i += 20)
    connections.push(...(await Promise.all(tokens.slice(i, i + 20).map(openConnection))));
  return connections;
}

/** Starts `agent.onStatus` on each connection; resolves once each has its snapshot. */
function subscribeAll(connections: readonly WebSocket[]): Promise<void[]> {
  return Promise.all(
    connections.map((socket) => {
      const snapshot = frameWith(socket, '"type":"snapshot"');
      socket.send(JSON.stringify({ id: 1, method: "subscription", params: { path: "agent.onStatus", input: {} } }));
      return snapshot;
    }),
  );
}

/** Closes every connection and waits until the server counts none. */
async function closeAll(): Promise<void> {
  for (const socket of sockets.splice(0)) socket.close();
  await expect.poll(async () => (await server.request<ServerStats>("stats")).connections).toBe(0);
}

test("an idle connection, an idle subscription and a published progress event cost no more than their budgets", async () => {
  const tokens = tenants[0]!.tokens;
  await subscribeAll(await openConnections(tokens.slice(0, WARM_UP)));
  await closeAll();
  const before = await heapAfterGc();
  const connections = await openConnections(tokens.slice(WARM_UP));
  const connected = await heapAfterGc();
  await subscribeAll(connections);
  const subscribed = await heapAfterGc();
  await closeAll();

  const cost = await server.request<{ published: number; cpuUsPerEvent: number }>(
    "progress-cost",
    { tenants, eventsPerRun: EVENTS_PER_RUN, rounds: ROUNDS },
    120_000,
  );
  const measured = {
    heapPerIdleConnectionBytes: Math.round((connected - before) / CONNECTIONS),
    heapPerSubscriptionBytes: Math.round((subscribed - connected) / CONNECTIONS),
    publisherCpuUsPerProgressEvent: Number(cost.cpuUsPerEvent.toFixed(1)),
  };
  console.log(
    `budgets: measured ${JSON.stringify(measured)}; budgets ${JSON.stringify(BUDGETS)}; margins ${JSON.stringify(MARGINS)}`,
  );
  expect(cost.published).toBe(RUNS * EVENTS_PER_RUN * ROUNDS);
  expect(measured.heapPerIdleConnectionBytes, "heap per idle connection (bytes)").toBeLessThanOrEqual(
    BUDGETS.heapPerIdleConnectionBytes * MARGINS.heap,
  );
  expect(measured.heapPerSubscriptionBytes, "heap per idle subscription (bytes)").toBeLessThanOrEqual(
    BUDGETS.heapPerSubscriptionBytes * MARGINS.heap,
  );
  expect(measured.publisherCpuUsPerProgressEvent, "publisher CPU per progress event (µs)").toBeLessThanOrEqual(
    BUDGETS.publisherCpuUsPerProgressEvent * MARGINS.cpu,
  );
});
