import { randomBytes } from "node:crypto";
import { TRPCError } from "@trpc/server";
import type { Principal } from "../auth/auth-service";
import { rateLimited } from "../errors";
import { trpcErrorOf } from "../trpc/trpc";
import { SessionGuard } from "./session-guard";
import type { Logger } from "../logger";
import type { PulseMetrics } from "../metrics/pulse-metrics";
import type { SubscriptionWire } from "./subscription-wire";
import { TokenBucket } from "./token-bucket";

/** Per-connection limits of the WebSocket, with their defaults in `server-security.ts`. */
export interface ConnectionLimits {
  /** A connection without a valid token is closed after this long. */
  authTimeoutMs: number;
  maxSubscriptions: number;
  /** Requests per second a connection may send (bursts up to twice this). */
  messagesPerSecond: number;
  /** Requests one frame may batch. */
  maxBatch: number;
  /** Longest request id accepted, so ids cannot be used to make the server hold or echo megabytes. */
  maxRequestIdLength: number;
  /** How long subscriptions outlive their token's expiry, waiting for the client's reconnect. */
  tokenGraceMs: number;
  /** How long before expiry the server asks the client to reconnect with a fresh token. */
  tokenRefreshLeadMs: number;
  /** Output a slow reader may leave unsent before its connection is dropped. */
  maxBufferedBytes: number;
  /** The server pings a connection quiet for this long... */
  pingMs: number;
  /** ...and drops it when no answer comes within this. */
  pongWaitMs: number;
}

/** What the guard needs of the socket; `GuardedWebSocket` is the real one. */
export interface GuardedSocket {
  send(data: string | Buffer, options?: { binary?: boolean }): void;
  close(code: number, reason: string): void;
  terminate(): void;
  readonly readyState: number;
}

/** Who answers the requests of a frame the guard refuses (the connection's protocol side). */
export interface RefusalAnswer {
  /** Answers each of `ids` with `error`, or the frame as a whole (`id: null`) when it carried none. */
  sendRefusals(ids: readonly (string | number)[], error: TRPCError): void;
}

/** Where a connection reports what happens to it; both optional, so a guard can be built alone. */
export interface ConnectionObservers {
  metrics?: PulseMetrics;
  /** Bound to the connection's id here, and to its tenant once it authenticates. */
  logger?: Logger;
}

/** Refused requests (and frames) within `FLOOD_WINDOW_MS` after which a client is flooding rather than bursting. */
export const REJECTIONS_BEFORE_CLOSE = 200;
const FLOOD_WINDOW_MS = 10_000;
const OPEN = 1;

/** Close codes in the private range, so clients can tell why (RFC 6455 §7.4.2). */
export const CLOSE_UNAUTHORIZED = 4401;
/** "Your token is about to expire": wsLink reconnects, fetching fresh connectionParams. */
export const CLOSE_REFRESH = 4000;
export const CLOSE_TOO_MANY = 4429;
export const CLOSE_POLICY = 1008;

/**
 * One WebSocket connection's security state: who it is (once its token verified), how many
 * subscriptions and messages it may have, and when its token runs out. The connection is
 * closed when it never authenticates, floods, or its session ends; a token about to expire
 * makes the server close the connection with 4000, so the client reconnects with a fresh
 * one (wsLink re-runs `connectionParams` and resumes every subscription by `lastEventId`,
 * losing nothing).
 */
export class ConnectionGuard extends SessionGuard {
  readonly openedAt: number;
  /** The open subscriptions' wires: closing one ends its feed. Replaced, never grown: there are only a few. */
  private wires: readonly SubscriptionWire[] = [];
  private idState?: string;
  private closing = false;
  private closeTimer?: NodeJS.Timeout;
  private closeAt = Number.POSITIVE_INFINITY;
  /** Set by every frame the client sends; the sweep turns it into `heardAt`, so a frame costs no clock read. */
  private heard = false;
  private heardAt: number;
  /** When the keep-alive PING went out, while it waits for an answer. */
  private pingedAt: number | null = null;
  private rejectedSince = 0;
  private rejected = 0;
  private readonly bucket: TokenBucket;
  private readonly metrics?: PulseMetrics;
  private readonly baseLogger?: Logger;
  /** This connection's child logger, made on the first line actually written. */
  private log?: Logger;
  /** Its token is being checked (`whileCheckingToken`): the unauthenticated timeout waits. */
  private checkingToken = false;

