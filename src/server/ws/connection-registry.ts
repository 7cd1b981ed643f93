import { TRPCError } from "@trpc/server";
import type { AuthService, Principal, Session, ShareGrant } from "../auth/auth-service";
import type { Revocation, RevocationChannel } from "../auth/revocation-channel";
import type { Logger } from "../logger";
import type { PulseMetrics } from "../metrics/pulse-metrics";
import type { RefusalReason } from "../metrics/pulse-metrics";
import type { ConnectionGuard } from "./connection-guard";
import { ConnectionIndex } from "./connection-index";

/**
 * What the registry needs of one connection: a WebSocket's `ConnectionGuard`, or one
 * server-sent-event subscription's `EventStreamGuard` (each transport has its own registry).
 */
export interface RegisteredConnection {
  readonly ip: string;
  readonly openedAt: number;
  /** Set by the registry when the connection counted against its user's and tenant's caps. */
  admitted: boolean;
  readonly principal: Principal | null;
  readonly hasEnded: boolean;
  readonly isClosing: boolean;
  /** Subscriptions whose live events go straight to the client. */
  readonly wiredSubscriptions: number;
  authenticated(principal: Principal): void;
  /** Ends the connection's session: its subscriptions end with UNAUTHORIZED and `message`. */
  endSession(message: string): void;
  /** Time-based rules (keep-alive, the token's expiry), run by the registry's sweep. */
  tick(now: number): void;
  /** Its socket or response is gone. */
  closed(): void;
  debug(details: object, message: string): void;
}

/** Sessions and share links the safety check reads in one query, and so the size of a slice of it. */
const SAFETY_CHECK_BATCH = 1_000;
/**
 * How long a revocation is remembered for connections still being admitted: one whose token
 * was verified just before the revocation committed is admitted just after its message.
 */
const RECENT_REVOCATION_MS = 30_000;
const SESSION_ENDED = "your session has ended: sign in again";
const SHARE_ENDED = "this share link was revoked or has expired";

/** How many WebSocket connections one user, tenant or address, and the process itself, may hold open. */
export interface ConnectionCaps {
  perUser: number;
  perTenant: number;
  perIp: number;
  /** Viewers of one share link: they count apart from the tenant's users, so a leaked link cannot lock those out. */
  perShareLink: number;
  /** Share-link viewers from one address, whatever the link, so one address cannot take a link's every place. */
  perViewerIp: number;
  /** All connections of this process: what it can hold, whoever opens them. */
  perProcess: number;
}

export interface ConnectionRegistryOptions {
  auth: Pick<AuthService, "stillActive">;
  /** Where logouts, removed users and stopped share links arrive from, whichever process made them. */
  revocations?: Pick<RevocationChannel, "listen">;
  caps: ConnectionCaps;
  /**
   * The safety check: every open connection's session or share link is read again once per
   * this interval, a rolling slice at a time, for revocations whose message was missed.
   */
  checkIntervalMs: number;
  /**
   * The shortest of the connections' own time rules (the pong wait, the unauthenticated
   * timeout): the sweep runs at least five times within it, so none is kept late by much.
   */
  shortestRuleMs?: number;
  logger: Logger;
  /** Counts open connections and refusals; optional so the registry can be built alone. */
  metrics?: PulseMetrics;
  /** Which transport's connections these are, for metrics (default: WebSocket). */
  transport?: "ws" | "sse";
}

/**
 * Every open WebSocket connection of this process: the counts behind the connection caps,
 * and one sweep that applies each connection's time rules (keep-alive and the session's
 * end among them, so ten thousand sockets cost one timer, not twenty thousand).
 * Revocations arrive as messages and end exactly the connections they name, found through
 * an index; the database is read only when the revocation channel (re)subscribes, and by
 * a slow rolling safety check for what a lost message or a change made in the database
 * directly would otherwise leave open.
 */
export class ConnectionRegistry<TConnection extends RegisteredConnection = ConnectionGuard> {
  private readonly guards = new Set<TConnection>();
  private readonly byIp = new Map<string, number>();
  private readonly bySession = new ConnectionIndex<TConnection>();
  private readonly byUser = new ConnectionIndex<TConnection>();
  private readonly byTenant = new Map<string, number>();
  private readonly byShareLink = new ConnectionIndex<TConnection>();
  private readonly byViewerIp = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private stopListening?: () => void;
  /** Revocations of the last `RECENT_REVOCATION_MS` by `kind:id`, oldest first, with when they arrived. */
  private readonly recent = new Map<string, number>();
  private checking = false;
  /** When the last slice of the safety check was read; the first sweep starts the round. */
  private lastSlice: number | null = null;
  /** Where the safety check goes on: a live iterator, so connections opened meanwhile are reached and closed ones skipped. */
  private rolling: Iterator<TConnection> = this.guards.values();

  constructor(private readonly options: ConnectionRegistryOptions) {}

