import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Prisma } from "../../generated/prisma/client";
import type { RunView } from "../../lib/trpc/types";
import { createQuietTenant, startTestPulse, type TestPulse } from "../../test/harness";
import { httpClient } from "../../test/security/security-kit";
import type { RunStatus } from "../events/schema";
import { roleNames, runCursorSchema, runSearchStatement, type RunSearch } from "./run-search";
import { snapshotRunIds, toRunView } from "../events/snapshot";

/**
 * The runs page's query (`agent.list`) over a tenant with 1,000 runs: every page walk sees
 * each run exactly once, in order, while new runs keep arriving, and each page reads the
 * `(tenantId, queuedAt, id)` index from its cursor on instead of re-reading earlier pages.
 */

const OUTSIDE = "outside-crm";
const ROLES = ["client-researcher", "competitor-researcher", "context-file-writer", OUTSIDE];
const STATUSES: RunStatus[] = ["completed", "failed", "cancelled", "queued", "active"];
const INDEX = "AgentRun_tenantId_queuedAt_id_idx";

type Seed = Prisma.AgentRunCreateManyInput & { id: string; queuedAt: Date; agentRole: string; status: RunStatus };

/** `count` runs over `count / 3` seconds from `start`: three runs share each queuedAt, so the id breaks ties. */
function seedRuns(tenantId: string, count: number, start: Date): Seed[] {
  return Array.from({ length: count }, (_, i) => {
    const id = randomUUID();
    const agentRole = ROLES[i % ROLES.length]!;
    return {
      id,
      jobId: id,
      tenantId,
      agentRole,
      queue: agentRole,
      chainId: agentRole !== OUTSIDE && i % 3 === 0 ? `chain-${i}` : null,
      status: STATUSES[i % STATUSES.length]!,
      message: `step ${i} of the walk`,
      error: i % 5 === 1 && i % 7 === 0 ? "rate limited by upstream" : null,
      queuedAt: new Date(start.getTime() + Math.floor(i / 3) * 1000),
    };
  });
}

let app: TestPulse;
let tenant: Awaited<ReturnType<typeof createQuietTenant>>;
let other: Awaited<ReturnType<typeof createQuietTenant>>;
let seeds: Seed[];
const start = new Date(Date.now() - 3_600_000);

beforeAll(async () => {
  app = await startTestPulse({ runWorkers: false, externalAgentRoles: [OUTSIDE] });
  [tenant, other] = await Promise.all([createQuietTenant(app), createQuietTenant(app)]);
  seeds = seedRuns(tenant.tenantId, 1_000, start);
  await app.database.prisma.agentRun.createMany({ data: seeds });
  await app.database.prisma.agentRun.createMany({ data: seedRuns(other.tenantId, 200, start) });
  // The planner's statistics, as PostgreSQL's autovacuum or, on PGlite, Pulse's hourly sweep keeps them.
  if (app.database.kind === "postgres") await app.database.prisma.$executeRawUnsafe(`ANALYZE "AgentRun"`);
  else await app.pulse.sweepOldLogs();
});

afterAll(async () => {
  await app?.close();
});

const api = () => httpClient(app, tenant.token);

/** Every page of a filter, `limit` runs at a time, calling `between` after each page. */
async function walk(
  filter: Omit<RunSearch, "limit" | "cursor">,
  limit: number,
  between?: () => Promise<void>,
): Promise<RunView[]> {
  const seen: RunView[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages <= 1_000; pages++) {
    const page = await api().agent.list.query({ ...filter, limit, ...(cursor ? { cursor } : {}) });
    seen.push(...page.runs);
    await between?.();
    if (!page.nextCursor) return seen;
    cursor = page.nextCursor;
  }
  throw new Error("more pages than runs");
}

/** The walk holds exactly the expected runs, each once, newest first. */
function expectExactlyOnce(seen: RunView[], expected: Seed[]) {
  const ids = seen.map((r) => r.id);
  expect(new Set(ids).size).toBe(ids.length);
  expect([...ids].sort()).toEqual(expected.map((s) => s.id).sort());
  const times = seen.map((r) => Date.parse(r.queuedAt));
  expect(times.every((t, i) => i === 0 || t <= times[i - 1]!)).toBe(true);
}

