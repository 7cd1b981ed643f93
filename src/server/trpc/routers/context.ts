import { z } from "zod";
import { readEventPage, resolveCursor, type FeedQuery, type FeedStart } from "../../events/feed";
import { streamIdSchema, type ContextEvent, type PulseEvent } from "../../events/schema";
import { readContextSnapshot, type ContextSnapshot } from "../../events/snapshot";
import type { PulseServices } from "../../pulse";
import { authedProcedure, router, trackedFeed, writeProcedure } from "../trpc";

/** The context events of a tenant, and its context file's state. */
class ContextFeedQuery implements FeedQuery<ContextEvent, ContextSnapshot> {
  constructor(
    private readonly services: PulseServices,
    readonly tenantId: string,
    readonly start: FeedStart,
  ) {}

  accept(event: PulseEvent): event is ContextEvent {
    return event.type === "context:status_changed";
  }

  snapshot(): Promise<ContextSnapshot> {
    return readContextSnapshot(this.services.db, this.tenantId);
  }
}

/** The query from a client's cursor; a cursor of another tenant is NOT_FOUND, like one that never existed. */
async function contextFeedQuery(
  services: PulseServices,
  tenantId: string,
  cursor: { value: string | undefined; field: string },
): Promise<ContextFeedQuery> {
  return new ContextFeedQuery(services, tenantId, await resolveCursor(services, tenantId, cursor.value, cursor.field));
}

export const contextRouter = router({
  /** Live status of the tenant's context file; same snapshot / resume / resync rules as `agent.onStatus`. */
  onStatusChanged: authedProcedure
    .input(z.object({ lastEventId: streamIdSchema.nullish() }).default({}))
    .subscription(async ({ ctx, input, signal }) => {
      const query = await contextFeedQuery(ctx.services, ctx.session.tenantId, { value: input.lastEventId ?? undefined, field: "lastEventId" });
      return trackedFeed(ctx, signal, query);
    }),

  /** The polling twin of `onStatusChanged`. */
  events: authedProcedure
    .input(z.object({ cursor: streamIdSchema.optional(), limit: z.number().int().min(1).max(500).default(200) }).default({ limit: 200 }))
    .query(async ({ ctx, input }) =>
      readEventPage(ctx.services.stream, await contextFeedQuery(ctx.services, ctx.session.tenantId, { value: input.cursor, field: "cursor" }), input.limit, ctx.services.metrics),
    ),

  get: authedProcedure.query(({ ctx }) => ctx.services.context.get(ctx.session.tenantId)),

  /** Approves the version the user read; CONFLICT when it is no longer the current, completed one. */
  approve: writeProcedure
    .input(z.object({ version: z.number().int().min(1).max(1_000_000) }))
    .mutation(({ ctx, input }) => ctx.services.context.approve(ctx.session.tenantId, ctx.session.userId, input.version)),
});
