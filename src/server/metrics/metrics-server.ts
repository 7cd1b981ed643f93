import http from "node:http";
import type { Logger } from "../logger";
import { HealthCheck } from "./health-check";
import { BearerAccess, MetricsEndpoint } from "./metrics-endpoint";
import type { PulseMetrics } from "./pulse-metrics";

export interface MetricsServerOptions {
  metrics: PulseMetrics;
  port: number;
  host: string;
  /** Serve `/metrics` (false: `/healthz` only). */
  enabled: boolean;
  token?: string;
  logger: Logger;
  /** What `/healthz` reports. */
  health: HealthCheck;
}

export interface MetricsServer {
  server: http.Server;
  /** The port it listens on (the chosen one when `port` was 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * A small HTTP server with `/metrics` and `/healthz` only, for worker processes, which have
 * no other server to hang them on.
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const endpoint = options.enabled
    ? new MetricsEndpoint({
        metrics: options.metrics,
        logger: options.logger,
        ...(options.token ? { token: options.token } : {}),
      })
    : null;
  // A worker's own port: `/healthz` gives its reasons to everyone, or with METRICS_TOKEN to its bearer.
  const internals = endpoint?.access ?? new BearerAccess(options.token || undefined);
  const server = http.createServer({ maxHeaderSize: 16 * 1024, headersTimeout: 15_000 }, (req, res) => {
    if (endpoint && MetricsEndpoint.matches(req.url)) {
      void endpoint.handle(req, res);
      return;
    }
    if (HealthCheck.matches(req.url)) {
      void options.health.respond(res, internals.allows(req));
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("Not Found");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    server,
    port: typeof address === "object" && address ? address.port : options.port,
    async close() {
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
