import { randomUUID } from "node:crypto";
import type { PrismaClient } from "../../generated/prisma/client";
import { Prisma } from "../../generated/prisma/client";
import type { LiveProgress } from "./event-stream";
import type { CountedEventInput, ProgressInput } from "./schema";

/**
 * Applies an event to the database, the ground truth that snapshots are read from, and
 * returns the change counter (`seq`) it produced. Returns null when the event no longer
 * applies: a late step, log or output from an attempt that has been superseded, a second
 * failure report for an attempt already failed, a cancel for a finished run. Such events
 * are not delivered, so a stale worker can never move a run backwards.
 */
export async function projectEvent(db: PrismaClient, event: CountedEventInput, key: string, latestProgress?: LiveProgress): Promise<number | null> {
  try {
    return await apply(db, event, key, latestProgress);
  } catch (error) {
    if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === "P2025") return null;
    throw error;
  }
}

async function apply(db: PrismaClient, event: CountedEventInput, key: string, latestProgress?: LiveProgress): Promise<number | null> {
  const bump = { seq: { increment: 1 }, lastEventKey: key } as const;
  const select = { seq: true } as const;
  // A run that ends keeps the progress (and message) it reached, which only Redis may hold yet.
  const reached =
    latestProgress && "attempt" in event && latestProgress.attempt === event.attempt
      ? { progress: Math.round(latestProgress.progress), phase: latestProgress.phase, message: latestProgress.message }
      : {};
  // Progress, steps, output and logs belong to the attempt that is running right now.
  const running = (e: { runId: string; tenantId: string; attempt: number }) => ({
    id: e.runId,
    tenantId: e.tenantId,
    status: "active" as const,
    attempt: e.attempt,
  });

  switch (event.type) {
    case "agent:queued": {
      const run = await db.agentRun.update({
        where: { id: event.runId, tenantId: event.tenantId, status: "queued" },
        data: { ...bump, queuedAt: new Date(event.queuedAt) },
        select,
      });
      return run.seq;
    }
    case "agent:active": {
      const run = await db.agentRun.update({
        where: { id: event.runId, tenantId: event.tenantId, status: { in: ["queued", "active"] } },
        data: {
          ...bump,
          status: "active",
          phase: "starting",
          attempt: event.attempt,
          progress: 0,
          message: null,
          willRetry: false,
          startedAt: new Date(event.startedAt),
        },
        select,
      });
      return run.seq;
    }
    case "agent:step": {
      // Step ids are global keys; one that does not start with its run's id could name
      // another run's (or tenant's) step, so it never applies.
      if (!event.stepId.startsWith(`${event.runId}:`)) return null;
      const finishedAt = event.status === "started" ? Prisma.sql`NULL` : UTC_NOW;
      return firstSeq(
        await db.$queryRaw<{ seq: number }[]>`
          WITH run AS (${bumpRunningRun(event, key)}),
          step AS (
            INSERT INTO "RunStep" ("id", "runId", "name", "status", "attempt", "startedAt", "finishedAt", "error")
            SELECT ${event.stepId}, ${event.runId}, ${event.name}, ${event.status}::"StepStatus", ${event.attempt}, ${UTC_NOW}, ${finishedAt}, ${event.error ?? null}
            FROM run
            ON CONFLICT ("id") DO UPDATE
            SET "status" = EXCLUDED."status", "finishedAt" = EXCLUDED."finishedAt", "error" = EXCLUDED."error"
          )
          SELECT "seq" FROM run`,
      );
    }
    case "agent:output": {
      // Appending in SQL keeps a long output from travelling back and forth on every chunk.
      return firstSeq(
        await db.$queryRaw<{ seq: number }[]>`
          UPDATE "AgentRun"
          SET "output" = "output" || ${event.chunk}, "seq" = "seq" + 1, "lastEventKey" = ${key}, "updatedAt" = ${UTC_NOW}
          WHERE "id" = ${event.runId} AND "tenantId" = ${event.tenantId}
            AND "status" = 'active' AND "attempt" = ${event.attempt}
          RETURNING "seq"`,
      );
    }
    case "agent:log": {
      return firstSeq(
        await db.$queryRaw<{ seq: number }[]>`
          WITH run AS (${bumpRunningRun(event, key)}),
          log AS (
            INSERT INTO "RunLog" ("id", "runId", "tenantId", "level", "message", "attempt", "at")
            SELECT ${randomUUID()}, ${event.runId}, ${event.tenantId}, ${event.level}::"LogLevel", ${event.message}, ${event.attempt}, ${UTC_NOW}
            FROM run
          )
          SELECT "seq" FROM run`,
      );
    }
    case "agent:completed": {
      const run = await db.agentRun.update({
        where: running(event),
        data: {
          ...bump,
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
        select,
      });
      return run.seq;
    }
    case "agent:failed": {
      const run = await db.agentRun.update({
        // A final failure may also end a run waiting in the queue: one shown as retrying
        // whose retry will never come (BullMQ failed the job for stalling too often), or
        // one whose job the queue lost.
        where: event.willRetry
          ? running(event)
          : { id: event.runId, tenantId: event.tenantId, attempt: event.attempt, status: { in: ["active", "queued"] } },
        data: {
          ...bump,
          ...reached,
          // A failed attempt that will be retried waits in the queue again.
          status: event.willRetry ? "queued" : "failed",
          willRetry: event.willRetry,
          error: event.error,
          failedAt: new Date(event.failedAt),
        },
        select,
      });
      return run.seq;
    }
    case "agent:cancelled": {
      const run = await db.agentRun.update({
        where: { id: event.runId, tenantId: event.tenantId, status: { in: ["queued", "active"] } },
        data: { ...bump, ...reached, status: "cancelled", willRetry: false, cancelledAt: new Date(event.cancelledAt) },
        select,
      });
      return run.seq;
    }
    case "context:status_changed": {
      const file = await db.contextFile.upsert({
        where: { tenantId: event.tenantId },
        create: { tenantId: event.tenantId, status: event.status, version: event.version ?? 0, seq: 1, lastEventKey: key },
        update: { ...bump, status: event.status, ...(event.version === undefined ? {} : { version: event.version }) },
        select,
      });
      return file.seq;
    }
  }
}

/**
 * Timestamps as Prisma stores them: `timestamp(3)` holding UTC, whatever the session's time
 * zone. The single-statement projections below write them in SQL.
 */
const UTC_NOW = Prisma.sql`(now() AT TIME ZONE 'UTC')`;

/**
 * Counts one event against the run's attempt that is running now, returning its new `seq`;
 * no row when that attempt is not running. A statement to use as a CTE, so the change and
 * the row it goes with (a step, a log line) are one statement: one round trip, one commit.
 */
function bumpRunningRun(event: { runId: string; tenantId: string; attempt: number }, key: string): Prisma.Sql {
  return Prisma.sql`
    UPDATE "AgentRun" SET "seq" = "seq" + 1, "lastEventKey" = ${key}, "updatedAt" = ${UTC_NOW}
    WHERE "id" = ${event.runId} AND "tenantId" = ${event.tenantId} AND "status" = 'active' AND "attempt" = ${event.attempt}
    RETURNING "seq"`;
}

const firstSeq = (rows: { seq: number }[]): number | null => rows[0]?.seq ?? null;

/**
 * The `seq` an event's projection produced, if the publish `key` names is the row's last
 * change: a publish whose connection dropped after the database committed finds its own
 * change here and delivers it, instead of applying it a second time.
 */
export async function appliedSeq(db: PrismaClient, event: CountedEventInput, key: string): Promise<number | null> {
  const row =
    event.type === "context:status_changed"
      ? await db.contextFile.findFirst({ where: { tenantId: event.tenantId, lastEventKey: key }, select: { seq: true } })
      : await db.agentRun.findFirst({ where: { id: event.runId, tenantId: event.tenantId, lastEventKey: key }, select: { seq: true } });
  return row?.seq ?? null;
}

/**
 * Writes runs' latest progress in one statement, and only to the attempt that is still
 * running: a late write can never move a finished or retried run back. Progress does not
 * bump `seq` (see `eventStampSchema`).
 */
export async function projectProgress(db: PrismaClient, latest: readonly ProgressInput[]): Promise<void> {
  if (latest.length === 0) return;
  const rows = latest.map(
    (e) => Prisma.sql`(${e.runId}, ${e.tenantId}, ${e.attempt}::int, ${Math.round(e.progress)}::int, ${e.phase}::"RunPhase", ${e.message ?? null})`,
  );
  await db.$executeRaw`
    UPDATE "AgentRun" AS r
    SET "progress" = v.progress, "phase" = v.phase, "message" = v.message, "updatedAt" = ${UTC_NOW}
    FROM (VALUES ${Prisma.join(rows)}) AS v(id, "tenantId", attempt, progress, phase, message)
    WHERE r."id" = v.id AND r."tenantId" = v."tenantId" AND r."status" = 'active' AND r."attempt" = v.attempt`;
}

/** Whether this attempt of the run is the one running now (the progress fast path's fallback check). */
export async function isAttemptLive(db: PrismaClient, event: ProgressInput): Promise<boolean> {
  const run = await db.agentRun.findFirst({
    where: { id: event.runId, tenantId: event.tenantId, status: "active", attempt: event.attempt },
    select: { id: true },
  });
  return run !== null;
}
