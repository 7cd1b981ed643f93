import { randomUUID } from "node:crypto";
import type { PrismaClient } from "../../generated/prisma/client";
import { Prisma } from "../../generated/prisma/client";
import type { SqlClient } from "../sql";
import type { LiveProgress } from "./event-stream";
import type { CountedEventInput, ProgressInput } from "./schema";

/** What a running attempt reports about its work: steps, log lines, output. Written in batches (`projectRunActivity`). */
export type RunActivityInput = Extract<CountedEventInput, { type: "agent:step" | "agent:log" | "agent:output" }>;

/** Counted events that change a run's or context file's state, one statement each. */
export type StateEventInput = Exclude<CountedEventInput, RunActivityInput>;

export function isRunActivity(event: CountedEventInput): event is RunActivityInput {
  return event.type === "agent:step" || event.type === "agent:log" || event.type === "agent:output";
}

/** The end of an attempt: it keeps the progress the attempt reached (see `apply`). */
export type RunEndInput = Extract<CountedEventInput, { type: "agent:completed" | "agent:failed" | "agent:cancelled" }>;

export function isRunEnd(event: CountedEventInput): event is RunEndInput {
  return event.type === "agent:completed" || event.type === "agent:failed" || event.type === "agent:cancelled";
}

/**
 * Writes the progress an ended attempt reached, as its end would have had it read Redis
 * later: a completed run keeps only the message (its progress is 100), the others progress,
 * phase and message. Only while the run is still on that attempt and not running again.
 */
export async function projectReachedProgress(
  db: PrismaClient,
  event: RunEndInput,
  reached: LiveProgress,
): Promise<void> {
  const data =
    event.type === "agent:completed"
      ? { message: reached.message }
      : { progress: Math.round(reached.progress), phase: reached.phase, message: reached.message };
  await db.agentRun.updateMany({
    where: { id: event.runId, tenantId: event.tenantId, attempt: event.attempt, status: { not: "active" } },
    data,
  });
}

/**
 * Applies an event to the database, the ground truth that snapshots are read from, and
 * returns the change counter (`seq`) it produced. Returns null when the event no longer
 * applies: a second failure report for an attempt already failed, a cancel for a finished
 * run. Such events are not delivered, so a stale worker can never move a run backwards.
 */
export async function projectEvent(
  db: PrismaClient,
  event: StateEventInput,
  key: string,
  latestProgress?: LiveProgress,
): Promise<number | null> {
  try {
    return await apply(db, event, key, latestProgress);
  } catch (error) {
    if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === "P2025") return null;
    throw error;
  }
}

async function apply(
  db: PrismaClient,
  event: StateEventInput,
  key: string,
  latestProgress?: LiveProgress,
): Promise<number | null> {
  const bump = { seq: { increment: 1 }, lastEventKey: key } as const;
  const select = { seq: true } as const;
  if (event.type === "context:status_changed") {
    const file = await db.contextFile.upsert({
      where: { tenantId: event.tenantId },
      create: {
        tenantId: event.tenantId,
        status: event.status,
        version: event.version ?? 0,
        seq: 1,
        lastEventKey: key,
      },
      update: { ...bump, status: event.status, ...(event.version === undefined ? {} : { version: event.version }) },
      select,
    });
    return file.seq;
  }
  const { where, data } = runChange(event, progressReached(event, latestProgress));
  const update = db.agentRun.update({ where, data: { ...bump, ...data }, select });
  // An attempt's start also removes the output of the attempt before: in one transaction, so
  // a start that does not apply (the update finds no row) removes nothing.
  const run =
    event.type === "agent:active"
      ? (await db.$transaction([db.runOutputChunk.deleteMany({ where: { runId: event.runId } }), update]))[1]
      : await update;
  return run.seq;
}

type RunStateEvent = Exclude<StateEventInput, { type: "context:status_changed" }>;
type RunChange = { where: Prisma.AgentRunWhereUniqueInput; data: Prisma.AgentRunUpdateInput };
type Reached = { progress?: number; phase?: LiveProgress["phase"]; message?: string | null };

/** A run that ends keeps the progress (and message) it reached, which only Redis may hold yet. */
function progressReached(event: RunStateEvent, latestProgress: LiveProgress | undefined): Reached {
  if (!latestProgress || latestProgress.attempt !== event.attempt) return {};
  return {
    progress: Math.round(latestProgress.progress),
    phase: latestProgress.phase,
    message: latestProgress.message,
  };
}

