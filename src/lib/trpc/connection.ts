/**
 * What the page's real-time link is doing, for the indicator and for the hooks that fall
 * back to polling. The WebSocket client reports opens and closes; the hooks report their
 * polls. Readable with `useSyncExternalStore`.
 */
export type ConnectionStatus = "connecting" | "live" | "reconnecting" | "polling" | "unavailable";

export interface ConnectionSnapshot {
  status: ConnectionStatus;
  /** Bumped by `refresh()`; polling hooks poll again when it changes. */
  refreshes: number;
  /** Reconnect attempts since the socket was last open. */
  attempt: number;
  /** When the last item reached the page, by either path (ms since epoch). */
  lastItemAt: number | null;
}

/** How long the socket may be down before the hooks poll instead. */
export const POLL_AFTER_MS = 3_000;
/** Consecutive failed polls after which the page says real-time updates are unavailable. */
const FAILED_POLLS_UNTIL_UNAVAILABLE = 2;

export class ConnectionMonitor {
  private socketOpen = false;
  private everOpen = false;
  private downSince: number = Date.now();
  private attempt = 0;
  private failedPolls = 0;
  private refreshes = 0;
  private refreshing = false;
  /** Live views mounted; the socket only matters (and only opens, being lazy) while some are. */
  private users = 0;
  private lastItemAt: number | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private snapshot: ConnectionSnapshot = { status: "connecting", refreshes: 0, attempt: 0, lastItemAt: null };
  private readonly listeners = new Set<() => void>();

  constructor(private readonly now: () => number = Date.now) {
    this.scheduleFallback();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): ConnectionSnapshot => this.snapshot;

  /** True while the hooks should read through the query procedures. */
  get shouldPoll(): boolean {
    return this.users > 0 && !this.socketOpen && this.now() - this.downSince >= POLL_AFTER_MS;
  }

  socketOpened(): void {
    this.socketOpen = true;
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
    if (this.refreshing && !this.shouldPoll) return "live";
    if (this.failedPolls >= FAILED_POLLS_UNTIL_UNAVAILABLE) return "unavailable";
    if (this.shouldPoll) return "polling";
    return this.everOpen || this.attempt > 0 ? "reconnecting" : "connecting";
  }

  private update(force = false): void {
    const next: ConnectionSnapshot = { status: this.status(), refreshes: this.refreshes, attempt: this.attempt, lastItemAt: this.lastItemAt };
    const prev = this.snapshot;
    if (!force && prev.status === next.status && prev.attempt === next.attempt && prev.lastItemAt === next.lastItemAt) return;
    this.snapshot = next;
    for (const listener of this.listeners) listener();
  }
}
