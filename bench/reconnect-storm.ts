import { reconnectDelayMs } from "@pulse/client";
import WebSocket from "ws";
import { AGENT_EVENT, deferred, loopbackSource, PING, RESYNC, SNAPSHOT, wsUrl } from "./lean-clients";
import { StormLedger, type StormCounts, type StormRange } from "./storm-ledger";
import { nowUs, scanMarkers, type Design } from "./workload";

/**
 * A reconnect storm, the clients' side: clients that stay connected until the server drops
 * them (a deploy), then reconnect all at once, each the way its design resumes, and after a
 * failed attempt again on its client library's schedule. Pulse resubscribes with the last
 * tracked id it received (as wsLink does), so the server replays what it missed; Socket.IO
 * sends its session's `pid` and last offset (as socket.io-client does), which a server with
 * connection-state recovery answers by restoring the session and replaying what it missed.
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
  /** How long its design's client library waits before attempt `attempt + 1` after `attempt` failed. */
  retryDelayMs(attempt: number): number;
  readonly open: boolean;
  /** Whether its last connection resumed the previous one's session on the server (Socket.IO's `socket.recovered`); Pulse has no session to resume. */
  readonly recovered?: boolean;
  close(): void;
}

type EventListener = (seq: number) => void;

/** A connection attempt's readiness: resolved once subscribed, rejected when the attempt failed. */
type Readiness = ReturnType<typeof deferred>;

/** How a design's client speaks on each new WebSocket; the socket itself is `resumableOver`'s. */
interface ResumeProtocol {
  /** Starts the protocol's error messages. */
  readonly name: string;
  readonly url: string;
  /** How long its client library waits before attempt `attempt + 1` after `attempt` failed. */
  retryDelayMs(attempt: number): number;
  /** Sets up one attempt on its new socket: what the client sends and how it reads what comes, settling `ready`. */
  attempt(ws: WebSocket, ready: Readiness): void;
  /** Whether its last attempt resumed the server's session (Socket.IO's); absent where the design has none. */
  readonly recovered?: boolean;
}

/**
 * A storm client over `protocol`: each attempt opens a new WebSocket from `from` (a failed
 * attempt's error or early close rejects it), and only the latest is open or closed.
 */
function resumableOver(protocol: ResumeProtocol, from: string): ResumableClient {
  let socket: WebSocket | null = null;
  return {
    connect() {
      const ready = deferred();
      const ws = new WebSocket(protocol.url, { perMessageDeflate: false, localAddress: from });
      socket = ws;
      ws.on("error", (error) => ready.reject(new Error(`${protocol.name}: ${error.message}`)));
      ws.on("close", (code) => ready.reject(new Error(`${protocol.name}: closed before it was ready (${code})`)));
      protocol.attempt(ws, ready);
      return ready.promise;
    },
    retryDelayMs: (attempt) => protocol.retryDelayMs(attempt),
    get open() {
      return socket?.readyState === WebSocket.OPEN;
    },
    get recovered() {
      return protocol.recovered;
    },
    close: () => socket?.terminate(),
  };
}

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
function pulseResume(baseUrl: string, token: string, onEvent: EventListener): ResumeProtocol {
  let lastId: string | null = null;
  return {
    name: "pulse",
    url: wsUrl(baseUrl, "/api/trpc?connectionParams=1"),
    retryDelayMs: reconnectDelayMs,
    attempt(ws, ready) {
      const resume = lastId;
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
    },
  };
}

/**
 * socket.io-client's reconnection delay with its defaults: 1 s doubling per attempt up to
 * 5 s, ±50% at random.
 *
 * @see https://socket.io/docs/v4/client-options/#reconnectiondelay
 */
function socketIoReconnectDelayMs(attempt: number): number {
  const delay = Math.min(1_000 * 2 ** attempt, 5_000);
  return Math.round(delay * (0.5 + Math.random()));
}

/**
 * The offset a Socket.IO EVENT frame ends with when the server recovers connection state
 * (`42["type",{…},"<offset>"]`): socket.io-client keeps an event's last argument as its
 * `_lastOffset` when it is a string and the server gave the connection a `pid`. Null when
 * the last argument is not a string (the event's object: no recovery).
 */
export function socketIoOffsetOf(frame: Buffer): string | null {
  const end = frame.length - 2;
  if (frame[end] !== 0x22 /* " */ || frame[end + 1] !== 0x5d /* ] */) return null;
  const start = frame.lastIndexOf('"', end - 1);
  return start < 0 ? null : frame.toString("utf8", start + 1, end);
}

/**
 * Socket.IO's protocol (Engine.IO v4 over a WebSocket), resuming as socket.io-client 4 does:
 * the token as `auth`; once the server's CONNECT has given the connection a `pid` (only
 * with connection-state recovery), a reconnect's CONNECT carries `pid` and the last offset
 * received beside the auth, and the server, if it still has the session, restores its rooms
 * and sends the packets it missed (before its CONNECT, whose `pid` is then the same:
 * `socket.recovered`). Without a `pid` every connection is a new one.
 *
 * @see https://github.com/socketio/socket.io/blob/main/packages/socket.io-client/lib/socket.ts (`_sendConnectPacket`, `onconnect`)
 */
