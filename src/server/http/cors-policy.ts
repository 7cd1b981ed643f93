import type { IncomingMessage, ServerResponse } from "node:http";
import type { OriginPolicy } from "./origin-policy";

/** Request headers a cross-origin page may send: its bearer token, JSON bodies, and tRPC's streaming hint. */
const ALLOWED_HEADERS = "authorization, content-type, trpc-accept";
/** How long a browser may reuse a preflight's answer before asking again. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/**
 * Cross-origin calls to tRPC over HTTP, for the pages `ALLOWED_ORIGINS` lists (a product
 * embedding Pulse) and no others. Answers never carry `Access-Control-Allow-Credentials`, so
 * a browser neither sends nor exposes cookies on them: a cross-origin page authenticates with
 * a bearer token its own backend minted, and a cookie never does (see `HttpCallGate`).
 *
 * @see https://fetch.spec.whatwg.org/#http-cors-protocol
 */
export class CorsPolicy {
  constructor(private readonly origins: OriginPolicy) {}

  /** True when this is a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), which `preflight` answers. */
  static isPreflight(req: IncomingMessage): boolean {
    return req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
  }

  /** 204 with the allowance for a listed origin; 403 without any for every other. */
  preflight(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader("Vary", "Origin");
    const origin = this.listed(req.headers.origin);
    if (origin === null) {
      res.writeHead(403, { "content-type": "application/json", "cache-control": "no-store" });
      res.end(
        JSON.stringify({ error: { code: "FORBIDDEN", message: "origin not allowed: list it in ALLOWED_ORIGINS" } }),
      );
      return;
    }
    res.writeHead(204, {
      "Access-Control-Allow-Origin": origin,
      "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
      "Access-Control-Allow-Headers": ALLOWED_HEADERS,
      "Access-Control-Max-Age": String(PREFLIGHT_MAX_AGE_SECONDS),
    });
    res.end();
  }

  /** Lets a listed origin's page read this answer (and its `Retry-After`); other answers only say they vary by origin. */
  allow(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader("Vary", "Origin");
    const origin = this.listed(req.headers.origin);
    if (origin === null) return;
    res.setHeader("Access-Control-Allow-Origin", origin);
    res.setHeader("Access-Control-Expose-Headers", "Retry-After");
  }

  /** The origin as configured when it is listed; the request's own origin is no cross-origin call. */
  private listed(origin: string | undefined): string | null {
    if (origin === undefined || this.origins.configured.length === 0) return null;
    return this.origins.allows(origin, undefined) ? origin : null;
  }
}