describe("agent.list pages (the runs page)", () => {
  it("pages through all 1,000 runs exactly once, newest first, while new runs arrive", async () => {
    let arrived = 0;
    const arrive = async () => {
      const fresh = seedRuns(tenant.tenantId, 3, new Date()).map((s) => ({ ...s, message: "arrived while paging" }));
      await app.database.prisma.agentRun.createMany({ data: fresh });
      arrived += fresh.length;
    };
    const seen = await walk({}, 37, arrive);
    expectExactlyOnce(seen, seeds);
    expect(arrived).toBeGreaterThanOrEqual(3 * 27);
    // The runs that arrived are there for whoever starts again from the top.
    const top = await api().agent.list.query({ limit: 100, q: "arrived while paging" });
    expect(top.runs).toHaveLength(Math.min(arrived, 100));
  });

  it("filters and searches over every page: status, role, origin, dates, an id prefix, words of an error", async () => {
    const target = seeds[421]!;
    const cases: [Omit<RunSearch, "limit" | "cursor">, (s: Seed) => boolean][] = [
      [{ status: ["failed"] }, (s) => s.status === "failed"],
      [{ status: ["queued", "active"] }, (s) => s.status === "queued" || s.status === "active"],
      [{ agentRole: "competitor-researcher" }, (s) => s.agentRole === "competitor-researcher"],
      [{ origin: "chain" }, (s) => s.chainId !== null],
      [{ origin: "external" }, (s) => s.agentRole === OUTSIDE],
      [{ origin: "manual" }, (s) => s.chainId === null && s.agentRole !== OUTSIDE],
      [
        {
          from: new Date(start.getTime() + 100_000).toISOString(),
          to: new Date(start.getTime() + 200_000).toISOString(),
        },
        (s) => s.queuedAt.getTime() >= start.getTime() + 100_000 && s.queuedAt.getTime() < start.getTime() + 200_000,
      ],
      [{ q: target.id.slice(0, 8).toUpperCase() }, (s) => s.id.startsWith(target.id.slice(0, 8))],
      [{ q: "Rate Limited" }, (s) => s.error === "rate limited by upstream"],
      [{ q: "context file" }, (s) => s.agentRole === "context-file-writer"],
      [{ q: "step 42 of" }, (s) => s.message === "step 42 of the walk"],
      [{ q: "100%" }, () => false],
      [
        { status: ["failed"], origin: "chain", q: "rate" },
        (s) => s.status === "failed" && s.chainId !== null && s.error !== null,
      ],
    ];
    for (const [filter, match] of cases) {
      const expected = seeds.filter(match);
      expectExactlyOnce(
        await walk(
          {
            ...filter,
            from: filter.from ?? start.toISOString(),
            to: filter.to ?? new Date(start.getTime() + 400_000).toISOString(),
          },
          25,
        ),
        expected,
      );
    }
  });

  it("answers each tenant with its own runs only, whatever cursor it sends", async () => {
    const mine = await api().agent.list.query({ limit: 5 });
    const theirs = await httpClient(app, other.token).agent.list.query({
      limit: 100,
      cursor: mine.nextCursor!,
      to: new Date(start.getTime() + 400_000).toISOString(),
    });
    expect(theirs.runs.length).toBeGreaterThan(0);
    expect(theirs.runs.every((r) => r.tenantId === other.tenantId)).toBe(true);
  });
});

/** The plan PostgreSQL ran a statement with, and what it read. */
async function explain(statement: Prisma.Sql) {
  const rows = await app.database.prisma.$queryRawUnsafe<Record<string, unknown>[]>(
    `EXPLAIN (ANALYZE, FORMAT JSON) ${statement.text}`,
    ...statement.values,
  );
  const raw = Object.values(rows[0]!)[0];
  type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };
  const root = (typeof raw === "string" ? JSON.parse(raw) : raw) as { Plan: PlanNode }[];
  const nodes: PlanNode[] = [];
  const visit = (node: PlanNode) => (nodes.push(node), node.Plans?.forEach(visit));
  visit(root[0]!.Plan);
  const scans = nodes.filter((n) => String(n["Node Type"]).includes("Scan"));
  const count = (n: PlanNode, key: string) => Number(n[key] ?? 0) * Number(n["Actual Loops"] ?? 1);
  const read = (n: PlanNode) =>
    count(n, "Actual Rows") + count(n, "Rows Removed by Filter") + count(n, "Rows Removed by Index Recheck");
  return {
    types: nodes.map((n) => String(n["Node Type"])),
    indexes: scans.map((n) => n["Index Name"]),
    /** Rows the scans produced or threw away: what the page cost to read. */
    rowsRead: scans.reduce((sum, n) => sum + read(n), 0),
    /** The same, of the table's indexes only (a statement's own steps, such as a CTE's, left out). */
    indexRowsRead: scans.filter((n) => n["Index Name"]).reduce((sum, n) => sum + read(n), 0),
  };
}

