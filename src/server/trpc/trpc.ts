import { initTRPC, tracked, TRPCError, type TrackedEnvelope } from "@trpc/server";
import { z } from "zod";
import { DatabaseUnavailableError, isDatabaseUnavailable } from "../database-unavailable";
import { describeInputIssues, PulseError } from "../errors";
import { tenantFeed, type FeedItem, type FeedQuery, type IdentifiedItem } from "../events/feed";
import type { PulseEvent } from "../events/schema";
import type { Session, ShareGrant } from "../auth/auth-service";
import type { PulseServices } from "../pulse";
import type { ConnectionGuard } from "../ws/connection-guard";
import type { SubscriptionWire } from "../ws/subscription-wire";

/**
 * 1. CONTEXT
 *
 * One context shape serves HTTP and WebSocket calls. The session comes only from a
 * verified token (cookie or bearer header over HTTP, `connectionParams` over WebSocket),
 * and it is the only source of the tenant id.
 */
export interface Context {
  services: PulseServices;
  session: Session | null;
  /** Sets or clears the session cookie; a no-op on WebSocket calls. */
  setSessionCookie: (token: string | null, maxAgeSeconds?: number) => void;
  /** A share-link viewer: may watch one run through `share.*`, nothing else. */
  share?: ShareGrant | null;
  /** The WebSocket connection a call arrived on, with its limits; absent over HTTP and in-process. */
  connection?: ConnectionGuard | null;
  /** How the call arrived; absent for in-process callers (tests, server components). */
  transport?: "http" | "ws";
  /** The caller's address, for per-address limits. */
  clientIp?: string;
  /**
   * Before a TOO_MANY_REQUESTS: says when to come back (`Retry-After`) and holds the answer
   * as the HTTP edge holds every rate refusal (see `RATE_REFUSAL_HOLD_MS`); absent elsewhere.
   */
  beforeRateRefusal?: (retryAfterSeconds: number) => Promise<void>;
}

/**
 * 2. INITIALIZATION
 *
 * Input errors keep zod's issues so clients can point at the field, and their message
 * names each field in plain words; domain errors thrown by services become the tRPC error
 * of the same code. An unexpected failure's own message (a database driver's, with a file
 * path or a query in it) stays in the server's log: the client is told only that it failed.
 *
 * @see https://trpc.io/docs/server/error-formatting
 */
export const INTERNAL_ERROR_MESSAGE = "something went wrong on the server; it has been logged";

const t = initTRPC.context<Context>().create({
  // Never send stack traces, whatever NODE_ENV says: they are in the log.
  isDev: false,
  errorFormatter({ shape, error }) {
    const cause = error.cause;
    const zodError = cause instanceof z.ZodError ? cause : null;
    return {
      ...shape,
      message: zodError ? describeInputIssues(zodError.issues) : error.code === "INTERNAL_SERVER_ERROR" ? INTERNAL_ERROR_MESSAGE : shape.message,
      data: {
        ...shape.data,
        zodError: zodError ? z.flattenError(zodError) : null,
      },
    };
  },
});

export const createCallerFactory = t.createCallerFactory;
export const router = t.router;

/**
 * 3. PROCEDURES
 */
const mapDomainErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof PulseError) {
    const { code, message } = result.error.cause;
    throw new TRPCError({ code, message, cause: result.error.cause });
  }
  // Clients retry a 503; the database coming back is a matter of seconds, not a bug.
  if (!result.ok && (result.error.cause instanceof DatabaseUnavailableError || isDatabaseUnavailable(result.error.cause))) {
    throw new TRPCError({ code: "SERVICE_UNAVAILABLE", message: "the database is unavailable right now; try again shortly", cause: result.error.cause });
  }
  return result;
});

/**
 * A connection refused (over its caps) or whose session ended answers every call with why.
 * Subscriptions are served over the WebSocket only: it alone can end a stream when its
 * token expires or its session is revoked.
 */
const connectionGate = t.middleware(({ ctx, type, next }) => {
  ctx.connection?.assertUsable();
  if (type === "subscription" && ctx.transport === "http") {
    throw new TRPCError({ code: "METHOD_NOT_SUPPORTED", message: "subscriptions are served over the WebSocket at /api/trpc" });
  }
  return next();
});

