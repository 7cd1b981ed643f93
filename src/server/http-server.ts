import http from "node:http";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { AdminEndpoint } from "./http/admin-endpoint";
import { CorsPolicy } from "./http/cors-policy";
import { HttpCallGate } from "./http/http-call-gate";
import { HttpRoutes, type WebHandler } from "./http/http-routes";
import { OriginPolicy } from "./http/origin-policy";
import { ReportEndpoint } from "./http/report-endpoint";
import { SecurityHeaders } from "./http/security-headers";
import {
  resolveServerSecurity,
  type ServerSecurityOptions,
  type ServerSecurityOverrides,
} from "./http/server-security";
import type { Logger } from "./logger";
import { MetricsEndpoint } from "./metrics/metrics-endpoint";
import type { Pulse } from "./pulse";
import { EventStreams } from "./sse/event-streams";
import { CallContexts } from "./trpc/call-contexts";
import { asRetryable } from "./trpc/principal-context";
import { appRouter } from "./trpc/root";
import type { Context } from "./trpc/trpc";
import { ConnectionRegistry } from "./ws/connection-registry";
import { RpcHandler } from "./ws/rpc-connection";
import { RpcSocketServer } from "./ws/rpc-socket-server";
import { UpgradePath } from "./ws/upgrade-path";

export const TRPC_PATH = "/api/trpc";
/** Request headers beyond this many bytes are refused (431) before anything reads them. */
const MAX_HEADER_BYTES = 16 * 1024;

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

/**
 * One HTTP server for everything on one port: tRPC over HTTP at /api/trpc, tRPC over
 * WebSocket on upgrades to the same path, external agents' reports at
 * /api/runs/:runId/events, and the Next.js dashboard for the rest. Every limit a hostile
 * client meets is enforced here or in the classes it wires: origins, header and body sizes,
 * frame size, per-connection guards and per-user/tenant/address caps. Which path goes where
 * is `HttpRoutes`; which upgrade becomes a socket is `UpgradePath`; who a call speaks for is
 * `CallContexts`.
 *
 * @see https://trpc.io/docs/server/websockets
 */
export function createPulseServer(options: PulseServerOptions): PulseServer {
  const { pulse, logger, web } = options;
  const security = resolveServerSecurity(options.security);
  const edge = edgePolicies(options, security);
  const registry = connectionRegistry(options, security);
  const eventStreams = eventStreamsOf(options, security);
  const contexts = new CallContexts({
    services: pulse.services,
    gate: edge.gate,
    eventStreams,
    registry,
    trustProxy: security.trustProxy,
    secureCookies: options.secureCookies,
  });
  const sockets = new RpcSocketServer({
    handler: rpcHandler(contexts, logger),
    registry,
    limits: security.ws,
    observers: { metrics: pulse.services.metrics, logger },
  });
  const routes = new HttpRoutes({
    ...edge,
    trpcPath: TRPC_PATH,
    trpc: trpcHttpHandler(contexts, logger, security),
    trustProxy: security.trustProxy,
    health: pulse.health,
    ...endpoints(options, security),
    ...(web ? { web } : {}),
    logger,
  });
  const upgrades = new UpgradePath({
    path: TRPC_PATH,
    origins: edge.origins,
    origin: edge.origin,
    trustProxy: security.trustProxy,
    registry,
    sockets,
    caps: security.ws,
    metrics: pulse.services.metrics,
    logger,
    ...(web?.upgrade ? { otherPaths: web.upgrade.bind(web) } : {}),
  });
  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: 15_000 }, (req, res) =>
    routes.handle(req, res),
  );
  server.on("upgrade", (req, socket, head) => upgrades.handle(req, socket, head));
  registry.start();
  eventStreams.start();
  return {
    server,
    connections: registry,
    eventStreams,
    broadcastReconnect: () => sockets.broadcastReconnect(),
    close: () => closeServer(server, registry, eventStreams, sockets),
  };
}

