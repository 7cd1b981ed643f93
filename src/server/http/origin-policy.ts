/**
 * Which web pages may open Pulse's WebSocket or send it cookie-authenticated calls: the
 * configured origins, or, when none are configured, the request's own origin (scheme, host
 * and port all alike: `http://pulse.example.com` is not `https://pulse.example.com`).
 * Requests without an `Origin` header do not come from a browser page (browsers always
 * send one on WebSocket upgrades and cross-site POSTs) and need their token anyway.
 *
 * @see https://owasp.org/www-community/attacks/Cross-Site_WebSocket_Hijacking
 */
export class OriginPolicy {
  private readonly allowed: Set<string>;

  constructor(allowedOrigins: readonly string[]) {
    this.allowed = new Set(allowedOrigins.map((o) => normalize(o)).filter((o): o is string => o !== null));
  }

  /** The configured origins (normalized); empty when only the request's own origin is allowed. */
  get configured(): readonly string[] {
    return [...this.allowed];
  }

  /** `ownOrigin` is the origin the request itself was sent to (see `requestOrigin`). */
  allows(origin: string | undefined, ownOrigin: string | undefined): boolean {
    if (origin === undefined) return true;
    const normalized = normalize(origin);
    if (normalized === null) return false;
    if (this.allowed.size > 0) return this.allowed.has(normalized);
    return ownOrigin !== undefined && normalized === ownOrigin;
  }
}

/** `scheme://host[:port]` in lower case, or null for anything that is not an http(s) origin (e.g. "null"). */
function normalize(origin: string): string | null {
  try {
    const url = new URL(origin);
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    return url.origin.toLowerCase();
  } catch {
    return null;
  }
}
