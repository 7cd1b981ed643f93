import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { afterEach, describe, expect, inject, it } from "vitest";
import type { Database, PrismaClient } from "../db";
import { applyAgentItem, emptyAgentState } from "@pulse/client";
import type { AgentFeedItem } from "../../lib/trpc/types";
import { defineAgent, type AgentDefinition } from "./define-agent";
import {
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  openTestPostgres,
  OpenConnections,
  startTestPulse,
  type Collector,
  type TestPulse,
  type TrackedItem,
} from "../../test/harness";
import { CapturedLog } from "../../test/captured-log";
import { createLogger } from "../logger";

/**
 * Guarantee 6 of DESIGN.md: a run whose worker dies mid-job ends on every dashboard as
 * retrying or failed, never stuck at "running". BullMQ notices the dead worker when the
 * job's lock (lockDuration, renewed by a live worker every lockDuration / 2) has expired
 * and a live worker's stalled check (every stalledInterval) finds the job still active; it
 * moves the job back to wait ("stalled") and, past maxStalledCount (1 here), fails it.
 *
 * @see https://docs.bullmq.io/guide/workers/stalled-jobs
 */

/** Short locks and checks, so a death is noticed in about two seconds. */
const FAST_STALL = { lockDurationMs: 1_000, stalledIntervalMs: 500, concurrency: 1 };
/** Kill to "agent:failed" at most: lock expiry + two stalled checks + a generous margin. */
const NOTICE_BOUND_MS = 8_000;

const repoRoot = path.resolve(import.meta.dirname, "../../..");

const opened: TestPulse[] = [];
/** Clients and subscriptions a test opens, closed after it. */
const open = new OpenConnections();
const { clients, collectors } = open;
const children: ChildProcess[] = [];
const databases: Database[] = [];

afterEach(async () => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await open.closeAll();
  // Workers and the API first; the Pulse that owns the database last.
  for (const app of opened.splice(0).reverse()) await app.close();
  for (const db of databases.splice(0)) await db.close();
});

async function start(options: Parameters<typeof startTestPulse>[0]): Promise<TestPulse> {
  const app = await startTestPulse(options);
  opened.push(app);
  return app;
}

/** Reports that it holds the job, then never finishes and ignores every signal: a hung or dead process. */
function holdingAgent(role: string): AgentDefinition {
  return defineAgent({
    role,
    async run(ctx) {
      await ctx.progress(10, `holding attempt ${ctx.attempt}`);
      await new Promise<never>(() => {});
    },
  });
}

/** What a healthy worker does with the job: finish it (after `workMs` of work). */
function finishingAgent(role: string, workMs = 0): AgentDefinition {
  return defineAgent({
    role,
    async run(ctx) {
      await ctx.progress(50, `attempt ${ctx.attempt} on a live worker`);
      if (workMs > 0) await new Promise((r) => setTimeout(r, workMs));
    },
  });
}

/**
 * The same database, with `agentRun.findUnique` (the stall handler's read of the run)
 * answering `delayMs` late: real queries, real rows, only the latency of a busy database.
 */
function withSlowRunLookups(database: Database, delayMs: number): Database {
  const prisma = database.prisma.$extends({
    query: {
      agentRun: {
        async findUnique({ args, query }) {
          await new Promise((r) => setTimeout(r, delayMs));
          return query(args);
        },
      },
    },
  }) as unknown as PrismaClient;
  return { ...database, prisma, close: async () => {} };
}

/** The API's view of the role: it starts runs, it never runs them (runWorkers: false). */
const apiAgent = (role: string) => defineAgent({ role, run: async () => {} });

/** A run's lifecycle as a dashboard sees it, one line per event. */
function lifecycle(items: TrackedItem[], runId: string): string[] {
  return items
    .filter((i) => i.data.runId === runId)
    .map((i) => {
      const d = i.data;
      if (d.type === "agent:progress") return `${d.attempt} progress ${d.message}`;
      if (d.type === "agent:failed") return `${d.attempt} failed willRetry=${d.willRetry}`;
      return `${d.attempt} ${d.type}`;
    });
}

