import {
  createTRPCClient,
  createWSClient,
  httpSubscriptionLink,
  wsLink,
  type TRPCClient,
  type TRPCLink,
} from "@trpc/client";
import { EventSource } from "eventsource";
import WebSocket from "ws";
import { applyAgentItem, applyContextItem, emptyAgentState, type AgentState, type ContextState } from "@pulse/client";
import type { AgentFeedItem, ContextFeedItem } from "../../lib/trpc/types";
import { compareStreamIds } from "../../shared/stream-id";
import type { PulseEvent } from "../../server/events/schema";
import type { AppRouter } from "../../server/trpc/root";

/** What a recorder subscribes to: a tenant's agent events (optionally one run or role), or its context file. */
export type RecorderFeed = { kind: "agent"; runId?: string; agentRole?: string } | { kind: "context" };

export interface RecorderOptions {
  /** Where the socket connects: the balancer in front of the replicas, or one server (`http:` for event streams). */
  wsUrl: string;
  /**
   * The WebSocket (wsLink, the default) or server-sent events (httpSubscriptionLink, whose
   * EventSource reconnects by itself with the `Last-Event-ID` header).
   */
  transport?: "ws" | "sse";
  /** A session token of the tenant's user (sent in connectionParams on every (re)connect). */
  token: string | (() => string | Promise<string>);
  feed: RecorderFeed;
  /** Resume after this id instead of starting from a snapshot (a client coming back). */
  lastEventId?: string;
  label?: string;
  /** Keep every event's type, attempt and arrival time per run (for scenarios about single runs). */
  keepTimeline?: boolean;
}

/**
 * The items received between two state items (snapshot or resync): the segment's start id,
 * how many events arrived, and an order-independent checksum of their ids, so a long run
 * checks millions of deliveries against the stream without keeping them.
 */
export interface Segment {
  startId: string;
  kind: "snapshot" | "resync" | "resume";
  count: number;
  checksum: number;
  lastId: string | null;
}

/** What a recorder found wrong while receiving. */
export interface RecorderTally {
  items: number;
  events: number;
  duplicated: number;
  reordered: number;
  /** Counted events (all but progress) whose run's change counter skipped values: events never delivered. */
  seqGaps: number;
  resyncs: number;
  /** Events of an attempt older than one the same run already showed (a retried run's attempts mixed). */
  attemptMixes: number;
  /** Subscriptions the server ended with an error (a client would have to start over). */
  errors: number;
  /** Events of runs outside the last snapshot's scope, which the state skips (see `AgentState.fromSnapshot`). */
  outOfScope: number;
  opens: number;
  closes: number;
}

/** FNV-1a of an id: the segment checksum adds these up (mod 2^32). */
export function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Whether an event belongs on `feed`, exactly as the server's subscription filters it. */
export function feedAccepts(feed: RecorderFeed, event: PulseEvent): boolean {
  if (feed.kind === "context") return event.type === "context:status_changed";
  if (!event.type.startsWith("agent:")) return false;
  const agent = event as Extract<PulseEvent, { runId: string }>;
  return (!feed.runId || agent.runId === feed.runId) && (!feed.agentRole || agent.agentRole === feed.agentRole);
}

const RECENT_IDS = 4_096;

/**
 * A dashboard as the test sees it: a real `@trpc/client` over wsLink (which resends the last
 * id on every reconnect), applying what it receives with the browser's own reducers, and
 * checking as it goes that ids only grow, that nothing arrives twice, and that no run's
 * change counter skips a value. Afterwards `verifyAgainst` compares what it received with
 * the tenant's stream, and `state` with the database.
 */
export class RecorderClient {
  readonly tally: RecorderTally = {
    items: 0,
    events: 0,
    duplicated: 0,
    reordered: 0,
    seqGaps: 0,
    resyncs: 0,
    attemptMixes: 0,
    errors: 0,
    outOfScope: 0,
    opens: 0,
    closes: 0,
  };
  readonly segments: Segment[] = [];
  readonly errorMessages: string[] = [];
  /** The first few seq gaps, described (which run, the counter known and received, the state item before): for diagnosis. */
  readonly seqGapSamples: string[] = [];
  agentState: AgentState = emptyAgentState;
  contextState: ContextState = { context: null, lastEventId: null };
  lastId: string | null;
  /** When the last item arrived (ms since epoch), and when the socket last opened and closed. */
  lastItemAt = 0;
  lastOpenAt = 0;
  lastCloseAt = 0;
  /** Close codes seen, for diagnosis (1001 going away, 1006 abnormal, 4000 refresh...). */
  readonly closeCodes = new Map<number, number>();
  private readonly recent = new Set<string>();
  private readonly recentOrder: string[] = [];
  /** The newest attempt each run showed, in the last snapshot or resync or in an event since. */
  private readonly attempts = new Map<string, number>();
  /** Events delivered per run, by type and attempt, for scenarios that follow single runs. */
  readonly timeline = new Map<string, { type: string; attempt: number; at: number }[]>();
  /** Counted events' change counter per run (or for the context file). */
  private readonly seqs = new Map<string, number>();
  /** Counter values a run skipped, to tell an event that came late (appended out of counter order) from one never sent. */
  private readonly skipped = new Map<string, Set<number>>();
  private ws?: ReturnType<typeof createWSClient>;
  private subscription?: { unsubscribe(): void };
  private ended = false;
  /** Whether a snapshot or resync arrived, so every run's counter is known from it. */
  private hasState = false;

