import type { TRPCError } from "@trpc/server";
import type { Logger } from "../logger";
import type { RegisteredConnection } from "../ws/connection-registry";
import { SessionGuard, type TokenLimits } from "../ws/session-guard";

/** How a server-sent-event subscription's token runs out, from the WebSocket's limits (`server-security.ts`). */
export type EventStreamLimits = TokenLimits;

/**
 * One subscription served as server-sent events (one HTTP response, tRPC's
 * `httpSubscriptionLink` protocol): who it is, and when it must end. Its `signal` aborts when
 * the response closes or its session ends (expired token, logout, revoked share link), which
 * ends its feed; `assertUsable` then tells the client why, as a `serialized-error` event.
 * The counterpart of the WebSocket's `ConnectionGuard`, sharing its `SessionGuard` state,
 * kept by its own `ConnectionRegistry` for caps and revocations.
 *
 * @see https://trpc.io/docs/client/links/httpSubscriptionLink
 */
export class EventStreamGuard extends SessionGuard implements RegisteredConnection {
  readonly openedAt: number;
  private readonly ending = new AbortController();
  private isClosed = false;

  constructor(
    readonly ip: string,
    private readonly limits: EventStreamLimits,
    request: AbortSignal,
    private readonly onClose: (guard: EventStreamGuard) => void,
    private readonly logger?: Logger,
    now: () => number = Date.now,
  ) {
    super(now);
    this.openedAt = now();
    if (request.aborted) queueMicrotask(() => this.closed());
    else request.addEventListener("abort", () => this.closed(), { once: true });
  }

  /** Aborts when the response closes or the session ends: the subscription's feed ends then. */
  get signal(): AbortSignal {
    return this.ending.signal;
  }

  get isClosing(): boolean {
    return this.ending.signal.aborted;
  }

  /** An event stream carries one subscription, through its iterator. */
  get wiredSubscriptions(): number {
    return 0;
  }

  /** Over a cap: the subscription is answered with `error` and never starts. */
  refuseCalls(error: TRPCError): void {
    this.recordRefusal(error);
  }

  /** Ends the stream's session (expired token, logout, removed user, revoked link): its feed ends with UNAUTHORIZED. */
  endSession(message: string): void {
    if (this.isClosing || !this.recordEnd(message)) return;
    this.logger?.debug({ reason: message, ip: this.ip }, "event stream ended");
    this.ending.abort();
  }

  /**
   * The token's rules, run by the registry's sweep: the session or link ended; a token that
   * was fresh on arrival ends `tokenRefreshLeadMs` before its expiry, so the client
   * subscribes again with a fresh one and resumes by `lastEventId` before anything is late;
   * one that was already old ends `tokenGraceMs` after it.
   */
  tick(now = this.now()): void {
    const principal = this.principal;
    if (!principal || this.ended || this.isClosing) return;
    const over = this.sessionOver(principal, now);
    if (over) return this.endSession(over);
    if (this.refreshDue(principal, now, this.limits)) return this.endSession(this.expiryMessage(principal));
    const expired = this.tokenExpired(principal, now, this.limits);
    if (expired) this.endSession(expired);
  }

  /** The response closed: the stream leaves its registry. */
  closed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (!this.ending.signal.aborted) this.ending.abort();
    this.onClose(this);
  }

  debug(details: object, message: string): void {
    this.logger?.debug({ ...details, ip: this.ip }, message);
  }
}
