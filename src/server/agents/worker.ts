import { randomUUID } from "node:crypto";
import { UnrecoverableError, WaitingError, Worker, type ConnectionOptions, type Job } from "bullmq";
import type { RedisClient } from "../redis";
import type { PrismaClient } from "../../generated/prisma/client";
import type { ContextService } from "../context/context-service";
import type { EventBus } from "../events/bus";
import { TEXT_LIMITS, type AgentEventInput, type LogLevel, type RunPhase } from "../events/schema";
import type { Logger } from "../logger";
import { RepeatedErrorLog } from "../repeated-error-log";
import { RunCancelledError, type AgentContext, type AgentDefinition } from "./define-agent";
import { queuePrefix, type AgentJobData, type AgentQueues } from "./queue";
import { fitText, textPieces } from "./report-text";
import { cancelChannel, type RunService } from "./run-service";

export interface AgentWorkerOptions {
  connection: ConnectionOptions;
  /** Pulse's key namespace: the queue's prefix is made from it, and the cancel channel's name. */
  prefix: string;
  concurrency: number;
  /** How long a job's lock lives without renewal; a dead worker's job is noticed after this. */
  lockDurationMs: number;
  /** How often workers look for jobs whose lock expired (stalled jobs). */
  stalledIntervalMs: number;
}

export interface AgentWorkerDeps {
  db: PrismaClient;
  bus: EventBus;
  runs: RunService;
  /** For looking jobs up when BullMQ reports a stall. */
  queues: AgentQueues;
  context: ContextService;
  logger: Logger;
}

type RunRow = { id: string; tenantId: string; jobId: string; queue: string; agentRole: string; attempt: number; status: string };

/**
 * Wraps an agent definition in a BullMQ Worker that reports every step of the run to the
 * bus: active, progress, steps, output, logs, then completed (starting the next agent of
 * its chain) or failed (with whether BullMQ will retry). A worker that dies mid-job is
 * caught by BullMQ's stalled-job check in any live worker, which reports the attempt as
 * failed, so no run stays "running".
 *
 * @see https://docs.bullmq.io/guide/workers/stalled-jobs
 */
