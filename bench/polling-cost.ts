import http from "node:http";
import type { Socket } from "node:net";
import { createTRPCClient, createWSClient, wsLink } from "@trpc/client";
import WebSocket from "ws";
import { SESSION_COOKIE } from "../src/server/auth/session-cookie";
import type { AppRouter } from "../src/server/trpc/root";

/**
 * What an idle dashboard costs the network: polling `agent.events` every 2 s (the fallback
 * when the WebSocket cannot connect), against a healthy socket that only exchanges the
 * dashboard's keep-alive (wsLink `keepAlive.intervalMs` 10 s). Bytes are counted on the TCP
 * socket, HTTP headers and WebSocket framing included.
 */

export interface PollingCost {
  clients: number;
  windowMs: number;
  requests: number;
  bytes: number;
  failed: number;
  requestsPerMinutePerClient: number;
  bytesPerMinutePerClient: number;
  /** Bytes per minute per idle client on a healthy socket, keep-alive included. */
  socketBytesPerMinutePerClient: number;
  socketRequestsPerMinutePerClient: number;
}

/** One GET as the dashboard's httpBatchLink sends it, authenticated by the session cookie; resolves to the page and the bytes it took. */
function pollOnce(
  agent: http.Agent,
  baseUrl: string,
  token: string,
  cursor: string | undefined,
): Promise<{ cursor: string; bytes: number }> {
  const input = encodeURIComponent(JSON.stringify({ 0: cursor ? { cursor } : {} }));
  const url = new URL(`/api/trpc/agent.events?batch=1&input=${input}`, baseUrl);
  return new Promise((resolve, reject) => {
    let socket: Socket | undefined;
    let before = 0;
    const request = http.get(
      url,
      { agent, headers: { cookie: `${SESSION_COOKIE}=${encodeURIComponent(token)}`, accept: "*/*" } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const bytes = socket ? socket.bytesRead + socket.bytesWritten - before : 0;
          try {
            if (response.statusCode !== 200) throw new Error(`agent.events answered HTTP ${response.statusCode}`);
            const [page] = JSON.parse(Buffer.concat(chunks).toString()) as [{ result: { data: { cursor: string } } }];
            resolve({ cursor: page.result.data.cursor, bytes });
          } catch (error) {
            reject(error);
          }
        });
      },
    );
    request.on("socket", (s: Socket) => {
      socket = s;
      before = s.bytesRead + s.bytesWritten;
    });
    request.on("error", reject);
  });
}

/** A ws WebSocket that remembers its TCP socket, so its bytes can be counted. */
class CountedWebSocket extends WebSocket {
  static sockets: Socket[] = [];

  constructor(address: string | URL, protocols?: string | string[]) {
    super(address, protocols);
    this.once("upgrade", (response) => CountedWebSocket.sockets.push(response.socket));
  }
}

/**
 * Runs `tokens.length` polling clients and as many healthy sockets for `windowMs`, after a
 * first poll (not counted) that gives each poller its cursor, as a dashboard that fell back
 * to polling already has.
 */
export async function measurePollingCost(options: {
  baseUrl: string;
  tokens: string[];
  intervalMs: number;
  windowMs: number;
}): Promise<PollingCost> {
  const { baseUrl, tokens, intervalMs, windowMs } = options;
  const agents = tokens.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const cursors = await Promise.all(
    tokens.map((token, i) => pollOnce(agents[i]!, baseUrl, token, undefined).then((page) => page.cursor)),
  );

  CountedWebSocket.sockets = [];
  const sockets = tokens.map((token) => {
    const client = createWSClient({
      url: `${baseUrl.replace(/^http/, "ws")}/api/trpc`,
      WebSocket: CountedWebSocket as unknown as typeof globalThis.WebSocket,
      connectionParams: { token },
      keepAlive: { enabled: true, intervalMs: 10_000, pongTimeoutMs: 4_000 },
    });
    const trpc = createTRPCClient<AppRouter>({ links: [wsLink({ client })] });
    let ready: () => void = () => {};
    const subscribed = new Promise<void>((resolve) => (ready = resolve));
    const subscription = trpc.agent.onStatus.subscribe({}, { onData: () => ready() });
    return { client, subscription, subscribed };
  });
  await Promise.all(sockets.map((s) => s.subscribed));
  const socketBytesBefore = CountedWebSocket.sockets.reduce((sum, s) => sum + s.bytesRead + s.bytesWritten, 0);

  let requests = 0;
  let bytes = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    tokens.map(async (token, i) => {
      let cursor = cursors[i];
      let due = started;
      for (;;) {
        due += intervalMs;
        if (due > started + windowMs) break;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
        try {
          const page = await pollOnce(agents[i]!, baseUrl, token, cursor);
          cursor = page.cursor;
          bytes += page.bytes;
        } catch {
          failed++;
        }
        requests++;
      }
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + windowMs - performance.now())));
  const socketBytes =
    CountedWebSocket.sockets.reduce((sum, s) => sum + s.bytesRead + s.bytesWritten, 0) - socketBytesBefore;
  for (const s of sockets) {
    s.subscription.unsubscribe();
    void s.client.close();
  }
  for (const agent of agents) agent.destroy();
  const perMinute = (total: number) => (total / tokens.length) * (60_000 / windowMs);
  return {
    clients: tokens.length,
    windowMs,
    requests,
    bytes,
    failed,
    requestsPerMinutePerClient: perMinute(requests),
    bytesPerMinutePerClient: perMinute(bytes),
    socketBytesPerMinutePerClient: perMinute(socketBytes),
    socketRequestsPerMinutePerClient: 0,
  };
}
