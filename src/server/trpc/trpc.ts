import { getTRPCErrorShape, initTRPC, tracked, TRPCError, type TrackedEnvelope } from "@trpc/server";
import { z } from "zod";
import { DatabaseUnavailableError, isDatabaseUnavailable } from "../database-unavailable";
import { describeInputIssues, PulseError } from "../errors";
import {
  readEventPage,
  resolveCursor,
  tenantFeed,
  type EventPage,
  type FeedItem,
  type FeedQuery,
  type FeedStart,
  type IdentifiedItem,
  type LiveOutlet,
} from "../events/feed";
import { streamIdSchema, type PulseEvent } from "../events/schema";
import type { Session, ShareGrant } from "../auth/auth-service";
import type { PulseServices } from "../pulse";
import type { EventStreamGuard } from "../sse/event-stream-guard";
import type { ConnectionGuard } from "../ws/connection-guard";

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
  /**
   * A subscription's own line to its client, set by the transport for that one call (a
   * WebSocket subscription's `SubscriptionWire`): `trackedFeed` hands it the feed's live
   * events. Absent (tRPC's own handlers, server-sent events, in-process) the feed yields
   * every item.
   */
  outlet?: LiveOutlet | null;
  /** A server-sent-events subscription's stream, with its limits: it ends when its token expires or its session is revoked. */
  eventStream?: EventStreamGuard | null;
  /** How the call arrived; absent for in-process callers (tests, server components). */
  transport?: "http" | "ws" | "sse";
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
 * A refusal over a rate says when the call can pass, as `data.retryAfterSeconds` (null on
 * every other error), so a client waits that long on any transport, WebSocket included,
 * rather than reading it from the message.
 *
 * @see https://trpc.io/docs/server/error-formatting
 */
/** How often a quiet server-sent-event stream is pinged. */
const SSE_PING_MS = 10_000;

export const INTERNAL_ERROR_MESSAGE = "something went wrong on the server; it has been logged";

const t = initTRPC.context<Context>().create({
  // Never send stack traces, whatever NODE_ENV says: they are in the log.
  isDev: false,
  /**
   * Subscriptions as server-sent events (`httpSubscriptionLink`): a ping comment keeps
   * proxies from closing a quiet stream, and a client that hears nothing (not even a ping)
   * for twice the ping's interval reconnects, resuming by `lastEventId`.
   *
   * @see https://trpc.io/docs/server/subscriptions#configuring-sse
   */
  sse: {
    ping: { enabled: true, intervalMs: SSE_PING_MS },
    client: { reconnectAfterInactivityMs: SSE_PING_MS * 2 },
  },
  errorFormatter({ shape, error }) {
    const cause = error.cause;
    const zodError = cause instanceof z.ZodError ? cause : null;
    const retryAfterSeconds = cause instanceof PulseError ? (cause.retryAfterSeconds ?? null) : null;
    return {
      ...shape,
      message: zodError
        ? describeInputIssues(zodError.issues)
        : error.code === "INTERNAL_SERVER_ERROR"
          ? INTERNAL_ERROR_MESSAGE
          : shape.message,
      data: {
        ...shape.data,
        zodError: zodError ? z.flattenError(zodError) : null,
        retryAfterSeconds,
      },
    };
  },
});

export const createCallerFactory = t.createCallerFactory;
export const router = t.router;

/**
 * The body tRPC would send for `error`, made by the errorFormatter above: for refusals made
 * before tRPC reads a call (the HTTP edge's), so a client reads the same `error.data` (its
 * `code`, `retryAfterSeconds`, whatever the formatter adds) whoever refused it.
 */
export function errorShapeOf(error: TRPCError) {
  return getTRPCErrorShape({
    config: t._config,
    error,
    type: "unknown",
    path: undefined,
    input: undefined,
    ctx: undefined,
  });
}

/** The tRPC error of a domain error's code and message; it stays the cause, for the errorFormatter. */
export function trpcErrorOf(error: PulseError): TRPCError {
  return new TRPCError({ code: error.code, message: error.message, cause: error });
}

/**
 * 3. PROCEDURES
 */
