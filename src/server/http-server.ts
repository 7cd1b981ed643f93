import http from "node:http";
import type { Duplex } from "node:stream";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { TRPCError } from "@trpc/server";
import { SESSION_COOKIE } from "./auth/session-cookie";
import { isDatabaseUnavailable } from "./database-unavailable";
import { AdminEndpoint } from "./http/admin-endpoint";
import { clientAddress } from "./http/client-address";
import { CorsPolicy } from "./http/cors-policy";
import { HttpCallGate, type CallRefusal } from "./http/http-call-gate";
import { OriginPolicy } from "./http/origin-policy";
import { isMalformedPath, loggablePath } from "./http/request-path";
import { ReportEndpoint } from "./http/report-endpoint";
import { requestOrigin } from "./http/request-origin";
import { SecurityHeaders } from "./http/security-headers";
import { resolveServerSecurity, type ServerSecurityOverrides } from "./http/server-security";
import type { Logger } from "./logger";
import { HealthCheck } from "./metrics/health-check";
import { MetricsEndpoint } from "./metrics/metrics-endpoint";
import type { Pulse } from "./pulse";
import { EventStreams } from "./sse/event-streams";
import { appRouter } from "./trpc/root";
import type { Context } from "./trpc/trpc";
import { ConnectionRegistry } from "./ws/connection-registry";
import { RpcHandler } from "./ws/rpc-connection";
import { RpcSocketServer } from "./ws/rpc-socket-server";

export const TRPC_PATH = "/api/trpc";
/** Request headers beyond this many bytes are refused (431) before anything reads them. */
const MAX_HEADER_BYTES = 16 * 1024;

/** Serves the dashboard: Next.js's request handler, and its upgrade handler in development. */
export interface WebHandler {
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> | void;
  upgrade?(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> | void;
  /** Next.js in development: its pages evaluate code, which the Content-Security-Policy then allows. */
  dev?: boolean;
}

export interface PulseServerOptions {
  pulse: Pulse;
  logger: Logger;
  web?: WebHandler;
  /** Mark the session cookie Secure (behind HTTPS). */
  secureCookies: boolean;
  /** Origins, proxy trust, WebSocket limits and caps; defaults in `http/server-security.ts`. */
  security?: ServerSecurityOverrides;
  /**
   * `GET /metrics` (Prometheus text) on this public port: with `token`, for that bearer token
   * only; without one, only when `public` opens it to anyone; never when `enabled` is false.
   */
  metrics?: { enabled?: boolean; token?: string; public?: boolean };
  /** The admin API under /api/admin/ (a product's backend minting tokens): off (404) without `key`. */
  admin?: { key?: string; tokenTtlSeconds?: number };
}

export interface PulseServer {
  server: http.Server;
  /** Every open WebSocket connection with its limits and caps. */
  connections: ConnectionRegistry;
  /** Every open server-sent-events subscription with its caps. */
  eventStreams: EventStreams;
  /** Tells every WebSocket client to reconnect (to another replica) before this one stops. */
  broadcastReconnect(): void;
  close(): Promise<void>;
}

/** A session check that could not reach the database is a 503 the client retries, not a 500. */
function asRetryable(error: unknown): never {
  if (isDatabaseUnavailable(error)) {
    throw new TRPCError({ code: "SERVICE_UNAVAILABLE", message: "the database is unavailable right now; try again shortly", cause: error });
  }
  throw error;
}

/** WebSocket calls cannot set cookies; one function for every connection's context. */
function keepNoCookie(): void {}

/** An `error` listener shared by every upgraded socket, rather than a closure each. */
function destroySocket(this: Duplex): void {
  this.destroy();
}

/**
 * How long a call refused for a rate (its address's, its tenant's, its share link's) waits
 * for its 429. A client that calls again as soon as it is answered (a loop on `share.run`,
 * say) then costs the process one refusal a second per connection rather than one per
 * round trip, which at thousands a second took the CPU other tenants' events needed;
 * nginx's `limit_req` slows excess requests down the same way. A client that honours
 * Retry-After waits at least as long anyway.
 */
const RATE_REFUSAL_HOLD_MS = 1_000;

/** Sets `Retry-After` and resolves after `RATE_REFUSAL_HOLD_MS`, or as soon as the client is gone. */
function holdRateRefusal(res: http.ServerResponse, retryAfterSeconds: number): Promise<void> {
  res.setHeader("Retry-After", String(retryAfterSeconds));
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(hold);
      res.off("close", done);
      resolve();
    };
    const hold = setTimeout(done, RATE_REFUSAL_HOLD_MS);
    res.once("close", done);
  });
}

