import { z } from "zod";
import { chainTitle } from "../../agents/chains";
import { readRunHistory, runHistoryInput } from "../../agents/run-history";
import { roleInputFields, type RoleInputField } from "../../agents/role-input";
import { runListInput } from "../../agents/run-search";
import type { StartedRun } from "../../agents/run-service";
import { startNamedChain } from "../../agents/tenant-setup";
import { notFound, PulseError } from "../../errors";
import type { FeedQuery, FeedStart } from "../../events/feed";
import { agentRoleSchema, idSchema, isAgentEvent, type AgentEvent, type PulseEvent } from "../../events/schema";
import { OUTPUT_WINDOW_CHARS, readLatestChain, type AgentSnapshot } from "../../events/snapshot";
import type { Session } from "../../auth/auth-service";
import type { PulseServices } from "../../pulse";
import { text } from "../../validation";
import { authedProcedure, liveFeed, router, writeProcedure, type Context } from "../trpc";

const runId = idSchema;

/** A page of a run's log lines: after `cursor` (the last line's id), at most `limit`. Shared with `share.logs`. */
export const logPageInput = { cursor: idSchema.optional(), limit: z.number().int().min(1).max(500).default(200) };

/** An offset into a run's output, in characters: within what a double counts exactly. */
const outputOffset = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * A page of a run's output: the characters before `before` (default: the end) or from
 * `after` on, at most `limit`. Shared with `share.output`.
 */
const outputPageFields = {
  before: outputOffset.optional(),
  after: outputOffset.optional(),
  limit: z.number().int().min(1).max(OUTPUT_WINDOW_CHARS).default(OUTPUT_WINDOW_CHARS),
};

/** `outputPageFields` and what else names the run, refusing a page asked both ways. */
export const outputPageInput = <Shape extends z.ZodRawShape>(shape: Shape) =>
  z
    .object({ ...shape, ...outputPageFields })
    .refine((page) => !("before" in page && "after" in page && page.before !== undefined && page.after !== undefined), {
      message: "give before or after, not both",
      path: ["after"],
    });

/** What an agent run is started with: a few named values, each bounded. */
const runInput = z
  .record(text({ min: 1, max: 64 }), z.union([text({ max: 2000 }), z.number().min(-1e15).max(1e15), z.boolean()]))
  .refine((value) => Object.keys(value).length <= 32, { message: "at most 32 fields" });

/** The answer to starting a run: the run, and its report token kept apart from the run's view. */
function started({ reportToken, ...run }: StartedRun) {
  return { runId: run.id, status: run.status, run, reportToken };
}

const feedFilter = {
  runId: runId.optional(),
  agentRole: agentRoleSchema.optional(),
};

type FeedFilter = z.infer<z.ZodObject<typeof feedFilter>>;

/** How far apart the API processes' clocks and Redis's (stream ids are its time) may be. */
const CLOCK_MARGIN_MS = 5 * 60_000;

/** Where a replay of one run's events may begin: none is older than the run's being queued. */
export function runReplayFloor(queuedAt: Date): string {
  return `${Math.max(0, queuedAt.getTime() - CLOCK_MARGIN_MS)}-0`;
}

/** The agent events a subscriber asked for (a role, one run, or all), and the snapshot that goes with them. */
export class AgentFeedQuery implements FeedQuery<AgentEvent, AgentSnapshot> {
  constructor(
    private readonly services: PulseServices,
    readonly tenantId: string,
    readonly start: FeedStart,
    private readonly filter: { runId?: string; agentRole?: FeedFilter["agentRole"] },
    /** When the run was queued, if the caller has already read it; otherwise read when a replay needs it. */
    private readonly runQueuedAt?: Date,
  ) {}