/** Progress, steps, output and logs belong to the attempt that is running right now. */
function runningAttempt(e: { runId: string; tenantId: string; attempt: number }) {
  return { id: e.runId, tenantId: e.tenantId, status: "active" as const, attempt: e.attempt };
}

/** Which row an event may change (so a stale one changes none) and what it writes. */
function runChange(event: RunStateEvent, reached: Reached): RunChange {
  switch (event.type) {
    case "agent:queued":
      return {
        where: { id: event.runId, tenantId: event.tenantId, status: "queued" },
        data: { queuedAt: new Date(event.queuedAt) },
      };
    case "agent:active":
      return {
        where: { id: event.runId, tenantId: event.tenantId, status: { in: ["queued", "active"] } },
        data: {
          status: "active",
          phase: "starting",
          attempt: event.attempt,
          progress: 0,
          message: null,
          // Output is the attempt's: a retry writes it afresh rather than after the failed one's
          // (its chunks go with the start, see `apply`).
          outputLength: 0,
          willRetry: false,
          startedAt: new Date(event.startedAt),
        },
      };
    case "agent:completed":
      return completedChange(event, reached);
    case "agent:failed":
      return failedChange(event, reached);
    case "agent:cancelled":
      return {
        where: { id: event.runId, tenantId: event.tenantId, status: { in: ["queued", "active"] } },
        data: { ...reached, status: "cancelled", willRetry: false, cancelledAt: new Date(event.cancelledAt) },
      };
  }
}

function completedChange(event: Extract<RunStateEvent, { type: "agent:completed" }>, reached: Reached): RunChange {
  return {
    where: runningAttempt(event),
    data: {
      // The last message clients saw stays the run's, as it would in the database had
      // the latest progress been written before the end.
      ...("message" in reached ? { message: reached.message } : {}),
      status: "completed",
      phase: "completing",
      progress: 100,
      completedAt: new Date(event.completedAt),
      nextAgent: event.nextAgent ?? null,
      error: null,
    },
  };
}

function failedChange(event: Extract<RunStateEvent, { type: "agent:failed" }>, reached: Reached): RunChange {
  return {
    // A final failure may also end a run waiting in the queue: one shown as retrying
    // whose retry will never come (BullMQ failed the job for stalling too often), or
    // one whose job the queue lost.
    where: event.willRetry
      ? runningAttempt(event)
      : { id: event.runId, tenantId: event.tenantId, attempt: event.attempt, status: { in: ["active", "queued"] } },
    data: {
      ...reached,
      // A failed attempt that will be retried waits in the queue again.
      status: event.willRetry ? "queued" : "failed",
      willRetry: event.willRetry,
      error: event.error,
      failedAt: new Date(event.failedAt),
    },
  };
}

/**
 * Timestamps as Prisma stores them: `timestamp(3)` holding UTC, whatever the session's time
 * zone. The projections below that are written in SQL use it.
 */
const UTC_NOW = Prisma.sql`(now() AT TIME ZONE 'UTC')`;

/**
 * Locks the rows a statement writing many runs will change, in id order, before it changes
 * them. Two such statements (a batch of steps and logs, a progress flush, from this process
 * or another) then wait for each other instead of deadlocking. Goes at the end of a SELECT
 * from "AgentRun" AS r.
 */
const LOCK_IN_ID_ORDER = Prisma.sql`ORDER BY r."id" FOR UPDATE OF r`;

/** How much of an attempt's output a run keeps, unless configured (`RUN_OUTPUT_MAX_CHARS`). */
export const DEFAULT_RUN_OUTPUT_MAX_CHARS = 1_048_576;

/** A run activity event and the key of the publish it belongs to. */
export interface KeyedRunActivity {
  event: RunActivityInput;
  key: string;
}

/**
 * Applies running attempts' steps, log lines and output chunks, at most one event per run,
 * in one statement: one round trip and one commit for the whole batch. Each event counts
 * against its run's attempt that is running now and gets the run's `seq` after its own bump,
 * or null when that attempt is not running (or a step id is not its run's). Each run keeps
 * its own event's `key` as `lastEventKey`, so `appliedSeq` answers per event.
 *
 * The events travel as one array per column (`unnest`), so the statement's text and its
 * number of parameters do not grow with the batch.
 *
 * An output chunk is a row of its own (`RunOutputChunk`): appending one writes that chunk and
 * nothing before it. A run keeps the last `outputMaxChars` characters of its attempt's output,
 * in whole chunks: those wholly before them are dropped (`outputLength` still counts them), so
 * no agent can grow its output, and every read of it, without bound.
 */
