import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** Why a subscription or a polling page answered with a `resync` item instead of events. */
export type ResyncReason = "trimmed" | "lost" | "cursor";

/** Why a WebSocket connection was turned away or closed before it could be used. */
export type RefusalReason =
  | "origin"
  | "per_process"
  | "per_ip"
  | "per_user"
  | "per_tenant"
  | "per_share_link"
  | "per_viewer_ip"
  | "unauthenticated";

const RESYNC_REASONS: readonly ResyncReason[] = ["trimmed", "lost", "cursor"];
const REFUSAL_REASONS: readonly RefusalReason[] = [
  "origin",
  "per_process",
  "per_ip",
  "per_user",
  "per_tenant",
  "per_share_link",
  "per_viewer_ip",
  "unauthenticated",
];

/** From half a millisecond (an idle loopback Redis) to ten seconds (a reader that fell far behind). */
export const READER_LAG_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

let processRegistry: Registry | undefined;

/**
 * Process, heap, event-loop and GC metrics belong to the process, not to one Pulse: they are
 * collected once into a registry of their own (never prom-client's global one), because each
 * collection starts an event-loop monitor and a GC observer that cannot be stopped again.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * Every metric one Pulse instance reports at `/metrics`, in a prom-client registry of its
 * own, so tests can run many instances in one process without their counts mixing. Labels
 * only ever take a handful of fixed values (never a tenant, run or connection id), so the
 * number of series stays bounded however many tenants there are.
 *
 * @see https://github.com/siimon/prom-client#usage
 */
export class PulseMetrics {
  readonly registry = new Registry();

