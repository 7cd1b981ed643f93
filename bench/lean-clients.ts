import http from "node:http";
import WebSocket from "ws";
import { scanMarkers, type Design } from "./workload";

/**
 * Lean load clients: each speaks its design's wire protocol directly over `ws` or node:http
 * and finds the bench markers in the raw frames without decoding them, so that one client
 * process can hold thousands of subscribers and the client's cost per delivery is the same
 * small amount for every design. Correctness is also checked with each design's official
 * client library (`official-clients.ts`).
 */

/** Where a connection reports what it receives. */
export interface DeliverySink {
  event(seq: number, intendedUs: number): void;
  resync(): void;
  closed(): void;
  /** An official client saw events out of order. */
  misordered(): void;
  /** The transport is open (WebSocket open, SSE response headers): the time-to-first-event wave's `connect`. */
  opened?(): void;
}

export interface BenchConnection {
  /** Resolves once the subscription is in place: everything published afterwards must arrive. */
  ready: Promise<void>;
  close(): void;
}

export const SNAPSHOT = Buffer.from('"type":"snapshot"');
export const RESYNC = Buffer.from('"type":"resync"');
export const AGENT_EVENT = Buffer.from('"type":"agent:');
export const PING = Buffer.from("PING");
const EVENT_END = Buffer.from("\n\n");
const SSE_CONNECTED = Buffer.from("event: connected");

export function wsUrl(baseUrl: string, path: string): string {
  return baseUrl.replace(/^http/, "ws") + path;
}

