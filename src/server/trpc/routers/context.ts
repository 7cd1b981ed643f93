import { tracked } from "@trpc/server";
import { z } from "zod";
import { readEventPage, tenantFeed, type FeedQuery } from "../../events/feed";
import { streamIdSchema, type ContextEvent, type PulseEvent } from "../../events/schema";
import { readContextSnapshot, type ContextSnapshot } from "../../events/snapshot";
import type { PulseServices } from "../../pulse";
import { authedProcedure, router } from "../trpc";

function contextFeedQuery(services: PulseServices, tenantId: string, cursor: string | undefined): FeedQuery<ContextEvent, ContextSnapshot> {
  return {
    tenantId,
    cursor,
    accept: (event: PulseEvent): event is ContextEvent => event.type === "context:status_changed",
    snapshot: () => readContextSnapshot(services.db, tenantId),
  };
}

export const contextRouter = router({
  /** Live status of the tenant's context file; same snapshot / resume / resync rules as `agent.onStatus`. */
  onStatusChanged: authedProcedure
    .input(z.object({ lastEventId: streamIdSchema.nullish() }).default({}))
    .subscription(async function* ({ ctx, input, signal }) {
      const query = contextFeedQuery(ctx.services, ctx.session.tenantId, input.lastEventId ?? undefined);
      for await (const { id, item } of tenantFeed(ctx.services, query, signal)) yield tracked(id, item);
    }),

  /** The polling twin of `onStatusChanged`. */
  events: authedProcedure
    .input(z.object({ cursor: streamIdSchema.optional(), limit: z.number().int().min(1).max(500).default(200) }).default({ limit: 200 }))
    .query(({ ctx, input }) =>
      readEventPage(ctx.services.stream, contextFeedQuery(ctx.services, ctx.session.tenantId, input.cursor), input.limit),
    ),

  get: authedProcedure.query(({ ctx }) => ctx.services.context.get(ctx.session.tenantId)),

  /** Approves the version the user read; CONFLICT when it is no longer the current, completed one. */
  approve: authedProcedure
    .input(z.object({ version: z.number().int().min(1).max(1_000_000) }))
    .mutation(({ ctx, input }) => ctx.services.context.approve(ctx.session.tenantId, ctx.session.userId, input.version)),
});
