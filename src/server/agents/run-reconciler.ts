import type { AgentRun, PrismaClient } from "../../generated/prisma/client";
import type { EventBus } from "../events/bus";
import { TEXT_LIMITS } from "../events/schema";
import type { Logger } from "../logger";
import type { AgentQueues } from "./queue";
import { fitText } from "./report-text";

export interface RunReconcilerOptions {
  /** How often to look for runs whose job is gone. */
  intervalMs: number;
  /** Runs changed more recently than this are left alone (their job may be on its way). */
  graceMs: number;
  /** An active external agent's run that reported nothing for this long has lost its agent (default: never). */
  externalTimeoutMs?: number;
}

/**
 * Ends runs the queue has forgotten. When Redis loses its data (a restart without
 * persistence, a flush), the database still shows runs queued or active whose BullMQ job no
 * longer exists, and no worker will ever report on them; likewise a job BullMQ failed while
 * no worker was there to say so. Each is reported failed, so no run stays "running". An
 * external agent's run has no job: any report it sends is its heartbeat, and one silent for
 * `externalTimeoutMs` is failed as "agent stopped reporting".
 */
export class RunReconciler {
  private timer?: NodeJS.Timeout;
  private pass?: Promise<number>;

  constructor(
    private readonly deps: {
      db: PrismaClient;
      bus: EventBus;
      queues: AgentQueues;
      logger: Logger;
      /** Roles run by agents outside Pulse: their runs have no job to lose, and may be quiet as long as their agent likes. */
      externalAgentRoles?: readonly string[];
    },
    private readonly options: RunReconcilerOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.reconcile(), this.options.intervalMs);
    this.timer.unref();
    void this.reconcile();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.pass;
  }

  /** One pass; returns how many runs it ended. Overlapping calls share the pass in flight. */
  reconcile(now = Date.now()): Promise<number> {
    this.pass ??= this.run(now).finally(() => (this.pass = undefined));
    return this.pass;
  }

  private async run(now: number): Promise<number> {
    return (await this.endLostJobs(now)) + (await this.endSilentExternalRuns(now));
  }

  private async endLostJobs(now: number): Promise<number> {
    const { db, queues, logger } = this.deps;
    let ended = 0;
    try {
      const stale = await db.agentRun.findMany({
        where: {
          status: { in: ["queued", "active"] },
          updatedAt: { lt: new Date(now - this.options.graceMs) },
          ...(this.deps.externalAgentRoles?.length ? { agentRole: { notIn: [...this.deps.externalAgentRoles] } } : {}),
        },
        take: 500,
      });
      for (const run of stale) {
        const job = await queues.get(run.agentRole).getJob(run.jobId);
        const state = job ? await job.getState() : "missing";
        if (state !== "missing" && state !== "failed" && state !== "unknown") continue;
        const error =
          state === "failed"
            ? fitText(`the queue failed this run: ${job?.failedReason ?? "no reason given"}`, TEXT_LIMITS.error)
            : "this run's job was lost from the queue (was Redis reset?); retry it";
        if (await this.fail(run, error, now)) {
          ended += 1;
          logger.warn({ tenantId: run.tenantId, runId: run.id, state }, "ended a run the queue no longer runs");
        }
      }
    } catch (err) {
      logger.warn({ err }, "run reconciliation failed; next pass retries");
    }
    return ended;
  }

  /** Every report an external agent sends changes its run's row (`updatedAt`): a row unchanged for the timeout has lost its agent. */
  private async endSilentExternalRuns(now: number): Promise<number> {
    const { db, logger, externalAgentRoles = [] } = this.deps;
    const timeoutMs = this.options.externalTimeoutMs;
    if (timeoutMs === undefined || externalAgentRoles.length === 0) return 0;
    let ended = 0;
    try {
      const silent = await db.agentRun.findMany({
        where: {
          status: "active",
          agentRole: { in: [...externalAgentRoles] },
          updatedAt: { lt: new Date(now - timeoutMs) },
        },
        take: 500,
      });
      for (const run of silent) {
        const error = `agent stopped reporting: nothing for ${Math.round(timeoutMs / 1000)} s (EXTERNAL_AGENT_TIMEOUT_SECONDS); retry it`;
        if (await this.fail(run, error, now)) {
          ended += 1;
          logger.warn(
            { tenantId: run.tenantId, runId: run.id },
            "ended an external agent's run that stopped reporting",
          );
        }
      }
    } catch (err) {
      logger.warn({ err }, "looking for silent external runs failed; next pass retries");
    }
    return ended;
  }

  /** Ends the run as failed for good, on every dashboard; false when it had already ended. */
  private async fail(
    run: Pick<AgentRun, "tenantId" | "id" | "jobId" | "queue" | "agentRole" | "attempt">,
    error: string,
    now: number,
  ): Promise<boolean> {
    const published = await this.deps.bus.publish({
      type: "agent:failed",
      tenantId: run.tenantId,
      runId: run.id,
      jobId: run.jobId,
      queue: run.queue,
      agentRole: run.agentRole,
      attempt: run.attempt,
      error,
      failedAt: new Date(now).toISOString(),
      willRetry: false,
    });
    return published !== null;
  }
}