async function watchTenant(api: TestPulse) {
  const tenant = await createQuietTenant(api);
  const client = connectClient(api, tenant.token);
  clients.push(client);
  const feed = collect((h) => client.trpc.agent.onStatus.subscribe({}, h));
  collectors.push(feed);
  await eventually(
    () => feed.items.length,
    (n) => n === 1,
    "the snapshot",
  );
  return { tenant, client, feed };
}

/** Waits until the feed has the run's end, completed or failed. */
const runEnded = (feed: Collector, runId: string) =>
  eventually(
    () => feed.items.some((i) => i.data.runId === runId && ["agent:completed", "agent:failed"].includes(i.data.type)),
    Boolean,
    "the run to end",
  );

const failedAt = (feed: Collector, runId: string, attempt: number) =>
  eventually(
    () =>
      feed.items.find((i) => i.data.runId === runId && i.data.type === "agent:failed" && i.data.attempt === attempt),
    Boolean,
    `attempt ${attempt} reported failed`,
    NOTICE_BOUND_MS,
  );

const holding = (feed: Collector, runId: string, attempt: number) =>
  eventually(
    () =>
      feed.items.find((i) => i.data.runId === runId && i.data.type === "agent:progress" && i.data.attempt === attempt),
    Boolean,
    `attempt ${attempt} of ${runId} to be held`,
    NOTICE_BOUND_MS,
  );

/**
 * Starts a live worker that is busy for good with another tenant's run of the role: its
 * stalled check still runs, but it cannot take the stalled job itself, so the stall is
 * reported before any new attempt starts.
 */
async function busyLiveWorker(api: TestPulse, role: string, worker = FAST_STALL): Promise<TestPulse> {
  const live = await start({
    database: api.database,
    prefix: api.prefix,
    agents: [holdingAgent(role)],
    worker,
  });
  const other = await createQuietTenant(api);
  const run = await api.pulse.services.runs.start(other.tenantId, role);
  await eventually(
    () => api.pulse.services.runs.get(other.tenantId, run.id),
    (r) => r.progress === 10,
    "the live worker to be busy",
  );
  return live;
}

const completedRun = (feed: Collector, runId: string) =>
  eventually(
    () => feed.items.some((i) => i.data.runId === runId && i.data.type === "agent:completed"),
    Boolean,
    "attempt 2 to complete",
    NOTICE_BOUND_MS,
  );

const DIED_THEN_RETRIED = (holdingMessage: string) => [
  "1 agent:queued",
  "1 agent:active",
  `1 progress ${holdingMessage}`,
  "1 failed willRetry=true",
  "2 agent:active",
  "2 progress attempt 2 on a live worker",
  "2 agent:completed",
];