export async function projectRunActivity(
  sql: SqlClient,
  batch: readonly KeyedRunActivity[],
  outputMaxChars = DEFAULT_RUN_OUTPUT_MAX_CHARS,
): Promise<(number | null)[]> {
  // Two events of one run would share one bump of its counter.
  if (new Set(batch.map(({ event }) => event.runId)).size < batch.length)
    throw new Error("projectRunActivity: more than one event of a run in one batch");
  // Step ids are global keys; one that does not start with its run's id could name
  // another run's (or tenant's) step, so it never applies.
  const applicable = batch.filter(
    ({ event }) => event.type !== "agent:step" || event.stepId.startsWith(`${event.runId}:`),
  );
  if (applicable.length === 0) return batch.map(() => null);
  const events = applicable.map(({ event }) => event);
  const steps = events.flatMap((e) => (e.type === "agent:step" ? [e] : []));
  const logs = events.flatMap((e) => (e.type === "agent:log" ? [e] : []));
  // A batch without steps (or logs) leaves their insert out: planning it costs as much as running it.
  const insertSteps = steps.length === 0 ? Prisma.empty : stepsInsert(steps);
  const insertLogs = logs.length === 0 ? Prisma.empty : logsInsert(logs);
  const insertOutput = events.some((e) => e.type === "agent:output") ? outputInsert(outputMaxChars) : Prisma.empty;
  // Enum arrays travel as text[] and are cast in SQL: PGlite cannot serialize a parameter of
  // an enum array type.
  const rows = await sql.query<{ id: string; seq: number }>(Prisma.sql`
    WITH running AS (
      SELECT e.* FROM unnest(${events.map((e) => e.runId)}::text[], ${events.map((e) => e.tenantId)}::text[], ${events.map((e) => e.attempt)}::int[],
        ${applicable.map(({ key }) => key)}::text[], ${events.map((e) => (e.type === "agent:output" ? e.chunk : null))}::text[]) AS e("runId", "tenantId", "attempt", "key", "chunk")
      JOIN "AgentRun" AS r ON r."id" = e."runId" AND r."tenantId" = e."tenantId"
      WHERE r."status" = 'active' AND r."attempt" = e."attempt"
      ${LOCK_IN_ID_ORDER}
    ),
    run AS (
      UPDATE "AgentRun" AS r
      SET "seq" = r."seq" + 1, "lastEventKey" = e."key", "updatedAt" = ${UTC_NOW},
          "outputLength" = r."outputLength" + coalesce(char_length(e."chunk"), 0)
      FROM running AS e
      WHERE r."id" = e."runId"
      RETURNING r."id", r."seq", r."tenantId", r."attempt", r."outputLength"
    )${insertSteps}${insertLogs}${insertOutput}
    SELECT "id", "seq" FROM run`);
  const seqs = new Map(rows.map((row) => [row.id, row.seq]));
  return batch.map(({ event }) => seqs.get(event.runId) ?? null);
}

type StepInput = Extract<RunActivityInput, { type: "agent:step" }>;
type LogInput = Extract<RunActivityInput, { type: "agent:log" }>;

/** The batch's steps, inserted or updated for the attempt each run is on. */
function stepsInsert(steps: StepInput[]): Prisma.Sql {
  return Prisma.sql`,
    step AS (
      INSERT INTO "RunStep" ("id", "runId", "name", "status", "attempt", "startedAt", "finishedAt", "error")
      SELECT s."id", run."id", s."name", s."status", run."attempt", ${UTC_NOW}, CASE WHEN s."status" = 'started' THEN NULL ELSE ${UTC_NOW} END, s."error"
      FROM unnest(${steps.map((e) => e.runId)}::text[], ${steps.map((e) => e.stepId)}::text[], ${steps.map((e) => e.name)}::text[],
        ${steps.map((e) => e.status)}::text[]::"StepStatus"[], ${steps.map((e) => e.error ?? null)}::text[]) AS s("runId", "id", "name", "status", "error")
      JOIN run ON run."id" = s."runId"
      ON CONFLICT ("id") DO UPDATE
      SET "status" = EXCLUDED."status", "finishedAt" = EXCLUDED."finishedAt", "error" = EXCLUDED."error"
    )`;
}

