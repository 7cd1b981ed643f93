import { z } from "zod";
import type { PrismaClient } from "../../generated/prisma/client";
import { Prisma } from "../../generated/prisma/client";

/**
 * A tenant's run history per role, from the database: runs per day over the last days, how
 * many of the finished ones completed, and the median duration of the completed ones, each
 * counted from being queued to its end (every attempt and the waits between them, as the
 * dashboard shows a run's duration). Days are the viewer's: `utcOffsetMinutes` shifts the day
 * boundaries from UTC to the browser's local midnight.
 */

export const HISTORY_DAYS_MAX = 31;

export const runHistoryInput = z.object({
  days: z.number().int().min(1).max(HISTORY_DAYS_MAX).default(14),
  /** The viewer's offset from UTC (minutes east: UTC+09:00 is 540), so a day is theirs. */
  utcOffsetMinutes: z
    .number()
    .int()
    .min(-14 * 60)
    .max(14 * 60)
    .default(0),
});
export type RunHistoryInput = z.infer<typeof runHistoryInput>;

export interface RoleHistory {
  role: string;
  /** One entry per day, oldest first, `days` of them: `day` is YYYY-MM-DD in the viewer's time. */
  perDay: { day: string; runs: number }[];
  runs: number;
  completed: number;
  failed: number;
  cancelled: number;
  /** Completed of the finished runs (completed, failed, cancelled), 0–1; null when none finished. */
  successRate: number | null;
  /** Median queued → completed of the completed runs (ms); null when none completed. */
  medianMs: number | null;
}

interface DayRow {
  role: string;
  day: string;
  runs: number;
  completed: number;
  failed: number;
  cancelled: number;
}

/** The viewer's local day (YYYY-MM-DD) that `at` falls on. */
function localDay(at: number, utcOffsetMinutes: number): string {
  return new Date(at + utcOffsetMinutes * 60_000).toISOString().slice(0, 10);
}

/** The first instant of the oldest day shown: local midnight `days - 1` days before today's. */
export function historyStart(now: number, { days, utcOffsetMinutes }: RunHistoryInput): Date {
  const todayStart = Date.parse(`${localDay(now, utcOffsetMinutes)}T00:00:00Z`) - utcOffsetMinutes * 60_000;
  return new Date(todayStart - (days - 1) * 86_400_000);
}

export async function readRunHistory(
  db: PrismaClient,
  tenantId: string,
  input: RunHistoryInput,
  now = Date.now(),
): Promise<RoleHistory[]> {
  const since = historyStart(now, input);
  const shift = Prisma.sql`make_interval(mins => ${input.utcOffsetMinutes}::int)`;
  // Both read the (tenantId, queuedAt, id) index's range for the window.
  const [dayRows, medianRows] = await Promise.all([
    db.$queryRaw<DayRow[]>(Prisma.sql`
      SELECT "agentRole" AS "role", to_char("queuedAt" + ${shift}, 'YYYY-MM-DD') AS "day",
        count(*)::int AS "runs",
        (count(*) FILTER (WHERE "status" = 'completed'))::int AS "completed",
        (count(*) FILTER (WHERE "status" = 'failed'))::int AS "failed",
        (count(*) FILTER (WHERE "status" = 'cancelled'))::int AS "cancelled"
      FROM "AgentRun" WHERE "tenantId" = ${tenantId} AND "queuedAt" >= ${since}
      GROUP BY 1, 2`),
    db.$queryRaw<{ role: string; medianMs: number }[]>(Prisma.sql`
      SELECT "agentRole" AS "role",
        percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM "completedAt" - "queuedAt") * 1000) AS "medianMs"
      FROM "AgentRun"
      WHERE "tenantId" = ${tenantId} AND "queuedAt" >= ${since} AND "status" = 'completed' AND "completedAt" IS NOT NULL
      GROUP BY 1`),
  ]);
  const days = Array.from({ length: input.days }, (_, i) =>
    localDay(since.getTime() + i * 86_400_000 + input.utcOffsetMinutes * 60_000, 0),
  );
  const medians = new Map(medianRows.map((r) => [r.role, Math.round(Number(r.medianMs))]));
  const roles = [...new Set(dayRows.map((r) => r.role))].sort();
  return roles.map((role) => roleHistory(role, days, dayRows, medians.get(role) ?? null));
}

function roleHistory(role: string, days: string[], rows: DayRow[], medianMs: number | null): RoleHistory {
  const mine = rows.filter((r) => r.role === role);
  const sum = (key: "runs" | "completed" | "failed" | "cancelled") => mine.reduce((n, r) => n + r[key], 0);
  const [completed, failed, cancelled] = [sum("completed"), sum("failed"), sum("cancelled")];
  const finished = completed + failed + cancelled;
  return {
    role,
    perDay: days.map((day) => ({ day, runs: mine.find((r) => r.day === day)?.runs ?? 0 })),
    runs: sum("runs"),
    completed,
    failed,
    cancelled,
    successRate: finished ? completed / finished : null,
    medianMs,
  };
}
