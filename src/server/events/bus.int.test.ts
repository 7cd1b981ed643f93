import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createQuietTenant, eventually, startTestPulse, type TestPulse } from "../../test/harness";
import { appliedSeq, projectEvent } from "./projection";
import type { CountedEventInput, EventInput } from "./schema";
import { readRunSnapshot } from "./snapshot";

let app: TestPulse;
let admin: Redis;
beforeAll(async () => {
  // No workers: the test plays the worker, publishing through the bus by hand.
  app = await startTestPulse({ runWorkers: false });
  admin = new Redis(app.redisUrl);
});
afterAll(async () => {
  await admin?.quit();
  await app?.close();
});

const ROLE = "client-researcher";

/** An event of a run without the fields `queuedRun` fills in, for each member of the union. */
type WithoutRunFields<E> = E extends unknown ? Omit<E, "tenantId" | "runId" | "jobId" | "queue" | "agentRole"> : never;

/** A queued run of a fresh tenant, and a way to publish its events as its worker would. */
async function queuedRun() {
  const tenant = await createQuietTenant(app);
  const run = await app.pulse.services.runs.start(tenant.tenantId, ROLE);
  const base = { tenantId: tenant.tenantId, runId: run.id, jobId: run.jobId, queue: run.queue, agentRole: ROLE };
  const { bus, stream, db } = app.pulse.services;
  const now = () => new Date().toISOString();
  return {
    tenantId: tenant.tenantId,
    runId: run.id,
    publish: (event: WithoutRunFields<Extract<EventInput, { runId: string }>>) => bus.publish({ ...base, ...event } as EventInput),
    active: (attempt: number) => bus.publish({ ...base, type: "agent:active", attempt, startedAt: now() }),
    progress: (attempt: number, progress: number) =>
      bus.publish({ ...base, type: "agent:progress", attempt, progress, message: `at ${progress}`, phase: "running" }),
    failed: (attempt: number, willRetry: boolean) => bus.publish({ ...base, type: "agent:failed", attempt, error: "boom", failedAt: now(), willRetry }),
    completed: (attempt: number) => bus.publish({ ...base, type: "agent:completed", attempt, completedAt: now() }),
    /** Progress messages in the tenant's stream, in order. */
    streamed: async () => (await stream.readAfter(tenant.tenantId, "0-0", 1000)).flatMap((e) => (e.event.type === "agent:progress" ? [e.event.message] : [])),
    row: () => db.agentRun.findUniqueOrThrow({ where: { id: run.id } }),
    marker: stream.keys.liveAttempt(tenant.tenantId, run.id),
  };
}

describe("EventBus progress fast path", () => {
  it("delivers the running attempt's progress at once, shows it in snapshots at once, and writes the latest to the database", async () => {
    const run = await queuedRun();
    await run.active(1);
    for (const p of [10, 20, 30]) expect(await run.progress(1, p)).not.toBeNull();
    expect(await run.streamed()).toEqual(["at 10", "at 20", "at 30"]);
    // Before any database write lands, a snapshot already shows the latest progress.
    const snapshot = await readRunSnapshot(app.pulse.services, run.tenantId, run.runId);
    expect(snapshot?.runs[0]).toMatchObject({ status: "active", progress: 30, message: "at 30" });
    await eventually(run.row, (r) => r.progress === 30 && r.message === "at 30", "the latest progress in the database");
    // Progress is uncounted: only queued and active moved the run's counter.
    expect((await run.row()).seq).toBe(2);
  });

  it("never stores or delivers progress of an attempt that is not the one running", async () => {
    const run = await queuedRun();
    expect(await run.progress(1, 5)).toBeNull(); // not started yet
    await run.active(1);
    expect(await run.progress(2, 5)).toBeNull(); // a future attempt
    expect(await run.progress(1, 40)).not.toBeNull();
    await run.failed(1, true);
    expect(await run.progress(1, 50)).toBeNull(); // the failed attempt's worker, still talking
    await run.active(2);
    expect(await run.progress(1, 60)).toBeNull();
    expect(await run.progress(2, 10)).not.toBeNull();
    await run.completed(2);
    expect(await run.progress(2, 99)).toBeNull();
    expect(await run.streamed()).toEqual(["at 40", "at 10"]);
    await app.pulse.services.bus.close(); // flush whatever is pending
    expect(await run.row()).toMatchObject({ status: "completed", attempt: 2, progress: 100 });
  });

  it("when Redis loses the live-attempt marker, asks the database and re-arms it for the running attempt only", async () => {
    const run = await queuedRun();
    await run.active(1);
    await admin.del(run.marker);
    expect(await run.progress(1, 15)).not.toBeNull();
    expect(await admin.get(run.marker)).toBe("1");
    await run.completed(1);
    expect(await admin.exists(run.marker)).toBe(0);
    expect(await run.progress(1, 16)).toBeNull();
    expect(await run.streamed()).toEqual(["at 15"]);
  });

  it("a run that fails or is cancelled keeps the progress it reached, even before the progress write landed", async () => {
    const failing = await queuedRun();
    await failing.active(1);
    await failing.progress(1, 45);
    await failing.failed(1, false);
    expect(await failing.row()).toMatchObject({ status: "failed", progress: 45, message: "at 45" });

    const cancelled = await queuedRun();
    await cancelled.active(1);
    await cancelled.progress(1, 70);
    const view = await app.pulse.services.runs.cancel(cancelled.tenantId, cancelled.runId);
    expect(view).toMatchObject({ status: "cancelled", progress: 70 });
  });
});

