import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";

export interface RequestOriginOptions {
  /** Behind a proxy: its X-Forwarded-Proto and X-Forwarded-Host name the origin the browser used. */
  trustProxy: boolean;
  /** Served over HTTPS (COOKIE_SECURE): the public scheme is https even where TLS ends before Pulse. */
  https: boolean;
}

/**
 * The origin (`scheme://host[:port]`, lower case) a browser used to reach this request, for
 * comparing with its `Origin` header; undefined without a Host header. Behind a trusted
 * proxy the first X-Forwarded-Proto/-Host entry is the one the browser's hop saw. A page
 * cannot forge these headers on a cross-site request without a preflight, so they are safe
 * to trust for this comparison when TRUST_PROXY says a proxy writes them.
 */
export function requestOrigin(req: IncomingMessage, options: RequestOriginOptions): string | undefined {
  const forwardedProto = options.trustProxy ? firstEntry(req.headers["x-forwarded-proto"]) : undefined;
  const forwardedHost = options.trustProxy ? firstEntry(req.headers["x-forwarded-host"]) : undefined;
  const encrypted = (req.socket as Partial<TLSSocket>).encrypted === true;
  const scheme = forwardedProto ?? (encrypted || options.https ? "https" : "http");
  const host = forwardedHost ?? req.headers.host;
  if (!host || (scheme !== "http" && scheme !== "https")) return undefined;
  try {
    return new URL(`${scheme}://${host}`).origin.toLowerCase();
  } catch {
    return undefined;
  }
}

function firstEntry(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const first = value?.split(",")[0]?.trim().toLowerCase();
  return first || undefined;
}
