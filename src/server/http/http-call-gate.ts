import type { IncomingMessage } from "node:http";
import { SESSION_COOKIE } from "../auth/session-cookie";
import { KeyedRateLimit } from "./keyed-rate-limit";
import type { OriginPolicy } from "./origin-policy";
import { requestOrigin, type RequestOriginOptions } from "./request-origin";
import type { HttpCallLimits } from "./server-security";

/**
 * Procedures that answer with one run's view and the newest of its output (up to 64 Ki
 * characters): each costs a database read of the run's output and a large answer, so it
 * spends `RUN_VIEW_COST` calls of the address's and the tenant's budget.
 */
const RUN_VIEWS = new Set(["agent.get", "agent.output", "share.run", "share.output"]);
export const RUN_VIEW_COST = 4;

/** Why a tRPC request over HTTP is refused before tRPC reads it, as the HTTP answer says it. */
export interface CallRefusal {
  status: number;
  code: "BAD_REQUEST" | "FORBIDDEN" | "UNSUPPORTED_MEDIA_TYPE" | "TOO_MANY_REQUESTS";
  message: string;
  /** Seconds, for a `Retry-After` header. */
  retryAfter?: number;
}

/**
 * Where a call's credential comes from: the `Authorization` header alone when there is one
 * (a malformed one authenticates nothing), else the session cookie.
 */
export type CallCredential =
  | { from: "header"; token: string }
  | { from: "header"; malformed: true }
  | { from: "cookie"; token: string | undefined };

export interface HttpCallGateOptions {
  origins: OriginPolicy;
  origin: RequestOriginOptions;
  limits: HttpCallLimits;
}

/**
 * The edge of tRPC over HTTP: how many calls one request may batch, how fast one address
 * and one tenant may call, and which requests a session cookie may authenticate. A cookie
 * rides along on requests other sites' pages make, so it counts only on requests without an
 * `Authorization` header, from an allowed origin, and (for mutations) with a JSON body,
 * which no form can send and no page can send cross-site without a CORS preflight that
 * Pulse never grants.
 *
 * @see https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html
 */
export class HttpCallGate {
  private readonly perIp: KeyedRateLimit;
  private readonly perTenant: KeyedRateLimit;

  constructor(private readonly options: HttpCallGateOptions) {
    this.perIp = new KeyedRateLimit(options.limits.perIpPerSecond);
    this.perTenant = new KeyedRateLimit(options.limits.perTenantPerSecond);
  }

  /** The procedures a request calls: tRPC batches them as `a,b,c` with `?batch=1`. */
  static procedures(url: string | undefined): string[] {
    const parsed = new URL(url ?? "/", "http://localhost");
    const path = parsed.pathname.slice(parsed.pathname.lastIndexOf("/") + 1);
    if (parsed.searchParams.get("batch") !== "1") return [path];
    try {
      return decodeURIComponent(path).split(",");
    } catch {
      return [path];
    }
  }

  /** What calling `procedures` costs of a budget: a view of one run (with its output window) costs `RUN_VIEW_COST`. */
  static cost(procedures: readonly string[]): number {
    return procedures.reduce((cost, procedure) => cost + (RUN_VIEWS.has(procedure) ? RUN_VIEW_COST : 1), 0);
  }

  static credential(req: IncomingMessage): CallCredential {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const token = header.match(/^Bearer\s+(\S+)$/i)?.[1];
      return token ? { from: "header", token } : { from: "header", malformed: true };
    }
    return { from: "cookie", token: readCookie(req.headers.cookie, SESSION_COOKIE) };
  }

  /** Checks what the headers alone decide, cheapest first; the address's budget is spent last, on requests that pass the rest. */
  refusal(req: IncomingMessage, ip: string): CallRefusal | null {
    const procedures = HttpCallGate.procedures(req.url);
    const calls = procedures.length;
    const { maxBatch, perIpPerSecond } = this.options.limits;
    if (calls > maxBatch) {
      return {
        status: 400,
        code: "BAD_REQUEST",
        message: `batch: at most ${maxBatch} calls per request (got ${calls})`,
      };
    }
    if (req.method === "POST" && !/^application\/json\s*(;|$)/i.test(req.headers["content-type"] ?? "")) {
      return {
        status: 415,
        code: "UNSUPPORTED_MEDIA_TYPE",
        message: "content-type: calls over POST must be application/json",
      };
    }
    if (this.cookieFromForeignPage(req)) {
      return {
        status: 403,
        code: "FORBIDDEN",
        message: "origin not allowed: a session cookie counts only on calls from the dashboard's own origin",
      };
    }
    const retryAfter = this.perIp.take(ip, HttpCallGate.cost(procedures));
    if (retryAfter > 0) {
      return {
        status: 429,
        code: "TOO_MANY_REQUESTS",
        message: `at most ${perIpPerSecond} calls per second per address; retry in ${retryAfter} s`,
        retryAfter,
      };
    }
    return null;
  }

  /** Spends a tenant's budget: 0 when there was enough, else the seconds to wait (nothing spent). */
  chargeTenant(tenantId: string, calls: number): number {
    return this.perTenant.take(tenantId, calls);
  }

  get perTenantPerSecond(): number {
    return this.perTenant.perSecond;
  }

  private cookieFromForeignPage(req: IncomingMessage): boolean {
    const credential = HttpCallGate.credential(req);
    if (credential.from !== "cookie" || credential.token === undefined) return false;
    return !this.options.origins.allows(req.headers.origin, requestOrigin(req, this.options.origin));
  }
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key !== name) continue;
    try {
      return decodeURIComponent(rest.join("="));
    } catch {
      return undefined;
    }
  }
  return undefined;
}