  start(): void {
    if (this.timer) return;
    const { checkIntervalMs, shortestRuleMs = Number.POSITIVE_INFINITY } = this.options;
    const tickMs = Math.max(20, Math.min(1_000, checkIntervalMs, shortestRuleMs / 5));
    this.timer = setInterval(() => this.sweep(), tickMs);
    this.timer.unref();
    this.stopListening = this.options.revocations?.listen({
      revoked: (revocation) => this.revoke(revocation),
      resubscribed: () => void this.checkAll(),
    });
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopListening?.();
    this.stopListening = undefined;
  }

  get size(): number {
    return this.guards.size;
  }

  /** Subscriptions whose live events go straight to their socket, over every connection. */
  get wiredSubscriptions(): number {
    let wired = 0;
    for (const guard of this.guards) wired += guard.wiredSubscriptions;
    return wired;
  }

  /** Open connections of one user, for tests and diagnostics. */
  connectionsOfUser(userId: string): number {
    return this.byUser.count(userId);
  }

  /**
   * Why a new connection from `ip` would be over a cap (the process is full, or the address
   * holds its share), or null when there is room: the upgrade is refused before it happens.
   */
  refusalFor(ip: string): "per_process" | "per_ip" | null {
    const { caps } = this.options;
    if (this.guards.size >= caps.perProcess) return "per_process";
    if ((this.byIp.get(ip) ?? 0) >= caps.perIp) return "per_ip";
    return null;
  }

  open(guard: TConnection): void {
    this.guards.add(guard);
    increment(this.byIp, guard.ip);
    this.countOpen();
    guard.debug({ ip: guard.ip, connections: this.guards.size }, "websocket opened");
  }

  closed(guard: TConnection, how: { code?: number } = {}): void {
    if (!this.guards.delete(guard)) return;
    guard.closed();
    this.countOpen();
    guard.debug({ ...how, openMs: Date.now() - guard.openedAt, connections: this.guards.size }, "websocket closed");
    decrement(this.byIp, guard.ip);
    const principal = guard.principal;
    if (guard.admitted && principal) this.untrack(guard, principal);
  }

  /**
   * Counts a verified connection against its caps, or returns the TOO_MANY_REQUESTS error
   * its calls will get: a user's against their own and their tenant's, a share-link
   * viewer's against the link's and its address's (never the tenant's).
   */
  admit(guard: TConnection, principal: Principal): TRPCError | null {
    if (!this.guards.has(guard) || guard.admitted) return null;
    const refusal =
      principal.kind === "user"
        ? this.userRefusal(guard, principal.session)
        : this.viewerRefusal(guard, principal.share);
    if (refusal) return refusal;
    this.track(guard, principal);
    guard.admitted = true;
    guard.authenticated(principal);
    const revoked = this.recentlyRevoked(principal);
    if (revoked) guard.endSession(revoked);
    return null;
  }

  private userRefusal(guard: TConnection, { tenantId, userId }: Session): TRPCError | null {
    const { caps } = this.options;
    if (this.byUser.count(userId) >= caps.perUser) {
      this.refused("per_user");
      guard.debug({ tenantId, userId }, "websocket refused: over the per-user cap");
      return tooMany(`at most ${caps.perUser} open connections per user; close one first`);
    }
    if ((this.byTenant.get(tenantId) ?? 0) >= caps.perTenant) {
      this.refused("per_tenant");
      guard.debug({ tenantId }, "websocket refused: over the per-tenant cap");
      return tooMany(`at most ${caps.perTenant} open connections per tenant; close one first`);
    }
    return null;
  }

  private viewerRefusal(guard: TConnection, { tenantId, shareId }: ShareGrant): TRPCError | null {
    const { caps } = this.options;
    if (this.byShareLink.count(shareId) >= caps.perShareLink) {
      this.refused("per_share_link");
      guard.debug({ tenantId, shareId }, "websocket refused: over the per-share-link cap");
      return tooMany(`at most ${caps.perShareLink} viewers per share link; close one first`);
    }
    if ((this.byViewerIp.get(guard.ip) ?? 0) >= caps.perViewerIp) {
      this.refused("per_viewer_ip");
      guard.debug({ tenantId, shareId, ip: guard.ip }, "websocket refused: over the per-address viewer cap");
      return tooMany(`at most ${caps.perViewerIp} share-link viewers per address; close one first`);
    }
    return null;
  }

  /** Counts an admitted connection where its caps and revocations find it: a user's by session, user and tenant, a viewer's by share link and address. */
  private track(guard: TConnection, principal: Principal): void {
    if (principal.kind === "user") {
      this.bySession.add(principal.session.sessionId, guard);
      this.byUser.add(principal.session.userId, guard);
      increment(this.byTenant, principal.session.tenantId);
    } else {
      this.byShareLink.add(principal.share.shareId, guard);
      increment(this.byViewerIp, guard.ip);
    }
  }

