import { Worker, type ConnectionOptions } from "bullmq";
import type { RedisClient } from "../redis";
import type { PrismaClient } from "../../generated/prisma/client";
import type { ContextService } from "../context/context-service";
import type { EventBus } from "../events/bus";
import type { Logger } from "../logger";
import { RepeatedErrorLog } from "../repeated-error-log";
import { AgentRun } from "./agent-run";
import { HANDED_BACK } from "./attempt-fields";
import type { AnyAgentDefinition } from "./define-agent";
import { LostAttempts } from "./lost-attempts";
import { queuePrefix, type AgentJobData, type AgentQueues } from "./queue";
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

/**
 * Wraps an agent definition in a BullMQ Worker whose processor runs each attempt as an
 * `AgentRun`, which reports every step of the run to the bus. A worker that dies mid-job is
 * caught by BullMQ's stalled-job check in any live worker, whose `LostAttempts` reports the
 * attempt as failed, so no run stays "running".
 *
 * @see https://docs.bullmq.io/guide/workers/stalled-jobs
 */
export function createAgentWorker(
  definition: AnyAgentDefinition,
  deps: AgentWorkerDeps,
  options: AgentWorkerOptions,
): Worker<AgentJobData> {
  const logger = deps.logger.child({ agentRole: definition.role });
  const lost = new LostAttempts(deps, definition.role, logger);
  const runDeps = { ...deps, lost, logger };
  const worker = new Worker<AgentJobData>(
    definition.role,
    (job, token, signal) => AgentRun.process(definition, runDeps, job, token, signal),
    {
      connection: options.connection,
      prefix: queuePrefix(options.prefix, definition.role),
      concurrency: definition.concurrency ?? options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: 1,
    },
  );
  worker.on("stalled", (jobId) => lost.onStalled(jobId));
  worker.on("failed", (job) => lost.onFailed(job));
  // A worker whose Redis refuses commands fails thousands of times a second, the same way each time.
  const errors = new RepeatedErrorLog(logger);
  worker.on("error", (err) => errors.report(err, "worker error"));
  worker.on("closed", () => errors.close());
  return worker;
}

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
    definitions: readonly AnyAgentDefinition[],
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
