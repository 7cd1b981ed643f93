import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Prisma } from "../../generated/prisma/client";
import { createQuietTenant, startTestPulse, type TestPulse } from "../../test/harness";
import { httpClient } from "../../test/security/security-kit";
import type { RunStatus } from "../events/schema";
import { readRunHistory } from "./run-history";

/**
 * The dashboard's history view (`agent.history`) on PGlite or PostgreSQL (with DATABASE_URL):
 * runs per day of the viewer's, success rate of the finished runs, median duration from
 * queued to completed; another tenant's runs are never counted.
 */

const NOW = Date.parse("2026-12-04T12:00:00Z");
const at = (iso: string) => new Date(iso);

interface Seed {
  role: string;
  status: RunStatus;
  queuedAt: string;
  /** Seconds from queued to completed, for a completed run. */
  tookS?: number;
}

function runRow(tenantId: string, seed: Seed): Prisma.AgentRunCreateManyInput {
  const id = randomUUID();
  const queuedAt = at(seed.queuedAt);
  const end = seed.tookS !== undefined ? new Date(queuedAt.getTime() + seed.tookS * 1000) : null;
  return {
    id,
    jobId: id,
    tenantId,
    agentRole: seed.role,
    queue: seed.role,
    status: seed.status,
    queuedAt,
    // The last attempt started late: the duration still counts from being queued.
    startedAt: end ? new Date(end.getTime() - 5_000) : null,
    completedAt: seed.status === "completed" ? end : null,
    failedAt: seed.status === "failed" ? queuedAt : null,
    cancelledAt: seed.status === "cancelled" ? queuedAt : null,
  };
}

const SEEDS: Seed[] = [
  { role: "client-researcher", status: "completed", queuedAt: "2026-12-04T10:00:00Z", tookS: 30 },
  { role: "client-researcher", status: "completed", queuedAt: "2026-12-04T11:00:00Z", tookS: 90 },
  { role: "client-researcher", status: "failed", queuedAt: "2026-12-04T11:30:00Z" },
  { role: "client-researcher", status: "cancelled", queuedAt: "2026-12-01T08:00:00Z" },
  { role: "client-researcher", status: "completed", queuedAt: "2026-12-01T09:00:00Z", tookS: 60 },
  { role: "client-researcher", status: "queued", queuedAt: "2026-11-21T00:30:00Z" },
  // Fifteen days ago in UTC: outside the window.
  { role: "client-researcher", status: "completed", queuedAt: "2026-11-20T12:00:00Z", tookS: 1 },
  // 2026-12-04 05:00 in Tokyo, 2026-12-03 in UTC.
  { role: "competitor-researcher", status: "completed", queuedAt: "2026-12-03T20:00:00Z", tookS: 45 },
  // 2026-11-21 01:00 in Tokyo (inside its window), 2026-11-20 in UTC (outside).
  { role: "context-file-writer", status: "failed", queuedAt: "2026-11-20T16:00:00Z" },
];

let app: TestPulse;
let tenant: Awaited<ReturnType<typeof createQuietTenant>>;
let other: Awaited<ReturnType<typeof createQuietTenant>>;

beforeAll(async () => {
  app = await startTestPulse({ runWorkers: false });
  [tenant, other] = await Promise.all([createQuietTenant(app), createQuietTenant(app)]);
  await app.database.prisma.agentRun.createMany({ data: SEEDS.map((s) => runRow(tenant.tenantId, s)) });
  // Another tenant's runs on the same days and roles, more of them, all failed.
  await app.database.prisma.agentRun.createMany({
    data: SEEDS.flatMap((s) => [s, s, s]).map((s) => runRow(other.tenantId, { ...s, status: "failed" })),
  });
});

afterAll(async () => {
  await app?.close();
});

const dayCounts = (perDay: { day: string; runs: number }[]) =>
  Object.fromEntries(perDay.filter((d) => d.runs > 0).map((d) => [d.day, d.runs]));

describe("run history per role (agent.history)", () => {
  it("counts runs per UTC day over 14 days, completed of the finished runs, and the median queued → completed", async () => {
    const history = await readRunHistory(app.database.prisma, tenant.tenantId, { days: 14, utcOffsetMinutes: 0 }, NOW);
    expect(history.map((h) => h.role)).toEqual(["client-researcher", "competitor-researcher"]);
    const client = history[0]!;
    expect(client.perDay).toHaveLength(14);
    expect(client.perDay[0]!.day).toBe("2026-11-21");
    expect(client.perDay.at(-1)!.day).toBe("2026-12-04");
    expect(dayCounts(client.perDay)).toEqual({ "2026-11-21": 1, "2026-12-01": 2, "2026-12-04": 3 });
    expect(client).toMatchObject({ runs: 6, completed: 3, failed: 1, cancelled: 1, successRate: 0.6 });
    expect(client.medianMs).toBe(60_000);
    expect(history[1]).toMatchObject({ runs: 1, completed: 1, successRate: 1, medianMs: 45_000 });
    expect(dayCounts(history[1]!.perDay)).toEqual({ "2026-12-03": 1 });
  });

  it("counts days in the viewer's time zone", async () => {
    const tokyo = await readRunHistory(app.database.prisma, tenant.tenantId, { days: 14, utcOffsetMinutes: 540 }, NOW);
    expect(tokyo.map((h) => h.role)).toEqual(["client-researcher", "competitor-researcher", "context-file-writer"]);
    expect(dayCounts(tokyo[1]!.perDay)).toEqual({ "2026-12-04": 1 });
    expect(dayCounts(tokyo[2]!.perDay)).toEqual({ "2026-11-21": 1 });
    expect(tokyo[2]).toMatchObject({ runs: 1, failed: 1, successRate: 0, medianMs: null });
  });

  it("through the procedure, counts only the caller's tenant's runs", async () => {
    const recent = new Date(Date.now() - 3_600_000).toISOString();
    await app.database.prisma.agentRun.createMany({
      data: [
        runRow(tenant.tenantId, { role: "ticker", status: "completed", queuedAt: recent, tookS: 10 }),
        ...Array.from({ length: 5 }, () =>
          runRow(other.tenantId, { role: "ticker", status: "failed", queuedAt: recent }),
        ),
      ],
    });
    const mine = await httpClient(app, tenant.token).agent.history.query({ days: 2 });
    expect(mine.find((h) => h.role === "ticker")).toMatchObject({ runs: 1, completed: 1, failed: 0, successRate: 1 });
    const theirs = await httpClient(app, other.token).agent.history.query({ days: 2 });
    expect(theirs.find((h) => h.role === "ticker")).toMatchObject({ runs: 5, completed: 0, failed: 5 });
    const anonymous = await httpClient(app)
      .agent.history.query({ days: 2 })
      .catch((e: { data?: { code?: string } }) => e.data?.code);
    expect(anonymous).toBe("UNAUTHORIZED");
  });
});
