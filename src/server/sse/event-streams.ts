import type http from "node:http";
import { TRPCError } from "@trpc/server";
import type { TRPCRequestInfo } from "@trpc/server/http";
import type { Principal } from "../auth/auth-service";
import type { TokenKind } from "../auth/token-signer";
import type { RevocationChannel } from "../auth/revocation-channel";
import { HttpCallGate } from "../http/http-call-gate";
import type { Logger } from "../logger";
import type { PulseServices } from "../pulse";
import { keepNoCookie, principalContext } from "../trpc/principal-context";
import type { Context } from "../trpc/trpc";
import { ConnectionRegistry, type ConnectionCaps } from "../ws/connection-registry";
import { EventStreamGuard, type EventStreamLimits } from "./event-stream-guard";

export interface EventStreamsOptions {
  services: PulseServices;
  /** Verifies a token of the given kinds; a database outage is the caller's to turn into a retryable error. */
  authenticate(token: string | undefined, kinds: readonly Exclude<TokenKind, "report">[]): Promise<Principal | null>;
  revocations?: Pick<RevocationChannel, "listen">;
  caps: ConnectionCaps;
  limits: EventStreamLimits;
  checkIntervalMs: number;
  logger: Logger;
}

/**
 * The server-sent-events tier: tRPC's HTTP handler serves a subscription (GET, `text/event-stream`,
 * `httpSubscriptionLink`'s protocol) with the context made here, which carries the
 * subscription's `EventStreamGuard`. Each stream counts against its own caps (per address,
 * user, tenant, share link, process), ends when its token does (the client subscribes again
 * with a fresh one and resumes by `lastEventId`), and ends at once when a revocation names
 * its session, user or share link, as WebSocket connections do.
 *
 * The token comes from `connectionParams.token` (a socket, session or share token: the link
 * sends them in the URL, as EventSource cannot set headers), an `Authorization: Bearer`
 * header (clients whose EventSource can), or the session cookie of the dashboard's own origin.
 *
 * @see https://trpc.io/docs/client/links/httpSubscriptionLink
 * @see https://trpc.io/docs/server/subscriptions#server-sent-events
 */
export class EventStreams {
  readonly registry: ConnectionRegistry<EventStreamGuard>;

  constructor(private readonly options: EventStreamsOptions) {
    this.registry = new ConnectionRegistry<EventStreamGuard>({
      auth: options.services.auth,
      revocations: options.revocations,
      caps: options.caps,
      checkIntervalMs: options.checkIntervalMs,
      logger: options.logger,
      metrics: options.services.metrics,
      transport: "sse",
    });
  }

  start(): void {
    this.registry.start();
  }

  stop(): void {
    this.registry.stop();
  }

  /** Open event streams of this process. */
  get size(): number {
    return this.registry.size;
  }

  /**
   * The context of one subscription request: its guard, admitted under the caps (or refused:
   * the procedure then answers TOO_MANY_REQUESTS as a `serialized-error` event, which the
   * client can read, rather than an HTTP error EventSource cannot).
   */
  async context(req: http.IncomingMessage, info: TRPCRequestInfo, ip: string): Promise<Context> {
    const { services, logger } = this.options;
    const principal = await this.principal(req, info);
    const stream = new EventStreamGuard(
      ip,
      this.options.limits,
      info.signal,
      (guard) => this.registry.closed(guard),
      logger,
    );
    const over = this.registry.refusalFor(ip);
    if (over) {
      services.metrics.eventStreamRefused(over);
      stream.refuseCalls(
        new TRPCError({
          code: "TOO_MANY_REQUESTS",
          message:
            over === "per_ip"
              ? `at most ${this.options.caps.perIp} event streams per address`
              : "this server holds all the event streams it can; retry shortly",
        }),
      );
    } else {
      this.registry.open(stream);
      if (!principal) services.metrics.eventStreamRefused("unauthenticated");
      const refusal = principal ? this.registry.admit(stream, principal) : null;
      if (refusal) stream.refuseCalls(refusal);
    }
    return principalContext(services, stream.admitted ? principal : null, {
      eventStream: stream,
      transport: "sse",
      clientIp: ip,
      setSessionCookie: keepNoCookie,
    });
  }

  /** Who the stream speaks for: `connectionParams.token`, else a bearer header, else the session cookie. */
  private async principal(req: http.IncomingMessage, info: TRPCRequestInfo): Promise<Principal | null> {
    const param = info.connectionParams?.token;
    if (param !== undefined) return this.options.authenticate(param, ["session", "socket", "share"]);
    const credential = HttpCallGate.credential(req);
    if ("malformed" in credential)
      throw new TRPCError({ code: "UNAUTHORIZED", message: "authorization: expected Bearer <token>" });
    return this.options.authenticate(
      credential.token,
      credential.from === "header" ? ["session", "share"] : ["session"],
    );
  }
}
