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
 * Who may read a process's internals (its metrics, the reasons `/healthz` gives): with a
 * token, requests with `Authorization: Bearer <token>`, compared in constant time (over
 * digests, so the token's length does not leak either); without one, everyone.
 */
export class BearerAccess {
  private readonly expected?: Buffer;

  constructor(token: string | undefined) {
    if (token !== undefined) this.expected = digest(token);
  }

  allows(req: http.IncomingMessage): boolean {
    if (!this.expected) return true;
    const presented = req.headers.authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
    return presented !== undefined && timingSafeEqual(digest(presented), this.expected);
  }
}

/**
 * `GET /metrics` in Prometheus text format, for the API server and the worker's small
 * server alike; with a token, for its bearer only (`BearerAccess`).
 *
 * @see https://prometheus.io/docs/instrumenting/exposition_formats/
 */
export class MetricsEndpoint {
  readonly access: BearerAccess;

  constructor(private readonly options: MetricsEndpointOptions) {
    this.access = new BearerAccess(options.token);
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
    if (!this.access.allows(req)) {
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
}
