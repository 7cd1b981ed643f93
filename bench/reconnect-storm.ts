import WebSocket from "ws";
import { AGENT_EVENT, deferred, PING, RESYNC, SNAPSHOT, wsUrl } from "./lean-clients";
import { StormLedger, type StormCounts, type StormRange } from "./storm-ledger";
import { nowUs, scanMarkers, type Design } from "./workload";

/**
 * A reconnect storm, the clients' side: clients that stay connected until the server drops
 * them (a deploy), then reconnect all at once, each the way its design resumes. Pulse
 * resubscribes with the last tracked id it received (as wsLink does), so the server replays
 * what it missed; Socket.IO connects again (the Redis adapter keeps no session to recover).
 */
export interface StormClientsInit {
  design: Design;
  baseUrl: string;
  /** One entry per client: its tenant (index) and token. */
  connections: { tenant: number; token: string }[];
  /** Connections opened at once before the storm. */
  concurrency: number;
}

/** One client that can connect again after its connection was dropped. */
interface ResumableClient {
  /** Opens a connection and resolves once its subscription is in place. */
  connect(): Promise<void>;
  readonly open: boolean;
  close(): void;
}

type EventListener = (seq: number) => void;

/** The tracked id a tRPC data frame ends with (`…,"id":"<id>"}}`): what wsLink resends as `lastEventId`. */
export function trackedIdOf(frame: Buffer): string | null {
  const at = frame.lastIndexOf('"id":"');
  if (at < 0) return null;
  const end = frame.indexOf('"', at + 6);
  return end < 0 ? null : frame.toString("utf8", at + 6, end);
}

/**
 * Pulse over tRPC's WebSocket protocol: the first subscription is ready at its snapshot; a
 * later one sends `lastEventId` (as wsLink does on reconnect) and is ready once started.
 */
function resumablePulse(baseUrl: string, token: string, onEvent: EventListener): ResumableClient {
  let lastId: string | null = null;
  let socket: WebSocket | null = null;
  return {
    connect() {
      const ready = deferred();
      const resume = lastId;
      const ws = new WebSocket(wsUrl(baseUrl, "/api/trpc?connectionParams=1"), { perMessageDeflate: false });
      socket = ws;
      ws.on("error", (error) => ready.reject(new Error(`pulse: ${error.message}`)));
      ws.on("close", (code) => ready.reject(new Error(`pulse: closed before it was ready (${code})`)));
      ws.on("open", () => {
        ws.send(JSON.stringify({ method: "connectionParams", data: { token } }));
        const params = { path: "agent.onStatus", input: {}, ...(resume ? { lastEventId: resume } : {}) };
        ws.send(JSON.stringify({ id: 1, method: "subscription", params }));
      });
      ws.on("message", (data: Buffer) => {
        if (data.length === 4 && data.equals(PING)) return ws.send("PONG");
        if (data.indexOf(AGENT_EVENT) >= 0) {
          scanMarkers(data, onEvent);
          lastId = trackedIdOf(data) ?? lastId;
        } else if (data.indexOf(SNAPSHOT) >= 0 || data.indexOf(RESYNC) >= 0) {
          lastId = trackedIdOf(data) ?? lastId;
          ready.resolve();
        } else if (resume && data.indexOf('"type":"started"') >= 0) {
          ready.resolve();
        } else if (data.indexOf('"error"') >= 0) {
          ready.reject(new Error(`pulse: ${data.toString().slice(0, 300)}`));
        }
      });
      return ready.promise;
    },
    get open() {
      return socket?.readyState === WebSocket.OPEN;
    },
    close: () => socket?.terminate(),
  };
}

