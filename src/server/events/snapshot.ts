import type { PrismaClient } from "../../generated/prisma/client";
import { Prisma, type AgentRun, type ContextFile, type RunStep } from "../../generated/prisma/client";
import type { SqlClient } from "../sql";
import type { LiveProgress, TenantEventStream } from "./event-stream";
import type { OutputWindows } from "./output-windows";
import { TEXT_LIMITS, type ContextStatus, type RunPhase, type RunStatus } from "./schema";

/**
 * The state a client starts from (snapshot) or replaces its own with (resync), read from
 * the database. Dates travel as ISO strings, the same as in events. Each view carries the
 * `seq` of the last event it reflects, so the client drops live events it already holds.
 */

export interface StepView {
  id: string;
  name: string;
  status: "started" | "completed" | "failed";
  attempt: number;
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
}

export interface RunView {
  id: string;
  tenantId: string;
  agentRole: string;
  queue: string;
  jobId: string;
  chainId: string | null;
  /** The named chain the run belongs to; null on its own, or for chain runs from before names were kept. */
  chainName: string | null;
  status: RunStatus;
  phase: RunPhase | null;
  progress: number;
  message: string | null;
  error: string | null;
  attempt: number;
  willRetry: boolean;
  nextAgent: string | null;
  seq: number;
  queuedAt: string;
  startedAt: string | null;
  completedAt: string | null;
  failedAt: string | null;
  cancelledAt: string | null;
  updatedAt: string;
  steps: StepView[];
  /**
   * The newest of the attempt's streamed output (at most `OUTPUT_WINDOW_CHARS`); present when
   * the view is about one run. Earlier output is read a page at a time (`readOutputPage`).
   */
  output?: string;
  /** Where `output` starts among every character the attempt output; 0 when it holds all of it. */
  outputStart?: number;
  /** How many of the attempt's first characters the run no longer keeps (see `projectRunActivity`). */
  outputDropped?: number;
}

/** Characters [start, end) of everything a run's attempt output, and how many at the front are no longer kept. */
export interface OutputPage {
  text: string;
  start: number;
  end: number;
  dropped: number;
}

/** Output a view of one run carries: the newest 64 Ki characters, whatever the run holds. */
export const OUTPUT_WINDOW_CHARS = 65_536;

export interface ContextView {
  status: ContextStatus;
  version: number;
  seq: number;
  content: string | null;
  approvedAt: string | null;
  approvedBy: string | null;
  updatedAt: string;
}

export interface AgentSnapshot {
  runs: RunView[];
}

