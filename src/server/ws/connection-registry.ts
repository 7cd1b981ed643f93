import { TRPCError } from "@trpc/server";
import type { AuthService, Principal, Session, ShareGrant } from "../auth/auth-service";
import type { Logger } from "../logger";
import type { PulseMetrics } from "../metrics/pulse-metrics";
import type { ConnectionGuard } from "./connection-guard";

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
  caps: ConnectionCaps;
  /** How often open connections' sessions and share links are checked against the database. */
  checkIntervalMs: number;
  /**
   * The shortest of the connections' own time rules (the pong wait, the unauthenticated
   * timeout): the sweep runs at least five times within it, so none is kept late by much.
   */
  shortestRuleMs?: number;
  logger: Logger;
  /** Counts open connections and refusals; optional so the registry can be built alone. */
  metrics?: PulseMetrics;
}

/**
 * Every open WebSocket connection of this process: the counts behind the connection caps,
 * and one sweep that applies each connection's time rules (keep-alive among them, so ten
 * thousand sockets cost one timer, not twenty thousand) and, every `checkIntervalMs`,
 * ends the connections whose session was logged out, whose user was removed, or whose
 * share link was revoked (one query for all of them, whichever replica revoked it).
 */
export class ConnectionRegistry {
  private readonly guards = new Set<ConnectionGuard>();
  private readonly byIp = new Map<string, number>();
  private readonly byUser = new Map<string, number>();
  private readonly byTenant = new Map<string, number>();
  private readonly byShareLink = new Map<string, number>();
  private readonly byViewerIp = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private checking = false;
  private lastCheck = 0;

  constructor(private readonly options: ConnectionRegistryOptions) {}

  start(): void {
    if (this.timer) return;
    const { checkIntervalMs, shortestRuleMs = Number.POSITIVE_INFINITY } = this.options;
    const tickMs = Math.max(20, Math.min(1_000, checkIntervalMs, shortestRuleMs / 5));
    this.timer = setInterval(() => this.sweep(), tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
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
    return this.byUser.get(userId) ?? 0;
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

  open(guard: ConnectionGuard): void {
    this.guards.add(guard);
    increment(this.byIp, guard.ip);
    this.options.metrics?.wsConnections.set(this.guards.size);
    guard.debug({ ip: guard.ip, connections: this.guards.size }, "websocket opened");
  }

  closed(guard: ConnectionGuard, how: { code?: number } = {}): void {
    if (!this.guards.delete(guard)) return;
    guard.disposed();
    this.options.metrics?.wsConnections.set(this.guards.size);
    guard.debug({ ...how, openMs: Date.now() - guard.openedAt, connections: this.guards.size }, "websocket closed");
    decrement(this.byIp, guard.ip);
    const principal = guard.principal;
    if (guard.admitted && principal) this.count(principal, guard.ip, decrement);
  }

  /**
   * Counts a verified connection against its caps, or returns the TOO_MANY_REQUESTS error
   * its calls will get: a user's against their own and their tenant's, a share-link
   * viewer's against the link's and its address's (never the tenant's).
   */
  admit(guard: ConnectionGuard, principal: Principal): TRPCError | null {
    if (!this.guards.has(guard) || guard.admitted) return null;
    const refusal = principal.kind === "user" ? this.userRefusal(guard, principal.session) : this.viewerRefusal(guard, principal.share);
    if (refusal) return refusal;
    this.count(principal, guard.ip, increment);
    guard.admitted = true;
    guard.authenticated(principal);
    return null;
  }

  private userRefusal(guard: ConnectionGuard, { tenantId, userId }: Session): TRPCError | null {
    const { caps } = this.options;
    if ((this.byUser.get(userId) ?? 0) >= caps.perUser) {
      this.options.metrics?.refused("per_user");
      guard.debug({ tenantId, userId }, "websocket refused: over the per-user cap");
      return tooMany(`at most ${caps.perUser} open connections per user; close one first`);
    }
    if ((this.byTenant.get(tenantId) ?? 0) >= caps.perTenant) {
      this.options.metrics?.refused("per_tenant");
      guard.debug({ tenantId }, "websocket refused: over the per-tenant cap");
      return tooMany(`at most ${caps.perTenant} open connections per tenant; close one first`);
    }
    return null;
  }

  private viewerRefusal(guard: ConnectionGuard, { tenantId, shareId }: ShareGrant): TRPCError | null {
    const { caps } = this.options;
    if ((this.byShareLink.get(shareId) ?? 0) >= caps.perShareLink) {
      this.options.metrics?.refused("per_share_link");
      guard.debug({ tenantId, shareId }, "websocket refused: over the per-share-link cap");
      return tooMany(`at most ${caps.perShareLink} viewers per share link; close one first`);
    }
    if ((this.byViewerIp.get(guard.ip) ?? 0) >= caps.perViewerIp) {
      this.options.metrics?.refused("per_viewer_ip");
      guard.debug({ tenantId, shareId, ip: guard.ip }, "websocket refused: over the per-address viewer cap");
      return tooMany(`at most ${caps.perViewerIp} share-link viewers per address; close one first`);
    }
    return null;
  }

  /** Moves the counts an admitted connection holds: a user's and tenant's, or a share link's and its viewer's address's. */
  private count(principal: Principal, ip: string, step: (map: Map<string, number>, key: string) => void): void {
    if (principal.kind === "user") {
      step(this.byUser, principal.session.userId);
      step(this.byTenant, principal.session.tenantId);
    } else {
      step(this.byShareLink, principal.share.shareId);
      step(this.byViewerIp, ip);
    }
  }

  /** Runs every connection's time rules now, and the revocation check when it is due. */
  sweep(now = Date.now()): void {
    for (const guard of this.guards) guard.tick(now);
    if (!this.checking && now - this.lastCheck >= this.options.checkIntervalMs) {
      this.lastCheck = now;
      this.checking = true;
      this.checkRevocations()
        .catch((err) => this.options.logger.warn({ err }, "could not check open connections' sessions; retrying at the next sweep"))
        .finally(() => (this.checking = false));
    }
  }

  private async checkRevocations(): Promise<void> {
    const watched = [...this.guards].filter((g) => g.admitted && !g.hasEnded && !g.isClosing && g.principal);
    if (watched.length === 0) return;
    const sessionIds = new Set<string>();
    const shareIds = new Set<string>();
    for (const guard of watched) {
      const principal = guard.principal!;
      if (principal.kind === "user") sessionIds.add(principal.session.sessionId);
      else shareIds.add(principal.share.shareId);
    }
    const active = await this.options.auth.stillActive({ sessionIds: [...sessionIds], shareIds: [...shareIds] });
    for (const guard of watched) {
      const principal = guard.principal!;
      if (principal.kind === "user" && !active.sessions.has(principal.session.sessionId)) {
        guard.end("your session has ended: sign in again");
      } else if (principal.kind === "share" && !active.shares.has(principal.share.shareId)) {
        guard.end("this share link was revoked or has expired");
      }
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
