import type { ServerResponse } from "node:http";

export interface SecurityHeadersOptions {
  /** Origins allowed to frame the dashboard; empty: none (no page may frame it). */
  frameAncestors: readonly string[];
  /** Served over HTTPS (COOKIE_SECURE): browsers are told to come back over HTTPS only. */
  https: boolean;
  /** Next.js in development evaluates code for hot reloading. */
  allowEval?: boolean;
}

/** A year, the value HSTS preload lists ask for. */
const HSTS_MAX_AGE_SECONDS = 365 * 24 * 3600;

/**
 * The headers that tell a browser how to treat every answer of Pulse: never inside another
 * site's frame unless ALLOWED_ORIGINS lists it (clickjacking of Cancel, Retry, Share),
 * never sniffed into another content type, no full URL in a Referer to other sites, HTTPS
 * only once COOKIE_SECURE says it is served over HTTPS. A page's scripts may be inline,
 * because Next.js inlines its bootstrap and its streamed page data; everything else loads
 * from the page's own origin, and the WebSocket connects to it. Other answers (JSON, text)
 * load nothing, and their policy says so in a few bytes.
 *
 * @see https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Content-Security-Policy/frame-ancestors
 * @see https://nextjs.org/docs/app/guides/content-security-policy#without-nonces
 */
export class SecurityHeaders {
  private readonly common: [string, string][];
  private readonly documentPolicy: string;
  private readonly answerPolicy: string;

  constructor(options: SecurityHeadersOptions) {
    const framing = `frame-ancestors ${options.frameAncestors.length > 0 ? `'self' ${options.frameAncestors.join(" ")}` : "'none'"}`;
    this.documentPolicy = [
      "default-src 'self'",
      `script-src 'self' 'unsafe-inline'${options.allowEval ? " 'unsafe-eval'" : ""}`,
      "style-src 'self' 'unsafe-inline'",
      "img-src 'self' data: blob:",
      "font-src 'self' data:",
      "object-src 'none'",
      "base-uri 'self'",
      "form-action 'self'",
      framing,
    ].join("; ");
    this.answerPolicy = `default-src 'none'; ${framing}`;
    this.common = [
      ["X-Content-Type-Options", "nosniff"],
      ["Referrer-Policy", "strict-origin-when-cross-origin"],
      // Frame-ancestors lists origins; X-Frame-Options cannot, so it is left to the policy when origins are configured.
      ...(options.frameAncestors.length === 0 ? [["X-Frame-Options", "DENY"] as [string, string]] : []),
      ...(options.https ? [["Strict-Transport-Security", `max-age=${HSTS_MAX_AGE_SECONDS}`] as [string, string]] : []),
    ];
  }

  /** For every answer: API calls, reports, metrics, refusals. */
  answer(res: ServerResponse): void {
    for (const [name, value] of this.common) res.setHeader(name, value);
    res.setHeader("Content-Security-Policy", this.answerPolicy);
  }

  /** For the dashboard's pages, after `answer`; `ownOrigin`'s WebSocket twin may be connected to (older browsers' 'self' leaves ws: out). */
  document(res: ServerResponse, ownOrigin: string | undefined): void {
    res.setHeader(
      "Content-Security-Policy",
      `${this.documentPolicy}; connect-src 'self'${ownOrigin ? ` ${ownOrigin.replace(/^http/, "ws")}` : ""}`,
    );
  }
}
