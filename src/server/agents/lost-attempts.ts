import type { Job } from "bullmq";
import type { PrismaClient } from "../../generated/prisma/client";
import type { EventBus } from "../events/bus";
import type { Logger } from "../logger";
import { attemptFields } from "./attempt-fields";
import type { AgentJobData, AgentQueues } from "./queue";

/**
 * Attempts whose worker vanished (killed, or its lock expired), reported as failed so no run
 * stays "running". BullMQ tells any live worker through its `stalled` and `failed` events.
 *
 * @see https://docs.bullmq.io/guide/workers/stalled-jobs
 */
export class LostAttempts {
  constructor(
    private readonly deps: {
      db: PrismaClient;
      bus: Pick<EventBus, "publish">;
      queues: Pick<AgentQueues, "get">;
    },
    private readonly role: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Reports an attempt whose worker vanished. The projection applies it only while that
   * very attempt is still the run's current one, so a late or repeated report is a no-op.
   */
  async report(runId: string, attempt: number | "current", willRetry: boolean): Promise<void> {
    const run = await this.deps.db.agentRun.findUnique({ where: { id: runId } });
    if (!run) return;
    const lost = attempt === "current" ? run.attempt : attempt;
    this.logger.warn(
      { tenantId: run.tenantId, runId, jobId: run.jobId, attempt: lost, willRetry },
      "attempt lost its worker: reporting it as failed",
    );
    const error = "the worker running this attempt stopped responding";
    // The worker may have died between counting an event in the database and appending it: the
    // stream then sees this report skip the run's counter, and subscribers resync (see `APPEND`).
    await this.deps.bus.publish({
      ...attemptFields(run, lost),
      type: "agent:failed",
      error: willRetry ? `${error}; retrying` : error,
      failedAt: new Date().toISOString(),
      willRetry,
    });
  }

  /** BullMQ's `stalled`: the job went back to waiting; the attempt it was running is over and will be retried. */
  onStalled(jobId: string): void {
    stalledAttempt(this.deps.queues, this.role, jobId)
      .then(async (attempt) => {
        if (attempt !== null) await this.report(jobId, attempt, true);
        this.logger.debug({ runId: jobId, jobId, attempt }, "stalled run handled");
      })
      .catch((err) => this.logger.error({ err, runId: jobId, jobId }, "could not report stalled run"));
  }

  /**
   * BullMQ's `failed`. The processor reports its own failures; this catches the ones BullMQ
   * decides without running the processor, such as a job that stalled more often than
   * allowed (failed when a worker next picks it up). The job will never run again, so
   * whichever attempt the run last showed is over.
   */
  onFailed(job: Job<AgentJobData> | undefined): void {
    if (!job?.id) return;
    const runId = job.id;
    job
      .getState()
      .then((state) => (state === "failed" ? this.report(runId, "current", false) : undefined))
      .catch((err) =>
        this.logger.error({ err, runId, jobId: runId, attempt: job.attemptsStarted }, "could not report failed run"),
      );
  }
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
export async function stalledAttempt(
  queues: Pick<AgentQueues, "get">,
  role: string,
  jobId: string,
): Promise<number | null> {
  const queue = queues.get(role);
  const job = await queue.getJob(jobId);
  if (!job) return null;
  const state = await job.getState();
  if (state !== "active" && state !== "completed") return job.attemptsStarted;
  const again = await queue.getJob(jobId);
  return again && again.attemptsStarted > 1 ? again.attemptsStarted - 1 : null;
}
