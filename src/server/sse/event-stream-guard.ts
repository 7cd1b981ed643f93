import { TRPCError } from "@trpc/server";
import { TOKEN_EXPIRED } from "../../shared/session-messages";
import type { Principal } from "../auth/auth-service";
import type { Logger } from "../logger";
import type { RegisteredConnection } from "../ws/connection-registry";

/** How a server-sent-event subscription's token runs out, from the WebSocket's limits (`server-security.ts`). */
export interface EventStreamLimits {
  /** How long before expiry a stream ends so its client reconnects with a fresh token. */
  tokenRefreshLeadMs: number;
  /** How long a stream outlives its token's expiry when the token was already old on arrival. */
  tokenGraceMs: number;
}

const SESSION_ENDED = "your session has ended: sign in again";
const SHARE_EXPIRED = "this share link has expired";

/**
 * One subscription served as server-sent events (one HTTP response, tRPC's
 * `httpSubscriptionLink` protocol): who it is, and when it must end. Its `signal` aborts when
 * the response closes or its session ends (expired token, logout, revoked share link), which
 * ends its feed; `assertUsable` then tells the client why, as a `serialized-error` event.
 * The counterpart of the WebSocket's `ConnectionGuard`, kept by its own `ConnectionRegistry`
 * for caps and revocations.
 *
 * @see https://trpc.io/docs/client/links/httpSubscriptionLink
 */
export class EventStreamGuard implements RegisteredConnection {
  readonly openedAt: number;
  admitted = false;
  private principalState: Principal | null = null;
  private authenticatedAt = 0;
  private refusal: TRPCError | null = null;
  private ended: TRPCError | null = null;
  private readonly ending = new AbortController();
  private closed = false;

  constructor(
    readonly ip: string,
    private readonly limits: EventStreamLimits,
    request: AbortSignal,
    private readonly onClose: (guard: EventStreamGuard) => void,
    private readonly logger?: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.openedAt = now();
    if (request.aborted) queueMicrotask(() => this.disposed());
    else request.addEventListener("abort", () => this.disposed(), { once: true });
  }

  /** Aborts when the response closes or the session ends: the subscription's feed ends then. */
  get signal(): AbortSignal {
    return this.ending.signal;
  }

  get principal(): Principal | null {
    return this.principalState;
  }

  get hasEnded(): boolean {
    return this.ended !== null;
  }

  get isClosing(): boolean {
    return this.ending.signal.aborted;
  }

  /** An event stream carries one subscription, through its iterator. */
  get wiredSubscriptions(): number {
    return 0;
  }

  authenticated(principal: Principal): void {
    this.principalState = principal;
    this.authenticatedAt = this.now();
  }

  /** Over a cap: the subscription is answered with `error` and never starts. */
  refuse(error: TRPCError): void {
    this.refusal = error;
  }

  /** Throws why this stream may not go on, if it may not. */
  assertUsable(): void {
    if (this.refusal) throw this.refusal;
    if (this.ended) throw this.ended;
  }

  /** Ends the stream's session (expired token, logout, removed user, revoked link): its feed ends with UNAUTHORIZED. */
  end(message: string): void {
    if (this.ended || this.isClosing) return;
    this.ended = new TRPCError({ code: "UNAUTHORIZED", message });
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
    const principal = this.principalState;
    if (!principal || this.ended || this.isClosing) return;
    if (now >= principal.endsAt) {
      this.end(principal.kind === "share" ? SHARE_EXPIRED : SESSION_ENDED);
      return;
    }
    const refreshAt = principal.expiresAt - this.limits.tokenRefreshLeadMs;
    const endAt = this.authenticatedAt < refreshAt ? refreshAt : principal.expiresAt + this.limits.tokenGraceMs;
    if (now >= endAt) this.end(principal.kind === "share" ? SHARE_EXPIRED : TOKEN_EXPIRED);
  }

  /** The response closed: the stream leaves its registry. */
  disposed(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.ending.signal.aborted) this.ending.abort();
    this.onClose(this);
  }

  debug(details: object, message: string): void {
    this.logger?.debug({ ...details, ip: this.ip }, message);
  }
}
