import { TRPCError } from "@trpc/server";
import { TOKEN_EXPIRED } from "../../shared/session-messages";
import type { Principal } from "../auth/auth-service";

/** When a guarded session's token runs out (the WebSocket's limits, `server-security.ts`). */
export interface TokenLimits {
  /** How long before expiry a fresh token's client is sent to fetch a new one. */
  tokenRefreshLeadMs: number;
  /** How long a session outlives its token's expiry when the token was already old on arrival. */
  tokenGraceMs: number;
}

const SESSION_ENDED = "your session has ended: sign in again";
const SHARE_EXPIRED = "this share link has expired";

/**
 * Who a WebSocket connection or a server-sent-event stream speaks for, and whether it may
 * still make calls: refused (over a cap) from the start, or its session ended later (token
 * expired, logout, revoked share link). `ConnectionGuard` and `EventStreamGuard` extend it
 * with what their transport does about it.
 */
export abstract class SessionGuard {
  /** Set by the registry when the connection counted against its user's and tenant's caps. */
  admitted = false;
  private principalState: Principal | null = null;
  /** When the current token was verified: a token already old on arrival is not worth refreshing. */
  protected authenticatedAt = 0;
  private refusal: TRPCError | null = null;
  /** Why the session ended, once it has: every later call fails with it. */
  protected ended: TRPCError | null = null;

  constructor(protected readonly now: () => number) {}

  get principal(): Principal | null {
    return this.principalState;
  }

  get isRefused(): boolean {
    return this.refusal !== null;
  }

  get hasEnded(): boolean {
    return this.ended !== null;
  }

  /** Records the verified caller; from now on the token's expiry applies. */
  authenticated(principal: Principal): void {
    this.principalState = principal;
    this.authenticatedAt = this.now();
  }

  /** Throws why this connection or stream may not make calls any more, if it may not. */
  assertUsable(): void {
    if (this.refusal) throw this.refusal;
    if (this.ended) throw this.ended;
  }

  /** Answers every call with `error` from now on. */
  protected recordRefusal(error: TRPCError): void {
    this.refusal = error;
  }

  /** Records the session's end with `message`; false when it had already ended. */
  protected recordEnd(message: string): boolean {
    if (this.ended) return false;
    this.ended = new TRPCError({ code: "UNAUTHORIZED", message });
    return true;
  }

  /** The session or link itself ended (it expired): no fresh token can renew it. */
  protected sessionOver(principal: Principal, now: number): string | null {
    if (now < principal.endsAt) return null;
    return principal.kind === "share" ? SHARE_EXPIRED : SESSION_ENDED;
  }

  /**
   * A token that was fresh when it arrived is due for a fresh one `tokenRefreshLeadMs`
   * before it expires; one already old on arrival is not (a client that came back with the
   * same old token would otherwise be sent away again and again).
   */
  protected refreshDue(principal: Principal, now: number, limits: TokenLimits): boolean {
    const refreshAt = principal.expiresAt - limits.tokenRefreshLeadMs;
    return this.authenticatedAt < refreshAt && now >= refreshAt;
  }

  /** The token expired `tokenGraceMs` ago: why the session ends, or null while it may go on. */
  protected tokenExpired(principal: Principal, now: number, limits: TokenLimits): string | null {
    return now >= principal.expiresAt + limits.tokenGraceMs ? this.expiryMessage(principal) : null;
  }

  protected expiryMessage(principal: Principal): string {
    return principal.kind === "share" ? SHARE_EXPIRED : TOKEN_EXPIRED;
  }
}
