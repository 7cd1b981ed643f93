/**
 * Which transport the page's subscriptions use, as one state machine: WebSocket first,
 * server-sent events when the WebSocket cannot connect, polling only when SSE fails too, and
 * back to the WebSocket when a probe finds that upgrades pass again. Pure (no timers, no
 * sockets): `ConnectionMonitor` feeds it events and runs its timers, the subscription link
 * moves every open subscription when `transport` changes.
 */
export type Transport = "ws" | "sse" | "polling";

export interface TransportState {
  transport: Transport;
  /** The current transport carries subscriptions now (a socket open, or a stream connected). */
  connected: boolean;
  /** Failed WebSocket attempts since it was last open. */
  wsFailures: number;
  /** The WebSocket closed for a planned token refresh and is reconnecting at once: no outage. */
  refreshing: boolean;
  /** Any transport was connected once: later outages are "reconnecting", not "connecting". */
  everConnected: boolean;
}

export type TransportEvent =
  /** The WebSocket opened. */
  | { type: "wsOpened" }
  /** The WebSocket closed, or an attempt to open it failed; `planned` is the server's token refresh. */
  | { type: "wsClosed"; planned?: boolean }
  /** The WebSocket did not open within its time (a proxy that holds upgrades unanswered). */
  | { type: "wsTimedOut" }
  /** The server closed the WebSocket because the page is over one of its caps (close code 4429). */
  | { type: "wsRefused" }
  /** An event stream connected. */
  | { type: "sseOpened" }
  /** A connected event stream lost its connection and is retrying. */
  | { type: "sseDropped" }
  /** An event stream could not connect (refused, or nothing within its time). */
  | { type: "sseFailed" }
  /** A probe opened a WebSocket while the page used SSE or polling. */
  | { type: "probeSucceeded" };

/** Failed WebSocket attempts in a row after which the page tries server-sent events. */
export const WS_FAILURES_BEFORE_SSE = 2;

export const INITIAL_TRANSPORT_STATE: TransportState = {
  transport: "ws",
  connected: false,
  wsFailures: 0,
  refreshing: false,
  everConnected: false,
};

/** The state after `event`; events of a transport the page has left (late closes, old streams) change nothing. */
export function nextTransportState(state: TransportState, event: TransportEvent): TransportState {
  switch (event.type) {
    case "wsOpened":
      return { ...state, transport: "ws", connected: true, wsFailures: 0, refreshing: false, everConnected: true };
    case "wsClosed":
      if (state.transport !== "ws") return state;
      if (event.planned) return { ...state, connected: false, refreshing: true };
      return fallBackFromWs({ ...state, connected: false, refreshing: false, wsFailures: state.wsFailures + 1 });
    case "wsTimedOut":
      if (state.transport !== "ws" || state.connected) return state;
      return toSse(state);
    case "wsRefused":
      // Another socket would be refused the same way: event streams have caps of their own.
      if (state.transport !== "ws") return state;
      return toSse(state);
    case "sseOpened":
      if (state.transport !== "sse") return state;
      return { ...state, connected: true, everConnected: true };
    case "sseDropped":
      if (state.transport !== "sse") return state;
      return { ...state, connected: false };
    case "sseFailed":
      if (state.transport !== "sse") return state;
      return { ...state, transport: "polling", connected: false };
    case "probeSucceeded":
      if (state.transport === "ws") return state;
      return { ...state, transport: "ws", connected: false, wsFailures: 0, refreshing: false };
  }
}

function fallBackFromWs(state: TransportState): TransportState {
  return state.wsFailures >= WS_FAILURES_BEFORE_SSE ? toSse(state) : state;
}

function toSse(state: TransportState): TransportState {
  return { ...state, transport: "sse", connected: false, refreshing: false };
}
