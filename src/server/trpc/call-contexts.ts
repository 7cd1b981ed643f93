import type http from "node:http";
import { TRPCError } from "@trpc/server";
import type { TRPCRequestInfo } from "@trpc/server/http";
import { SESSION_COOKIE } from "../auth/session-cookie";
import { clientAddress } from "../http/client-address";
import { whileDatabaseReturns } from "../database-unavailable";
import { HttpCallGate } from "../http/http-call-gate";
import { holdRateRefusal } from "../http/rate-refusal";
import { rateLimited } from "../errors";
import type { PulseServices } from "../pulse";
import type { EventStreams } from "../sse/event-streams";
import type { ConnectionGuard } from "../ws/connection-guard";
import type { ConnectionRegistry } from "../ws/connection-registry";
import { asRetryable, keepNoCookie, principalContext } from "./principal-context";
import { trpcErrorOf, type Context } from "./trpc";

/** How long a socket's token check waits for an unreachable or saturated database before the socket is refused as unavailable. */
const SOCKET_AUTH_DATABASE_WAIT_MS = 15_000;

export interface CallContextsOptions {
  services: PulseServices;
  /** Charges each tenant's HTTP calls against its rate. */
  gate: HttpCallGate;
  /** Admits and guards subscriptions served as server-sent events. */
  eventStreams: EventStreams;
  /** Admits WebSocket connections under their caps. */
  registry: ConnectionRegistry;
  /** Whether `X-Forwarded-For` names the client (behind a trusted proxy). */
  trustProxy: boolean;
  /** Mark the session cookie Secure (behind HTTPS). */
  secureCookies: boolean;
}

/**
 * The contexts of tRPC calls, one method per transport: a call over HTTP (cookie or bearer
 * token, charged against its tenant's rate), a subscription as server-sent events (made by
 * `EventStreams`), and a WebSocket connection (token in `connectionParams`, admitted under
 * the registry's caps). Each builds its context with `principalContext`.
 *
 * @see https://trpc.io/docs/server/context
 */
export class CallContexts {
  constructor(private readonly options: CallContextsOptions) {}

  /** tRPC's HTTP handler's `createContext`: a query, a mutation, or a subscription as server-sent events. */
  async http(req: http.IncomingMessage, res: http.ServerResponse, info: TRPCRequestInfo): Promise<Context> {
    const { services, gate, trustProxy } = this.options;
    const clientIp = clientAddress(req, trustProxy);
    if (info.type === "subscription") return this.options.eventStreams.context(req, info, clientIp);
    const credential = HttpCallGate.credential(req);
    if ("malformed" in credential) {
      throw new TRPCError({ code: "UNAUTHORIZED", message: "authorization: expected Bearer <token>" });
    }
    // A bearer token may be a session or a share link; the cookie only ever holds a session.
    const principal = await services.auth
      .authenticate(credential.token, credential.from === "header" ? ["session", "share"] : ["session"])
      .catch(asRetryable);
    const tenantId = principal?.kind === "user" ? principal.session.tenantId : principal?.share.tenantId;
    const paths = info.calls.map((call) => call.path);
    const retryAfter = tenantId === undefined ? 0 : gate.chargeTenant(tenantId, HttpCallGate.cost(paths));
    if (retryAfter > 0) {
      await holdRateRefusal(res, retryAfter);
      // Thrown from createContext, where no middleware maps domain errors.
      throw trpcErrorOf(
        rateLimited(
          `at most ${gate.perTenantPerSecond} calls per second per tenant; retry in ${retryAfter} s`,
          retryAfter,
        ),
      );
    }
    return principalContext(services, principal, {
      transport: "http",
      clientIp,
      setSessionCookie: (value, maxAge = 0) => res.appendHeader("Set-Cookie", this.cookieHeader(value, maxAge)),
      beforeRateRefusal: (seconds) => holdRateRefusal(res, seconds),
    });
  }

  /** The WebSocket handler's `createContext`, once per connection: admits its principal under the caps, or refuses it. */
  async socket(guard: ConnectionGuard, connectionParams: TRPCRequestInfo["connectionParams"]): Promise<Context> {
    const token = connectionParams?.token;
    // The token travels in connectionParams (the first frame), never in the URL. A database
    // busy with a burst of connections (or briefly away) is waited for, a while, rather than
    // the socket closed for its client to come back at once and add to the burst.
    const principal = await guard.whileCheckingToken(() =>
      whileDatabaseReturns(
        () => this.options.services.auth.authenticate(token, ["session", "socket", "share"]),
        SOCKET_AUTH_DATABASE_WAIT_MS,
      ).catch(asRetryable),
    );
    if (!principal)
      guard.debug({ tokenSent: token !== undefined }, "websocket without a valid token in connectionParams");
    if (principal) {
      const refusal = this.options.registry.admit(guard, principal);
      if (refusal) guard.refuseCalls(refusal);
    }
    return principalContext(this.options.services, guard.isRefused ? null : principal, {
      connection: guard,
      transport: "ws",
      clientIp: guard.ip,
      setSessionCookie: keepNoCookie,
    });
  }

  private cookieHeader(token: string | null, maxAge: number): string {
    return [
      `${SESSION_COOKIE}=${token ? encodeURIComponent(token) : ""}`,
      "Path=/",
      "HttpOnly",
      "SameSite=Lax",
      `Max-Age=${token ? maxAge : 0}`,
      ...(this.options.secureCookies ? ["Secure"] : []),
    ].join("; ");
  }
}