  constructor(readonly options: RecorderOptions) {
    this.lastId = options.lastEventId ?? null;
    if (options.lastEventId)
      this.segments.push({ startId: options.lastEventId, kind: "resume", count: 0, checksum: 0, lastId: null });
  }

  /**
   * A second client holding what `other` holds now (its state and last id), as a page kept
   * in memory or storage would, resuming from that id on a connection of its own.
   */
  static continuing(other: RecorderClient, label: string): RecorderClient {
    if (!other.lastId) throw new Error(`${other.label} has received nothing to continue from`);
    const next = new RecorderClient({ ...other.options, lastEventId: other.lastId, label });
    next.agentState = other.agentState;
    next.contextState = other.contextState;
    for (const [key, seq] of other.seqs) next.seqs.set(key, seq);
    for (const [runId, attempt] of other.attempts) next.attempts.set(runId, attempt);
    next.hasState = other.hasState;
    return next;
  }

  get label(): string {
    return this.options.label ?? "recorder";
  }

  get feed(): RecorderFeed {
    return this.options.feed;
  }

  /** Whether the server ended the subscription (with an error or "stopped"): it will not resume. */
  get hasEnded(): boolean {
    return this.ended;
  }

  start(): this {
    const trpc: TRPCClient<AppRouter> = createTRPCClient<AppRouter>({
      links: [this.options.transport === "sse" ? this.sseLink() : this.wsLink()],
    });
    const handlers = {
      onData: (value: unknown) => {
        const { id, data } = value as { id: string; data: { type: string } };
        this.receive(id, data);
      },
      onError: (error: unknown) => {
        this.tally.errors += 1;
        this.ended = true;
        if (this.errorMessages.length < 5) this.errorMessages.push(String((error as Error)?.message ?? error));
      },
      onStopped: () => {
        this.ended = true;
      },
      // An event stream has no socket: its (re)connections and losses count as the socket's opens and closes.
      onStarted: () => this.options.transport === "sse" && this.opened(),
      onConnectionStateChange: (state: { state: string; error: unknown }) => {
        if (this.options.transport === "sse" && state.state === "connecting" && state.error) this.closed(0);
      },
    };
    const feed = this.options.feed;
    const lastEventId = this.options.lastEventId;
    this.subscription =
      feed.kind === "context"
        ? trpc.context.onStatusChanged.subscribe({ ...(lastEventId ? { lastEventId } : {}) }, handlers)
        : trpc.agent.onStatus.subscribe(
            {
              ...(feed.runId ? { runId: feed.runId } : {}),
              ...(feed.agentRole ? { agentRole: feed.agentRole } : {}),
              ...(lastEventId ? { lastEventId } : {}),
            },
            handlers,
          );
    return this;
  }

  private wsLink(): TRPCLink<AppRouter> {
    const { token } = this.options;
    this.ws = createWSClient({
      url: this.options.wsUrl,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
      connectionParams: async () => ({ token: typeof token === "function" ? await token() : token }),
      // Jittered, so a replica's clients do not all come back in the same millisecond.
      retryDelayMs: (attempt) => Math.min(1_000, 50 * 2 ** Math.min(attempt, 4)) * (0.5 + Math.random()),
      onOpen: () => this.opened(),
      onClose: (cause) => this.closed(cause?.code ?? 0),
    });
    return wsLink({ client: this.ws });
  }

  private sseLink(): TRPCLink<AppRouter> {
    const { token } = this.options;
    return httpSubscriptionLink<AppRouter, typeof EventSource>({
      url: this.options.wsUrl.replace(/^ws/, "http"),
      EventSource,
      connectionParams: async () => ({ token: typeof token === "function" ? await token() : token }),
    });
  }

  private opened(): void {
    this.tally.opens += 1;
    this.lastOpenAt = Date.now();
  }

  private closed(code: number): void {
    this.tally.closes += 1;
    this.lastCloseAt = Date.now();
    this.closeCodes.set(code, (this.closeCodes.get(code) ?? 0) + 1);
  }

  /** Stops the subscription and closes the socket for good. */
  async close(): Promise<void> {
    this.subscription?.unsubscribe();
    await this.ws?.close();
  }