/** Socket.IO's protocol (Engine.IO v4 over a WebSocket): every connection a new one, the token as `auth`. */
function reconnectingSocketIo(baseUrl: string, token: string, onEvent: EventListener): ResumableClient {
  let socket: WebSocket | null = null;
  return {
    connect() {
      const ready = deferred();
      const ws = new WebSocket(wsUrl(baseUrl, "/rt/?EIO=4&transport=websocket"), { perMessageDeflate: false });
      socket = ws;
      ws.on("error", (error) => ready.reject(new Error(`socket-io: ${error.message}`)));
      ws.on("close", (code) => ready.reject(new Error(`socket-io: closed before it was ready (${code})`)));
      ws.on("message", (data: Buffer) => {
        if (data[0] === 0x32 /* 2: ping */) ws.send("3");
        else if (data[0] === 0x30 /* 0: open */) ws.send(`40${JSON.stringify({ token })}`);
        else if (data[0] === 0x34 && data[1] === 0x32 /* 42: EVENT */) scanMarkers(data, onEvent);
        else if (data[0] === 0x34 && data[1] === 0x30 /* 40: CONNECT */) ready.resolve();
        else if (data[0] === 0x34 && data[1] === 0x34 /* 44: CONNECT_ERROR */)
          ready.reject(new Error(`socket-io: ${data.toString()}`));
      });
      return ready.promise;
    },
    get open() {
      return socket?.readyState === WebSocket.OPEN;
    },
    close: () => socket?.terminate(),
  };
}

function resumableClient(design: Design, baseUrl: string, token: string, onEvent: EventListener): ResumableClient {
  if (design === "pulse") return resumablePulse(baseUrl, token, onEvent);
  if (design === "socket-io") return reconnectingSocketIo(baseUrl, token, onEvent);
  throw new Error(`reconnect storm: ${design} has no way to resume`);
}

export interface StormConnectOutcome {
  ready: number;
  failed: number;
  errors: string[];
}

export interface StormOutcome extends StormCounts {
  /** Clients whose new connection was subscribed before the timeout. */
  reconnected: number;
  errors: string[];
}

/** Runs `task` for each of `count` items, at most `limit` at once; collects the first few errors. */
async function eachLimited(count: number, limit: number, task: (index: number) => Promise<void>) {
  let next = 0;
  let done = 0;
  const errors: string[] = [];
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) {
        const index = next++;
        try {
          await task(index);
          done++;
        } catch (error) {
          if (errors.length < 5) errors.push(error instanceof Error ? error.message : String(error));
        }
      }
    }),
  );
  return { done, failed: count - done, errors };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms).unref()),
  ]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One design's storm clients: connected, dropped by the server, reconnected, counted. */
export class StormClients {
  private readonly clients: ResumableClient[];
  private readonly tenantOf: number[];
  private ledger: StormLedger | null = null;

  constructor(private readonly init: StormClientsInit) {
    this.tenantOf = init.connections.map((c) => c.tenant);
    this.clients = init.connections.map((c, index) =>
      resumableClient(init.design, init.baseUrl, c.token, (seq) => this.ledger?.record(index, seq, nowUs())),
    );
  }

  async connect(): Promise<StormConnectOutcome> {
    const { done, failed, errors } = await eachLimited(this.clients.length, this.init.concurrency, (i) =>
      within(this.clients[i]!.connect(), 30_000, "not subscribed"),
    );
    return { ready: done, failed, errors };
  }

  /** Resolves once the server has dropped every client (or `timeoutMs` passed): how many are still open. */
  async awaitDropped(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.clients.some((c) => c.open) && Date.now() < deadline) await sleep(20);
    return this.clients.filter((c) => c.open).length;
  }

  /** Every client reconnects at once; resolves when all are back to live (or `timeoutMs` passed), with the counts. */
  async reconnect(range: StormRange, timeoutMs: number): Promise<StormOutcome> {
    const ledger = new StormLedger(this.tenantOf, range, nowUs());
    this.ledger = ledger;
    const deadline = Date.now() + timeoutMs;
    const subscribed = eachLimited(this.clients.length, this.clients.length, (i) =>
      within(this.clients[i]!.connect(), timeoutMs, "not subscribed again"),
    );
    while (ledger.live < this.clients.length && Date.now() < deadline) await sleep(20);
    const { done, errors } = await subscribed;
    // A moment for late duplicates of what was already counted.
    await sleep(300);
    return { ...ledger.counts(), reconnected: done, errors };
  }

  close(): void {
    for (const client of this.clients) client.close();
  }
}