  /** Open WebSocket connections of this process. */
  readonly wsConnections = new Gauge({
    name: "pulse_ws_connections",
    help: "Open WebSocket connections of this process.",
    registers: [this.registry],
  });
  /** Active subscriptions, each held by `ConnectionGuard.hold`. */
  readonly subscriptions = new Gauge({
    name: "pulse_subscriptions",
    help: "Active subscriptions of this process.",
    labelNames: ["transport"],
    registers: [this.registry],
  });
  /** Tenants the stream reader follows (those with a local subscriber). */
  readonly readerTenants = new Gauge({
    name: "pulse_stream_reader_tenants",
    help: "Tenants whose Redis stream this process's reader follows.",
    registers: [this.registry],
  });
  readonly eventsPublished = new Counter({
    name: "pulse_events_published_total",
    help: "Events this process appended to tenants' streams, by event type.",
    labelNames: ["type"],
    registers: [this.registry],
  });
  readonly eventsDelivered = new Counter({
    name: "pulse_events_delivered_total",
    help: "Events handed to subscribers (once per subscriber) and returned by polling pages; snapshots and resyncs are counted apart.",
    labelNames: ["transport"],
    registers: [this.registry],
    collect: () => this.flushPending(),
  });
  readonly replays = new Counter({
    name: "pulse_replays_total",
    help: "Subscriptions that resumed from a cursor by replaying the stream.",
    registers: [this.registry],
  });
  readonly replayedEvents = new Counter({
    name: "pulse_replayed_events_total",
    help: "Events those resumed subscriptions replayed before going live.",
    registers: [this.registry],
    collect: () => this.flushPending(),
  });
  readonly resyncs = new Counter({
    name: "pulse_resyncs_total",
    help: "Resync items sent instead of events: trimmed by retention, lost with the stream, or asked for by the cursor.",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly snapshots = new Counter({
    name: "pulse_snapshots_total",
    help: "Snapshot items sent to fresh subscriptions and polls.",
    registers: [this.registry],
  });
  readonly readerLag = new Histogram({
    name: "pulse_stream_reader_lag_seconds",
    help: "Time from an entry's stream id to its fan-out by this process's stream reader.",
    buckets: READER_LAG_BUCKETS,
    registers: [this.registry],
  });
  readonly readerErrors = new Counter({
    name: "pulse_stream_reader_errors_total",
    help: "Failed XREAD calls of the stream reader.",
    registers: [this.registry],
  });
  /** What the stream reader received: the measure of per-tenant routing (a process should receive its own tenants' events only). */
  readonly readerReceived = new Counter({
    name: "pulse_stream_reader_received_total",
    help: "What this process's stream reader received from Redis: wake messages (one per append of a tenant it listens to) and entries read from streams.",
    labelNames: ["kind"],
    registers: [this.registry],
    collect: () => this.flushPending(),
  });
  readonly sendBufferCloses = new Counter({
    name: "pulse_ws_send_buffer_closes_total",
    help: "WebSockets terminated because their unsent output exceeded the cap (slow readers).",
    registers: [this.registry],
  });
  readonly wsRefused = new Counter({
    name: "pulse_ws_refused_total",
    help: "WebSocket connections refused: wrong origin, over a cap, or never authenticated.",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly sseRefused = new Counter({
    name: "pulse_sse_refused_total",
    help: "Server-sent-event subscriptions refused: over a cap, or never authenticated.",
    labelNames: ["reason"],
    registers: [this.registry],
  });

  private readonly subscriptionsWs: Gauge.Internal<"transport">;
  private readonly deliveredWs: Counter.Internal;
  private readonly subscriptionsSse: Gauge.Internal<"transport">;
  private readonly deliveredSse: Counter.Internal;
  private readonly deliveredPoll: Counter.Internal;
  private readonly includeProcessMetrics: boolean;
  /** Per-subscriber counts kept as plain numbers and added to their counters when read (see `flushPending`). */
  private pendingDeliveredWs = 0;
  private pendingDeliveredSse = 0;
  private pendingReplayed = 0;
  private pendingWakes = 0;

  /** `processMetrics: false` leaves out the process-wide Node.js metrics (heap, event loop, GC). */
  constructor(options: { processMetrics?: boolean } = {}) {
    this.includeProcessMetrics = options.processMetrics ?? true;
    // Bound once, so the hot paths skip building a label object per event.
    this.subscriptionsWs = this.subscriptions.labels({ transport: "ws" });
    this.deliveredWs = this.eventsDelivered.labels({ transport: "ws" });
    this.deliveredPoll = this.eventsDelivered.labels({ transport: "poll" });
    this.subscriptionsSse = this.subscriptions.labels({ transport: "sse" });
    this.deliveredSse = this.eventsDelivered.labels({ transport: "sse" });
    this.subscriptionsSse.set(0);
    this.deliveredSse.inc(0);
    // Every fixed series exists from the start, so a scrape shows 0 rather than nothing.
    this.subscriptionsWs.set(0);
    this.deliveredWs.inc(0);
    this.deliveredPoll.inc(0);
    this.readerReceived.inc({ kind: "wake" }, 0);
    this.readerReceived.inc({ kind: "entry" }, 0);
    for (const reason of RESYNC_REASONS) this.resyncs.inc({ reason }, 0);
    for (const reason of REFUSAL_REASONS) this.wsRefused.inc({ reason }, 0);
    for (const reason of REFUSAL_REASONS) if (reason !== "origin") this.sseRefused.inc({ reason }, 0);
  }

  /** The Content-Type of `scrape()`'s text (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in Prometheus text format: this instance's, then the process's. */
  async scrape(): Promise<string> {
    const own = await this.registry.metrics();
    return this.includeProcessMetrics ? `${own}\n${await processMetrics().metrics()}` : own;
  }

  eventPublished(type: string): void {
    this.eventsPublished.inc({ type });
  }

  /** Events handed to one subscriber (WebSocket unless told): a plain addition, as it runs per event per subscriber. */
  eventDelivered(count = 1, transport: "ws" | "sse" = "ws"): void {
    if (transport === "ws") this.pendingDeliveredWs += count;
    else this.pendingDeliveredSse += count;
  }

  /** Events returned by one polling page. */
  eventsPolled(count: number): void {
    if (count > 0) this.deliveredPoll.inc(count);
  }

  subscriptionOpened(): void {
    this.subscriptionsWs.inc();
  }

  subscriptionClosed(): void {
    this.subscriptionsWs.dec();
  }

  /** Subscriptions served as server-sent events now open (each is one HTTP response). */
  eventStreamsOpen(count: number): void {
    this.subscriptionsSse.set(count);
  }

  resynced(reason: ResyncReason): void {
    this.resyncs.inc({ reason });
  }

  /** A subscription resumes from its cursor: its missed events follow, each counted by `eventReplayed`. */
  replayStarted(): void {
    this.replays.inc();
  }

  eventReplayed(count = 1): void {
    this.pendingReplayed += count;
  }

  /** Observes how long ago the entry with this stream id (`<ms>-<seq>`) was appended. */
  observeReaderLag(streamId: string, now = Date.now()): void {
    const ms = Number(streamId.slice(0, streamId.indexOf("-")));
    if (Number.isFinite(ms)) this.readerLag.observe(Math.max(0, now - ms) / 1000);
  }

  /** A wake message reached the stream reader: a plain addition, as it runs per event. */
  wakeReceived(): void {
    this.pendingWakes += 1;
  }

  /** Entries the stream reader read from streams (wakes that could not carry them, or checks). */
  entriesRead(count: number): void {
    if (count > 0) this.readerReceived.inc({ kind: "entry" }, count);
  }

  refused(reason: RefusalReason): void {
    this.wsRefused.inc({ reason });
  }

  eventStreamRefused(reason: Exclude<RefusalReason, "origin">): void {
    this.sseRefused.inc({ reason });
  }

  /** Moves the hot paths' plain counts into their counters; prom-client calls it before reading them. */
  private flushPending(): void {
    if (this.pendingDeliveredWs > 0) {
      this.deliveredWs.inc(this.pendingDeliveredWs);
      this.pendingDeliveredWs = 0;
    }
    if (this.pendingDeliveredSse > 0) {
      this.deliveredSse.inc(this.pendingDeliveredSse);
      this.pendingDeliveredSse = 0;
    }
    if (this.pendingReplayed > 0) {
      this.replayedEvents.inc(this.pendingReplayed);
      this.pendingReplayed = 0;
    }
    if (this.pendingWakes > 0) {
      this.readerReceived.inc({ kind: "wake" }, this.pendingWakes);
      this.pendingWakes = 0;
    }
  }
}