  /** The ids and checks of one delivered item; public so an in-process feed can be recorded the same way. */
  receive(id: string, item: { type: string }): void {
    this.tally.items += 1;
    this.lastItemAt = Date.now();
    const isState = item.type === "snapshot" || item.type === "resync";
    // A snapshot or resync replaces the state whatever its id, as the browser's feed does (a
    // stream lost with Redis starts again from lower ids); events must only move forward.
    if (!isState && this.lastId !== null && compareStreamIds(id, this.lastId) <= 0) {
      // wsLink would resume from the newer id anyway; what matters is that it arrived at all.
      if (this.recent.has(id)) this.tally.duplicated += 1;
      else this.tally.reordered += 1;
      return;
    }
    this.lastId = id;
    this.remember(id);
    if (isState) {
      if (item.type === "resync") this.tally.resyncs += 1;
      this.segments.push({
        startId: id,
        kind: item.type as "snapshot" | "resync",
        count: 0,
        checksum: 0,
        lastId: null,
      });
      this.seqs.clear();
      this.skipped.clear();
      this.attempts.clear();
      this.hasState = true;
      this.applyState(id, item);
      return;
    }
    this.tally.events += 1;
    let segment = this.segments.at(-1);
    if (!segment) {
      segment = { startId: "0-0", kind: "resume", count: 0, checksum: 0, lastId: null };
      this.segments.push(segment);
    }
    segment.count += 1;
    segment.checksum = (segment.checksum + idHash(id)) >>> 0;
    segment.lastId = id;
    this.addToTimeline(item as PulseEvent);
    if (this.outsideScope(item as PulseEvent)) {
      // Delivered (the stream audit counts it) but not part of the state, so no counter to follow.
      this.tally.outOfScope += 1;
    } else {
      this.checkSeq(item as PulseEvent);
      this.checkAttempt(item as PulseEvent);
    }
    if (this.options.feed.kind === "context") {
      this.contextState = applyContextItem(this.contextState, { id, item: item as ContextFeedItem });
    } else {
      this.agentState = applyAgentItem(this.agentState, { id, item: item as AgentFeedItem });
    }
  }

  private applyState(id: string, item: { type: string }): void {
    if (this.options.feed.kind === "context") {
      this.contextState = applyContextItem(this.contextState, { id, item: item as ContextFeedItem });
      const context = this.contextState.context;
      if (context) this.seqs.set("context", context.seq);
    } else {
      this.agentState = applyAgentItem(this.agentState, { id, item: item as AgentFeedItem });
      for (const run of Object.values(this.agentState.runs)) {
        this.seqs.set(run.id, run.seq);
        this.attempts.set(run.id, run.attempt);
      }
    }
  }

  /** An event of a run the agent state does not hold and that its queueing does not bring in. */
  private outsideScope(event: PulseEvent): boolean {
    if (this.options.feed.kind === "context" || !("runId" in event) || event.type === "agent:queued") return false;
    return this.agentState.fromSnapshot && !this.agentState.runs[event.runId];
  }

  /**
   * Every counted event bumps its run's (or the context file's) counter by one, so a jump
   * means events that were published and never delivered. Progress is not counted (seq 0).
   */
  private checkSeq(event: PulseEvent): void {
    if (event.type === "agent:progress") return;
    const key = event.type === "context:status_changed" ? "context" : event.runId;
    const known = this.seqs.get(key);
    // Resuming from an id without a snapshot, the first event of each run sets its base.
    if (known === undefined && !this.hasState) {
      this.seqs.set(key, event.seq);
      return;
    }
    // A run the snapshot did not hold was created after it: its first event is seq 1.
    const current = known ?? 0;
    if (event.seq <= current) {
      if (this.skipped.get(key)?.delete(event.seq)) this.sampleGap(key, current, event, "arrived late");
      return;
    }
    if (event.seq > current + 1) {
      this.tally.seqGaps += event.seq - current - 1;
      this.sampleGap(key, known, event, "skipped");
      const skipped = this.skipped.get(key) ?? new Set<number>();
      for (let seq = current + 1; seq < event.seq && skipped.size < 100; seq++) skipped.add(seq);
      this.skipped.set(key, skipped);
    }
    this.seqs.set(key, event.seq);
  }

  private sampleGap(key: string, known: number | undefined, event: PulseEvent, what: string): void {
    if (this.seqGapSamples.length >= 6) return;
    const state = [...this.segments].reverse().find((s) => s.kind !== "resume");
    this.seqGapSamples.push(
      `${what} ${key}: ${known ?? "not in the last state"} → ${event.seq} (${event.type}${"agentRole" in event ? ` of ${event.agentRole}` : ""}, attempt ${"attempt" in event ? event.attempt : "-"}, at ${this.lastId}; last state: ${state ? `${state.kind} at ${state.startId}` : "none"})`,
    );
  }

  /** A run's events never go back to an older attempt once a newer one showed. */
  private checkAttempt(event: PulseEvent): void {
    if (event.type === "context:status_changed") return;
    const newest = this.attempts.get(event.runId) ?? 0;
    if (event.attempt < newest) this.tally.attemptMixes += 1;
    else this.attempts.set(event.runId, event.attempt);
  }

  /** Every run event received, in order, when the options keep a timeline. */
  private addToTimeline(event: PulseEvent): void {
    if (!this.options.keepTimeline || event.type === "context:status_changed") return;
    const list = this.timeline.get(event.runId) ?? [];
    list.push({ type: event.type, attempt: event.attempt, at: Date.now() });
    this.timeline.set(event.runId, list);
  }

  private remember(id: string): void {
    this.recent.add(id);
    this.recentOrder.push(id);
    if (this.recentOrder.length > RECENT_IDS) this.recent.delete(this.recentOrder.shift()!);
  }
}