  constructor(
    private readonly socket: GuardedSocket,
    readonly ip: string,
    readonly limits: ConnectionLimits,
    now: () => number = Date.now,
    observers: ConnectionObservers = {},
  ) {
    super(now);
    this.openedAt = now();
    this.heardAt = this.openedAt;
    this.bucket = new TokenBucket(limits.messagesPerSecond, limits.messagesPerSecond * 2, now);
    this.metrics = observers.metrics;
    this.baseLogger = observers.logger;
  }

  /** A short random id that ties together every log line about this connection; made when first needed. */
  get id(): string {
    return (this.idState ??= randomBytes(4).toString("hex"));
  }

  /**
   * This connection's logger: bound to its id, and to its tenant once authenticated. Made
   * when first asked for, so ten thousand quiet connections hold no logger (nor id) each.
   */
  get logger(): Logger | undefined {
    if (!this.baseLogger) return undefined;
    return (this.log ??= this.baseLogger.child(this.bindings()));
  }

  /** What this connection's log lines carry. */
  private bindings(): Record<string, string> {
    const principal = this.principal;
    if (!principal) return { connectionId: this.id };
    return principal.kind === "user"
      ? { connectionId: this.id, tenantId: principal.session.tenantId, userId: principal.session.userId }
      : {
          connectionId: this.id,
          tenantId: principal.share.tenantId,
          shareId: principal.share.shareId,
          runId: principal.share.runId,
        };
  }