const mapDomainErrors = t.middleware(async ({ ctx, next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof PulseError) {
    const { retryAfterSeconds } = result.error.cause;
    if (retryAfterSeconds !== undefined) await ctx.beforeRateRefusal?.(retryAfterSeconds);
    throw trpcErrorOf(result.error.cause);
  }
  // Clients retry a 503; the database coming back is a matter of seconds, not a bug.
  if (
    !result.ok &&
    (result.error.cause instanceof DatabaseUnavailableError || isDatabaseUnavailable(result.error.cause))
  ) {
    throw new TRPCError({
      code: "SERVICE_UNAVAILABLE",
      message: "the database is unavailable right now; try again shortly",
      cause: result.error.cause,
    });
  }
  return result;
});

/**
 * A connection or event stream refused (over its caps) or whose session ended answers every
 * call with why. Subscriptions are served over the WebSocket and as server-sent events,
 * whose guards end them when their token expires or their session is revoked; a plain
 * HTTP call has no such guard.
 */
const connectionGate = t.middleware(({ ctx, type, next }) => {
  ctx.connection?.assertUsable();
  ctx.eventStream?.assertUsable();
  if (type === "subscription" && ctx.transport === "http") {
    throw new TRPCError({
      code: "METHOD_NOT_SUPPORTED",
      message: "subscriptions are served over the WebSocket or as server-sent events (GET) at /api/trpc",
    });
  }
  return next();
});

export const publicProcedure = t.procedure.use(connectionGate).use(mapDomainErrors);

/** Requires a verified session; narrows `ctx.session` for the procedures below it. */
export const authedProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.session) throw new TRPCError({ code: "UNAUTHORIZED", message: "sign in first" });
  return next({ ctx: { ...ctx, session: ctx.session } });
});

/** Requires a session that may change things: a token minted read-only gets FORBIDDEN. */
export const writeProcedure = authedProcedure.use(({ ctx, next }) => {
  if (ctx.session.access !== "write")
    throw new TRPCError({
      code: "FORBIDDEN",
      message: 'this token may only read: mint one with access "write" to start, cancel or approve',
    });
  return next();
});

/** Requires a share-link token; narrows `ctx.share` to the one run it may watch. */
export const sharedRunProcedure = publicProcedure.use(({ ctx, next }) => {
  if (!ctx.share) throw new TRPCError({ code: "UNAUTHORIZED", message: "a valid share link token is required" });
  return next({ ctx: { ...ctx, share: ctx.share } });
});

/**
 * 4. SUBSCRIPTIONS
 *
 * A tenant feed as a tRPC subscription: each item `tracked` by its stream id, so wsLink and
 * httpSubscriptionLink resume after the last one received. The feed reaches its client
 * one of two ways, decided by `ctx` alone: through `ctx.outlet` when the transport gave the
 * call one (a WebSocket subscription's wire, which writes live events straight to the
 * socket), or item by item through the iterator (server-sent events, tRPC's own handlers,
 * in-process callers). It may be wrapped, delayed or composed: nothing depends on when it
 * is first read. Over WebSocket and SSE it runs under its connection's or stream's limits
 * and ends with UNAUTHORIZED when the token expires or the session is revoked.
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

/** Why a subscription's feed ended early, asked once it has: its WebSocket connection's or event stream's session ended. */
interface SessionEnd {
  assertUsable(): void;
}

/**
 * `trackedFeed`'s iterator: an object over the feed rather than an async generator, because
 * every idle subscriber would keep a generator layer's frame, request queue and promises,
 * and a dispose closure tRPC adds to iterators without `Symbol.asyncDispose`.
 *
 * @see https://trpc.io/docs/server/subscriptions
 */