function socketIoResume(baseUrl: string, token: string, onEvent: EventListener): ResumeProtocol {
  let pid: string | null = null;
  let lastOffset: string | null = null;
  let recovered = false;
  return {
    name: "socket-io",
    url: wsUrl(baseUrl, "/rt/?EIO=4&transport=websocket"),
    retryDelayMs: socketIoReconnectDelayMs,
    attempt(ws, ready) {
      const resume: { pid?: string; offset?: string } = pid
        ? { pid, ...(lastOffset ? { offset: lastOffset } : {}) }
        : {};
      ws.on("message", (data: Buffer) => {
        if (data[0] === 0x32 /* 2: ping */) ws.send("3");
        else if (data[0] === 0x30 /* 0: open */) ws.send(`40${JSON.stringify({ ...resume, token })}`);
        else if (data[0] === 0x34 && data[1] === 0x32 /* 42: EVENT */) {
          scanMarkers(data, onEvent);
          if (pid) lastOffset = socketIoOffsetOf(data) ?? lastOffset;
        } else if (data[0] === 0x34 && data[1] === 0x30 /* 40: CONNECT */) {
          const connected = JSON.parse(data.toString("utf8", 2)) as { pid?: string };
          recovered = connected.pid !== undefined && connected.pid === resume.pid;
          pid = connected.pid ?? null;
          ready.resolve();
        } else if (data[0] === 0x34 && data[1] === 0x34 /* 44: CONNECT_ERROR */)
          ready.reject(new Error(`socket-io: ${data.toString()}`));
      });
    },
    get recovered() {
      return recovered;
    },
  };
}

function resumableClient(
  design: Design,
  baseUrl: string,
  token: string,
  from: string,
  onEvent: EventListener,
): ResumableClient {
  if (design === "pulse") return resumableOver(pulseResume(baseUrl, token, onEvent), from);
  if (design === "socket-io") return resumableOver(socketIoResume(baseUrl, token, onEvent), from);
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
  /** Attempts that failed and were tried again after the client library's delay, summed over clients. */
  retries: number;
  /** Clients whose server recovered their session (Socket.IO's `socket.recovered`); null for a design without sessions. */
  recovered: number | null;
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

/**
 * Connects `client` again until it is subscribed, as its client library would: after a
 * failed attempt (refused, closed, or not subscribed in time) it waits the library's delay
 * and tries again, until `deadline`. Resolves to the attempts that failed.
 */
async function reconnectUntil(client: ResumableClient, deadline: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      await within(client.connect(), Math.max(0, deadline - Date.now()), "not subscribed again");
      return attempt;
    } catch (error) {
      // A late success of the abandoned attempt must not deliver beside the next one's.
      client.close();
      const delay = client.retryDelayMs(attempt);
      if (Date.now() + delay >= deadline) throw error;
      await sleep(delay);
    }
  }
}

/** One design's storm clients: connected, dropped by the server, reconnected, counted. */
export class StormClients {
  private readonly clients: ResumableClient[];
  private readonly tenantOf: number[];
  private ledger: StormLedger | null = null;

  constructor(private readonly init: StormClientsInit) {
    this.tenantOf = init.connections.map((c) => c.tenant);
    this.clients = init.connections.map((c, index) =>
      resumableClient(init.design, init.baseUrl, c.token, loopbackSource(index), (seq) =>
        this.ledger?.record(index, seq, nowUs()),
      ),
    );
  }

  async connect(): Promise<StormConnectOutcome> {
    const { done, failed, errors } = await eachLimited(this.clients.length, this.init.concurrency, (i) =>
      within(this.clients[i]!.connect(), 30_000, "not subscribed"),
    );
    return { ready: done, failed, errors };
  }

  /** Counts, from now, the events of each client's tenant numbered from `seqStart`, for `awaitLive`. */
  expectLive(seqStart: number, tenants: number): void {
    this.ledger = new StormLedger(this.tenantOf, { missedStart: seqStart, liveStart: seqStart, tenants }, nowUs());
  }

  /** Resolves once every client has received one of the events `expectLive` named (or `timeoutMs` passed): how many have not. */
  async awaitLive(timeoutMs: number): Promise<number> {
    const ledger = this.ledger;
    if (!ledger) throw new Error("storm clients: awaitLive before expectLive");
    const deadline = Date.now() + timeoutMs;
    while (ledger.live < this.clients.length && Date.now() < deadline) await sleep(20);
    return this.clients.length - ledger.live;
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
    let retries = 0;
    const subscribed = eachLimited(this.clients.length, this.clients.length, async (i) => {
      retries += await reconnectUntil(this.clients[i]!, deadline);
    });
    while (ledger.live < this.clients.length && Date.now() < deadline) await sleep(20);
    const { done, errors } = await subscribed;
    // A moment for late duplicates of what was already counted.
    await sleep(300);
    const recovered = this.init.design === "socket-io" ? this.clients.filter((c) => c.recovered).length : null;
    return { ...ledger.counts(), reconnected: done, retries, recovered, errors };
  }

  close(): void {
    for (const client of this.clients) client.close();
  }
}