export function createAgentWorker(
  definition: AgentDefinition<any>,
  deps: AgentWorkerDeps,
  options: AgentWorkerOptions,
): Worker<AgentJobData> {
  const logger = deps.logger.child({ agentRole: definition.role });

  /**
   * Reports an attempt whose worker vanished. The projection applies it only while that
   * very attempt is still the run's current one, so a late or repeated report is a no-op.
   */
  const reportLostAttempt = async (runId: string, attempt: number | "current", willRetry: boolean) => {
    const run = await deps.db.agentRun.findUnique({ where: { id: runId } });
    if (!run) return;
    logger.warn(
      { tenantId: run.tenantId, runId, jobId: run.jobId, attempt: attempt === "current" ? run.attempt : attempt, willRetry },
      "attempt lost its worker: reporting it as failed",
    );
    await deps.bus.publish({
      ...base(run, attempt === "current" ? run.attempt : attempt),
      type: "agent:failed",
      error: willRetry ? "the worker running this attempt stopped responding; retrying" : "the worker running this attempt stopped responding",
      failedAt: new Date().toISOString(),
      willRetry,
    });
  };

  const base = (run: RunRow, attempt: number) => ({
    tenantId: run.tenantId,
    runId: run.id,
    jobId: run.jobId,
    queue: run.queue,
    agentRole: run.agentRole,
    attempt,
  });

  const processor = async (job: Job<AgentJobData>, token?: string, signal?: AbortSignal) => {
    const { tenantId, runId } = job.data;
    const run = await deps.db.agentRun.findFirst({ where: { id: runId, tenantId } });
    // A run cancelled while it waited, or already finished by a previous attempt, is done.
    if (!run || (run.status !== "queued" && run.status !== "active")) return;
    const attempt = Math.max(1, job.attemptsStarted);
    const log = logger.child({ tenantId, runId, jobId: job.id, attempt });
    const abort = signal ?? new AbortController().signal;
    const reports = new AttemptReports(deps.bus);
    const publish = (event: AgentEventInput) => reports.publish(event);
    // An earlier attempt still shown active never reported its end: its worker died. Close
    // it before this one starts (a no-op if the stall handler got there first).
    if (run.status === "active" && run.attempt < attempt) await reportLostAttempt(run.id, run.attempt, true);
    const started = await publish({ ...base(run, attempt), type: "agent:active", startedAt: new Date().toISOString() });
    if (!started) {
      log.debug("attempt no longer current: not started");
      return;
    }
    log.debug("agent run started");
    const startedAt = Date.now();

    const throwIfCancelled = () => {
      if (abort.aborted) throw new RunCancelledError();
    };
    const ctx: AgentContext = {
      tenantId,
      runId,
      agentRole: run.agentRole,
      attempt,
      input: job.data.input,
      signal: abort,
      progress: (percent: number, message: string, phase: RunPhase = "running") =>
        reports.track(async () => {
          throwIfCancelled();
          if (typeof percent !== "number" || Number.isNaN(percent)) throw new TypeError(`ctx.progress: percent must be a number from 0 to 100, not ${String(percent)}`);
          const progress = Math.min(100, Math.max(0, percent));
          await publish({ ...base(run, attempt), type: "agent:progress", progress, message: fitText(message, TEXT_LIMITS.progressMessage), phase });
        }),
      step: <T>(stepName: string, fn: () => Promise<T> | T): Promise<T> =>
        reports.track(async () => {
          throwIfCancelled();
          if (typeof stepName !== "string" || stepName.length === 0) throw new TypeError("ctx.step: a step needs a name people can read");
          const name = fitText(stepName, TEXT_LIMITS.stepName);
          const stepId = `${runId}:${attempt}:${randomUUID().slice(0, 8)}`;
          await publish({ ...base(run, attempt), type: "agent:step", stepId, name, status: "started" });
          try {
            const result = await fn();
            throwIfCancelled();
            await publish({ ...base(run, attempt), type: "agent:step", stepId, name, status: "completed" });
            return result;
          } catch (error) {
            if (!(error instanceof RunCancelledError)) {
              await publish({ ...base(run, attempt), type: "agent:step", stepId, name, status: "failed", error: errorMessage(error) });
            }
            throw error;
          }
        }),
      output: (chunk: string) =>
        reports.track(async () => {
          throwIfCancelled();
          for (const piece of textPieces(chunk, TEXT_LIMITS.outputChunk)) await publish({ ...base(run, attempt), type: "agent:output", chunk: piece });
        }),
      log: (level: LogLevel, message: string) =>
        reports.track(async () => {
          if (message.length > 0) await publish({ ...base(run, attempt), type: "agent:log", level, message: fitText(message, TEXT_LIMITS.logMessage) });
        }),
      contextFile: {
        markGenerating: () => deps.context.markGenerating(tenantId),
        complete: (content: string) => deps.context.complete(tenantId, content),
      },
    };

    try {
      try {
        await definition.run(ctx);
      } finally {
        // Reports and steps the agent started but did not await are part of the attempt.
        await reports.settled();
      }
      // An attempt that finished while its process was stopping is complete, not handed back.
      if (abort.reason !== HANDED_BACK) throwIfCancelled();
    } catch (error) {
      if (abort.reason === HANDED_BACK) {
        await handBack(job, token, run, attempt);
        throw new WaitingError();
      }
      // Cancelled runs were already reported by whoever cancelled them.
      if (error instanceof RunCancelledError || abort.aborted) {
        log.info({ durationMs: Date.now() - startedAt }, "agent run cancelled");
        return;
      }
      const attemptsAllowed = job.opts.attempts ?? 1;
      const willRetry = !(error instanceof UnrecoverableError) && job.attemptsMade + 1 < attemptsAllowed;
      log.warn({ willRetry, durationMs: Date.now() - startedAt, err: error }, "agent run failed");
      await publish({ ...base(run, attempt), type: "agent:failed", error: errorMessage(error), failedAt: new Date().toISOString(), willRetry });
      throw error;
    }

    const [nextAgent, ...rest] = job.data.chain;
    const completed = await publish({
      ...base(run, attempt),
      type: "agent:completed",
      completedAt: new Date().toISOString(),
      ...(nextAgent ? { nextAgent } : {}),
    });
    log.debug({ durationMs: Date.now() - startedAt, ...(nextAgent ? { nextAgent } : {}) }, "agent run completed");
    if (completed && nextAgent) {
      await deps.runs.start(tenantId, nextAgent, {
        ...(job.data.chainId ? { chainId: job.data.chainId } : {}),
        chain: rest,
        input: job.data.input,
      });
    }
  };

  /**
   * Returns a job whose process is stopping to the queue, so another worker (or this one,
   * restarted) runs it at once instead of after the stalled-job check. The attempt shows as
   * failed and retrying meanwhile; the hand-back uses no retry from the job's allowance.
   */
  const handBack = async (job: Job<AgentJobData>, token: string | undefined, run: RunRow, attempt: number) => {
    logger.info({ tenantId: run.tenantId, runId: run.id, jobId: job.id, attempt }, "shutting down: handing the run back to the queue");
    await deps.bus.publish({
      ...base(run, attempt),
      type: "agent:failed",
      error: "Pulse stopped while this attempt ran; it goes back to the queue",
      failedAt: new Date().toISOString(),
      willRetry: true,
    });
    await job.moveToWait(token);
  };

  const worker = new Worker<AgentJobData>(definition.role, processor, {
    connection: options.connection,
    prefix: queuePrefix(options.prefix, definition.role),
    concurrency: definition.concurrency ?? options.concurrency,
    lockDuration: options.lockDurationMs,
    stalledInterval: options.stalledIntervalMs,
    maxStalledCount: 1,
  });

  worker.on("stalled", (jobId) => {
    stalledAttempt(deps.queues, definition.role, jobId)
      .then(async (attempt) => {
        if (attempt !== null) await reportLostAttempt(jobId, attempt, true);
        logger.debug({ runId: jobId, jobId, attempt }, "stalled run handled");
      })
      .catch((err) => logger.error({ err, runId: jobId, jobId }, "could not report stalled run"));
  });
  worker.on("failed", (job) => {
    // The processor reports its own failures; this catches the ones BullMQ decides without
    // running the processor, such as a job that stalled more often than allowed (failed
    // when a worker next picks it up). The job will never run again, so whichever attempt
    // the run last showed is over.
    if (!job?.id) return;
    const runId = job.id;
    job
      .getState()
      .then((state) => (state === "failed" ? reportLostAttempt(runId, "current", false) : undefined))
      .catch((err) => logger.error({ err, runId, jobId: runId, attempt: job.attemptsStarted }, "could not report failed run"));
  });
  // A worker whose Redis refuses commands fails thousands of times a second, the same way each time.
  const errors = new RepeatedErrorLog(logger);
  worker.on("error", (err) => errors.report(err, "worker error"));
  worker.on("closed", () => errors.close());
  return worker;
}

