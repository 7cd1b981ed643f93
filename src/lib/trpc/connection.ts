/**
 * What the page's real-time link is doing, for the indicator, the subscription link and the
 * hooks that fall back to polling. The order of preference is WebSocket → server-sent events
 * → polling: the WebSocket client reports opens and closes, the subscription link how its
 * event streams fare, the hooks their polls. Readable with `useSyncExternalStore`.
 */
export type ConnectionStatus = "connecting" | "live" | "live-http" | "reconnecting" | "polling" | "unavailable";

/** Which push transport the page's subscriptions use: the WebSocket, or server-sent events while it cannot connect. */
export type SubscriptionTransport = "ws" | "sse";

export interface ConnectionSnapshot {
  status: ConnectionStatus;
  /** Where subscriptions go now (see `ConnectionMonitor.subscriptionTransport`). */
  transport: SubscriptionTransport;
  /** Bumped by `refresh()`; polling hooks poll again when it changes. */
  refreshes: number;
  /** Reconnect attempts since the socket was last open. */
  attempt: number;
  /** When the last item reached the page, by either path (ms since epoch). */
  lastItemAt: number | null;
}

/** How long the socket may be down before subscriptions move to server-sent events (and, when those fail too, the hooks poll). */
export const POLL_AFTER_MS = 3_000;
/** Consecutive failed polls after which the page says real-time updates are unavailable. */
const FAILED_POLLS_UNTIL_UNAVAILABLE = 2;

export class ConnectionMonitor {
  private socketOpen = false;
  private everOpen = false;
  private downSince: number = Date.now();
  private attempt = 0;
  private failedPolls = 0;
  /** Server-sent events: not tried since the socket was last open, connecting, open, or failed (a proxy refusing or buffering them). */
  private eventStream: "untried" | "connecting" | "open" | "failed" = "untried";
  private refreshes = 0;
  private refreshing = false;
  /** Live views mounted; the socket only matters (and only opens, being lazy) while some are. */
  private users = 0;
  private lastItemAt: number | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private snapshot: ConnectionSnapshot = { status: "connecting", transport: "ws", refreshes: 0, attempt: 0, lastItemAt: null };
  private readonly listeners = new Set<() => void>();

  constructor(private readonly now: () => number = Date.now) {
    this.scheduleFallback();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): ConnectionSnapshot => this.snapshot;

  /** True while the hooks should read through the query procedures: the socket is down, and server-sent events failed too. */
  get shouldPoll(): boolean {
    return this.socketDownLong && this.eventStream === "failed";
  }

  /**
   * Where subscriptions go now: the WebSocket, unless it has been down a while and
   * server-sent events have not failed. While both fail, subscriptions wait on the socket,
   * which keeps trying (and the hooks poll).
   */
  get subscriptionTransport(): SubscriptionTransport {
    return this.socketDownLong && this.eventStream !== "failed" ? "sse" : "ws";
  }

  private get socketDownLong(): boolean {
    return this.users > 0 && !this.socketOpen && this.now() - this.downSince >= POLL_AFTER_MS;
  }

  /** A subscription is being opened as server-sent events. */
  eventStreamConnecting(): void {
    if (this.eventStream === "untried") this.eventStream = "connecting";
    this.update();
  }

  /** A server-sent-event subscription started: the page is live over HTTP. */
  eventStreamOpened(): void {
    if (this.eventStream !== "failed") this.eventStream = "open";
    this.update();
  }

  /** Server-sent events do not get through (refused, or held back by a buffering proxy): the hooks poll. */
  eventStreamFailed(): void {
    this.eventStream = "failed";
    this.update();
  }

  /**
   * A probe WebSocket opened while subscriptions were on server-sent events: they move
   * back to the socket, which has `POLL_AFTER_MS` to open before they leave it again.
   */
  socketReachable(): void {
    if (this.socketOpen) return;
    this.downSince = this.now();
    this.eventStream = "untried";
    this.scheduleFallback();
    this.update();
  }

  socketOpened(): void {
    this.socketOpen = true;
    this.eventStream = "untried";
    this.refreshing = false;
    this.everOpen = true;
    this.attempt = 0;
    this.failedPolls = 0;
    this.update();
  }

  /**
   * The socket closed. `planned` is the server's token refresh (close code 4000): the client
   * reconnects at once with a fresh token, which is no outage to show.
   */
  socketClosed(planned = false): void {
    const wasOpen = this.socketOpen;
    this.socketOpen = false;
    this.refreshing = planned;
    // A lazy socket closing with no view on the page is no outage.
    if (this.users === 0) return this.update();
    if (wasOpen || this.attempt === 0) this.downSince = this.now();
    this.attempt += 1;
    this.scheduleFallback();
    this.update();
  }

  /** Registers a live view; the returned function unregisters it. */
  retain(): () => void {
    this.users += 1;
    if (this.users === 1 && !this.socketOpen) {
      this.downSince = this.now();
      this.attempt = 0;
      this.scheduleFallback();
    }
    this.update();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.users -= 1;
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

  private scheduleFallback(): void {
    clearTimeout(this.timer);
    const wait = POLL_AFTER_MS - (this.now() - this.downSince);
    this.timer = setTimeout(() => this.update(), Math.max(0, wait) + 10);
  }

  private status(): ConnectionStatus {
    if (this.socketOpen) return "live";
    if (this.refreshing && !this.socketDownLong) return "live";
    if (this.subscriptionTransport === "sse" && this.eventStream === "open") return "live-http";
    if (this.failedPolls >= FAILED_POLLS_UNTIL_UNAVAILABLE) return "unavailable";
    if (this.shouldPoll) return "polling";
    return this.everOpen || this.attempt > 0 ? "reconnecting" : "connecting";
  }

  private update(force = false): void {
    const next: ConnectionSnapshot = {
      status: this.status(),
      transport: this.subscriptionTransport,
      refreshes: this.refreshes,
      attempt: this.attempt,
      lastItemAt: this.lastItemAt,
    };
    const prev = this.snapshot;
    if (!force && prev.status === next.status && prev.transport === next.transport && prev.attempt === next.attempt && prev.lastItemAt === next.lastItemAt) return;
    this.snapshot = next;
    for (const listener of this.listeners) listener();
  }
}