/** Answers a refused call; one refused for its address's rate after `holdRateRefusal`. */
function refuseCallInTime(res: http.ServerResponse, refusal: CallRefusal): void {
  if (refusal.status !== 429) return refuseCall(res, refusal);
  void holdRateRefusal(res, refusal.retryAfter ?? 1).then(() => {
    if (!res.destroyed && !res.writableEnded) refuseCall(res, refusal);
  });
}

/** Refuses a tRPC call over HTTP at the edge, in the `{ error: { code, message } }` shape every refusal here has. */
function refuseCall(res: http.ServerResponse, refusal: CallRefusal): void {
  if (refusal.retryAfter !== undefined) res.setHeader("Retry-After", String(refusal.retryAfter));
  res.writeHead(refusal.status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify({ error: { code: refusal.code, message: refusal.message } }));
}

/** Refuses a WebSocket upgrade with a plain HTTP answer, before any WebSocket exists. */
function refuseUpgrade(socket: Duplex, status: number, code: string, message: string, extraHeaders = ""): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\n${extraHeaders}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/**
 * One HTTP server for everything on one port: tRPC over HTTP at /api/trpc, tRPC over
 * WebSocket on upgrades to the same path, external agents' reports at
 * /api/runs/:runId/events, and the Next.js dashboard for the rest. Every limit a hostile
 * client meets is enforced here or in the classes it wires: origins, header and body sizes,
 * frame size, per-connection guards and per-user/tenant/address caps.
 *
 * @see https://trpc.io/docs/server/websockets
 */