  /** A debug line about this connection, costing nothing when debug logging is off. */
  debug(details: object, message: string): void {
    if (this.baseLogger?.isLevelEnabled("debug")) this.logger?.debug(details, message);
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /**
   * Runs `check`, the verification of the token its connectionParams brought, with the
   * unauthenticated timeout suspended until the check settles either way: a burst of
   * connections (a deploy) may delay the answer past the timeout, and a connection is not
   * closed for the server's slowness. A check that finds no principal leaves the timeout,
   * long past by then, to close the connection at the next sweep.
   */
  async whileCheckingToken<T>(check: () => Promise<T>): Promise<T> {
    this.checkingToken = true;
    try {
      return await check();
    } finally {
      this.checkingToken = false;
    }
  }

  /** Records the verified caller; from now on the token's expiry applies. */
  override authenticated(principal: Principal): void {
    super.authenticated(principal);
    this.log = undefined;
    this.debug({ kind: principal.kind }, "websocket authenticated");
  }

  /** Answers every call with `error` (e.g. over the connection caps) and closes shortly after. */
  refuseCalls(error: TRPCError): void {
    this.recordRefusal(error);
    this.closeAfter(CLOSE_TOO_MANY, error.message, 1_000);
  }

  /** Open subscriptions; each writes its live events straight to the socket (see `SubscriptionWire`). */
  get wiredSubscriptions(): number {
    return this.wires.length;
  }

  /**
   * Opens one subscription under the connection's limits (refused beyond the cap, or once
   * the connection may not make calls). The connection closes the subscription's wire when
   * its session ends or it closes, and that ends the feed the wire was given;
   * `assertUsable` then tells why. Every wire opened is handed back to `unsubscribe`.
   */
  subscribe(wire: SubscriptionWire): void {
    this.assertUsable();
    if (this.wires.length >= this.limits.maxSubscriptions) {
      throw new TRPCError({
        code: "TOO_MANY_REQUESTS",
        message: `at most ${this.limits.maxSubscriptions} subscriptions per connection; stop one first`,
      });
    }
    this.wires = [...this.wires, wire];
    this.metrics?.subscriptionOpened();
    this.debug({ subscriptions: this.wires.length }, "subscription started");
  }

  /** The open subscription of request `id`, if there is one. */
  subscription(id: string | number): SubscriptionWire | undefined {
    return this.wires.find((wire) => wire.requestId === id);
  }

  /** A subscription ended, whichever way: its wire closes and stops counting against the cap. */
  unsubscribe(wire: SubscriptionWire): void {
    if (!this.wires.includes(wire)) return;
    wire.close();
    this.wires = this.wires.filter((w) => w !== wire);
    this.metrics?.subscriptionClosed();
    this.debug({ subscriptions: this.wires.length }, "subscription ended");
    // Close once every subscription has sent its error, so the client learns why.
    if (this.ended && this.wires.length === 0) this.closeAfter(CLOSE_UNAUTHORIZED, this.ended.message, 50);
  }

  /**
   * Ends the connection's session (expired token, logout, removed user, revoked link): its
   * subscriptions end with UNAUTHORIZED, later calls fail the same way, and the socket closes.
   */
  endSession(message: string): void {
    if (this.closing || !this.recordEnd(message)) return;
    this.logger?.info({ reason: message }, "websocket session ended");
    this.closeAfter(CLOSE_UNAUTHORIZED, message, this.wires.length === 0 ? 50 : 1_000);
    this.endSubscriptions();
  }

  /** Time-based rules, run by the registry's sweep: keep-alive, the unauthenticated timeout, the session's end, the refresh request, expiry. */
  tick(now = this.now()): void {
    if (this.closing) return;
    this.keepAlive(now);
    if (this.closing || this.ended) return;
    const principal = this.principal;
    if (!principal) {
      if (!this.isRefused && !this.checkingToken && now - this.openedAt >= this.limits.authTimeoutMs) {
        this.metrics?.refused("unauthenticated");
        this.closeNow(CLOSE_UNAUTHORIZED, "no valid token in connectionParams");
      }
      return;
    }
    const over = this.sessionOver(principal, now);
    if (over) return this.endSession(over);
    // Closing (rather than tRPC's "reconnect" notice) lets wsLink replace the socket in one
    // step: with the notice, the old socket's late close event can start a second reconnect.
    if (principal.kind === "user" && this.refreshDue(principal, now, this.limits)) {
      return this.closeNow(CLOSE_REFRESH, "token expiring: reconnect with a fresh token");
    }
    const expired = this.tokenExpired(principal, now, this.limits);
    if (expired) this.endSession(expired);
  }

  /**
   * tRPC's WebSocket keep-alive, kept by the sweep rather than by two timers and three
   * closures per socket: a connection quiet for `pingMs` is sent "PING" (wsLink answers
   * "PONG"), and one still quiet `pongWaitMs` later is dropped. Any frame counts as an answer.
   *
   * @see https://trpc.io/docs/server/websockets#connection-keep-alive
   */
  private keepAlive(now: number): void {
    if (this.heard) {
      this.heard = false;
      this.heardAt = now;
      this.pingedAt = null;
    } else if (this.pingedAt === null) {
      if (now - this.heardAt < this.limits.pingMs) return;
      this.pingedAt = now;
      this.send("PING");
    } else if (now - this.pingedAt >= this.limits.pongWaitMs) {
      this.debug({ quietMs: now - this.heardAt }, "no answer to the keep-alive ping: connection dropped");
      this.closing = true;
      clearTimeout(this.closeTimer);
      this.endSubscriptions();
      this.socket.terminate();
    }
  }

  /** Every frame the client sends counts as an answer to the keep-alive; false once the connection is closing. */
  received(): boolean {
    this.heard = true;
    return !this.closing;
  }

  /**
   * Charges a frame its first message, before it is read: every frame costs at least one,
   * whatever it holds (a stop, a PONG, malformed JSON, an oversized batch), so no kind of
   * frame floods for free. False when the budget is spent: the frame is then answered
   * through `refuseOverRate`, and not served.
   */
  charge(): boolean {
    return this.bucket.take(1);
  }

  /**
   * Decides on the requests of a frame `charge` let through: batches and ids within bounds
   * (a frame outside them is refused, and counts towards the flood close), and one more
   * message for each request beyond the first. A refused frame is answered through
   * `answer`, so the client's calls fail with a clear code instead of hanging.
   */
  allows(requests: readonly unknown[], answer: RefusalAnswer): boolean {
    if (requests.length > this.limits.maxBatch) {
      this.refuseMalformed(
        answer,
        `a frame may batch at most ${this.limits.maxBatch} requests (got ${requests.length})`,
      );
      return false;
    }
    const ids = requests.map(requestIdOf);
    if (ids.some((id) => typeof id === "string" && id.length > this.limits.maxRequestIdLength)) {
      this.refuseMalformed(answer, `id: at most ${this.limits.maxRequestIdLength} characters`);
      return false;
    }
    if (requests.length <= 1 || this.bucket.take(requests.length - 1)) return true;
    this.refuseOverRate(ids, answer);
    return false;
  }

  /**
   * Answers a frame over the message rate: TOO_MANY_REQUESTS for each of its request ids
   * (once, without an id, for a frame that has none usable or is over the batch limit).
   * Each answer counts towards the flood close, so a flood is answered a bounded number of times.
   */
  refuseOverRate(ids: readonly unknown[], answer: RefusalAnswer): void {
    const replyTo = ids.length > this.limits.maxBatch ? [] : ids.filter((id) => this.isAnswerable(id));
    // The bucket refills within the second: a client waits that long, not more.
    const refusal = rateLimited(`too many messages: at most ${this.limits.messagesPerSecond} per second`, 1);
    answer.sendRefusals(replyTo, trpcErrorOf(refusal));
    this.countRefusals(Math.max(1, replyTo.length));
  }

  private refuseMalformed(answer: RefusalAnswer, message: string): void {
    answer.sendRefusals([], new TRPCError({ code: "BAD_REQUEST", message }));
    this.countRefusals(1);
  }

  /** An id a refusal may echo: a number, or a string within the id length limit. */
  private isAnswerable(id: unknown): id is string | number {
    return (
      (typeof id === "string" && id.length <= this.limits.maxRequestIdLength) ||
      (typeof id === "number" && Number.isFinite(id))
    );
  }

  /** Refusals within `FLOOD_WINDOW_MS`: past `REJECTIONS_BEFORE_CLOSE`, the client is flooding, and the socket closes (1008). */
  private countRefusals(count: number): void {
    const now = this.now();
    if (now - this.rejectedSince > FLOOD_WINDOW_MS) {
      this.rejectedSince = now;
      this.rejected = 0;
    }
    this.rejected += count;
    if (this.rejected >= REJECTIONS_BEFORE_CLOSE) this.closeNow(CLOSE_POLICY, "too many messages");
  }

  /** Closes the socket now, with a reason the client can show. */
  closeNow(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.closeTimer);
    this.endSubscriptions();
    this.debug({ code, reason }, "closing websocket");
    try {
      this.socket.close(code, Buffer.from(reason).subarray(0, 120).toString());
    } catch {
      this.socket.terminate();
    }
  }