  private untrack(guard: TConnection, principal: Principal): void {
    if (principal.kind === "user") {
      this.bySession.delete(principal.session.sessionId, guard);
      this.byUser.delete(principal.session.userId, guard);
      decrement(this.byTenant, principal.session.tenantId);
    } else {
      this.byShareLink.delete(principal.share.shareId, guard);
      decrement(this.byViewerIp, guard.ip);
    }
  }

  private countOpen(): void {
    if (this.options.transport === "sse") this.options.metrics?.eventStreamsOpen(this.guards.size);
    else this.options.metrics?.wsConnections.set(this.guards.size);
  }

  private refused(reason: Exclude<RefusalReason, "origin">): void {
    if (this.options.transport === "sse") this.options.metrics?.eventStreamRefused(reason);
    else this.options.metrics?.refused(reason);
  }

  /** Ends the connections a revocation names, at once: only those, found through the index. */
  revoke({ kind, id }: Revocation): void {
    const key = `${kind}:${id}`;
    this.recent.delete(key);
    this.recent.set(key, Date.now());
    const index = kind === "session" ? this.bySession : kind === "user" ? this.byUser : this.byShareLink;
    const reason = kind === "share" ? SHARE_ENDED : SESSION_ENDED;
    for (const guard of [...index.get(id)]) guard.endSession(reason);
  }

  /** Why a connection being admitted has ended already, if a recent revocation names it. */
  private recentlyRevoked(principal: Principal): string | null {
    if (principal.kind === "share") return this.recent.has(`share:${principal.share.shareId}`) ? SHARE_ENDED : null;
    const { sessionId, userId } = principal.session;
    return this.recent.has(`session:${sessionId}`) || this.recent.has(`user:${userId}`) ? SESSION_ENDED : null;
  }

  private forgetOldRevocations(now: number): void {
    for (const [key, at] of this.recent) {
      if (now - at < RECENT_REVOCATION_MS) return;
      this.recent.delete(key);
    }
  }

  /**
   * Runs every connection's time rules now, and the next slice of the safety check when it
   * is due: as many slices per interval as batches the connections fill, evenly spaced, so
   * ten thousand connections are read a thousand at a time, never all at once.
   */
  sweep(now = Date.now()): void {
    for (const guard of this.guards) guard.tick(now);
    this.forgetOldRevocations(now);
    const slices = Math.max(1, Math.ceil(this.guards.size / SAFETY_CHECK_BATCH));
    this.lastSlice ??= now;
    if (this.checking || now - this.lastSlice < this.options.checkIntervalMs / slices) return;
    this.lastSlice = now;
    this.checking = true;
    void this.check(this.nextSlice(Math.ceil(this.guards.size / slices))).finally(() => (this.checking = false));
  }

  /** Re-reads every connection's session or share link: the revocation channel was away, and what it carried meanwhile is lost. */
  checkAll(): Promise<void> {
    return this.check([...this.guards]);
  }

  /** The next `size` connections of the safety check's round, starting the round again at its end. */
  private nextSlice(size: number): TConnection[] {
    const slice: TConnection[] = [];
    let restarted = false;
    while (slice.length < size) {
      const next = this.rolling.next();
      if (!next.done) {
        slice.push(next.value);
      } else if (restarted) {
        break;
      } else {
        restarted = true;
        this.rolling = this.guards.values();
      }
    }
    return slice;
  }

  /** Ends those of `guards` whose session or share link the database no longer holds valid. */
  private async check(guards: TConnection[]): Promise<void> {
    const watched = guards.filter((g) => g.admitted && !g.hasEnded && !g.isClosing && g.principal);
    if (watched.length === 0) return;
    const sessionIds = new Set<string>();
    const shareIds = new Set<string>();
    for (const guard of watched) {
      const principal = guard.principal!;
      if (principal.kind === "user") sessionIds.add(principal.session.sessionId);
      else shareIds.add(principal.share.shareId);
    }
    try {
      const active = await this.options.auth.stillActive({ sessionIds: [...sessionIds], shareIds: [...shareIds] });
      for (const guard of watched) {
        const principal = guard.principal!;
        if (principal.kind === "user" && !active.sessions.has(principal.session.sessionId))
          guard.endSession(SESSION_ENDED);
        else if (principal.kind === "share" && !active.shares.has(principal.share.shareId))
          guard.endSession(SHARE_ENDED);
      }
    } catch (err) {
      this.options.logger.warn(
        { err, connections: watched.length },
        "could not check open connections' sessions; the next round of the safety check reads them again",
      );
    }
  }
}

function tooMany(message: string): TRPCError {
  return new TRPCError({ code: "TOO_MANY_REQUESTS", message });
}

function increment(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function decrement(map: Map<string, number>, key: string): void {
  const next = (map.get(key) ?? 0) - 1;
  if (next <= 0) map.delete(key);
  else map.set(key, next);
}
