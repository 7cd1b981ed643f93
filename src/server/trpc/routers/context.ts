import { z } from "zod";
import type { Session } from "../../auth/auth-service";
import type { FeedQuery, FeedStart } from "../../events/feed";
import type { ContextEvent, PulseEvent } from "../../events/schema";
import { readContextSnapshot, type ContextSnapshot } from "../../events/snapshot";
import type { PulseServices } from "../../pulse";
import { authedProcedure, liveFeed, router, writeProcedure, type Context } from "../trpc";

/** The context events of a tenant, and its context file's state. */
export class ContextFeedQuery implements FeedQuery<ContextEvent, ContextSnapshot> {
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

/** The tenant's context events; a cursor of another tenant is NOT_FOUND, like one that never existed. */
const statusFeed = liveFeed({
  filter: {},
  tenantOf: (ctx: Context & { session: Session }) => ctx.session.tenantId,
  query: (ctx, _filter, start) => new ContextFeedQuery(ctx.services, ctx.session.tenantId, start),
});

export const contextRouter = router({
  /** Live status of the tenant's context file; same snapshot / resume / resync rules as `agent.onStatus`. */
  onStatusChanged: authedProcedure.input(statusFeed.subscriptionInput).subscription(statusFeed.subscribe),

  /** The polling twin of `onStatusChanged`. */
  events: authedProcedure.input(statusFeed.pageInput).query(statusFeed.page),

  get: authedProcedure.query(({ ctx }) => ctx.services.context.get(ctx.session.tenantId)),

  /** Approves the version the user read; CONFLICT when it is no longer the current, completed one. */
  approve: writeProcedure
    .input(z.object({ version: z.number().int().min(1).max(1_000_000) }))
    .mutation(({ ctx, input }) =>
      ctx.services.context.approve(ctx.session.tenantId, ctx.session.userId, input.version),
    ),
});