/**
 * The attempt a stalled job was running. BullMQ counts an attempt when a job becomes active,
 * and the 'stalled' event comes after the job went back to waiting, where a free worker (the
 * very one that noticed, after a restart) may already have started the next attempt. A job
 * found waiting was read before its state, so before any next attempt: its count is the
 * stalled one. A job found active again or done is read once more after its state, so its
 * count includes the next attempt, the one after the stalled one; read only before, it
 * could still be the stalled one's, and "one less" named an attempt 0.
 */
export async function stalledAttempt(queues: Pick<AgentQueues, "get">, role: string, jobId: string): Promise<number | null> {
  const queue = queues.get(role);
  const job = await queue.getJob(jobId);
  if (!job) return null;
  const state = await job.getState();
  if (state !== "active" && state !== "completed") return job.attemptsStarted;
  const again = await queue.getJob(jobId);
  return again && again.attemptsStarted > 1 ? again.attemptsStarted - 1 : null;
}

/** The abort reason that tells a running attempt its process is stopping and the job goes back to the queue. */
const HANDED_BACK = "handed back";

export interface WorkerPoolCloseOptions {
  /** Abandon running jobs instead of finishing or handing them back. */
  force?: boolean;
  /** How long running jobs may take to finish before they are handed back (default: as long as they take). */
  drainMs?: number;
  /** Aborted: hand running jobs back now. */
  urgent?: AbortSignal;
}