describe("an agent's reports", () => {
  it("reach dashboards in the order the agent made them, awaited or not, all before the run's end", async () => {
    const role = "fire-and-forget";
    const api = await start({
      agents: [
        defineAgent({
          role,
          async run(ctx) {
            // None awaited: a log line is written to the database first, progress is not.
            void ctx.log("info", "one");
            void ctx.progress(20, "two");
            void ctx.output("three");
            void ctx.step("four", () => {});
            void ctx.progress(40, "five");
            void ctx.log("info", "six");
          },
        }),
      ],
    });
    const { tenant, feed } = await watchTenant(api);
    const run = await api.pulse.services.runs.start(tenant.tenantId, role);
    await eventually(
      () => feed.items.some((i) => i.data.runId === run.id && i.data.type === "agent:completed"),
      Boolean,
      "the run to complete",
    );
    const reports = feed.items
      .filter((i) => i.data.runId === run.id)
      .map((i) => {
        const d = i.data;
        if (d.type === "agent:progress" || d.type === "agent:log") return d.message;
        if (d.type === "agent:output") return d.chunk;
        if (d.type === "agent:step") return `${d.name} ${d.status}`;
        return d.type;
      });
    // The step's work runs once "started" is out, after "five" and "six" were reported: it ends after them.
    expect(reports).toEqual([
      "agent:queued",
      "agent:active",
      "one",
      "two",
      "three",
      "four started",
      "five",
      "six",
      "four completed",
      "agent:completed",
    ]);
  });
  it("of any length complete the run: output goes whole in pieces, a long message, line or step name is cut short", async () => {
    const role = "long-winded";
    // A model's whole answer as one chunk: about 40,000 characters, an emoji across each 16 KiB boundary.
    const answer = `${"a".repeat(16_383)}😀${"b".repeat(16_381)}😀${"c".repeat(7_000)}`;
    const api = await start({
      agents: [
        defineAgent({
          role,
          async run(ctx) {
            await ctx.progress(50, "p".repeat(1_000));
            await ctx.step("s".repeat(300), async () => {
              await ctx.output(answer);
              await ctx.log("info", "l".repeat(10_000));
              await ctx.log("info", "");
            });
          },
        }),
      ],
    });
    const { tenant, feed } = await watchTenant(api);
    const run = await api.pulse.services.runs.start(tenant.tenantId, role);
    await runEnded(feed, run.id);
    const events = feed.items.filter((i) => i.data.runId === run.id).map((i) => i.data);
    expect(events.map((e) => e.type)).toEqual([
      "agent:queued",
      "agent:active",
      "agent:progress",
      "agent:step",
      "agent:output",
      "agent:output",
      "agent:output",
      "agent:log",
      "agent:step",
      "agent:completed",
    ]);
    const chunks = events.flatMap((e) => (e.type === "agent:output" ? [e.chunk] : []));
    expect(chunks.join("")).toBe(answer);
    expect(chunks.map((c) => c.length)).toEqual([16_383, 16_383, 7_002]);
    const { runs, db } = api.pulse.services;
    expect((await runs.get(tenant.tenantId, run.id)).output).toBe(answer);
    expect(events.find((e) => e.type === "agent:progress")).toMatchObject({ message: `${"p".repeat(499)}…` });
    expect(events.find((e) => e.type === "agent:step")).toMatchObject({ name: `${"s".repeat(199)}…` });
    expect(await db.runLog.findMany({ where: { runId: run.id }, select: { message: true } })).toEqual([
      { message: `${"l".repeat(3_999)}…` },
    ]);
  });

  it("the agent got wrong (NaN progress, a step without a name) throw an error that says so, and send nothing", async () => {
    const role = "careless";
    const errors: string[] = [];
    const api = await start({
      agents: [
        defineAgent({
          role,
          async run(ctx) {
            await ctx.progress(Number.NaN, "halfway?").catch((error: Error) => errors.push(error.message));
            await ctx.step("", () => "never run").catch((error: Error) => errors.push(error.message));
            await ctx.progress(Infinity, "clamped");
          },
        }),
      ],
    });
    const { tenant, feed } = await watchTenant(api);
    const run = await api.pulse.services.runs.start(tenant.tenantId, role);
    await runEnded(feed, run.id);
    expect(errors).toEqual([
      "ctx.progress: percent must be a number from 0 to 100, not NaN",
      "ctx.step: a step needs a name people can read",
    ]);
    const events = feed.items.filter((i) => i.data.runId === run.id).map((i) => i.data);
    expect(events.map((e) => e.type)).toEqual(["agent:queued", "agent:active", "agent:progress", "agent:completed"]);
    expect(events[2]).toMatchObject({ progress: 100, message: "clamped" });
  });

  it("start their output afresh on a retry, on a run's page as in the database", async () => {
    const role = "second-draft";
    const api = await start({
      attempts: 2,
      agents: [
        defineAgent({
          role,
          async run(ctx) {
            if (ctx.attempt === 1) {
              await ctx.output("first draft, abandoned. ");
              throw new Error("the model timed out");
            }
            await ctx.output("second draft");
          },
        }),
      ],
    });
    const { tenant, client } = await watchTenant(api);
    const run = await api.pulse.services.runs.start(tenant.tenantId, role);
    // What the run page subscribes to: the run alone, its snapshot with the output so far.
    const page = collect((h) => client.trpc.agent.onStatus.subscribe({ runId: run.id }, h));
    collectors.push(page);
    await eventually(() => page.items.some((i) => i.data.type === "agent:completed"), Boolean, "the retry to complete");
    const shown = page.items.reduce(
      (state, i) => applyAgentItem(state, { id: i.id, item: i.data as AgentFeedItem }),
      emptyAgentState,
    );
    expect(shown.runs[run.id]).toMatchObject({ status: "completed", attempt: 2, output: "second draft" });
    expect(await api.pulse.services.runs.get(tenant.tenantId, run.id)).toMatchObject({
      attempt: 2,
      output: "second draft",
    });
  });
});

