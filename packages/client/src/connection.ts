import {
  INITIAL_TRANSPORT_STATE,
  nextTransportState,
  type Transport,
  type TransportEvent,
  type TransportState,
} from "./transport-machine.js";

/**
 * What the page's real-time link is doing, for the indicator and for the hooks that fall
 * back to polling: live over the WebSocket, live over server-sent events ("Live (HTTP)"),
 * (re)connecting, polling, or unavailable. Readable with `useSyncExternalStore`.
 */
export type ConnectionStatus = "connecting" | "live" | "live-http" | "reconnecting" | "polling" | "unavailable";

export interface ConnectionSnapshot {
  status: ConnectionStatus;
  transport: Transport;
  /** Bumped by `refresh()`; polling hooks poll again when it changes. */
  refreshes: number;
  /** Failed WebSocket attempts since it was last open. */
  attempt: number;
  /** When the last item reached the page, by any path (ms since epoch). */
  lastItemAt: number | null;
  /** A transport was connected once since the page loaded: until then an outage is "cannot reach", not "reconnecting". */
  everConnected: boolean;
}

/** How long the WebSocket may take to open before the page tries server-sent events. */
export const WS_CONNECT_TIMEOUT_MS = 6_000;
/** How long an event stream may take to connect (or reconnect) before the page polls. */
export const SSE_CONNECT_TIMEOUT_MS = 5_000;
/** How often the page tries a WebSocket again while it uses server-sent events or polling. */
export const PROBE_INTERVAL_MS = 5_000;
/**
 * How long the page waits before it probes for the WebSocket after the server refused its
 * socket for a cap (a probe only tells that upgrades pass, not that a socket would be let in).
 */
export const REFUSED_PROBE_DELAY_MS = 60_000;
/** Consecutive failed polls after which the page says real-time updates are unavailable. */
const FAILED_POLLS_UNTIL_UNAVAILABLE = 2;

export interface ConnectionMonitorOptions {
  /** Opens a WebSocket and closes it: true when upgrades pass (see `probeWebSocket`). */
  probe?: () => Promise<boolean>;
  now?: () => number;
}

/**
 * Runs the page's `TransportState` machine: the WebSocket client, the event streams and the
 * probe report to it; its timers give up on a WebSocket or a stream that does not connect,
 * and probe for the WebSocket while the page is on SSE or polling. The subscription link
 * follows `transport`; the hooks poll while `shouldPoll`.
 */
export class ConnectionMonitor {
  private machine: TransportState = INITIAL_TRANSPORT_STATE;
  private failedPolls = 0;
  private refreshes = 0;
  /** Live views mounted; the transports only matter (and the socket only opens, being lazy) while some are. */
  private users = 0;
  private lastItemAt: number | null = null;
  private giveUpTimer: ReturnType<typeof setTimeout> | undefined;
  private probeTimer: ReturnType<typeof setTimeout> | undefined;
  private probing = false;
  /** No probe before this time (ms since epoch): the server refused the page's socket. */
  private probeNotBefore = 0;
  private snapshot: ConnectionSnapshot;
  private readonly listeners = new Set<() => void>();
  private readonly transportListeners = new Set<(transport: Transport) => void>();
  private readonly probe: () => Promise<boolean>;
  private readonly now: () => number;

  constructor(options: ConnectionMonitorOptions = {}) {
    this.probe = options.probe ?? (async () => false);
    this.now = options.now ?? Date.now;
    this.snapshot = this.nextSnapshot();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): ConnectionSnapshot => this.snapshot;

  /** The transport subscriptions use now. */
  get transport(): Transport {
    return this.machine.transport;
  }

  /** Calls `listener` whenever the transport changes; returns the function that stops it. */
  onTransportChange(listener: (transport: Transport) => void): () => void {
    this.transportListeners.add(listener);
    return () => this.transportListeners.delete(listener);
  }

  /** True while the hooks should read through the query procedures. */
  get shouldPoll(): boolean {
    return this.users > 0 && this.machine.transport === "polling";
  }

  socketOpened(): void {
    this.failedPolls = 0;
    this.dispatch({ type: "wsOpened" });
  }

  /**
   * The socket closed or failed to open. `planned` is the server's token refresh (close code
   * 4000): the client reconnects at once with a fresh token, which is no outage to show. A
   * lazy socket closing while no live view is on the page is no outage either.
   */
  socketClosed(planned = false): void {
    if (this.users === 0) return;
    this.dispatch({ type: "wsClosed", planned });
  }