/**
 * The batch's output chunks, each after everything its run's attempt output before it, and the
 * removal of the chunks now wholly before the run's last `outputMaxChars` characters.
 */
function outputInsert(outputMaxChars: number): Prisma.Sql {
  return Prisma.sql`,
    chunk AS (
      INSERT INTO "RunOutputChunk" ("runId", "attempt", "start", "text")
      SELECT run."id", run."attempt", run."outputLength" - char_length(e."chunk"), e."chunk"
      FROM run JOIN running AS e ON e."runId" = run."id"
      WHERE e."chunk" IS NOT NULL
    ),
    dropped AS (
      DELETE FROM "RunOutputChunk" AS c
      USING run JOIN running AS e ON e."runId" = run."id"
      WHERE e."chunk" IS NOT NULL AND c."runId" = run."id" AND c."attempt" = run."attempt"
        AND c."start" + char_length(c."text") <= run."outputLength" - ${outputMaxChars}::int
        -- implied by the line above; said so the key's range bounds the scan
        AND c."start" < run."outputLength" - ${outputMaxChars}::int
    )`;
}

/** The batch's log lines, stamped with the attempt each run is on. */
function logsInsert(logs: LogInput[]): Prisma.Sql {
  return Prisma.sql`,
    log AS (
      INSERT INTO "RunLog" ("id", "runId", "tenantId", "level", "message", "attempt", "at")
      SELECT l."id", run."id", run."tenantId", l."level", l."message", run."attempt", ${UTC_NOW}
      FROM unnest(${logs.map((e) => e.runId)}::text[], ${logs.map(() => randomUUID())}::text[],
        ${logs.map((e) => e.level)}::text[]::"LogLevel"[], ${logs.map((e) => e.message)}::text[]) AS l("runId", "id", "level", "message")
      JOIN run ON run."id" = l."runId"
    )`;
}

/**
 * The `seq` an event's projection produced, if the publish `key` names is the row's last
 * change: a publish whose connection dropped after the database committed finds its own
 * change here and delivers it, instead of applying it a second time.
 */
export async function appliedSeq(db: PrismaClient, event: CountedEventInput, key: string): Promise<number | null> {
  const row =
    event.type === "context:status_changed"
      ? await db.contextFile.findFirst({
          where: { tenantId: event.tenantId, lastEventKey: key },
          select: { seq: true },
        })
      : await db.agentRun.findFirst({
          where: { id: event.runId, tenantId: event.tenantId, lastEventKey: key },
          select: { seq: true },
        });
  return row?.seq ?? null;
}

/**
 * Writes runs' latest progress in one statement, and only to the attempt that is still
 * running: a late write can never move a finished or retried run back. Progress does not
 * bump `seq` (see `eventStampSchema`).
 */
export async function projectProgress(sql: SqlClient, latest: readonly ProgressInput[]): Promise<void> {
  if (latest.length === 0) return;
  // One array per column, as in `projectRunActivity`: one statement text for any number of
  // runs. A row per run in VALUES made a new text for every batch size, each planned anew
  // and each taking one of the process's prepared statement names (see `StatementNames`).
  await sql.execute(Prisma.sql`
    WITH v AS (
      SELECT * FROM unnest(${latest.map((e) => e.runId)}::text[], ${latest.map((e) => e.tenantId)}::text[], ${latest.map((e) => e.attempt)}::int[],
        ${latest.map((e) => Math.round(e.progress))}::int[], ${latest.map((e) => e.phase)}::text[]::"RunPhase"[], ${latest.map((e) => e.message ?? null)}::text[])
        AS v(id, "tenantId", attempt, progress, phase, message)
    ),
    running AS (
      SELECT v.* FROM "AgentRun" AS r JOIN v ON r."id" = v.id AND r."tenantId" = v."tenantId"
      WHERE r."status" = 'active' AND r."attempt" = v.attempt
      ${LOCK_IN_ID_ORDER}
    )
    UPDATE "AgentRun" AS r
    SET "progress" = v.progress, "phase" = v.phase, "message" = v.message, "updatedAt" = ${UTC_NOW}
    FROM running AS v
    WHERE r."id" = v.id`);
}

/** Whether this attempt of the run is the one running now (the progress fast path's fallback check). */
export async function isAttemptLive(db: PrismaClient, event: ProgressInput): Promise<boolean> {
  const run = await db.agentRun.findFirst({
    where: { id: event.runId, tenantId: event.tenantId, status: "active", attempt: event.attempt },
    select: { id: true },
  });
  return run !== null;
}
