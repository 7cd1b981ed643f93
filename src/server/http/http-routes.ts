import type http from "node:http";
import type { Logger } from "../logger";
import { HealthCheck } from "../metrics/health-check";
import { MetricsEndpoint } from "../metrics/metrics-endpoint";
import type { Duplex } from "node:stream";
import { AdminEndpoint } from "./admin-endpoint";
import { clientAddress } from "./client-address";
import { CorsPolicy } from "./cors-policy";
import type { HttpCallGate } from "./http-call-gate";
import { refuseCallInTime } from "./rate-refusal";
import { isMalformedPath, loggablePath } from "./request-path";
import { ReportEndpoint } from "./report-endpoint";
import { requestOrigin, type RequestOriginOptions } from "./request-origin";
import type { SecurityHeaders } from "./security-headers";

/** Serves the dashboard: Next.js's request handler, and its upgrade handler in development. */
export interface WebHandler {
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> | void;
  upgrade?(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> | void;
  /** Next.js in development: its pages evaluate code, which the Content-Security-Policy then allows. */
  dev?: boolean;
}

export interface HttpRoutesOptions {
  /** tRPC's path: calls under it go through CORS and the call gate to `trpc`. */
  trpcPath: string;
  /** tRPC's HTTP handler. */
  trpc: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  gate: HttpCallGate;
  cors: CorsPolicy;
  headers: SecurityHeaders;
  origin: RequestOriginOptions;
  trustProxy: boolean;
  /** `GET /metrics`; absent when the public port does not serve it. */
  metrics: MetricsEndpoint | null;
  reports: ReportEndpoint;
  admin: AdminEndpoint;
  health: Pick<HealthCheck, "respond">;
  /** The dashboard, for every path nothing else claims; without it, those are 404. */
  web?: WebHandler;
  logger: Logger;
}

/**
 * The HTTP server's request listener: which path goes where. Every answer carries the
 * security headers; a malformed path is the client's 400; then metrics, external agents'
 * reports, the admin API, tRPC, the health check and, for the rest, the dashboard.
 */
export class HttpRoutes {
  constructor(private readonly options: HttpRoutesOptions) {}

  handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const { options } = this;
    const path = req.url ?? "/";
    options.headers.answer(res);
    if (options.logger.isLevelEnabled("trace")) this.trace(req, res, path);
    // tRPC and Next.js both answer a path they cannot decode with 500: it is the client's error.
    if (isMalformedPath(path)) {
      res
        .writeHead(400, { "content-type": "text/plain; charset=utf-8" })
        .end("Bad Request: the address has a malformed percent-encoding");
      return;
    }
    if (options.metrics && MetricsEndpoint.matches(path)) return void options.metrics.handle(req, res);
    const reportRun = ReportEndpoint.match(path);
    if (reportRun !== null) return void options.reports.handle(req, res, reportRun);
    if (AdminEndpoint.matches(path)) return void options.admin.handle(req, res);
    if (this.isTrpcPath(path)) return this.callTrpc(req, res);
    // Its reasons for those who may scrape the metrics here (METRICS_PUBLIC, or with METRICS_TOKEN).
    if (HealthCheck.matches(path))
      return void options.health.respond(res, options.metrics?.access.allows(req) ?? false);
    if (options.web) return this.serveWeb(options.web, req, res, path);
    res.writeHead(404, { "content-type": "text/plain" }).end("Not Found");
  }

  private isTrpcPath(path: string): boolean {
    const { trpcPath } = this.options;
    return path === trpcPath || path.startsWith(`${trpcPath}/`) || path.startsWith(`${trpcPath}?`);
  }

  /** A tRPC call over HTTP: CORS first, then the gate's origin and rate checks, then tRPC. */
  private callTrpc(req: http.IncomingMessage, res: http.ServerResponse): void {
    const { cors, gate, logger } = this.options;
    if (CorsPolicy.isPreflight(req)) {
      cors.preflight(req, res);
      return;
    }
    cors.allow(req, res);
    const refusal = gate.refusal(req, clientAddress(req, this.options.trustProxy));
    if (refusal) {
      if (refusal.status === 403) {
        const origins = { origin: req.headers.origin?.slice(0, 200), own: requestOrigin(req, this.options.origin) };
        logger.debug(origins, "cookie-authenticated call refused: origin not allowed");
      }
      refuseCallInTime(res, refusal);
      return;
    }
    this.options.trpc(req, res);
  }

  private serveWeb(web: WebHandler, req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
    this.options.headers.document(res, requestOrigin(req, this.options.origin));
    Promise.resolve(web.handle(req, res)).catch((err) => {
      this.options.logger.error({ err, path: loggablePath(path) }, "web request failed");
      if (!res.headersSent) res.writeHead(500).end("Internal Server Error");
    });
  }

  private trace(req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
    const startedAt = Date.now();
    res.once("finish", () => {
      const request = {
        method: req.method,
        path: loggablePath(path),
        status: res.statusCode,
        ms: Date.now() - startedAt,
      };
      this.options.logger.trace(request, "http request");
    });
  }
}