export const publicProcedure = t.procedure.use(connectionGate).use(mapDomainErrors);

/** Requires a verified session; narrows `ctx.session` for the procedures below it. */
export const authedProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.session) throw new TRPCError({ code: "UNAUTHORIZED", message: "sign in first" });
  return next({ ctx: { ...ctx, session: ctx.session } });
});

/** Requires a share-link token; narrows `ctx.share` to the one run it may watch. */
export const sharedRunProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.share) throw new TRPCError({ code: "UNAUTHORIZED", message: "a valid share link token is required" });
  return next({ ctx: { ...ctx, share: ctx.share } });
});

/**
 * 4. SUBSCRIPTIONS
 *
 * A tenant feed as a tRPC subscription: each item `tracked` by its stream id, so wsLink
 * resumes after the last one it received. Over WebSocket it runs under its connection's
 * limits (a cap per connection, ended with UNAUTHORIZED when the token expires or the
 * session is revoked), its live events written straight to the socket once it is live
 * (`RpcConnection`); in-process callers (tests, server components) get the feed as it is.
 *
 * @see https://trpc.io/docs/server/subscriptions#tracked
 */
export function trackedFeed<TEvent extends PulseEvent, TSnapshot>(
  ctx: Context,
  signal: AbortSignal | undefined,
  query: FeedQuery<TEvent, TSnapshot>,
): AsyncIterableIterator<TrackedEnvelope<FeedItem<TEvent, TSnapshot>>> {
  return new TrackedFeed(ctx, signal, query);
}

type TrackedItem<TEvent extends PulseEvent, TSnapshot> = TrackedEnvelope<FeedItem<TEvent, TSnapshot>>;

/**
 * `trackedFeed`'s iterator: an object over the feed rather than an async generator, because
 * every idle subscriber would keep a generator layer's frame, request queue and promises,
 * and a dispose closure tRPC adds to iterators without `Symbol.asyncDispose`.
 *
 * @see https://trpc.io/docs/server/subscriptions
 */
class TrackedFeed<TEvent extends PulseEvent, TSnapshot> implements AsyncIterableIterator<TrackedItem<TEvent, TSnapshot>>, AsyncDisposable {
  private feed?: AsyncGenerator<IdentifiedItem<TEvent, TSnapshot>>;
  private wire?: SubscriptionWire;
  private finished = false;
  // Of the call's context, only what the feed needs: the context object stays the call's.
  private readonly services: PulseServices;
  private readonly connection: ConnectionGuard | null;

  constructor(
    ctx: Context,
    private readonly signal: AbortSignal | undefined,
    private readonly query: FeedQuery<TEvent, TSnapshot>,
  ) {
    this.services = ctx.services;
    this.connection = ctx.connection ?? null;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<TrackedItem<TEvent, TSnapshot>>> {
    if (this.finished) return Promise.resolve({ done: true, value: undefined });
    try {
      // Opened in the connection's first request for an item, where `takeOpeningWire` hands it this subscription's wire.
      this.feed ??= this.open();
    } catch (error) {
      this.finished = true;
      return Promise.reject(error);
    }
    return this.feed.next().then(
      (result) => {
        if (!result.done) return { done: false, value: tracked(result.value.id, result.value.item) };
        this.finish();
        // The feed ended because the connection's session did: the client is told why.
        this.connection?.assertUsable();
        return { done: true, value: undefined };
      },
      (error: unknown) => {
        this.finish();
        throw error;
      },
    );
  }

  async return(): Promise<IteratorResult<TrackedItem<TEvent, TSnapshot>>> {
    try {
      await this.feed?.return(undefined);
    } finally {
      this.finish();
    }
    return { done: true, value: undefined };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }

  private open(): AsyncGenerator<IdentifiedItem<TEvent, TSnapshot>> {
    this.wire = this.connection?.takeOpeningWire();
    // A wire ends its feed itself when stopped; a listener on its signal would cost each idle subscriber about 1 KiB more.
    return tenantFeed(this.services, this.query, this.wire ? undefined : this.signal, this.wire);
  }

  private finish(): void {
    this.finished = true;
    if (this.wire) this.connection?.unsubscribe(this.wire);
  }
}