describe("agent.list's query plan", () => {
  const roles = () =>
    roleNames(
      ROLES.filter((r) => r !== OUTSIDE),
      [OUTSIDE],
    );

  /** The cursor after the first `n` runs of a filter, as the API hands it out. */
  async function cursorAfter(n: number, filter: Omit<RunSearch, "limit" | "cursor"> = {}) {
    let cursor: string | undefined;
    for (let read = 0; read < n; read += 100) {
      const limit = Math.min(100, n - read);
      cursor = (
        await api().agent.list.query({
          ...filter,
          limit,
          ...(cursor ? { cursor } : {}),
          to: new Date(start.getTime() + 400_000).toISOString(),
        })
      ).nextCursor!;
    }
    return runCursorSchema.parse(cursor);
  }

  it("reads the first page and a page 500 runs deep from the index, about one page of rows each", async () => {
    const limit = 50;
    for (const cursor of [undefined, await cursorAfter(500)]) {
      const plan = await explain(
        runSearchStatement(tenant.tenantId, { limit, ...(cursor ? { cursor } : {}) }, roles()),
      );
      expect(plan.types).not.toContain("Seq Scan");
      expect(plan.types).not.toContain("Sort");
      expect(plan.indexes).toEqual([INDEX]);
      // The page and the one run that says another page follows, plus at most the cursor's two ties.
      expect(plan.rowsRead).toBeLessThanOrEqual(limit + 1 + 2);
    }
  });

  it("reads a filtered page from its cursor on, not the pages before it", async () => {
    const limit = 20;
    const filter = { status: ["failed" as const] };
    const cursor = await cursorAfter(100, filter); // 100 failed runs: about 500 runs deep
    const plan = await explain(runSearchStatement(tenant.tenantId, { ...filter, limit, cursor }, roles()));
    expect(plan.types).not.toContain("Seq Scan");
    expect(plan.types).not.toContain("Sort");
    expect(plan.indexes).toEqual([INDEX]);
    // One run in five failed: about five rows per run on the page, never the ~500 before the cursor.
    expect(plan.rowsRead).toBeLessThanOrEqual(5 * (limit + 1) + 6);
  });
});