/** Stops the sweeps, tells every WebSocket client to reconnect elsewhere, then closes the sockets and the server. */
async function closeServer(
  server: http.Server,
  registry: ConnectionRegistry,
  eventStreams: EventStreams,
  sockets: RpcSocketServer<Context>,
) {
  registry.stop();
  eventStreams.stop();
  sockets.broadcastReconnect();
  await sockets.close();
  server.closeIdleConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Who may call from where: allowed origins, the call gate's rates, CORS and the security headers. */
function edgePolicies(options: PulseServerOptions, security: ServerSecurityOptions) {
  const origins = new OriginPolicy(security.allowedOrigins);
  // COOKIE_SECURE means browsers reach Pulse over HTTPS, even where TLS ends at a proxy before it.
  const origin = { trustProxy: security.trustProxy, https: options.secureCookies };
  return {
    origins,
    origin,
    gate: new HttpCallGate({ origins, origin, limits: security.http }),
    cors: new CorsPolicy(origins),
    headers: new SecurityHeaders({
      frameAncestors: origins.configured,
      https: options.secureCookies,
      allowEval: options.web?.dev === true,
    }),
  };
}

/** Every WebSocket connection of this process, under its caps and its token's rules. */
function connectionRegistry(options: PulseServerOptions, security: ServerSecurityOptions): ConnectionRegistry {
  const { services } = options.pulse;
  return new ConnectionRegistry({
    auth: services.auth,
    revocations: services.revocations,
    caps: security.ws,
    checkIntervalMs: security.sessionCheckIntervalMs,
    shortestRuleMs: Math.min(security.ws.pongWaitMs, security.ws.authTimeoutMs),
    logger: options.logger,
    metrics: services.metrics,
  });
}

/** Subscriptions over HTTP: server-sent events, each under its own guard (see sse/event-streams.ts). */
function eventStreamsOf(options: PulseServerOptions, security: ServerSecurityOptions): EventStreams {
  const { services } = options.pulse;
  return new EventStreams({
    services,
    authenticate: (token, kinds) => services.auth.authenticate(token, kinds).catch(asRetryable),
    revocations: services.revocations,
    caps: security.sse,
    limits: security.ws,
    checkIntervalMs: security.sessionCheckIntervalMs,
    logger: options.logger,
  });
}

/** The endpoints beside tRPC: metrics (when open), external agents' reports, the admin API. */
function endpoints(options: PulseServerOptions, security: ServerSecurityOptions) {
  const { services } = options.pulse;
  const { logger } = options;
  const config = options.metrics;
  // Open metrics name tenants' load and the process's internals: on the public port they need a token or a deliberate METRICS_PUBLIC.
  const metricsOpen = config?.enabled !== false && (config?.token !== undefined || config?.public === true);
  const token = config?.token ? { token: config.token } : {};
  return {
    metrics: metricsOpen ? new MetricsEndpoint({ metrics: services.metrics, logger, ...token }) : null,
    reports: new ReportEndpoint({
      auth: services.auth,
      reports: services.reports,
      logger,
      reportsPerSecond: security.reportsPerSecond,
      maxBodyBytes: security.maxBodyBytes,
    }),
    admin: new AdminEndpoint({
      accounts: services.accounts,
      adminKey: options.admin?.key,
      logger,
      maxBodyBytes: security.maxBodyBytes,
      defaultTtlSeconds: options.admin?.tokenTtlSeconds ?? 900,
    }),
  };
}

/** tRPC over HTTP: queries, mutations and subscriptions as server-sent events. */
function trpcHttpHandler(contexts: CallContexts, logger: Logger, security: ServerSecurityOptions) {
  return createHTTPHandler({
    router: appRouter,
    basePath: `${TRPC_PATH}/`,
    maxBodySize: security.maxBodyBytes,
    createContext: ({ req, res, info }) => contexts.http(req, res, info),
    onError({ error, path, ctx }) {
      const tenantId = ctx?.session?.tenantId ?? ctx?.share?.tenantId;
      if (error.code === "INTERNAL_SERVER_ERROR")
        logger.error({ err: error, path, ...(tenantId ? { tenantId } : {}) }, "procedure failed");
    },
  });
}

/**
 * tRPC's protocol over the sockets (see rpc-connection.ts). Keep-alive (PING, then a
 * dropped socket without an answer) is the registry's sweep, one timer for every socket
 * (see ConnectionGuard.tick).
 */
function rpcHandler(contexts: CallContexts, logger: Logger): RpcHandler<Context> {
  return new RpcHandler<Context>({
    router: appRouter,
    createContext: ({ guard, info }) => contexts.socket(guard, info.connectionParams),
    // A subscription's wire travels in its own call's context, where `trackedFeed` finds it.
    subscriptionContext: (ctx, wire) => ({ ...ctx, outlet: wire }),
    onError({ error, path, ctx }) {
      // The connection's logger carries its connectionId and tenantId.
      if (error.code === "INTERNAL_SERVER_ERROR")
        (ctx?.connection?.logger ?? logger).error({ err: error, path }, "subscription failed");
    },
  });
}