describe("a run whose worker dies mid-job (in one process)", () => {
  it("is reported as retrying once its lock expires, and completes as attempt 2 on the next free worker", async () => {
    const role = "stall-once";
    const api = await start({ runWorkers: false, agents: [apiAgent(role)], worker: FAST_STALL });
    const { client, feed } = await watchTenant(api);
    const victim = await start({
      database: api.database,
      prefix: api.prefix,
      agents: [holdingAgent(role)],
      worker: FAST_STALL,
    });

    const { runId } = await client.trpc.agent.run.mutate({ agentRole: role });
    await holding(feed, runId, 1);
    await busyLiveWorker(api, role);
    // The live worker leaves the job alone while the victim renews its lock.
    await new Promise((r) => setTimeout(r, 2 * FAST_STALL.lockDurationMs));
    expect((await client.trpc.agent.get.query({ runId })).status).toBe("active");

    // Death: lock renewal stops and the victim's connections close; its processor never returns.
    const killedAt = Date.now();
    await victim.close();
    const failed = await failedAt(feed, runId, 1);
    expect(Date.now() - killedAt).toBeLessThan(NOTICE_BOUND_MS);
    expect(failed!.data).toMatchObject({ runId, willRetry: true, error: expect.stringMatching(/stopped responding/) });
    // Retrying, not running: the dashboard's state for the run is back in the queue.
    expect(await client.trpc.agent.get.query({ runId })).toMatchObject({
      status: "queued",
      willRetry: true,
      attempt: 1,
    });

    await start({ database: api.database, prefix: api.prefix, agents: [finishingAgent(role)], worker: FAST_STALL });
    await completedRun(feed, runId);
    expect(lifecycle(feed.items, runId)).toEqual(DIED_THEN_RETRIED("holding attempt 1"));
    expect(await client.trpc.agent.get.query({ runId })).toMatchObject({
      status: "completed",
      attempt: 2,
      willRetry: false,
    });
  });

  // Regression: the stall report once named the run's *current* attempt, so when a free
  // worker had already started attempt 2 it was attempt 2 that got reported failed, and the
  // healthy retry's events were dropped for ever. A busy database makes that order certain:
  // here the noticing worker's run lookups answer 500 ms late.
  it("is reported as retrying and completes even when the stall report reaches the database late", async () => {
    const role = "stall-race";
    const api = await start({ runWorkers: false, agents: [apiAgent(role)], worker: FAST_STALL });
    const { client, feed } = await watchTenant(api);
    const victim = await start({
      database: api.database,
      prefix: api.prefix,
      agents: [holdingAgent(role)],
      worker: FAST_STALL,
    });

    const { runId } = await client.trpc.agent.run.mutate({ agentRole: role });
    await holding(feed, runId, 1);
    await start({
      database: withSlowRunLookups(api.database, 500),
      prefix: api.prefix,
      agents: [finishingAgent(role, 1_500)],
      worker: FAST_STALL,
    });
    await victim.close();

    const final = await eventually(
      () => client.trpc.agent.get.query({ runId }),
      (r) => r.status === "completed" || r.status === "failed",
      "the run to end",
      NOTICE_BOUND_MS,
    );
    expect(final).toMatchObject({ status: "completed", attempt: 2 });
    // The database answers as soon as the completion commits; the event reaches the feed after.
    await completedRun(feed, runId);
    const seen = lifecycle(feed.items, runId);
    expect(seen).not.toContain("2 failed willRetry=true");
    expect(seen.slice(-3)).toEqual(["2 agent:active", "2 progress attempt 2 on a live worker", "2 agent:completed"]);
  });

  // Regression: after a restart, the worker that noticed the stall took the job again at
  // once, and the stall report, reading the job before the new attempt counted, named
  // "attempt 0": its event failed validation and an error was logged after every restart.
  it("is reported with its own attempt when the restarted worker takes the job again at once", async () => {
    const role = "stall-restart";
    const api = await start({ runWorkers: false, agents: [apiAgent(role)], worker: FAST_STALL });
    const { client, feed } = await watchTenant(api);
    const victim = await start({
      database: api.database,
      prefix: api.prefix,
      agents: [holdingAgent(role)],
      worker: FAST_STALL,
    });
    const { runId } = await client.trpc.agent.run.mutate({ agentRole: role });
    await holding(feed, runId, 1);

    // The process that takes over has served the role before, as a restarted replica soon
    // has: another tenant's run, started there, completes there (the victim is busy).
    const log = new CapturedLog();
    const restarted = await start({
      database: api.database,
      prefix: api.prefix,
      agents: [finishingAgent(role)],
      worker: FAST_STALL,
      logger: createLogger("debug", "restarted", log),
    });
    const other = await createQuietTenant(api);
    const served = await restarted.pulse.services.runs.start(other.tenantId, role);
    await eventually(
      () => api.pulse.services.runs.get(other.tenantId, served.id),
      (r) => r.status === "completed",
      "the other tenant's run to complete",
    );
    await victim.close();
    await completedRun(feed, runId);
    expect(lifecycle(feed.items, runId)).toEqual(DIED_THEN_RETRIED("holding attempt 1"));
    // The stall handler may still be at work when the run completes: wait for its verdict.
    await eventually(
      () =>
        log.lines.filter(
          (l) => l.runId === runId && /^(stalled run handled|could not report stalled run)$/.test(l.msg),
        ),
      (lines) => lines.length > 0,
      "the stall to be handled",
    );
    expect(log.errors()).toEqual([]);
    const reported = log.lines.filter(
      (l) => l.runId === runId && l.msg === "attempt lost its worker: reporting it as failed",
    );
    expect(reported.map((l) => l.attempt)).toEqual(reported.map(() => 1));
  });

  // Regression: a job that stalls more often than maxStalledCount allows is failed by BullMQ
  // when a worker next picks it up, without running the processor; the run, already shown
  // as retrying, must then end failed rather than wait for a retry that never comes.
  it("whose worker dies again on its retry ends failed, not retrying for ever", async () => {
    const role = "stall-twice";
    const api = await start({ runWorkers: false, agents: [apiAgent(role)], worker: FAST_STALL });
    const { client, feed } = await watchTenant(api);
    const first = await start({
      database: api.database,
      prefix: api.prefix,
      agents: [holdingAgent(role)],
      worker: FAST_STALL,
    });
    const { runId } = await client.trpc.agent.run.mutate({ agentRole: role });
    await holding(feed, runId, 1);
    await busyLiveWorker(api, role);

    await first.close();
    await failedAt(feed, runId, 1);
    const second = await start({
      database: api.database,
      prefix: api.prefix,
      agents: [holdingAgent(role)],
      worker: FAST_STALL,
    });
    await holding(feed, runId, 2);
    await second.close();
    await failedAt(feed, runId, 2);
    await start({ database: api.database, prefix: api.prefix, agents: [finishingAgent(role)], worker: FAST_STALL });

    // Stalled twice with maxStalledCount 1: BullMQ fails the job, and the dashboard must say so.
    const final = await eventually(
      () => client.trpc.agent.get.query({ runId }),
      (r) => r.status === "failed",
      "the run to end failed",
      NOTICE_BOUND_MS,
    );
    expect(final).toMatchObject({ willRetry: false });
    // The database is written before the stream, so the event may still be on its way.
    await eventually(
      () => lifecycle(feed.items, runId).at(-1) ?? "",
      (last) => /failed willRetry=false$/.test(last),
      "the final failure event",
    );
  });
});