describe("a publish retried after its connection dropped", () => {
  it("finds its own committed change by its key, so the retry delivers it instead of applying it twice", async () => {
    const run = await queuedRun();
    await run.active(1);
    const { db } = app.pulse.services;
    const base = { tenantId: run.tenantId, runId: run.runId, jobId: run.runId, queue: ROLE, agentRole: ROLE, attempt: 1 };
    const chunk: CountedEventInput = { ...base, type: "agent:output", chunk: "once" };
    // The first try committed, but its answer was lost: the retry asks before applying.
    const seq = await projectEvent(db, chunk, "key-1");
    expect(await appliedSeq(db, chunk, "key-1")).toBe(seq);
    expect(await appliedSeq(db, chunk, "key-2")).toBeNull();
    expect((await run.row()).output).toBe("once");
    // A later change of the run is another publish's: the old key no longer names the row.
    await projectEvent(db, { ...base, type: "agent:log", level: "info", message: "later" }, "key-3");
    expect(await appliedSeq(db, chunk, "key-1")).toBeNull();
  });
});

describe("steps and log lines", () => {
  it("are stored with the run's counter in one change, in UTC, and only for the attempt that is running", async () => {
    const run = await queuedRun();
    await run.active(2);
    const { db } = app.pulse.services;
    const stepId = `${run.runId}:search`;
    const before = Date.now();
    const started = await run.publish({ type: "agent:step", attempt: 2, stepId, name: "search", status: "started" });
    const finished = await run.publish({ type: "agent:step", attempt: 2, stepId, name: "search", status: "failed", error: "no results" });
    const logged = await run.publish({ type: "agent:log", attempt: 2, level: "warn", message: "retrying the search" });
    expect([started, finished, logged].map((p) => p?.event.seq)).toEqual([3, 4, 5]);
    expect((await run.row()).seq).toBe(5);

    const step = await db.runStep.findUniqueOrThrow({ where: { id: stepId } });
    expect(step).toMatchObject({ runId: run.runId, name: "search", status: "failed", attempt: 2, error: "no results" });
    const [log] = await db.runLog.findMany({ where: { runId: run.runId } });
    expect(log).toMatchObject({ tenantId: run.tenantId, level: "warn", message: "retrying the search", attempt: 2 });
    // Written as Prisma writes timestamps: the instant itself, not the database's local time.
    for (const at of [step.startedAt, step.finishedAt!, log!.at]) expect(Math.abs(at.getTime() - before)).toBeLessThan(60_000);
    expect(step.finishedAt!.getTime()).toBeGreaterThanOrEqual(step.startedAt.getTime());

    // Attempt 1 is not the one running: neither its step nor its log line exists anywhere.
    expect(await run.publish({ type: "agent:step", attempt: 1, stepId: `${run.runId}:old`, name: "old", status: "started" })).toBeNull();
    expect(await run.publish({ type: "agent:log", attempt: 1, level: "info", message: "stale" })).toBeNull();
    expect(await db.runStep.count({ where: { runId: run.runId } })).toBe(1);
    expect(await db.runLog.count({ where: { runId: run.runId } })).toBe(1);
    expect((await run.row()).seq).toBe(5);
  });

  it("keep their timestamps in UTC when the database session is in another time zone", async () => {
    const run = await queuedRun();
    await run.active(1);
    const { db } = app.pulse.services;
    const base = { tenantId: run.tenantId, runId: run.runId, jobId: run.runId, queue: ROLE, agentRole: ROLE, attempt: 1 };
    await db.$transaction(async (tx) => {
      // Fourteen hours from UTC: a timestamp written in the session's local time is far off.
      await tx.$executeRawUnsafe("SET LOCAL TIME ZONE 'Pacific/Kiritimati'");
      const client = tx as unknown as Parameters<typeof projectEvent>[0];
      await projectEvent(client, { ...base, type: "agent:step", stepId: `${run.runId}:tz`, name: "tz", status: "completed" }, "tz-1");
      await projectEvent(client, { ...base, type: "agent:log", level: "info", message: "tz" }, "tz-2");
    });
    const step = await db.runStep.findUniqueOrThrow({ where: { id: `${run.runId}:tz` } });
    const [log] = await db.runLog.findMany({ where: { runId: run.runId } });
    for (const at of [step.startedAt, step.finishedAt!, log!.at, (await run.row()).updatedAt]) {
      expect(Math.abs(at.getTime() - Date.now())).toBeLessThan(60_000);
    }
  });
});
