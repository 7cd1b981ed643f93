import { Queue, type ConnectionOptions } from "bullmq";
import type { Logger } from "../logger";
import { RepeatedErrorLog } from "../repeated-error-log";

/** What travels in a BullMQ job: the tenant and run it belongs to, never more than ids and input. */
export interface AgentJobData {
  tenantId: string;
  runId: string;
  chainId?: string;
  /** The named chain `chainId` is a run of. */
  chainName?: string;
  /** Roles still to run after this one, in order (the rest of the chain). */
  chain: string[];
  input: Record<string, unknown>;
}

/**
 * The BullMQ prefix of one role's queue: BullMQ names every key of a queue
 * `<prefix>:<queue>:<kind>`, and its scripts touch several of them at once, so the prefix
 * carries a hash tag of the role's own. Each queue's keys then share a cluster slot, and
 * different queues land on different slots (spread over the masters), apart from the
 * tenants' keys (`<prefix>:{tenantId}:…`).
 *
 * @see https://docs.bullmq.io/bull/patterns/redis-cluster
 */
export const queuePrefix = (redisPrefix: string, role: string) => `${redisPrefix}:queue:{${role}}`;

export interface AgentQueuesOptions {
  connection: ConnectionOptions;
  /** Pulse's key namespace; each queue's own prefix is made from it (see `queuePrefix`). */
  prefix: string;
  /** Attempts per run before it is failed for good. */
  attempts: number;
  /** Where a queue's connection errors go (a Redis restart), instead of bare lines on stderr. */
  logger?: Logger;
}

/**
 * One BullMQ queue per agent role, shared by every tenant; the tenant travels in the job
 * data. The job id is the run id, so enqueueing a run twice is a no-op.
 *
 * @see https://docs.bullmq.io/guide/jobs/job-ids
 */
export class AgentQueues {
  private readonly queues = new Map<string, Queue<AgentJobData>>();

  /** A Redis restart makes every queue report the same error for as long as it lasts. */
  private readonly errors?: RepeatedErrorLog;

  constructor(private readonly options: AgentQueuesOptions) {
    if (options.logger) this.errors = new RepeatedErrorLog(options.logger, { level: "debug" });
  }

  get(role: string): Queue<AgentJobData> {
    let queue = this.queues.get(role);
    if (!queue) {
      queue = new Queue<AgentJobData>(role, {
        connection: this.options.connection,
        prefix: queuePrefix(this.options.prefix, role),
      });
      // Without a listener, an emitted 'error' would be printed raw; the connection retries by itself.
      queue.on("error", (err) => this.errors?.report(err, "queue connection error", { queue: role }));
      this.queues.set(role, queue);
    }
    return queue;
  }

  async enqueue(role: string, data: AgentJobData): Promise<void> {
    await this.get(role).add(role, data, {
      jobId: data.runId,
      attempts: this.options.attempts,
      backoff: { type: "exponential", delay: 1_000 },
      removeOnComplete: { age: 24 * 3600, count: 1_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  /** Removes a job that has not started; false when it is running (or gone). */
  async removeWaiting(role: string, runId: string): Promise<boolean> {
    const job = await this.get(role).getJob(runId);
    if (!job) return false;
    const state = await job.getState();
    if (state !== "waiting" && state !== "delayed" && state !== "prioritized" && state !== "waiting-children")
      return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
    this.errors?.close();
  }
}
