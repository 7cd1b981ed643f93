import type { ConnectionLimits } from "../ws/connection-guard";
import type { ConnectionCaps } from "../ws/connection-registry";

/** The WebSocket server's settings: frame size, per-connection limits (keep-alive among them) and caps. */
export interface WebSocketSecurity extends ConnectionLimits, ConnectionCaps {
  /** Larger frames close the connection with 1009. */
  maxPayloadBytes: number;
}

/** Limits on tRPC calls over HTTP; each procedure of a batch counts as one call. */
export interface HttpCallLimits {
  /** Procedures one HTTP request may batch; more is refused (400) before any runs. */
  maxBatch: number;
  /** Calls per second from one address (bursts up to twice this), per process. */
  perIpPerSecond: number;
  /** Calls per second for one tenant, its sessions and share links alike (bursts up to twice this), per process. */
  perTenantPerSecond: number;
}

/** Everything `createPulseServer` enforces at the edge. Defaults below; `.env.example` documents each. */
export interface ServerSecurityOptions {
  /** Origins allowed to open the WebSocket and send cookie-authenticated mutations; empty: the request's own host only. */
  allowedOrigins: string[];
  /** Read the client's address from X-Forwarded-For (only behind a proxy that sets it). */
  trustProxy: boolean;
  /**
   * The safety check's round: each open connection's session or share link is read again
   * once per this interval (revocations themselves arrive as messages, at once).
   */
  sessionCheckIntervalMs: number;
  /** Reports one run may send per second over HTTP (bursts up to twice this). */
  reportsPerSecond: number;
  /** Largest HTTP request body (tRPC and reports); larger is 413. */
  maxBodyBytes: number;
  http: HttpCallLimits;
  ws: WebSocketSecurity;
  /**
   * Caps on subscriptions served as server-sent events, each one HTTP response (a page holds
   * up to three); their token rules are the WebSocket's (`tokenRefreshLeadMs`, `tokenGraceMs`).
   */
  sse: ConnectionCaps;
}

export const DEFAULT_SERVER_SECURITY: ServerSecurityOptions = {
  allowedOrigins: [],
  trustProxy: false,
  sessionCheckIntervalMs: 60_000,
  reportsPerSecond: 50,
  maxBodyBytes: 64 * 1024,
  http: {
    maxBatch: 32,
    perIpPerSecond: 100,
    perTenantPerSecond: 100,
  },
  ws: {
    maxPayloadBytes: 64 * 1024,
    pingMs: 30_000,
    pongWaitMs: 5_000,
    authTimeoutMs: 5_000,
    maxSubscriptions: 20,
    messagesPerSecond: 50,
    maxBatch: 32,
    maxRequestIdLength: 64,
    tokenGraceMs: 10_000,
    tokenRefreshLeadMs: 30_000,
    maxBufferedBytes: 4 * 1024 * 1024,
    perUser: 20,
    perTenant: 200,
    perIp: 50,
    perShareLink: 100,
    perViewerIp: 10,
    perProcess: 20_000,
  },
  sse: {
    perUser: 60,
    perTenant: 600,
    perIp: 150,
    perShareLink: 300,
    perViewerIp: 30,
    perProcess: 20_000,
  },
};

export type ServerSecurityOverrides = Partial<Omit<ServerSecurityOptions, "ws" | "http" | "sse">> & {
  http?: Partial<HttpCallLimits>;
  ws?: Partial<WebSocketSecurity>;
  sse?: Partial<ConnectionCaps>;
};

/** The defaults with whatever the caller set, merged in this one place. */
export function resolveServerSecurity(overrides: ServerSecurityOverrides = {}): ServerSecurityOptions {
  const { ws, http, sse, ...rest } = overrides;
  return {
    ...DEFAULT_SERVER_SECURITY,
    ...rest,
    http: { ...DEFAULT_SERVER_SECURITY.http, ...http },
    ws: { ...DEFAULT_SERVER_SECURITY.ws, ...ws },
    sse: { ...DEFAULT_SERVER_SECURITY.sse, ...sse },
  };
}