  /**
   * The server closed the socket because the page is over one of its caps (too many
   * connections for the user, the tenant, the share link or the address: close code 4429):
   * subscriptions move to server-sent events at once, and the WebSocket is probed for again
   * only after `REFUSED_PROBE_DELAY_MS`.
   */
  socketRefused(): void {
    if (this.users === 0) return;
    this.probeNotBefore = this.now() + REFUSED_PROBE_DELAY_MS;
    this.dispatch({ type: "wsRefused" });
  }

  sseOpened(): void {
    this.failedPolls = 0;
    this.dispatch({ type: "sseOpened" });
  }

  sseDropped(): void {
    this.dispatch({ type: "sseDropped" });
  }

  sseFailed(): void {
    this.dispatch({ type: "sseFailed" });
  }

  /** Registers a live view; the returned function unregisters it. */
  retain(): () => void {
    this.users += 1;
    if (this.users === 1) this.arm();
    this.update();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.users -= 1;
      if (this.users === 0) this.disarm();
      this.update();
    };
  }

  pollSucceeded(): void {
    this.failedPolls = 0;
    this.update();
  }

  pollFailed(): void {
    this.failedPolls += 1;
    this.update();
  }

  /** Asks every polling hook to poll now (the manual Refresh button). */
  refresh(): void {
    this.refreshes += 1;
    this.update(true);
  }

  itemReceived(): void {
    this.lastItemAt = this.now();
    this.update();
  }

  /** Stops the timers (the page is going away). */
  close(): void {
    this.disarm();
  }

  private dispatch(event: TransportEvent): void {
    const before = this.machine;
    this.machine = nextTransportState(before, event);
    if (this.machine === before) return;
    if (before.transport !== this.machine.transport || before.connected !== this.machine.connected) this.arm();
    this.update();
    if (before.transport !== this.machine.transport) {
      for (const listener of this.transportListeners) listener(this.machine.transport);
    }
  }

  /** The timers of the current state: give up on a transport that does not connect, probe for the WebSocket. */
  private arm(): void {
    this.disarm();
    if (this.users === 0) return;
    const { transport, connected } = this.machine;
    if (transport === "ws" && !connected) {
      this.giveUpTimer = setTimeout(() => this.dispatch({ type: "wsTimedOut" }), WS_CONNECT_TIMEOUT_MS);
    }
    if (transport === "sse" && !connected) {
      this.giveUpTimer = setTimeout(() => this.dispatch({ type: "sseFailed" }), SSE_CONNECT_TIMEOUT_MS);
    }
    if (transport !== "ws") this.scheduleProbe();
  }

  private disarm(): void {
    clearTimeout(this.giveUpTimer);
    clearTimeout(this.probeTimer);
    this.giveUpTimer = this.probeTimer = undefined;
  }

  private scheduleProbe(): void {
    const delay = Math.max(PROBE_INTERVAL_MS, this.probeNotBefore - this.now());
    this.probeTimer = setTimeout(() => void this.runProbe(), delay);
  }

  private async runProbe(): Promise<void> {
    this.probeTimer = undefined;
    if (this.probing) return;
    this.probing = true;
    const passed = await this.probe().catch(() => false);
    this.probing = false;
    if (this.users === 0 || this.machine.transport === "ws") return;
    if (passed) this.dispatch({ type: "probeSucceeded" });
    else if (this.probeTimer === undefined) this.scheduleProbe();
  }

  private status(): ConnectionStatus {
    const { transport, connected, refreshing, everConnected } = this.machine;
    if (transport === "ws" && (connected || refreshing)) return "live";
    if (transport === "sse" && connected) return "live-http";
    if (transport === "polling") return this.failedPolls >= FAILED_POLLS_UNTIL_UNAVAILABLE ? "unavailable" : "polling";
    return everConnected ? "reconnecting" : "connecting";
  }

  private nextSnapshot(): ConnectionSnapshot {
    return {
      status: this.status(),
      transport: this.machine.transport,
      refreshes: this.refreshes,
      attempt: this.machine.wsFailures,
      lastItemAt: this.lastItemAt,
      everConnected: this.machine.everConnected,
    };
  }

  private update(force = false): void {
    const next = this.nextSnapshot();
    const prev = this.snapshot;
    const same =
      prev.status === next.status &&
      prev.transport === next.transport &&
      prev.attempt === next.attempt &&
      prev.lastItemAt === next.lastItemAt &&
      prev.everConnected === next.everConnected;
    if (!force && same) return;
    this.snapshot = next;
    for (const listener of this.listeners) listener();
  }
}
