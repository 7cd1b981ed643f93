import { createTRPCClient, createWSClient, wsLink } from "@trpc/client";
import { EventSource } from "eventsource";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { compareStreamIds } from "../src/shared/stream-id";
import type { AppRouter } from "../src/server/trpc/root";
import { deferred, type BenchConnection, type DeliverySink } from "./lean-clients";
import { parseMarker, type Design } from "./workload";

/**
 * Subscribers built on each design's official client library, decoding every event in
 * full: the proof that what the lean clients count is what real clients get. Each also
 * checks order: a run's events arrive in the order they were published, and Pulse's
 * tracked ids only grow.
 */

interface DecodedEvent {
  type?: string;
  runId?: string;
  message?: string;
  name?: string;
}

/** Records a decoded event, checking each run's sequence only grows. */
function recorder(sink: DeliverySink) {
  const lastOfRun = new Map<string, number>();
  return (event: DecodedEvent) => {
    const found = parseMarker(event.message ?? event.name ?? "");
    if (!found) return;
    const previous = lastOfRun.get(event.runId ?? "") ?? -1;
    if (found.seq <= previous) sink.misordered();
    lastOfRun.set(event.runId ?? "", found.seq);
    sink.event(found.seq, found.intendedUs);
  };
}

/** `@trpc/client`'s wsLink, as the dashboard uses it (token in connectionParams), subscribed to `agent.onStatus`. */
function officialPulse(baseUrl: string, token: string, sink: DeliverySink): BenchConnection {
  const ready = deferred();
  const record = recorder(sink);
  const client = createWSClient({
    url: `${baseUrl.replace(/^http/, "ws")}/api/trpc`,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    connectionParams: { token },
    retryDelayMs: () => 500,
  });
  const trpc = createTRPCClient<AppRouter>({ links: [wsLink({ client })] });
  let lastId: string | null = null;
  const subscription = trpc.agent.onStatus.subscribe(
    {},
    {
      onData: ({ id, data }) => {
        if (data.type === "snapshot") return ready.resolve();
        if (data.type === "resync") return sink.resync();
        if (lastId !== null && compareStreamIds(id, lastId) <= 0) sink.misordered();
        lastId = id;
        record(data);
      },
      onError: (error) => ready.reject(new Error(`pulse (official): ${error.message}`)),
    },
  );
  return {
    ready: ready.promise,
    close: () => {
      subscription.unsubscribe();
      void client.close();
    },
  };
}

/** `socket.io-client` as seed 000's dashboard creates it: `/rt`, WebSocket transport, token as `auth`. */
function officialSocketIo(baseUrl: string, token: string, sink: DeliverySink): BenchConnection {
  const ready = deferred();
  const record = recorder(sink);
  const socket = io(baseUrl, {
    path: "/rt",
    transports: ["websocket"],
    auth: { token },
    reconnection: false,
    forceNew: true,
  });
  socket.on("connect", () => ready.resolve());
  socket.on("connect_error", (error) => ready.reject(new Error(`socket-io (official): ${error.message}`)));
  socket.on("disconnect", () => sink.closed());
  socket.onAny((_type: string, payload: DecodedEvent) => record(payload));
  return { ready: ready.promise, close: () => void socket.disconnect() };
}

/** The `eventsource` package (the WHATWG EventSource for Node). */
function officialSse(baseUrl: string, token: string, sink: DeliverySink): BenchConnection {
  const ready = deferred();
  const record = recorder(sink);
  const source = new EventSource(new URL(`/events?token=${encodeURIComponent(token)}`, baseUrl));
  source.addEventListener("connected", () => ready.resolve());
  source.addEventListener("message", (event) => record(JSON.parse(event.data as string) as DecodedEvent));
  source.addEventListener("error", (event) => {
    ready.reject(new Error(`sse (official): ${event.message ?? "error"}`));
    sink.closed();
  });
  return { ready: ready.promise, close: () => source.close() };
}

/** `ws` is the floor's official client; this one decodes each event in full. */
function officialWsFloor(baseUrl: string, token: string, sink: DeliverySink): BenchConnection {
  const ready = deferred();
  const record = recorder(sink);
  const socket = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/?token=${encodeURIComponent(token)}`);
  socket.on("message", (data: Buffer) => {
    const text = data.toString();
    if (text === "ready") ready.resolve();
    else record(JSON.parse(text) as DecodedEvent);
  });
  socket.on("error", (error) => ready.reject(new Error(`ws-floor (official): ${error.message}`)));
  socket.on("close", () => {
    ready.reject(new Error("ws-floor (official): closed"));
    sink.closed();
  });
  return { ready: ready.promise, close: () => socket.terminate() };
}

export function connectOfficial(design: Design, baseUrl: string, token: string, sink: DeliverySink): BenchConnection {
  switch (design) {
    case "pulse":
      return officialPulse(baseUrl, token, sink);
    case "socket-io":
      return officialSocketIo(baseUrl, token, sink);
    case "sse":
      return officialSse(baseUrl, token, sink);
    case "ws-floor":
      return officialWsFloor(baseUrl, token, sink);
  }
}