/** A promise with its settle functions; a rejection nobody awaits is not an unhandled one. */
export function deferred() {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Settles `ready` once, rejecting if the socket goes away first. */
function readiness() {
  let settled = false;
  const { promise, resolve, reject } = deferred();
  return {
    ready: promise,
    get settled() {
      return settled;
    },
    resolve() {
      if (settled) return;
      settled = true;
      resolve();
    },
    reject(error: Error) {
      if (settled) return;
      settled = true;
      reject(error);
    },
  };
}

/** Keeps the WebSocket's events off the error path once it is closed on purpose. */
function watchSocket(socket: WebSocket, gate: ReturnType<typeof readiness>, sink: DeliverySink, what: string): void {
  socket.on("error", (error) => gate.reject(new Error(`${what}: ${error.message}`)));
  socket.on("close", (code, reason) => {
    gate.reject(new Error(`${what}: closed before it was ready (${code} ${reason.toString()})`));
    sink.closed();
  });
}

/**
 * Pulse over tRPC's WebSocket protocol, as `wsLink` speaks it: `?connectionParams=1`, the
 * token in the first frame, one `agent.onStatus` subscription, PONG for the server's PING.
 * Ready once the snapshot arrives: the feed is registered with the stream reader before it.
 *
 * @see https://trpc.io/docs/client/links/wsLink
 */
function leanPulse(baseUrl: string, token: string, sink: DeliverySink, from: string): BenchConnection {
  const gate = readiness();
  const socket = new WebSocket(wsUrl(baseUrl, "/api/trpc?connectionParams=1"), {
    perMessageDeflate: false,
    localAddress: from,
  });
  watchSocket(socket, gate, sink, "pulse");
  socket.on("open", () => {
    sink.opened?.();
    socket.send(JSON.stringify({ method: "connectionParams", data: { token } }));
    socket.send(JSON.stringify({ id: 1, method: "subscription", params: { path: "agent.onStatus", input: {} } }));
  });
  socket.on("message", (data: Buffer) => {
    if (data.length === 4 && data.equals(PING)) {
      socket.send("PONG");
      return;
    }
    if (gate.settled) {
      // Only events count: a resync's snapshot holds runs' last messages, markers included.
      if (data.indexOf(AGENT_EVENT) >= 0) scanMarkers(data, sink.event);
      else if (data.indexOf(RESYNC) >= 0) sink.resync();
      return;
    }
    if (data.indexOf(SNAPSHOT) >= 0) gate.resolve();
    else if (data.indexOf('"error"') >= 0) gate.reject(new Error(`pulse: ${data.toString().slice(0, 300)}`));
  });
  return { ready: gate.ready, close: () => socket.terminate() };
}

/**
 * Socket.IO's protocol (Engine.IO v4 over a WebSocket, as the official client with
 * `transports: ["websocket"]` speaks it): CONNECT with the token as `auth`, PONG ("3") for
 * each PING ("2"), events as `42[...]` frames.
 *
 * @see https://socket.io/docs/v4/socket-io-protocol/
 */
function leanSocketIo(baseUrl: string, token: string, sink: DeliverySink, from: string): BenchConnection {
  const gate = readiness();
  const socket = new WebSocket(wsUrl(baseUrl, "/rt/?EIO=4&transport=websocket"), {
    perMessageDeflate: false,
    localAddress: from,
  });
  watchSocket(socket, gate, sink, "socket-io");
  socket.on("open", () => sink.opened?.());
  socket.on("message", (data: Buffer) => {
    const type = data[0];
    if (type === 0x34 /* 4: message */) {
      const packet = data[1];
      if (packet === 0x32 /* 2: EVENT */) scanMarkers(data, sink.event);
      else if (packet === 0x30 /* 0: CONNECT */) gate.resolve();
      else if (packet === 0x34 /* 4: CONNECT_ERROR */) gate.reject(new Error(`socket-io: ${data.toString()}`));
    } else if (type === 0x32 /* 2: ping */) {
      socket.send("3");
    } else if (type === 0x30 /* 0: open */) {
      socket.send(`40${JSON.stringify({ token })}`);
    }
  });
  return { ready: gate.ready, close: () => socket.terminate() };
}

/** An EventSource's request, read as a byte stream: complete events only, markers found in place. */
function leanSse(baseUrl: string, token: string, sink: DeliverySink, from: string): BenchConnection {
  const gate = readiness();
  const url = new URL(`/events?token=${encodeURIComponent(token)}`, baseUrl);
  let carry: Buffer | null = null;
  const request = http.get(
    url,
    { agent: false, localAddress: from, headers: { accept: "text/event-stream", "cache-control": "no-cache" } },
    (response) => {
      if (response.statusCode !== 200) {
        gate.reject(new Error(`sse: HTTP ${response.statusCode}`));
        response.resume();
        return;
      }
      sink.opened?.();
      response.on("data", (chunk: Buffer) => {
        const buffer: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
        const last = buffer.lastIndexOf(EVENT_END);
        if (last < 0) {
          carry = buffer;
          return;
        }
        const end = last + EVENT_END.length;
        let from = 0;
        if (!gate.settled) {
          const connected = buffer.indexOf(SSE_CONNECTED);
          if (connected >= 0 && connected < end) {
            gate.resolve();
            from = connected;
          } else {
            from = end;
          }
        }
        if (from < end) scanMarkers(buffer, sink.event, from, end);
        carry = end < buffer.length ? Buffer.from(buffer.subarray(end)) : null;
      });
      response.on("close", () => {
        gate.reject(new Error("sse: stream ended before it was ready"));
        sink.closed();
      });
    },
  );
  request.on("error", (error) => gate.reject(new Error(`sse: ${error.message}`)));
  return { ready: gate.ready, close: () => request.destroy() };
}

/** The floor's protocol: the token in the URL, "ready" once subscribed, then bare event JSON. */
function leanWsFloor(baseUrl: string, token: string, sink: DeliverySink, from: string): BenchConnection {
  const gate = readiness();
  const socket = new WebSocket(wsUrl(baseUrl, `/?token=${encodeURIComponent(token)}`), {
    perMessageDeflate: false,
    localAddress: from,
  });
  watchSocket(socket, gate, sink, "ws-floor");
  socket.on("open", () => sink.opened?.());
  socket.on("message", (data: Buffer) => {
    if (gate.settled) scanMarkers(data, sink.event);
    else if (data.toString() === "ready") gate.resolve();
  });
  return { ready: gate.ready, close: () => socket.terminate() };
}

/**
 * The loopback address connection `index` comes from: one address has about 28,000
 * ephemeral ports towards a server, and the idle scenario holds 50,000 connections (a
 * storm reconnecting 10,000 clients while the old ports wait out TIME_WAIT needs more than
 * one address too), so connections spread over 127.0.0.1–8.
 */
export function loopbackSource(index: number): string {
  return `127.0.0.${1 + (index % 8)}`;
}

/** A lean client of `design`, connecting from the loopback address `from`. */
export function connectLean(
  design: Design,
  baseUrl: string,
  token: string,
  sink: DeliverySink,
  from: string,
): BenchConnection {
  switch (design) {
    case "pulse":
      return leanPulse(baseUrl, token, sink, from);
    case "socket-io":
      return leanSocketIo(baseUrl, token, sink, from);
    case "sse":
      return leanSse(baseUrl, token, sink, from);
    case "ws-floor":
      return leanWsFloor(baseUrl, token, sink, from);
  }
}
