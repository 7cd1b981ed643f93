import { randomUUID } from "node:crypto";
import { connectRedis, type RedisClient } from "../redis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Prisma, type PrismaClient } from "../../generated/prisma/client";
import { createQuietTenant, eventually, startTestPulse, storedOutput, type TestPulse } from "../../test/harness";
import type { SqlClient } from "../sql";
import { EventBus } from "./bus";
import { ProgressProjector } from "./progress-projector";
import { appliedSeq, projectProgress, projectRunActivity, type RunActivityInput } from "./projection";
import { RunActivityWriter } from "./run-activity-writer";
import type { EventInput } from "./schema";
import { readRunSnapshot } from "./snapshot";

let app: TestPulse;
let admin: RedisClient;
beforeAll(async () => {
  // No workers: the test plays the worker, publishing through the bus by hand.
  app = await startTestPulse({ runWorkers: false });
  admin = connectRedis(app.redis, `${app.prefix}:admin`);
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
  return runHandle(tenant.tenantId, await app.pulse.services.runs.start(tenant.tenantId, ROLE));
}

/**
 * `count` runs of one fresh tenant, each with attempt 1 running and its counter at 2, as
 * after queued and active. Written to the database directly: a tenant has one run of a role
 * at a time.
 */
async function activeRuns(count: number) {
  const { tenantId } = await createQuietTenant(app);
  return Promise.all(
    Array.from({ length: count }, async () => {
      const id = randomUUID();
      await app.pulse.services.db.agentRun.create({
        data: {
          id,
          jobId: id,
          tenantId,
          agentRole: ROLE,
          queue: ROLE,
          status: "active",
          attempt: 1,
          seq: 2,
          startedAt: new Date(),
        },
      });
      return runHandle(tenantId, { id, jobId: id, queue: ROLE });
    }),
  );
}

type Run = Awaited<ReturnType<typeof activeRuns>>[number];

/** Ways to publish a run's events as its worker would, and to read what they did. */
function runHandle(tenantId: string, run: { id: string; jobId: string; queue: string }) {
  const base = { tenantId, runId: run.id, jobId: run.jobId, queue: run.queue, agentRole: ROLE };
  const { bus, stream, db } = app.pulse.services;
  const now = () => new Date().toISOString();
  return {
    tenantId,
    runId: run.id,
    base: { ...base, attempt: 1 },
    publish: (event: WithoutRunFields<Extract<EventInput, { runId: string }>>) =>
      bus.publish({ ...base, ...event } as EventInput),
    active: (attempt: number) => bus.publish({ ...base, type: "agent:active", attempt, startedAt: now() }),
    progress: (attempt: number, progress: number) =>
      bus.publish({ ...base, type: "agent:progress", attempt, progress, message: `at ${progress}`, phase: "running" }),
    failed: (attempt: number, willRetry: boolean) =>
      bus.publish({ ...base, type: "agent:failed", attempt, error: "boom", failedAt: now(), willRetry }),
    completed: (attempt: number) => bus.publish({ ...base, type: "agent:completed", attempt, completedAt: now() }),
    /** Progress messages in the tenant's stream, in order. */
    streamed: async () =>
      (await stream.readAfter(tenantId, "0-0", 1000)).flatMap((e) =>
        e.event.type === "agent:progress" ? [e.event.message] : [],
      ),
    /** The run's row, with the output its chunks hold. */
    row: async () => ({
      ...(await db.agentRun.findUniqueOrThrow({ where: { id: run.id } })),
      output: await storedOutput(db, run.id),
    }),
    marker: stream.keys.liveAttempt(tenantId, run.id),
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

  it("shows the progress a run ended with in a snapshot read while it ends", async () => {
    const run = await queuedRun();
    await run.active(1);
    const { db, stream, logger } = app.pulse.services;
    // A bus whose progress reaches the database only when it closes: here, only Redis has it.
    const bus = new EventBus({ db, sql: app.database.sql, stream, logger, progressFlushMs: 3_600_000 });
    expect(
      await bus.publish({ ...run.base, type: "agent:progress", progress: 70, phase: "running", message: "at 70" }),
    ).not.toBeNull();
    // The run ends right after the snapshot's database read, before whatever the read does next.
    const endsAfterRead = new Proxy(db, {
      get: (target, name) =>
        name === "agentRun"
          ? {
              findFirst: async (args: Parameters<PrismaClient["agentRun"]["findFirst"]>[0]) => {
                const row = await target.agentRun.findFirst(args);
                expect(
                  await bus.publish({ ...run.base, type: "agent:completed", completedAt: new Date().toISOString() }),
                ).not.toBeNull();
                return row;
              },
            }
          : Reflect.get(target, name),
    });
    const snapshot = await readRunSnapshot(
      { db: endsAfterRead, sql: app.database.sql, stream },
      run.tenantId,
      run.runId,
    );
    // Caught running, it must show the progress the end keeps: the client gets the end next.
    expect(snapshot?.runs[0]).toMatchObject({ status: "active", message: "at 70" });
    expect(await run.row()).toMatchObject({ status: "completed", message: "at 70" });
    await bus.close();
  });

  it("keeps running runs' live progress in Redis for a bounded time, also when the hash was lost mid-run", async () => {
    const run = await queuedRun();
    await run.active(1);
    const key = app.pulse.services.stream.keys.liveProgress(run.tenantId);
    const expiresWithin = async () => {
      const ttl = await admin.ttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(86_400);
    };
    await run.progress(1, 10);
    await run.progress(1, 20);
    await expiresWithin();
    // Gone (evicted, say) while the run goes on: the next report brings it back, expiring too.
    await admin.del(key);
    await run.progress(1, 30);
    expect(JSON.parse((await admin.hget(key, run.runId))!)).toMatchObject({ progress: 30 });
    await expiresWithin();
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

  it("a run ended while its attempt still reports keeps the last progress streamed before its end", async () => {
    const { stream } = app.pulse.services;
    for (const end of ["failed", "completed"] as const) {
      const run = await queuedRun();
      await run.active(1);
      await run.progress(1, 45);
      // Another process ends the attempt (a stalled job): the attempt reports once more after
      // the end read Redis and before the end is appended, so clients see that report first.
      const read = stream.readLiveProgress.bind(stream);
      const spy = vi.spyOn(stream, "readLiveProgress").mockImplementationOnce(async (...args) => {
        const live = await read(...args);
        await run.progress(1, 75);
        return live;
      });
      try {
        await (end === "failed" ? run.failed(1, false) : run.completed(1));
      } finally {
        spy.mockRestore();
      }
      expect(await run.streamed()).toEqual(["at 45", "at 75"]);
      expect(await run.row()).toMatchObject(
        end === "failed"
          ? { status: "failed", progress: 75, message: "at 75" }
          : { status: "completed", progress: 100, message: "at 75" },
      );
    }
  });
});

describe("runs' latest progress, written in batches", () => {
  it("writes the rest of a batch the database refuses for one report's sake, and drops only that report", async () => {
    const [refused, first, second] = await activeRuns(3);
    const logger = app.pulse.services.logger.child({});
    const logged = vi.spyOn(logger, "error");
    const projector = new ProgressProjector(app.database.sql, logger, { flushIntervalMs: 3_600_000 });
    const progress = (run: typeof refused, message: string) =>
      ({ ...run!.base, type: "agent:progress", progress: 40, phase: "running", message }) as const;
    // The bus's schema keeps U+0000 out; handed one directly, the projector meets a
    // statement the database refuses for one row's sake.
    projector.record(progress(refused, "bad \u0000 byte"));
    projector.record(progress(first, "first"));
    projector.record(progress(second, "second"));
    await projector.flush();
    expect(await first!.row()).toMatchObject({ progress: 40, message: "first" });
    expect(await second!.row()).toMatchObject({ progress: 40, message: "second" });
    expect(await refused!.row()).toMatchObject({ progress: 0, message: null });
    // Dropped and logged, not retried for ever; the run's next report is written as usual.
    expect(projector.backlog).toBe(0);
    expect(logged).toHaveBeenCalledWith(expect.objectContaining({ runId: refused!.runId }), expect.any(String));
    projector.record(progress(refused, "fine now"));
    await projector.close();
    expect(await refused!.row()).toMatchObject({ progress: 40, message: "fine now" });
  });
});

describe("agent text holding U+0000 or a lone surrogate, which PostgreSQL cannot store", () => {
  it("is stored and delivered with U+FFFD in its place, in every text field, and the run goes on", async () => {
    const run = await queuedRun();
    await run.active(1);
    const stepId = `${run.runId}:1:s`;
    const published = [
      await run.publish({
        type: "agent:progress",
        attempt: 1,
        progress: 10,
        phase: "running",
        message: "progress \u0000",
      }),
      await run.publish({
        type: "agent:step",
        attempt: 1,
        stepId,
        name: "step \u0000",
        status: "failed",
        error: "error \u0000",
      }),
      await run.publish({ type: "agent:log", attempt: 1, level: "info", message: "log \u0000\uD800" }),
      await run.publish({ type: "agent:output", attempt: 1, chunk: "chunk \u0000\uDC00x" }),
    ];
    expect(published.map((p) => p?.event)).toMatchObject([
      { message: "progress \uFFFD" },
      { name: "step \uFFFD", error: "error \uFFFD" },
      { message: "log \uFFFD\uFFFD" },
      { chunk: "chunk \uFFFD\uFFFDx" },
    ]);
    expect(await run.streamed()).toEqual(["progress \uFFFD"]);
    const { db } = app.pulse.services;
    await eventually(run.row, (r) => r.message === "progress \uFFFD", "the progress written to the database");
    expect(await run.row()).toMatchObject({ seq: 5, output: "chunk \uFFFD\uFFFDx" });
    expect(await db.runStep.findUniqueOrThrow({ where: { id: stepId } })).toMatchObject({
      name: "step \uFFFD",
      error: "error \uFFFD",
    });
    expect(await db.runLog.findMany({ where: { runId: run.runId } })).toMatchObject([{ message: "log \uFFFD\uFFFD" }]);
    expect(
      await run.publish({
        type: "agent:cancelled",
        attempt: 1,
        cancelledAt: new Date().toISOString(),
        reason: "reason \u0000",
      }),
    ).toMatchObject({
      event: { reason: "reason \uFFFD" },
    });
  });
});

describe("a publish retried after its connection dropped", () => {
  it("finds its own committed change by its key, so the retry delivers it instead of applying it twice", async () => {
    const run = await queuedRun();
    await run.active(1);
    const { db } = app.pulse.services;
    const { sql } = app.database;
    const chunk: RunActivityInput = { ...run.base, type: "agent:output", chunk: "once" };
    // The first try committed, but its answer was lost: the retry asks before applying.
    const [seq] = await projectRunActivity(sql, [{ event: chunk, key: "key-1" }]);
    expect(seq).toBe(3);
    expect(await appliedSeq(db, chunk, "key-1")).toBe(seq);
    expect(await appliedSeq(db, chunk, "key-2")).toBeNull();
    expect((await run.row()).output).toBe("once");
    // A later change of the run is another publish's: the old key no longer names the row.
    await projectRunActivity(sql, [
      { event: { ...run.base, type: "agent:log", level: "info", message: "later" }, key: "key-3" },
    ]);
    expect(await appliedSeq(db, chunk, "key-1")).toBeNull();
  });

  it("finds each event of a batch by its own key", async () => {
    const runs = await activeRuns(3);
    const { db } = app.pulse.services;
    const batch = runs.map((run, i) => ({
      event: { ...run.base, type: "agent:log", level: "info", message: `line ${i}` } as const,
      key: `batch-key-${i}`,
    }));
    expect(await projectRunActivity(app.database.sql, batch)).toEqual([3, 3, 3]);
    for (const [i, { event }] of batch.entries()) {
      expect(await appliedSeq(db, event, `batch-key-${i}`)).toBe(3);
      expect(await appliedSeq(db, event, `batch-key-${(i + 1) % 3}`)).toBeNull();
    }
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
    const finished = await run.publish({
      type: "agent:step",
      attempt: 2,
      stepId,
      name: "search",
      status: "failed",
      error: "no results",
    });
    const logged = await run.publish({ type: "agent:log", attempt: 2, level: "warn", message: "retrying the search" });
    expect([started, finished, logged].map((p) => p?.event.seq)).toEqual([3, 4, 5]);
    expect((await run.row()).seq).toBe(5);

    const step = await db.runStep.findUniqueOrThrow({ where: { id: stepId } });
    expect(step).toMatchObject({ runId: run.runId, name: "search", status: "failed", attempt: 2, error: "no results" });
    const [log] = await db.runLog.findMany({ where: { runId: run.runId } });
    expect(log).toMatchObject({ tenantId: run.tenantId, level: "warn", message: "retrying the search", attempt: 2 });
    // Written as Prisma writes timestamps: the instant itself, not the database's local time.
    for (const at of [step.startedAt, step.finishedAt!, log!.at])
      expect(Math.abs(at.getTime() - before)).toBeLessThan(60_000);
    expect(step.finishedAt!.getTime()).toBeGreaterThanOrEqual(step.startedAt.getTime());

    // Attempt 1 is not the one running: neither its step nor its log line exists anywhere.
    expect(
      await run.publish({ type: "agent:step", attempt: 1, stepId: `${run.runId}:old`, name: "old", status: "started" }),
    ).toBeNull();
    expect(await run.publish({ type: "agent:log", attempt: 1, level: "info", message: "stale" })).toBeNull();
    expect(await db.runStep.count({ where: { runId: run.runId } })).toBe(1);
    expect(await db.runLog.count({ where: { runId: run.runId } })).toBe(1);
    expect((await run.row()).seq).toBe(5);
  });

  it("keep their timestamps in UTC when the database session is in another time zone", async () => {
    const run = await queuedRun();
    await run.active(1);
    const { db } = app.pulse.services;
    await app.database.sql.transaction(async (tx) => {
      // Fourteen hours from UTC: a timestamp written in the session's local time is far off.
      await tx.execute(Prisma.sql`SET LOCAL TIME ZONE 'Pacific/Kiritimati'`);
      await projectRunActivity(tx, [
        {
          event: { ...run.base, type: "agent:step", stepId: `${run.runId}:tz`, name: "tz", status: "completed" },
          key: "tz-1",
        },
      ]);
      await projectRunActivity(tx, [
        { event: { ...run.base, type: "agent:log", level: "info", message: "tz" }, key: "tz-2" },
      ]);
    });
    const step = await db.runStep.findUniqueOrThrow({ where: { id: `${run.runId}:tz` } });
    const [log] = await db.runLog.findMany({ where: { runId: run.runId } });
    for (const at of [step.startedAt, step.finishedAt!, log!.at, (await run.row()).updatedAt]) {
      expect(Math.abs(at.getTime() - Date.now())).toBeLessThan(60_000);
    }
  });
});

/** Counters the publishes produced: null for an event that was not delivered. */
const seqs = async (published: Promise<{ event: { seq: number } } | null>[]) =>
  (await Promise.all(published)).map((p) => p?.event.seq ?? null);

describe("steps, log lines and output of many runs at once (group commit)", () => {
  it("give each run consecutive counters and land every row, with every run publishing at the same time", async () => {
    const runs = (await Promise.all([activeRuns(12), activeRuns(12)])).flat();
    const published = await Promise.all(
      runs.map(async (run) => {
        const stepId = `${run.runId}:fetch`;
        const events: Parameters<typeof run.publish>[0][] = [
          { type: "agent:step", attempt: 1, stepId, name: "fetch", status: "started" },
          { type: "agent:log", attempt: 1, level: "info", message: "fetching" },
          { type: "agent:output", attempt: 1, chunk: "a" },
          { type: "agent:step", attempt: 1, stepId, name: "fetch", status: "completed" },
          { type: "agent:output", attempt: 1, chunk: "b" },
          { type: "agent:log", attempt: 1, level: "debug", message: "done" },
        ];
        const counters: (number | null)[] = [];
        for (const event of events) counters.push((await run.publish(event))?.event.seq ?? null);
        return counters;
      }),
    );
    for (const counters of published) expect(counters).toEqual([3, 4, 5, 6, 7, 8]);
    const { db } = app.pulse.services;
    for (const run of runs) {
      expect(await run.row()).toMatchObject({ seq: 8, output: "ab", lastEventKey: expect.any(String) });
      expect(await db.runStep.findUniqueOrThrow({ where: { id: `${run.runId}:fetch` } })).toMatchObject({
        status: "completed",
        finishedAt: expect.any(Date),
      });
      const logs = await db.runLog.findMany({ where: { runId: run.runId }, orderBy: { message: "asc" } });
      expect(logs.map((l) => [l.tenantId, l.level, l.message])).toEqual([
        [run.tenantId, "debug", "done"],
        [run.tenantId, "info", "fetching"],
      ]);
    }
  });

  it("go to the database as one statement for all runs waiting, one event per run per statement", async () => {
    const runs = await activeRuns(20);
    let statements = 0;
    const { sql } = app.database;
    const counting: SqlClient = {
      ...sql,
      query: (statement) => {
        statements++;
        return sql.query(statement);
      },
    };
    const writer = new RunActivityWriter(counting);
    const log = (run: (typeof runs)[number], message: string) =>
      writer.write({ ...run.base, type: "agent:log", level: "info", message }, `${run.runId}:${message}`);
    // Written in one turn: every run's first line goes in the first statement, the five second lines in the next.
    const first = runs.map((run) => log(run, "first"));
    const second = runs.slice(0, 5).map((run) => log(run, "second"));
    expect(await Promise.all(first)).toEqual(runs.map(() => 3));
    expect(await Promise.all(second)).toEqual([4, 4, 4, 4, 4]);
    expect(statements).toBe(2);
  });

  it("go while another batch is in flight, two at most, and a run's next event only once its last is written", async () => {
    const [first, second, third] = (await activeRuns(3)) as [Run, Run, Run];
    const { sql } = app.database;
    // Each statement waits for the test's word; what it names is the runs of its batch.
    const statements: { runs: unknown; release(): void }[] = [];
    const held: SqlClient = {
      ...sql,
      query: async (statement) => {
        await new Promise<void>((release) => statements.push({ runs: statement.values[0], release }));
        return sql.query(statement);
      },
    };
    const writer = new RunActivityWriter(held);
    const log = (run: Run, message: string) =>
      writer.write({ ...run.base, type: "agent:log", level: "info", message }, `${run.runId}:${message}`);
    const started = (count: number) =>
      eventually(
        () => statements.length,
        (n) => n === count,
        `${count} statements`,
        10_000,
      );

    const firstLine = log(first, "one");
    await started(1);
    const firstAgain = log(first, "two");
    const secondLine = log(second, "one");
    await started(2);
    expect(statements[1]!.runs).toEqual([second.runId]);
    const thirdLine = log(third, "one");
    // Both batches in flight: the third run waits for one of them, as the first run's second line does.
    await new Promise((turn) => setImmediate(turn));
    expect(statements).toHaveLength(2);

    statements[1]!.release();
    expect(await secondLine).toBe(3);
    await started(3);
    expect(statements[2]!.runs).toEqual([third.runId]);
    statements[2]!.release();
    expect(await thirdLine).toBe(3);

    statements[0]!.release();
    expect(await firstLine).toBe(3);
    await started(4);
    expect(statements[3]!.runs).toEqual([first.runId]);
    statements[3]!.release();
    expect(await firstAgain).toBe(4);
  });

  it("apply each event of a batch on its own: a stale attempt's line or a foreign step comes back null while the others apply", async () => {
    const [retried, foreign, logged, streamed] = await activeRuns(4);
    await retried!.failed(1, true);
    await retried!.active(2); // counter at 4
    // Published in one turn, so one batch.
    const counters = seqs([
      retried!.publish({ type: "agent:log", attempt: 1, level: "info", message: "from the failed attempt" }),
      foreign!.publish({
        type: "agent:step",
        attempt: 1,
        stepId: `${logged!.runId}:s`,
        name: "not mine",
        status: "started",
      }),
      logged!.publish({ type: "agent:log", attempt: 1, level: "warn", message: "applies" }),
      streamed!.publish({ type: "agent:output", attempt: 1, chunk: "applies too" }),
    ]);
    expect(await counters).toEqual([null, null, 3, 3]);
    const { db } = app.pulse.services;
    expect((await retried!.row()).seq).toBe(4);
    expect((await foreign!.row()).seq).toBe(2);
    expect(await db.runLog.count({ where: { runId: retried!.runId } })).toBe(0);
    expect(await db.runStep.count({ where: { id: `${logged!.runId}:s` } })).toBe(0);
    expect(await db.runLog.findMany({ where: { runId: logged!.runId } })).toMatchObject([
      { level: "warn", message: "applies" },
    ]);
    expect((await streamed!.row()).output).toBe("applies too");
  });

  it("keep one run's order when its events are published without awaiting each other", async () => {
    const [stepping, writing] = await activeRuns(2);
    const stepId = `${stepping!.runId}:think`;
    const counters = Promise.all([
      seqs([
        stepping!.publish({ type: "agent:step", attempt: 1, stepId, name: "think", status: "started" }),
        stepping!.publish({ type: "agent:output", attempt: 1, chunk: "1" }),
        stepping!.publish({
          type: "agent:step",
          attempt: 1,
          stepId,
          name: "think",
          status: "failed",
          error: "lost the thread",
        }),
        stepping!.publish({ type: "agent:output", attempt: 1, chunk: "2" }),
        stepping!.publish({ type: "agent:output", attempt: 1, chunk: "3" }),
      ]),
      seqs([
        writing!.publish({ type: "agent:log", attempt: 1, level: "info", message: "one" }),
        writing!.publish({ type: "agent:output", attempt: 1, chunk: "1" }),
        writing!.publish({ type: "agent:log", attempt: 1, level: "info", message: "two" }),
        writing!.publish({ type: "agent:output", attempt: 1, chunk: "2" }),
        writing!.publish({ type: "agent:output", attempt: 1, chunk: "3" }),
      ]),
    ]);
    expect(await counters).toEqual([
      [3, 4, 5, 6, 7],
      [3, 4, 5, 6, 7],
    ]);
    const { db } = app.pulse.services;
    for (const run of [stepping!, writing!]) expect(await run.row()).toMatchObject({ seq: 7, output: "123" });
    expect(await db.runStep.findUniqueOrThrow({ where: { id: stepId } })).toMatchObject({
      status: "failed",
      error: "lost the thread",
    });
    expect(await db.runLog.count({ where: { runId: writing!.runId } })).toBe(2);
  });

  it("fail only the write whose line the database refuses, not the others of its batch", async () => {
    const [refused, first, second] = await activeRuns(3);
    // The bus's schema keeps U+0000 out of every text; a writer handed one directly sees
    // what any statement the database refuses for one row's sake does.
    const writer = new RunActivityWriter(app.database.sql);
    const bad = writer.write(
      { ...refused!.base, type: "agent:log", level: "error", message: "bad \u0000 byte" },
      "refused",
    );
    const others = Promise.all([
      writer.write({ ...first!.base, type: "agent:log", level: "info", message: "fine" }, "first"),
      writer.write(
        { ...second!.base, type: "agent:step", stepId: `${second!.runId}:ok`, name: "ok", status: "completed" },
        "second",
      ),
    ]);
    await expect(bad).rejects.toThrow();
    expect(await others).toEqual([3, 3]);
    expect((await refused!.row()).seq).toBe(2);
    expect(await app.pulse.services.db.runLog.count({ where: { runId: refused!.runId } })).toBe(0);
  });

  it("rewrite a run's row on its own page: the table leaves room on each page for that", async () => {
    const runs = await activeRuns(60);
    const { db } = app.pulse.services;
    const pageOf = async (runId: string) => {
      const [row] = await db.$queryRaw<{ page: number }[]>(
        Prisma.sql`SELECT (ctid::text::point)[0]::int AS "page" FROM "AgentRun" WHERE "id" = ${runId}`,
      );
      return row!.page;
    };
    // A run on the page that took the most of these rows: one that inserts stopped filling.
    const pages = await Promise.all(runs.map((run) => pageOf(run.runId)));
    const count = (page: number) => pages.filter((p) => p === page).length;
    const fullest = [...new Set(pages)].sort((a, b) => count(b) - count(a))[0]!;
    const run = runs[pages.indexOf(fullest)]!;
    // Room for a few versions of the row without reclaiming any (how many more fit depends on
    // when PostgreSQL prunes the page, which other transactions' snapshots may hold back).
    for (let line = 1; line <= 5; line++) {
      await projectRunActivity(app.database.sql, [
        {
          event: { ...run.base, type: "agent:log", level: "info", message: `line ${line}` },
          key: `${run.runId}:${line}`,
        },
      ]);
      expect(await pageOf(run.runId), `after line ${line}`).toBe(fullest);
    }
    expect((await run.row()).seq).toBe(7);
  });

  it("never deadlock with each other or with a progress flush over the same runs, from any number of connections", async () => {
    const runs = await activeRuns(30);
    const { sql } = app.database;
    const batch = (order: typeof runs, round: number) =>
      projectRunActivity(
        sql,
        order.map((run) => ({
          event: { ...run.base, type: "agent:output", chunk: "." } as const,
          key: `${run.runId}:${round}`,
        })),
      );
    const progress = (order: typeof runs, round: number) =>
      projectProgress(
        sql,
        order.map(
          (run) =>
            ({
              ...run.base,
              type: "agent:progress",
              progress: round,
              phase: "running",
              message: `round ${round}`,
            }) as const,
        ),
      );
    const reversed = [...runs].reverse();
    const shuffled = [...runs].sort(() => Math.random() - 0.5);
    const rounds = 15;
    for (let round = 1; round <= rounds; round++) {
      // Each statement writes the same rows, listed in a different order.
      await Promise.all([
        batch(runs, round),
        batch(reversed, round),
        progress(shuffled, round),
        progress(reversed, round),
      ]);
    }
    for (const run of runs)
      expect(await run.row()).toMatchObject({ seq: 2 + 2 * rounds, output: ".".repeat(2 * rounds), progress: rounds });
  });
});