/**
 * The worker as a process of its own, killed with SIGKILL. PGlite cannot be shared between
 * processes, so this needs PostgreSQL (`DATABASE_URL`, as `.ci/run` sets where one runs).
 */
const WORKER_PROCESS = `
const root = process.env.PULSE_ROOT;
const { Pulse } = await import(root + "/src/server/pulse.ts");
const { openDatabase } = await import(root + "/src/server/db.ts");
const { createLogger } = await import(root + "/src/server/logger.ts");
const database = await openDatabase({ databaseUrl: process.env.PULSE_DATABASE_URL, pgliteDir: "", migrate: false });
const agent = {
  role: process.env.PULSE_ROLE,
  async run(ctx) {
    await ctx.progress(10, "holding attempt " + ctx.attempt + " in pid " + process.pid);
    await new Promise(() => {});
  },
};
await Pulse.start({
  database,
  redis: JSON.parse(process.env.PULSE_REDIS),
  redisPrefix: process.env.PULSE_PREFIX,
  logger: createLogger(process.env.TEST_LOG_LEVEL ?? "silent", "victim"),
  agents: [agent],
  runWorkers: true,
  serveSubscriptions: false,
  retention: { maxAgeMs: 86400000, minEvents: 10000, maxEvents: 100000 },
  logRetentionDays: 30,
  worker: JSON.parse(process.env.PULSE_WORKER),
  attempts: 3,
  auth: { secret: new TextEncoder().encode("a-secret-the-victim-never-uses-for-anything"), sessionTtlSeconds: 60 },
});
process.stdout.write("ready\\n");
`;

