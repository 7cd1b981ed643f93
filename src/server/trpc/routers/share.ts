import { z } from "zod";
import { agentTitle } from "../../agents/define-agent";
import { idSchema } from "../../events/schema";
import { OUTPUT_WINDOW_CHARS } from "../../events/snapshot";
import type { ShareGrant } from "../../auth/auth-service";
import { authedProcedure, liveFeed, router, sharedRunProcedure, writeProcedure, type Context } from "../trpc";
import { AgentFeedQuery, logPageInput, outputPageInput } from "./agent";

/**
 * The shared run's events only, its snapshot that run and nothing else of the tenant; a
 * cursor of another tenant is NOT_FOUND.
 */
const sharedRunFeed = liveFeed({
  filter: {},
  tenantOf: (ctx: Context & { share: ShareGrant }) => ctx.share.tenantId,
  async query(ctx, _filter, start) {
    // A resumed viewer replays events from Redis; only a snapshot or resync is a view.
    if (start.from !== "after") spendView(ctx, ctx.share);
    return new AgentFeedQuery(ctx.services, ctx.share.tenantId, start, { runId: ctx.share.runId });
  },
});

/**
 * Spends one of the link's views (see `ShareLinkService.spendView`) on what is about to
 * read and send the run with its output window: TOO_MANY_REQUESTS once its viewers spent them.
 */
function spendView(ctx: Pick<Context, "services">, share: ShareGrant): void {
  const retryAfter = ctx.services.shares.spendView(share.shareId);
  if (retryAfter > 0) throw ctx.services.shares.tooManyViews(retryAfter);
}

/**
 * Read-only share links. A signed-in user creates (and revokes) a link to one run of their
 * tenant; whoever holds its token (as `connectionParams.token` on the WebSocket, or
 * `Authorization: Bearer` over HTTP) may watch that run live through `run`, `onRun` and
 * `events`, and read its `logs`, and nothing else: every other procedure answers UNAUTHORIZED.
 */
export const shareRouter = router({
  /**
   * A link to watch one run, valid for `expiresInMinutes` (at most SHARE_LINK_MAX_HOURS), as
   * its token and its `path` (`/share#<token>`). NOT_FOUND for another tenant's run.
   */
  create: writeProcedure
    .input(
      z.object({
        runId: idSchema,
        expiresInMinutes: z
          .number()
          .int()
          .min(1)
          .max(60 * 24 * 365)
          .default(60),
      }),
    )
    .mutation(({ ctx, input }) => ctx.services.shares.create(ctx.session, input.runId, input.expiresInMinutes * 60)),

  /** The run's links that still work, newest first, with who made each and when each expires. */
  list: authedProcedure
    .input(z.object({ runId: idSchema }))
    .query(({ ctx, input }) => ctx.services.shares.list(ctx.session, input.runId)),

  /** Ends a link now; its viewers' subscriptions end within seconds. */
  revoke: writeProcedure
    .input(z.object({ shareId: idSchema.max(64) }))
    .mutation(({ ctx, input }) => ctx.services.shares.revoke(ctx.session, input.shareId)),

  /** The shared run as it is now, with its steps, the newest of its output, and what dashboards call its agent. */
  run: sharedRunProcedure.query(async ({ ctx }) => {
    spendView(ctx, ctx.share);
    const run = await ctx.services.runs.get(ctx.share.tenantId, ctx.share.runId);
    return { ...run, title: agentTitle(ctx.services.agents, run.agentRole) };
  }),

  /** The shared run live: a snapshot, then its events; resumes after `lastEventId` like `agent.onStatus`. */
  onRun: sharedRunProcedure.input(sharedRunFeed.subscriptionInput).subscription(sharedRunFeed.subscribe),

  /** The shared run's logs from the database, oldest first, a page at a time (as `agent.logs`). */
  logs: sharedRunProcedure
    .input(z.object(logPageInput).default({ limit: 200 }))
    .query(({ ctx, input }) => ctx.services.runs.logs(ctx.share.tenantId, ctx.share.runId, input.cursor, input.limit)),

  /** The shared run's earlier output, a page at a time (as `agent.output`). */
  output: sharedRunProcedure
    .input(outputPageInput({}).default({ limit: OUTPUT_WINDOW_CHARS }))
    .query(async ({ ctx, input }) => {
      spendView(ctx, ctx.share);
      return ctx.services.runs.output(ctx.share.tenantId, ctx.share.runId, input);
    }),

  /** The polling twin of `onRun`. */
  events: sharedRunProcedure.input(sharedRunFeed.pageInput).query(sharedRunFeed.page),
});
