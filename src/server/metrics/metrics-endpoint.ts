import { createHash, timingSafeEqual } from "node:crypto";
import type http from "node:http";
import type { Logger } from "../logger";
import type { PulseMetrics } from "./pulse-metrics";

export const METRICS_PATH = "/metrics";

export interface MetricsEndpointOptions {
  metrics: PulseMetrics;
  /** When set, a scrape needs `Authorization: Bearer <token>`. */
  token?: string;
  logger?: Logger;
}

const digest = (value: string) => createHash("sha256").update(value).digest();

/**
 * `GET /metrics` in Prometheus text format, for the API server and the worker's small
 * server alike. With a token, the bearer header is compared in constant time (over
 * digests, so the token's length does not leak either).
 *
 * @see https://prometheus.io/docs/instrumenting/exposition_formats/
 */
export class MetricsEndpoint {
  private readonly expected?: Buffer;

  constructor(private readonly options: MetricsEndpointOptions) {
    if (options.token !== undefined) this.expected = digest(options.token);
  }

  /** True for requests this endpoint answers (any method: others get 405). */
  static matches(url: string | undefined): boolean {
    return (url ?? "/").split("?")[0] === METRICS_PATH;
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("Method Not Allowed");
      return;
    }
    if (!this.authorized(req.headers.authorization)) {
      res
        .writeHead(401, { "www-authenticate": 'Bearer realm="metrics"', "content-type": "text/plain" })
        .end("Unauthorized");
      return;
    }
    try {
      const body = await this.options.metrics.scrape();
      res.writeHead(200, { "content-type": this.options.metrics.contentType, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch (err) {
      this.options.logger?.error({ err }, "metrics scrape failed");
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("metrics unavailable");
    }
  }

  private authorized(header: string | undefined): boolean {
    if (!this.expected) return true;
    const presented = header?.match(/^Bearer\s+(\S+)$/i)?.[1];
    return presented !== undefined && timingSafeEqual(digest(presented), this.expected);
  }
}