export interface ContextSnapshot {
  context: ContextView | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toStepView(step: RunStep): StepView {
  return {
    id: step.id,
    name: step.name,
    status: step.status,
    attempt: step.attempt,
    startedAt: step.startedAt.toISOString(),
    finishedAt: iso(step.finishedAt),
    error: step.error,
  };
}

/** A run as views show it; its output is kept apart (`RunOutputChunk`) and read a bounded page at a time (`output`). */
export function toRunView(run: AgentRun & { steps?: RunStep[] }, output?: OutputPage): RunView {
  return {
    id: run.id,
    tenantId: run.tenantId,
    agentRole: run.agentRole,
    queue: run.queue,
    jobId: run.jobId,
    chainId: run.chainId,
    chainName: run.chainName,
    status: run.status,
    phase: run.phase,
    progress: run.progress,
    message: run.message,
    error: run.error,
    attempt: run.attempt,
    willRetry: run.willRetry,
    nextAgent: run.nextAgent,
    seq: run.seq,
    queuedAt: run.queuedAt.toISOString(),
    startedAt: iso(run.startedAt),
    completedAt: iso(run.completedAt),
    failedAt: iso(run.failedAt),
    cancelledAt: iso(run.cancelledAt),
    updatedAt: run.updatedAt.toISOString(),
    steps: (run.steps ?? []).map(toStepView),
    ...(output ? { output: output.text, outputStart: output.start, outputDropped: output.dropped } : {}),
  };
}

export function toContextView(file: ContextFile & { approvedBy?: { email: string | null } | null }): ContextView {
  return {
    status: file.status,
    version: file.version,
    seq: file.seq,
    content: file.content,
    approvedAt: iso(file.approvedAt),
    approvedBy: file.approvedBy?.email ?? null,
    updatedAt: file.updatedAt.toISOString(),
  };
}

/** Where snapshots come from: the database, and Redis for the progress it has not written yet. */
export interface SnapshotSource {
  db: PrismaClient;
  /** The same database, for the statements every subscriber's snapshot makes (see `readAgentSnapshot`). */
  sql: SqlClient;
  stream: TenantEventStream;
  /** Windows already read, reused while a run's output has not changed. */
  windows?: OutputWindows<OutputPage>;
}

const stepsInOrder = { steps: { orderBy: { startedAt: "asc" as const } } };

/** Queued and active runs a snapshot carries at most, newest first. */
const SNAPSHOT_LIVE_RUNS = 100;

/**
 * The ids of the runs a snapshot carries: each role's newest, and the newest queued or active
 * ones. The tenant's roles are found one at a time down the (tenantId, agentRole, …) indexes
 * (a loose index scan: PostgreSQL has no skip scan), then each role's newest run and its live
 * ones, so a tenant with a long history costs its roles and live runs, not its runs. (Prisma's
 * `distinct` read every run of the tenant and kept the first of each role in memory.)
 */
export function snapshotRunIds(tenantId: string, agentRole: string | null): Prisma.Sql {
  const ofRole = Prisma.sql`(${agentRole}::text IS NULL OR "agentRole" = ${agentRole}::text)`;
  return Prisma.sql`
    WITH RECURSIVE roles AS (
      (SELECT "agentRole" AS role FROM "AgentRun" WHERE "tenantId" = ${tenantId} AND ${ofRole} ORDER BY "agentRole" LIMIT 1)
      UNION ALL
      SELECT (SELECT "agentRole" FROM "AgentRun" WHERE "tenantId" = ${tenantId} AND "agentRole" > roles.role AND ${ofRole}
        ORDER BY "agentRole" LIMIT 1)
      FROM roles WHERE roles.role IS NOT NULL
    )
    SELECT newest.id FROM roles CROSS JOIN LATERAL (
      SELECT id FROM "AgentRun" WHERE "tenantId" = ${tenantId} AND "agentRole" = roles.role ORDER BY "queuedAt" DESC LIMIT 1
    ) AS newest
    UNION
    (SELECT live.id FROM roles CROSS JOIN LATERAL (
      SELECT id, "queuedAt" FROM "AgentRun"
      WHERE "tenantId" = ${tenantId} AND "agentRole" = roles.role AND "status" IN ('queued', 'active')
      ORDER BY "queuedAt" DESC LIMIT ${SNAPSHOT_LIVE_RUNS}
    ) AS live ORDER BY live."queuedAt" DESC LIMIT ${SNAPSHOT_LIVE_RUNS})`;
}

/** A timestamp column as `Date.prototype.toISOString` writes it: Prisma keeps UTC, to the millisecond, without a zone. */
const isoText = (column: string) => `to_char(${column}, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * The `RunView` (steps included, output left out) of each run `ids` selects, as one JSON
 * array, newest first: what `toRunView` makes of the rows Prisma reads, built by the
 * database in the statement that finds the runs.
 */
function runViewsJson(tenantId: string, ids: Prisma.Sql): Prisma.Sql {
  const step = `json_build_object('id', s."id", 'name', s."name", 'status', s."status", 'attempt', s."attempt",
    'startedAt', ${isoText('s."startedAt"')}, 'finishedAt', ${isoText('s."finishedAt"')}, 'error', s."error")`;
  const view = `json_build_object('id', r."id", 'tenantId', r."tenantId", 'agentRole', r."agentRole", 'queue', r."queue",
    'jobId', r."jobId", 'chainId', r."chainId", 'chainName', r."chainName", 'status', r."status", 'phase', r."phase",
    'progress', r."progress", 'message', r."message", 'error', r."error", 'attempt', r."attempt",
    'willRetry', r."willRetry", 'nextAgent', r."nextAgent", 'seq', r."seq",
    'queuedAt', ${isoText('r."queuedAt"')}, 'startedAt', ${isoText('r."startedAt"')},
    'completedAt', ${isoText('r."completedAt"')}, 'failedAt', ${isoText('r."failedAt"')},
    'cancelledAt', ${isoText('r."cancelledAt"')}, 'updatedAt', ${isoText('r."updatedAt"')},
    'steps', coalesce((SELECT json_agg(${step} ORDER BY s."startedAt") FROM "RunStep" AS s WHERE s."runId" = r."id"), '[]'::json))`;
  return Prisma.sql`
    WITH ids AS (${ids})
    SELECT coalesce(json_agg(${Prisma.raw(view)} ORDER BY r."queuedAt" DESC), '[]'::json)::text AS "runs"
    FROM "AgentRun" AS r WHERE r."tenantId" = ${tenantId} AND r."id" IN (SELECT "id" FROM ids)`;
}

/**
 * What a dashboard needs first: every queued or active run (the newest 100), and the latest
 * run of each role, optionally narrowed to one role. One statement, sent as the event path's
 * are (`SqlClient`): every dashboard that opens or resyncs reads one, so a deploy's wave of
 * reconnects reads thousands, and Prisma's client spent more CPU on the three reads it took
 * (ids, runs, steps) than the database did.
 */
export async function readAgentSnapshot(
  { sql, stream }: SnapshotSource,
  tenantId: string,
  filter: { agentRole?: string } = {},
): Promise<AgentSnapshot> {
  // Redis before the database: see `withLiveProgress`.
  const progress = await stream.readLiveProgress(tenantId);
  // An aggregate: one row, an empty array when the tenant has no runs.
  const [row] = await sql.query<{ runs: string }>(
    runViewsJson(tenantId, snapshotRunIds(tenantId, filter.agentRole ?? null)),
  );
  return { runs: withLiveProgress(JSON.parse(row!.runs) as RunView[], progress) };
}

/**
 * Every run of the tenant's newest chain, whatever ran since: the chain card is drawn from
 * these, not from the latest run of each role nor a window of recent runs, either of which a
 * run started by hand pushes the chain's runs out of. Newest is the chain that started last
 * (its first run's queuedAt), not the one with the newest run: of two chains running at
 * once, the older queues its next role after the newer started, and the card would flip.
 */
export async function readLatestChain(db: PrismaClient, tenantId: string): Promise<RunView[]> {
  const startOf = async (chainId: string) =>
    (await db.agentRun.findFirst({
      where: { tenantId, chainId },
      orderBy: { queuedAt: "asc" },
      select: { queuedAt: true },
    }))!.queuedAt;
  const last = await db.agentRun.findFirst({
    where: { tenantId, chainId: { not: null } },
    orderBy: { queuedAt: "desc" },
    select: { chainId: true },
  });
  if (!last?.chainId) return [];
  // A chain that started after the one with the newest run started has had every run of its
  // own since then: the candidates are the few chains with a run since, not the whole history.
  const candidates = await db.agentRun.findMany({
    where: { tenantId, chainId: { not: null }, queuedAt: { gte: await startOf(last.chainId) } },
    distinct: ["chainId"],
    select: { chainId: true },
  });
  const started = await Promise.all(
    candidates.map(async ({ chainId }) => ({ chainId: chainId!, at: await startOf(chainId!) })),
  );
  const newest = started.reduce((a, b) => (b.at > a.at ? b : a));
  const runs = await db.agentRun.findMany({
    where: { tenantId, chainId: newest.chainId },
    orderBy: { queuedAt: "asc" },
    include: stepsInOrder,
  });
  return runs.map((run) => toRunView(run));
}

/**
 * One run, with the newest `OUTPUT_WINDOW_CHARS` of its output; null when it does not exist
 * for this tenant.
 */
export async function readRunSnapshot(
  { db, stream, windows }: SnapshotSource,
  tenantId: string,
  runId: string,
): Promise<AgentSnapshot | null> {
  // Redis before the database: see `withLiveProgress`.
  const progress = await stream.readLiveProgress(tenantId, [runId]);
  const run = await db.agentRun.findFirst({
    where: { id: runId, tenantId },
    include: stepsInOrder,
  });
  if (!run) return null;
  // The window ends where the output stood when the row was read, so it holds exactly the
  // chunks the row's `seq` counts, whatever was appended since.
  const output =
    windows?.get(run) ??
    (await readOutputPage(db, tenantId, runId, {
      before: run.outputLength,
      limit: OUTPUT_WINDOW_CHARS,
      attempt: run.attempt,
    }));
  if (output) windows?.remember(run, output);
  return { runs: withLiveProgress([toRunView(run, output ?? emptyPage(run.outputLength))], progress) };
}

const emptyPage = (at: number): OutputPage => ({ text: "", start: at, end: at, dropped: at });

/**
 * At most `limit` characters of a run's output: those just before `before` (default: the
 * end), or from `after` on. Offsets count every character the attempt output, dropped ones
 * included, so they stay valid as the output grows. Null when the run is not the tenant's, or
 * no longer on `attempt`.
 */
export async function readOutputPage(
  db: PrismaClient,
  tenantId: string,
  runId: string,
  page: { before?: number; after?: number; limit: number; attempt?: number },
): Promise<OutputPage | null> {
  // Offsets are of the attempt's whole output; the first chunk kept says where the kept part
  // starts. Only the chunks the window overlaps are read: none starts more than a chunk's
  // longest length before the window.
  const before = page.before ?? null;
  const after = page.after ?? null;
  const rows = await db.$queryRaw<{ text: string; start: number; end: number; dropped: number }[]>(Prisma.sql`
    WITH r AS (
      SELECT "outputLength" AS "length", "attempt" FROM "AgentRun"
      WHERE "id" = ${runId} AND "tenantId" = ${tenantId} AND (${page.attempt ?? null}::int IS NULL OR "attempt" = ${page.attempt ?? null}::int)
    ),
    k AS (
      SELECT r.*, coalesce((SELECT min(c."start") FROM "RunOutputChunk" AS c WHERE c."runId" = ${runId} AND c."attempt" = r."attempt"), r."length") AS "dropped"
      FROM r
    ),
    b AS (SELECT k.*, greatest(k."dropped", least(coalesce(${before}::float8, k."length"), k."length")) AS "end" FROM k),
    a AS (
      SELECT b.*, CASE WHEN ${after}::float8 IS NULL THEN greatest(b."dropped", b."end" - ${page.limit}::int)
        ELSE least(b."length", greatest(b."dropped", ${after}::float8)) END AS "start"
      FROM b
    ),
    w AS (
      SELECT a."attempt", a."dropped", a."start",
        CASE WHEN ${after}::float8 IS NULL THEN a."end" ELSE least(a."length", a."start" + ${page.limit}::int) END AS "end"
      FROM a
    )
    SELECT coalesce((
        SELECT string_agg(
          substring(c."text" FROM (greatest(w."start", c."start") - c."start" + 1)::int
            FOR (least(w."end", c."start" + char_length(c."text")) - greatest(w."start", c."start"))::int),
          '' ORDER BY c."start")
        FROM "RunOutputChunk" AS c
        WHERE c."runId" = ${runId} AND c."attempt" = w."attempt"
          AND c."start" > w."start" - ${TEXT_LIMITS.outputChunk}::int AND c."start" < w."end"
          AND c."start" + char_length(c."text") > w."start"
      ), '') AS "text", w."start", w."end", w."dropped"
    FROM w`);
  const row = rows[0];
  return row ? { text: row.text, start: Number(row.start), end: Number(row.end), dropped: Number(row.dropped) } : null;
}

export async function readContextSnapshot(db: PrismaClient, tenantId: string): Promise<ContextSnapshot> {
  const file = await db.contextFile.findUnique({
    where: { tenantId },
    include: { approvedBy: { select: { email: true } } },
  });
  return { context: file ? toContextView(file) : null };
}

/**
 * Lays running runs' latest progress, as Redis holds it, over runs read from the database,
 * which gets progress a moment later (see `ProgressProjector`): a page opened mid-run shows
 * the progress the agent reported last, not the one before.
 *
 * Redis must be read first. A run that ends clears its progress from Redis only once its end,
 * with the progress it reached, is in the database; so a run that ends between the two reads
 * is found ended, with that progress. Read the other way round, it would be found running
 * with the database's older progress and nothing left in Redis to lay over it, and a client
 * that then applies its end from the stream would keep that older message for good.
 */
function withLiveProgress(runs: RunView[], live: Map<string, LiveProgress>): RunView[] {
  if (live.size === 0) return runs;
  return runs.map((run) => {
    const latest = live.get(run.id);
    if (!latest || run.status !== "active" || latest.attempt !== run.attempt) return run;
    return { ...run, progress: Math.round(latest.progress), phase: latest.phase, message: latest.message };
  });
}