  /**
   * The socket was terminated because a slow reader let more than `maxBufferedBytes` of
   * output pile up; it has to reconnect and resume from its last event id.
   */
  sendBufferExceeded(bufferedBytes: number): void {
    this.metrics?.sendBufferCloses.inc();
    this.logger?.warn(
      { bufferedBytes, limit: this.limits.maxBufferedBytes },
      "slow reader: send buffer over its cap, connection terminated",
    );
  }

  /** The socket is gone: forgets its timers and stops its subscriptions. */
  closed(): void {
    this.closing = true;
    clearTimeout(this.closeTimer);
    this.endSubscriptions();
  }

  /** Stops every subscription (each then hands its wire back to `unsubscribe`). */
  private endSubscriptions(): void {
    for (const wire of this.wires) wire.stop();
  }

  private closeAfter(code: number, reason: string, delayMs: number): void {
    const at = this.now() + delayMs;
    if (this.closing || at >= this.closeAt) return;
    this.closeAt = at;
    clearTimeout(this.closeTimer);
    this.closeTimer = setTimeout(() => this.closeNow(code, reason), delayMs);
    this.closeTimer.unref();
  }

  private send(frame: string): void {
    if (this.socket.readyState === OPEN) this.socket.send(frame);
  }
}

/** The `id` of a request as it arrived, if it is an object with one. */
export function requestIdOf(request: unknown): unknown {
  return typeof request === "object" && request !== null && !Array.isArray(request)
    ? (request as Record<string, unknown>).id
    : undefined;
}
