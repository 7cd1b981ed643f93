import type { IncomingMessage } from "node:http";

/**
 * The address a request came from, for per-address limits. Behind a proxy that appends to
 * `X-Forwarded-For` (and only then: the header is the client's to forge otherwise), the
 * last entry is the address the proxy saw.
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const header = req.headers["x-forwarded-for"];
    const value = Array.isArray(header) ? header.at(-1) : header;
    const last = value?.split(",").at(-1)?.trim();
    if (last && last.length <= 64) return unmapped(last);
  }
  return unmapped(req.socket.remoteAddress ?? "unknown");
}

/** `::ffff:127.0.0.1` and `127.0.0.1` are one address. */
function unmapped(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}