describe("the live view's snapshot (agent.onStatus's first item)", () => {
  type Stored = { id: string; agentRole: string; status: RunStatus; queuedAt: Date };
  const FINISHED: RunStatus[] = ["completed", "failed", "cancelled"];
  const newestFirst = (a: Stored, b: Stored) => b.queuedAt.getTime() - a.queuedAt.getTime();
  const isLive = (r: Stored) => r.status === "queued" || r.status === "active";
  /** A tenant as they mostly are: a long history, a few runs queued or under way. */
  let settled: Awaited<ReturnType<typeof createQuietTenant>>;

  beforeAll(async () => {
    settled = await createQuietTenant(app);
    const runs = seedRuns(settled.tenantId, 1_000, start).map((run, i) => ({
      ...run,
      status: i % 100 === 7 ? "queued" : i % 100 === 3 ? "active" : FINISHED[i % 3]!,
    }));
    await app.database.prisma.agentRun.createMany({ data: runs });
    if (app.database.kind === "postgres") await app.database.prisma.$executeRawUnsafe(`ANALYZE "AgentRun"`);
    else await app.pulse.sweepOldLogs();
  });

  /** A tenant's runs as stored now (the walk above added some to the first tenant's seeds). */
  const stored = (tenantId: string, agentRole?: string): Promise<Stored[]> =>
    app.database.prisma.agentRun.findMany({
      where: { tenantId, ...(agentRole ? { agentRole } : {}) },
      select: { id: true, agentRole: true, status: true, queuedAt: true },
    });

  /** The snapshot holds each role's newest run, the newest 100 live ones, nothing else, newest first. */
  function expectSnapshotOf(snapshot: RunView[], runs: Stored[]) {
    const ids = new Set(snapshot.map((r) => r.id));
    expect(ids.size).toBe(snapshot.length);
    const newestOfRole = [...new Set(runs.map((r) => r.agentRole))].map(
      (role) => runs.filter((r) => r.agentRole === role).sort(newestFirst)[0]!.id,
    );
    for (const id of newestOfRole) expect(ids).toContain(id);
    const live = runs.filter(isLive).sort(newestFirst);
    const shown = live.filter((r) => ids.has(r.id));
    expect(shown.length).toBe(Math.min(100, live.length));
    // The newest ones (three runs share each second, so the hundredth may tie with the next).
    const oldestShown = Math.min(...shown.map((r) => r.queuedAt.getTime()));
    expect(live.filter((r) => !ids.has(r.id) && r.queuedAt.getTime() > oldestShown)).toEqual([]);
    expect(snapshot.filter((r) => !newestOfRole.includes(r.id) && !shown.some((s) => s.id === r.id))).toEqual([]);
    const times = snapshot.map((r) => Date.parse(r.queuedAt));
    expect(times.every((t, i) => i === 0 || t <= times[i - 1]!)).toBe(true);
  }

  it("holds each role's newest run and the newest 100 of 400 queued or active runs, newest first", async () => {
    const { runs } = await app.pulse.services.runs.tenantSnapshot(tenant.tenantId);
    expect(runs.every((r) => r.tenantId === tenant.tenantId)).toBe(true);
    expectSnapshotOf(runs, await stored(tenant.tenantId));
  });

  it("narrowed to one role, holds that role's only", async () => {
    const role = ROLES[1]!;
    const { runs } = await app.pulse.services.runs.tenantSnapshot(tenant.tenantId, { agentRole: role });
    expect(runs.every((r) => r.agentRole === role)).toBe(true);
    expectSnapshotOf(runs, await stored(tenant.tenantId, role));
  });

  it("carries each run as the database holds it, every field and its steps in order", async () => {
    const rich = await createQuietTenant(app);
    const at = (s: number) => new Date(start.getTime() + s * 1000 + 123);
    const runs = [
      {
        role: ROLES[0]!,
        status: "completed" as const,
        queuedAt: at(1),
        startedAt: at(2),
        completedAt: at(9),
        phase: "completing" as const,
        progress: 100,
      },
      {
        role: ROLES[0]!,
        status: "active" as const,
        queuedAt: at(10),
        startedAt: at(11),
        phase: "running" as const,
        progress: 42,
        message: "Reading «the press kit»\n2 of 3",
      },
      {
        role: ROLES[1]!,
        status: "failed" as const,
        queuedAt: at(3),
        startedAt: at(4),
        failedAt: at(5),
        error: "rate limited",
        willRetry: true,
        attempt: 2,
        nextAgent: ROLES[2]!,
      },
      { role: ROLES[2]!, status: "queued" as const, queuedAt: at(12), chainId: "chain-rich", chainName: "setup" },
    ];
    const ids = runs.map(() => randomUUID());
    await app.database.prisma.agentRun.createMany({
      data: runs.map(({ role, ...run }, i) => ({
        id: ids[i]!,
        jobId: ids[i]!,
        tenantId: rich.tenantId,
        agentRole: role,
        queue: role,
        seq: 3 + i,
        ...run,
      })),
    });
    await app.database.prisma.runStep.createMany({
      data: [
        { id: `${ids[1]}:b`, runId: ids[1]!, name: "Second", status: "started", attempt: 1, startedAt: at(13) },
        {
          id: `${ids[1]}:a`,
          runId: ids[1]!,
          name: "First",
          status: "completed",
          attempt: 1,
          startedAt: at(12),
          finishedAt: at(13),
        },
        {
          id: `${ids[2]}:a`,
          runId: ids[2]!,
          name: "Fetch",
          status: "failed",
          attempt: 2,
          startedAt: at(4),
          finishedAt: at(5),
          error: "HTTP 429",
        },
      ],
    });
    const { runs: snapshot } = await app.pulse.services.runs.tenantSnapshot(rich.tenantId);
    const stored = await app.database.prisma.agentRun.findMany({
      where: { tenantId: rich.tenantId },
      orderBy: { queuedAt: "desc" },
      include: { steps: { orderBy: { startedAt: "asc" } } },
    });
    // Each role's newest and the live ones: all but the older run of the first role.
    expect(snapshot).toEqual(stored.filter((r) => r.id !== ids[0]).map((r) => toRunView(r)));
    expect(snapshot.find((r) => r.id === ids[1])!.steps.map((s) => s.name)).toEqual(["First", "Second"]);
  });

  it("of a tenant with 1,000 runs, 20 live, reads its roles, their newest runs and the live ones, not its history", async () => {
    const runs = await stored(settled.tenantId);
    const { runs: snapshot } = await app.pulse.services.runs.tenantSnapshot(settled.tenantId);
    expectSnapshotOf(snapshot, runs);
    const roles = new Set(runs.map((r) => r.agentRole)).size;
    const plan = await explain(snapshotRunIds(settled.tenantId, null));
    expect(plan.types).not.toContain("Seq Scan");
    expect(plan.indexes).toContain("AgentRun_tenantId_agentRole_queuedAt_idx");
    // A step per role to find the next one and its newest run, and each live run once, where
    // reading each role's newest the way Prisma's `distinct` does read all 1,000.
    expect(plan.indexRowsRead).toBeLessThanOrEqual(runs.filter(isLive).length + 3 * (roles + 1));
  });
});