export function createPulseServer(options: PulseServerOptions): PulseServer {
  const { pulse, logger, web } = options;
  const services = pulse.services;
  const security = resolveServerSecurity(options.security);
  const origins = new OriginPolicy(security.allowedOrigins);
  // COOKIE_SECURE means browsers reach Pulse over HTTPS, even where TLS ends at a proxy before it.
  const originOptions = { trustProxy: security.trustProxy, https: options.secureCookies };
  const gate = new HttpCallGate({ origins, origin: originOptions, limits: security.http });
  const cors = new CorsPolicy(origins);
  const headers = new SecurityHeaders({ frameAncestors: origins.configured, https: options.secureCookies, allowEval: web?.dev === true });
  const { metrics } = services;
  const registry = new ConnectionRegistry({
    auth: services.auth,
    revocations: services.revocations,
    caps: security.ws,
    checkIntervalMs: security.sessionCheckIntervalMs,
    shortestRuleMs: Math.min(security.ws.pongWaitMs, security.ws.authTimeoutMs),
    logger,
    metrics,
  });
  // Open metrics name tenants' load and the process's internals: on the public port they need a token or a deliberate METRICS_PUBLIC.
  const metricsOpen = options.metrics?.enabled !== false && (options.metrics?.token !== undefined || options.metrics?.public === true);
  const metricsEndpoint = metricsOpen
    ? new MetricsEndpoint({ metrics, logger, ...(options.metrics?.token ? { token: options.metrics.token } : {}) })
    : null;
  registry.start();
  const reports = new ReportEndpoint({
    auth: services.auth,
    reports: services.reports,
    logger,
    reportsPerSecond: security.reportsPerSecond,
    maxBodyBytes: security.maxBodyBytes,
  });

  const admin = new AdminEndpoint({
    accounts: services.accounts,
    adminKey: options.admin?.key,
    logger,
    maxBodyBytes: security.maxBodyBytes,
    defaultTtlSeconds: options.admin?.tokenTtlSeconds ?? 900,
  });

  const cookieHeader = (token: string | null, maxAge: number) =>
    [
      `${SESSION_COOKIE}=${token ? encodeURIComponent(token) : ""}`,
      "Path=/",
      "HttpOnly",
      "SameSite=Lax",
      `Max-Age=${token ? maxAge : 0}`,
      ...(options.secureCookies ? ["Secure"] : []),
    ].join("; ");

  // Subscriptions over HTTP: server-sent events, each under its own guard (see sse/event-streams.ts).
  const eventStreams = new EventStreams({
    services,
    authenticate: (token, kinds) => services.auth.authenticate(token, kinds).catch(asRetryable),
    revocations: services.revocations,
    caps: security.sse,
    limits: security.ws,
    checkIntervalMs: security.sessionCheckIntervalMs,
    logger,
  });
  eventStreams.start();

  const trpcHttp = createHTTPHandler({
    router: appRouter,
    basePath: `${TRPC_PATH}/`,
    maxBodySize: security.maxBodyBytes,
    async createContext({ req, res, info }): Promise<Context> {
      if (info.type === "subscription") return eventStreams.context(req, info, clientAddress(req, security.trustProxy));
      const credential = HttpCallGate.credential(req);
      if ("malformed" in credential) {
        throw new TRPCError({ code: "UNAUTHORIZED", message: "authorization: expected Bearer <token>" });
      }
      // A bearer token may be a session or a share link; the cookie only ever holds a session.
      const principal = await services.auth
        .authenticate(credential.token, credential.from === "header" ? ["session", "share"] : ["session"])
        .catch(asRetryable);
      const tenantId = principal?.kind === "user" ? principal.session.tenantId : principal?.share.tenantId;
      const retryAfter = tenantId === undefined ? 0 : gate.chargeTenant(tenantId, HttpCallGate.cost(info.calls.map((call) => call.path)));
      if (retryAfter > 0) {
        await holdRateRefusal(res, retryAfter);
        throw new TRPCError({ code: "TOO_MANY_REQUESTS", message: `at most ${gate.perTenantPerSecond} calls per second per tenant; retry in ${retryAfter} s` });
      }
      return {
        services,
        session: principal?.kind === "user" ? principal.session : null,
        share: principal?.kind === "share" ? principal.share : null,
        transport: "http",
        clientIp: clientAddress(req, security.trustProxy),
        setSessionCookie: (value, maxAge = 0) => res.appendHeader("Set-Cookie", cookieHeader(value, maxAge)),
        beforeRateRefusal: (seconds) => holdRateRefusal(res, seconds),
      };
    },
    onError({ error, path, ctx }) {
      const tenantId = ctx?.session?.tenantId ?? ctx?.share?.tenantId;
      if (error.code === "INTERNAL_SERVER_ERROR") logger.error({ err: error, path, ...(tenantId ? { tenantId } : {}) }, "procedure failed");
    },
  });

  // tRPC's protocol over the sockets (see rpc-connection.ts). Keep-alive (PING, then a
  // dropped socket without an answer) is the registry's sweep, one timer for every socket
  // (see ConnectionGuard.tick).
  const rpc = new RpcHandler<Context>({
    router: appRouter,
    async createContext({ guard, info }): Promise<Context> {
      const token = info.connectionParams?.token;
      // The token travels in connectionParams (the first frame), never in the URL.
      const principal = await services.auth.authenticate(token, ["session", "socket", "share"]).catch(asRetryable);
      if (!principal) guard.debug({ tokenSent: token !== undefined }, "websocket without a valid token in connectionParams");
      if (principal) {
        const refusal = registry.admit(guard, principal);
        if (refusal) guard.refuse(refusal);
      }
      const accepted = guard.isRefused ? null : principal;
      return {
        services,
        session: accepted?.kind === "user" ? accepted.session : null,
        share: accepted?.kind === "share" ? accepted.share : null,
        connection: guard,
        transport: "ws",
        clientIp: guard.ip,
        setSessionCookie: keepNoCookie,
      };
    },
    // A subscription's wire travels in its own call's context, where `trackedFeed` finds it.
    subscriptionContext: (ctx, wire) => ({ ...ctx, outlet: wire }),
    onError({ error, path, ctx }) {
      // The connection's logger carries its connectionId and tenantId.
      if (error.code === "INTERNAL_SERVER_ERROR") (ctx?.connection?.logger ?? logger).error({ err: error, path }, "subscription failed");
    },
  });
  const sockets = new RpcSocketServer({ handler: rpc, registry, limits: security.ws, observers: { metrics, logger } });

  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: 15_000 }, (req, res) => {
    const path = req.url ?? "/";
    headers.answer(res);
    if (logger.isLevelEnabled("trace")) {
      const startedAt = Date.now();
      res.once("finish", () =>
        logger.trace({ method: req.method, path: loggablePath(path), status: res.statusCode, ms: Date.now() - startedAt }, "http request"),
      );
    }
    // tRPC and Next.js both answer a path they cannot decode with 500: it is the client's error.
    if (isMalformedPath(path)) {
      res.writeHead(400, { "content-type": "text/plain; charset=utf-8" }).end("Bad Request: the address has a malformed percent-encoding");
      return;
    }
    if (metricsEndpoint && MetricsEndpoint.matches(path)) {
      void metricsEndpoint.handle(req, res);
      return;
    }
    const reportRun = ReportEndpoint.match(path);
    if (reportRun !== null) {
      void reports.handle(req, res, reportRun);
      return;
    }
    if (AdminEndpoint.matches(path)) {
      void admin.handle(req, res);
      return;
    }
    if (path === TRPC_PATH || path.startsWith(`${TRPC_PATH}/`) || path.startsWith(`${TRPC_PATH}?`)) {
      if (CorsPolicy.isPreflight(req)) {
        cors.preflight(req, res);
        return;
      }
      cors.allow(req, res);
      const refusal = gate.refusal(req, clientAddress(req, security.trustProxy));
      if (refusal) {
        if (refusal.status === 403) logger.debug({ origin: req.headers.origin?.slice(0, 200), own: requestOrigin(req, originOptions) }, "cookie-authenticated call refused: origin not allowed");
        refuseCallInTime(res, refusal);
        return;
      }
      trpcHttp(req, res);
      return;
    }
    if (HealthCheck.matches(path)) {
      void pulse.health.respond(res);
      return;
    }
    if (web) {
      headers.document(res, requestOrigin(req, originOptions));
      Promise.resolve(web.handle(req, res)).catch((err) => {
        logger.error({ err, path: loggablePath(path) }, "web request failed");
        if (!res.headersSent) res.writeHead(500).end("Internal Server Error");
      });
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("Not Found");
  });

  let full = false;
  server.on("upgrade", (req, socket, head) => {
    // A client that resets mid-handshake must not become an unhandled error.
    socket.on("error", destroySocket);
    const path = (req.url ?? "/").split("?")[0];
    if (path !== TRPC_PATH) {
      if (web?.upgrade) void web.upgrade(req, socket, head);
      else socket.destroy();
      return;
    }
    // Cross-site WebSocket hijacking: a page from another origin never gets a socket.
    if (!origins.allows(req.headers.origin, requestOrigin(req, originOptions))) {
      metrics.refused("origin");
      logger.debug({ origin: req.headers.origin?.slice(0, 200) }, "websocket refused: origin not allowed");
      refuseUpgrade(socket, 403, "FORBIDDEN", "origin not allowed");
      return;
    }
    const ip = clientAddress(req, security.trustProxy);
    const over = registry.refusalFor(ip);
    if (over === "per_process") {
      // Full: the client backs off and retries, here or (behind a load balancer) elsewhere.
      metrics.refused("per_process");
      // Once per spell of being full, not once per refused client.
      if (!full) logger.warn({ connections: registry.size }, "websocket refused: this process holds its cap of connections (WS_MAX_CONNECTIONS)");
      full = true;
      refuseUpgrade(socket, 503, "SERVICE_UNAVAILABLE", `this server holds its ${security.ws.perProcess} connections; retry shortly`, "Retry-After: 5\r\n");
      return;
    }
    if (over === "per_ip") {
      metrics.refused("per_ip");
      logger.debug({ ip }, "websocket refused: over the per-address cap");
      refuseUpgrade(socket, 429, "TOO_MANY_REQUESTS", `at most ${security.ws.perIp} open connections per address`);
      return;
    }
    full = false;
    sockets.upgrade(req, socket, head, ip);
  });

  return {
    server,
    connections: registry,
    eventStreams,
    broadcastReconnect: () => sockets.broadcastReconnect(),
    async close() {
      registry.stop();
      eventStreams.stop();
      sockets.broadcastReconnect();
      await sockets.close();
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