/**
 * The worker process's lock: long enough that a loaded machine's pauses in that process do not
 * let its lock lapse before the kill (with FAST_STALL's one second, a CI run once saw the held
 * job stall back to the queue and the busy live worker take it instead of its own run), short
 * enough that the kill is noticed well within NOTICE_BOUND_MS.
 */
const KILLED_PROCESS_STALL = { ...FAST_STALL, lockDurationMs: 3_000 };

function spawnWorkerProcess(app: TestPulse, databaseUrl: string, role: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", WORKER_PROCESS], {
    cwd: repoRoot,
    env: {
      ...process.env,
      PULSE_ROOT: repoRoot,
      PULSE_DATABASE_URL: databaseUrl,
      PULSE_REDIS: JSON.stringify(app.redis),
      PULSE_PREFIX: app.prefix,
      PULSE_ROLE: role,
      PULSE_WORKER: JSON.stringify(KILLED_PROCESS_STALL),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker process did not start: ${stderr}`)), 30_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`worker process exited (${code ?? signal}) before it was ready: ${stderr}`));
    });
  });
}

describe.skipIf(!inject("databaseUrl"))("a run whose worker process is killed with SIGKILL", () => {
  it("is reported as retrying on every dashboard, then completes as attempt 2 on another worker", async () => {
    const role = "stall-process";
    const { database, url } = await openTestPostgres();
    databases.push(database);
    const api = await start({ database, runWorkers: false, agents: [apiAgent(role)], worker: KILLED_PROCESS_STALL });
    const { client, feed } = await watchTenant(api);
    const victim = await spawnWorkerProcess(api, url, role);

    const { runId } = await client.trpc.agent.run.mutate({ agentRole: role });
    const held = await holding(feed, runId, 1);
    expect(held!.data.message).toBe(`holding attempt 1 in pid ${victim.pid}`);
    await busyLiveWorker(api, role, KILLED_PROCESS_STALL);

    const exited = new Promise((resolve) => victim.once("exit", (_code, signal) => resolve(signal)));
    const killedAt = Date.now();
    victim.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");

    const failed = await failedAt(feed, runId, 1);
    expect(Date.now() - killedAt).toBeLessThan(NOTICE_BOUND_MS);
    expect(failed!.data).toMatchObject({ runId, willRetry: true, error: expect.stringMatching(/stopped responding/) });
    expect(await client.trpc.agent.get.query({ runId })).toMatchObject({ status: "queued", willRetry: true });

    await start({ database, prefix: api.prefix, agents: [finishingAgent(role)], worker: KILLED_PROCESS_STALL });
    await completedRun(feed, runId);
    expect(lifecycle(feed.items, runId)).toEqual(DIED_THEN_RETRIED(`holding attempt 1 in pid ${victim.pid}`));
    expect(await client.trpc.agent.get.query({ runId })).toMatchObject({ status: "completed", attempt: 2 });
  });
});