class TrackedFeed<TEvent extends PulseEvent, TSnapshot>
  implements AsyncIterableIterator<TrackedItem<TEvent, TSnapshot>>, AsyncDisposable
{
  private readonly feed: AsyncGenerator<IdentifiedItem<TEvent, TSnapshot>>;
  private finished = false;
  private readonly sessionEnd: SessionEnd | null;

  constructor(ctx: Context, signal: AbortSignal | undefined, query: FeedQuery<TEvent, TSnapshot>) {
    this.sessionEnd = ctx.connection ?? ctx.eventStream ?? null;
    // Only one feed may take an outlet: a second feed of the same call yields its items.
    const outlet = ctx.outlet?.claim() ? ctx.outlet : undefined;
    const { services } = ctx;
    const deps =
      ctx.transport === "sse"
        ? { reader: services.reader, stream: services.stream, metrics: services.metrics, transport: "sse" as const }
        : services;
    // An outlet ends its feed itself when stopped (a listener on its signal would be one more
    // object every idle subscriber keeps); an event stream's signal aborts with its request or its session.
    const ending = outlet ? undefined : (ctx.eventStream?.signal ?? signal);
    // A generator's body runs at its first `next()`: creating it here reads nothing yet.
    this.feed = tenantFeed(deps, query, ending, outlet);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<TrackedItem<TEvent, TSnapshot>>> {
    if (this.finished) return Promise.resolve({ done: true, value: undefined });
    return this.feed.next().then(
      (result) => {
        if (!result.done) return { done: false, value: tracked(result.value.id, result.value.item) };
        this.finished = true;
        // The feed ended because the session did: the client is told why.
        this.sessionEnd?.assertUsable();
        return { done: true, value: undefined };
      },
      (error: unknown) => {
        this.finished = true;
        throw error;
      },
    );
  }

  async return(): Promise<IteratorResult<TrackedItem<TEvent, TSnapshot>>> {
    this.finished = true;
    await this.feed.return(undefined);
    return { done: true, value: undefined };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }
}

/** A filter's fields as parsed (`out`) or as sent (`in`); an empty filter has none (zod would say `Record<string, never>`). */
type FilterOf<TShape extends z.ZodRawShape, TWay extends "in" | "out"> = keyof TShape extends never
  ? object
  : TWay extends "in"
    ? z.input<z.ZodObject<TShape>>
    : z.output<z.ZodObject<TShape>>;

/**
 * 5. LIVE FEEDS
 *
 * A live feed's subscription and its polling twin, defined together from one filter, so
 * both read the same query from the same kind of cursor: the subscription's `lastEventId`
 * (which the links resend on reconnect) and the twin's `cursor`, with its page `limit`.
 * A router then writes `onX: procedure.input(feed.subscriptionInput).subscription(feed.subscribe)`
 * and `events: procedure.input(feed.pageInput).query(feed.page)`.
 */
export function liveFeed<
  TCtx extends Context,
  TShape extends z.ZodRawShape,
  TEvent extends PulseEvent,
  TSnapshot,
>(feed: {
  /** The fields that choose which of the tenant's events the feed carries (empty for all of one kind). */
  filter: TShape;
  /** The tenant whose stream the caller may read: from its session or share link, never from input. */
  tenantOf(ctx: TCtx): string;
  /** The query for a filter, starting where the cursor says; throws NOT_FOUND for what the tenant does not own. */
  query(
    ctx: TCtx,
    filter: FilterOf<TShape, "out">,
    start: FeedStart,
  ): FeedQuery<TEvent, TSnapshot> | Promise<FeedQuery<TEvent, TSnapshot>>;
}) {
  type Filter = FilterOf<TShape, "out">;
  type FilterIn = FilterOf<TShape, "in">;
  const filter = z.object(feed.filter);
  const open = async (ctx: TCtx, input: Filter, cursor: string | undefined, field: string) => {
    const tenantId = feed.tenantOf(ctx);
    return feed.query(ctx, input, await resolveCursor(ctx.services, tenantId, cursor, field));
  };
  // zod cannot follow a generic shape through `extend`: the two inputs are typed here, once.
  const subscriptionInput = filter
    .extend({ lastEventId: streamIdSchema.nullish() })
    .prefault({} as never) as unknown as z.ZodType<
    Filter & { lastEventId?: string | null },
    (FilterIn & { lastEventId?: string | null }) | undefined
  >;
  const pageInput = filter
    .extend({ cursor: streamIdSchema.optional(), limit: z.number().int().min(1).max(500).default(200) })
    .prefault({} as never) as unknown as z.ZodType<
    Filter & { cursor?: string; limit: number },
    (FilterIn & { cursor?: string; limit?: number }) | undefined
  >;
  return {
    subscriptionInput,
    pageInput,
    /** Without `lastEventId`: a snapshot, then live events; with it, every later event once, in order, or a `resync` first. */
    async subscribe(opts: { ctx: TCtx; input: z.output<typeof subscriptionInput>; signal: AbortSignal | undefined }) {
      const { ctx, input, signal } = opts;
      return trackedFeed(ctx, signal, await open(ctx, input, input.lastEventId ?? undefined, "lastEventId"));
    },
    /** The same items with the same ids as `subscribe`, a page per call. */
    async page(opts: { ctx: TCtx; input: z.output<typeof pageInput> }): Promise<EventPage<TEvent, TSnapshot>> {
      const { ctx, input } = opts;
      return readEventPage(
        ctx.services.stream,
        await open(ctx, input, input.cursor, "cursor"),
        input.limit,
        ctx.services.metrics,
      );
    },
  };
}