/** Whether `work` is still pending after `ms`, or when `urgent` is aborted, whichever comes first. */
async function outlasts(work: Promise<unknown>, ms: number, urgent?: AbortSignal): Promise<boolean> {
  if (urgent?.aborted) return true;
  let timer: NodeJS.Timeout | undefined;
  let onUrgent = () => {};
  const giveUp = new Promise<boolean>((resolve) => {
    if (Number.isFinite(ms)) timer = setTimeout(() => resolve(true), ms);
    onUrgent = () => resolve(true);
    urgent?.addEventListener("abort", onUrgent, { once: true });
  });
  try {
    return await Promise.race([work.then(() => false), giveUp]);
  } finally {
    clearTimeout(timer);
    urgent?.removeEventListener("abort", onUrgent);
  }
}

function errorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return fitText(message, TEXT_LIMITS.error) || "unknown error";
}

/**
 * Every agent worker of one process, and the subscription through which cancellations
 * reach them. One owner, one `close()`.
 */
export class AgentWorkerPool {
  private readonly workers = new Map<string, Worker<AgentJobData>>();

  private constructor(
    private readonly subscriber: RedisClient,
    private readonly logger: Logger,
  ) {}

  static async start(
    definitions: readonly AgentDefinition<any>[],
    deps: AgentWorkerDeps & { subscriber: RedisClient },
    options: AgentWorkerOptions,
  ): Promise<AgentWorkerPool> {
    const pool = new AgentWorkerPool(deps.subscriber, deps.logger);
    for (const definition of definitions) {
      pool.workers.set(definition.role, createAgentWorker(definition, deps, options));
    }
    await deps.subscriber.subscribe(cancelChannel(options.prefix));
    deps.subscriber.on("message", (_channel: string, message: string) => pool.onCancel(message));
    await Promise.all([...pool.workers.values()].map((w) => w.waitUntilReady()));
    return pool;
  }

  private onCancel(message: string): void {
    try {
      const { runId, role } = JSON.parse(message) as { runId: string; role: string };
      this.logger.debug({ runId, jobId: runId, agentRole: role }, "cancelling run");
      this.workers.get(role)?.cancelJob(runId, "cancelled");
    } catch (err) {
      this.logger.warn({ err }, "ignoring malformed cancel message");
    }
  }

  get roles(): string[] {
    return [...this.workers.keys()];
  }

  /** Each role's worker, for watching its events (the health check counts their errors). */
  get byRole(): ReadonlyMap<string, Worker<AgentJobData>> {
    return this.workers;
  }

  /**
   * Stops taking jobs and waits for running ones to finish; those still running after
   * `drainMs`, or once `urgent` is aborted, are handed back to the queue. With `force`,
   * running jobs are abandoned (their locks expire and the stalled-job check retries them).
   */
  async close(options: WorkerPoolCloseOptions = {}): Promise<void> {
    const { force = false, drainMs = Infinity, urgent } = options;
    const closed = Promise.all([...this.workers.values()].map((w) => w.close(force)));
    if (!force && (await outlasts(closed, drainMs, urgent))) {
      this.logger.info("handing running jobs back to the queue");
      for (const worker of this.workers.values()) worker.cancelAllJobs(HANDED_BACK);
    }
    await closed;
    await this.subscriber.quit().catch(() => {});
  }
}

/**
 * What an attempt reports goes out one report after another, in the order its agent made
 * them, whether it awaited them or not: a log line (written to the database before it is
 * streamed) never lands after a progress report made later (which is streamed at once).
 * `settled` waits for every report and step the agent started, so the attempt's end comes
 * after all of them instead of refusing the ones still on their way.
 */
export class AttemptReports {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly outstanding = new Set<Promise<unknown>>();

  constructor(private readonly bus: Pick<EventBus, "publish">) {}

  publish(event: AgentEventInput): ReturnType<EventBus["publish"]> {
    const published = this.tail.then(() => this.bus.publish(event));
    // One report's failure is its caller's; the next still goes.
    this.tail = published.catch(() => {});
    return published;
  }

  /**
   * Runs one of the agent's calls and counts it until it ends. Its outcome is the caller's
   * to await; one the agent left unawaited cannot fail the process as an unhandled rejection.
   */
  track<T>(call: () => Promise<T>): Promise<T> {
    const work = call();
    this.outstanding.add(work);
    const done = () => void this.outstanding.delete(work);
    work.then(done, done);
    return work;
  }

  /** Resolves once every call started so far, and any they started, has ended. */
  async settled(): Promise<void> {
    while (this.outstanding.size > 0) await Promise.allSettled([...this.outstanding]);
  }
}