  /** One run's feed replays from when the run was queued (see `runReplayFloor`). */
  async replayFloor(): Promise<string | null> {
    const { services, tenantId, filter } = this;
    if (!filter.runId) return null;
    const queuedAt =
      this.runQueuedAt ??
      (await services.db.agentRun.findFirst({ where: { id: filter.runId, tenantId }, select: { queuedAt: true } }))
        ?.queuedAt;
    return queuedAt ? runReplayFloor(queuedAt) : null;
  }

  accept(event: PulseEvent): event is AgentEvent {
    const { runId, agentRole } = this.filter;
    return isAgentEvent(event) && (!runId || event.runId === runId) && (!agentRole || event.agentRole === agentRole);
  }

  async snapshot(): Promise<AgentSnapshot> {
    const { services, tenantId, filter } = this;
    return filter.runId
      ? ((await services.runs.snapshot(tenantId, filter.runId)) ?? { runs: [] })
      : services.runs.tenantSnapshot(tenantId, filter.agentRole ? { agentRole: filter.agentRole } : {});
  }
}

/**
 * The tenant's agent events (a role, one run, or all). A runId of another tenant is
 * NOT_FOUND, exactly like one that does not exist.
 */
const statusFeed = liveFeed({
  filter: feedFilter,
  tenantOf: (ctx: Context & { session: Session }) => ctx.session.tenantId,
  async query(ctx, filter, start) {
    const tenantId = ctx.session.tenantId;
    // One run's feed: the run must be the tenant's, and when it was queued bounds its replay.
    const run = filter.runId
      ? await ctx.services.db.agentRun.findFirst({ where: { id: filter.runId, tenantId }, select: { queuedAt: true } })
      : undefined;
    if (run === null) throw notFound("run");
    return new AgentFeedQuery(ctx.services, tenantId, start, filter, run?.queuedAt);
  },
});

/** A role as dashboards list it. */
interface RoleInfo {
  role: string;
  title: string;
  /** Run by an agent outside Pulse (EXTERNAL_AGENT_ROLES), which reports over HTTP. */
  external?: boolean;
  /** Part of the setup chain, which the chain card shows. */
  inChain?: boolean;
  /** The text fields a run can be given (`agent.run`'s `input`), from the role's input schema; none for an outside agent's. */
  input: RoleInputField[];
}

export const agentRouter = router({
  /**
   * Live agent events of the caller's tenant. Without `lastEventId`: a snapshot, then live
   * events. With it (wsLink resends it on reconnect): every later event once, in order, or
   * a `resync` snapshot first when the id is older than the stream keeps.
   *
   * @see https://trpc.io/docs/server/subscriptions#tracked
   */
  onStatus: authedProcedure.input(statusFeed.subscriptionInput).subscription(statusFeed.subscribe),

  /** The polling twin of `onStatus`: the same items with the same ids, a page per call. */
  events: authedProcedure.input(statusFeed.pageInput).query(statusFeed.page),

  /**
   * The tenant's runs, newest first, a page at a time: filtered by status, role, origin and
   * when they were queued, and searched (`q`: the start of a run id, a role's name or title,
   * or words of the last message or error). `nextCursor` asks for the next page; runs that
   * arrive meanwhile never shift it.
   */
  list: authedProcedure
    .input(runListInput.default({ limit: 20 }))
    .query(({ ctx, input }) => ctx.services.runs.list(ctx.session.tenantId, { ...input, q: input.q || undefined })),

  get: authedProcedure
    .input(z.object({ runId }))
    .query(({ ctx, input }) => ctx.services.runs.get(ctx.session.tenantId, input.runId)),

  /** Earlier output than a view's window holds, a page at a time (`outputStart` of the view is the first `before`). */
  output: authedProcedure
    .input(outputPageInput({ runId }))
    .query(({ ctx, input: { runId, ...page } }) => ctx.services.runs.output(ctx.session.tenantId, runId, page)),

  logs: authedProcedure
    .input(z.object({ runId, ...logPageInput }))
    .query(({ ctx, input }) => ctx.services.runs.logs(ctx.session.tenantId, input.runId, input.cursor, input.limit)),

  /** Every run of the tenant's newest chain, oldest first; empty when it never ran one. */
  latestChain: authedProcedure.query(({ ctx }) => readLatestChain(ctx.services.db, ctx.session.tenantId)),

  /** Median duration per role of the tenant's recent completed runs (ms), for time-left estimates. */
  durations: authedProcedure.query(({ ctx }) => ctx.services.runs.typicalDurations(ctx.session.tenantId)),

  /**
   * Per role, the tenant's runs of the last `days` days (14 by default): runs per day of the
   * viewer's (`utcOffsetMinutes`), completed of those finished, median queued → completed.
   */
  history: authedProcedure
    .input(runHistoryInput.default({ days: 14, utcOffsetMinutes: 0 }))
    .query(({ ctx, input }) => readRunHistory(ctx.services.db, ctx.session.tenantId, input)),

  /** The agent roles this deployment can run: Pulse's own (marked when in the setup chain), then those run outside it. */
  roles: authedProcedure.query(({ ctx }): RoleInfo[] => {
    const setupRoles: readonly string[] = ctx.services.runs.setupChain()?.roles ?? [];
    return [
      ...ctx.services.agents.map((a) => ({
        role: a.role,
        title: a.title ?? a.role,
        inChain: setupRoles.includes(a.role),
        input: roleInputFields(a.input),
      })),
      ...ctx.services.externalAgentRoles.map((role) => ({
        role,
        title: ctx.services.externalAgentTitles[role] ?? role,
        external: true,
        inChain: setupRoles.includes(role),
        input: [],
      })),
    ];
  }),

  /**
   * Starts one agent; answers at once with the queued run and its `reportToken`, which an
   * external agent uses to report the run over HTTP (`POST /api/runs/:runId/events`).
   * CONFLICT if the role is already queued or running.
   */
  run: writeProcedure
    .input(z.object({ agentRole: agentRoleSchema, input: runInput.optional() }))
    .mutation(async ({ ctx, input }) =>
      started(await ctx.services.runs.start(ctx.session.tenantId, input.agentRole, { input: input.input ?? {} })),
    ),

  /** The deployment's named chains, each with its roles in order; `setup` marks the one new tenants start with. */
  chains: authedProcedure.query(({ ctx }) =>
    ctx.services.runs.chains().map((chain) => ({
      name: chain.name,
      title: chainTitle(chain),
      roles: [...chain.roles],
      setup: chain.name === ctx.services.runs.setupChainName,
    })),
  ),

  /**
   * Starts a named chain (default: the setup chain new tenants start with) with the given input
   * or the one the chain makes for the tenant. NOT_FOUND for a chain the deployment lacks.
   */
  runChain: writeProcedure
    .input(z.object({ chain: agentRoleSchema.optional(), input: runInput.optional() }).optional())
    .mutation(async ({ ctx, input }) => {
      const name = input?.chain ?? ctx.services.runs.setupChainName;
      if (!name)
        throw new PulseError("BAD_REQUEST", "chain: this deployment has no setup chain; name the chain to run");
      const { chainId, run } = await startNamedChain(ctx.services, ctx.session.tenantId, name, input?.input);
      return { chainId, ...started(run) };
    }),

  cancel: writeProcedure
    .input(z.object({ runId }))
    .mutation(({ ctx, input }) => ctx.services.runs.cancel(ctx.session.tenantId, input.runId)),

  /** A failed or cancelled run's role started again with its input, and the rest of its chain after it. */
  retry: writeProcedure
    .input(z.object({ runId }))
    .mutation(async ({ ctx, input }) => started(await ctx.services.runs.retry(ctx.session.tenantId, input.runId))),

  /** A finished run's role started again with its input, on its own. CONFLICT while the run is still going. */
  runAgain: writeProcedure
    .input(z.object({ runId }))
    .mutation(async ({ ctx, input }) => started(await ctx.services.runs.runAgain(ctx.session.tenantId, input.runId))),
});
