import { randomUUID } from "node:crypto";
import { UnrecoverableError, WaitingError, type Job } from "bullmq";
import type { PrismaClient } from "../../generated/prisma/client";
import type { ContextService } from "../context/context-service";
import type { EventBus } from "../events/bus";
import { TEXT_LIMITS, type AgentEventInput, type LogLevel, type RunPhase } from "../events/schema";
import type { Logger } from "../logger";
import { attemptFields, errorMessage, HANDED_BACK, type RunRow } from "./attempt-fields";
import { AttemptReports } from "./attempt-reports";
import { RunCancelledError, type AgentContext, type AnyAgentDefinition } from "./define-agent";
import type { LostAttempts } from "./lost-attempts";
import type { AgentJobData } from "./queue";
import { fitText, textPieces } from "./report-text";
import type { RunService } from "./run-service";

/** What an attempt needs from the process around it. */
export interface AgentRunDeps {
  db: PrismaClient;
  bus: Pick<EventBus, "publish">;
  runs: Pick<RunService, "start">;
  context: Pick<ContextService, "markGenerating" | "complete">;
  lost: Pick<LostAttempts, "report">;
  /** The role's logger. */
  logger: Logger;
}

/**
 * One attempt of a run on this worker, from its start to its end: it numbers the attempt,
 * closes an earlier attempt whose worker died, reports `agent:active`, hands the agent a
 * context whose every report goes out in order, then ends the attempt as completed (starting
 * the chain's next agent), failed (saying whether BullMQ retries), cancelled, or handed
 * back to the queue when the process stops.
 *
 * @see https://docs.bullmq.io/guide/workers
 */
export class AgentRun {
  private readonly reports: AttemptReports;
  private readonly log: Logger;
  private readonly startedAt = Date.now();

  private constructor(
    private readonly job: Job<AgentJobData>,
    private readonly run: RunRow,
    readonly attempt: number,
    private readonly signal: AbortSignal,
    private readonly deps: AgentRunDeps,
  ) {
    this.reports = new AttemptReports(deps.bus);
    this.log = deps.logger.child({ tenantId: run.tenantId, runId: run.id, jobId: job.id, attempt });
  }

  /** BullMQ's processor: runs one attempt of the job's run with `definition`. */
  static async process(
    definition: AnyAgentDefinition,
    deps: AgentRunDeps,
    job: Job<AgentJobData>,
    token?: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const run = await AgentRun.begin(deps, job, signal ?? new AbortController().signal);
    if (run) await run.execute(definition, token);
  }

  /**
   * BullMQ counts an attempt when the job becomes active, so `attemptsStarted` is this
   * attempt's 1-based number (at least 1, for a job moved to active by hand).
   */
  static attemptNumber(job: Job<AgentJobData>): number {
    return Math.max(1, job.attemptsStarted);
  }

  /** Starts the attempt, or returns null when there is nothing to run or a later attempt already started. */
  private static async begin(
    deps: AgentRunDeps,
    job: Job<AgentJobData>,
    signal: AbortSignal,
  ): Promise<AgentRun | null> {
    const { tenantId, runId } = job.data;
    const row = await deps.db.agentRun.findFirst({ where: { id: runId, tenantId } });
    // A run cancelled while it waited, or already finished by a previous attempt, is done.
    if (!row || (row.status !== "queued" && row.status !== "active")) return null;
    const run = new AgentRun(job, row, AgentRun.attemptNumber(job), signal, deps);
    return (await run.reportStarted()) ? run : null;
  }

  /** Closes an earlier attempt that never reported its end, then reports this one active; false if no longer current. */
  private async reportStarted(): Promise<boolean> {
    // An earlier attempt still shown active never reported its end: its worker died. Close
    // it before this one starts (a no-op if the stall handler got there first).
    if (this.run.status === "active" && this.run.attempt < this.attempt) {
      await this.deps.lost.report(this.run.id, this.run.attempt, true);
    }
    const started = await this.publish({ type: "agent:active", startedAt: new Date().toISOString() });
    if (!started) this.log.debug("attempt no longer current: not started");
    else this.log.debug("agent run started");
    return started !== null;
  }

  /** Runs the agent and ends the attempt by how it went. */
  private async execute(definition: AnyAgentDefinition, token: string | undefined): Promise<void> {
    try {
      await this.runAgent(definition);
    } catch (error) {
      await this.endAfterError(error, token);
      return;
    }
    await this.complete();
  }

  /** The agent's own work; reports and steps it started but did not await are part of the attempt. */
  private async runAgent(definition: AnyAgentDefinition): Promise<void> {
    try {
      await definition.run(this.context());
    } finally {
      await this.reports.settled();
    }
    // An attempt that finished while its process was stopping is complete, not handed back.
    if (this.signal.reason !== HANDED_BACK) this.throwIfCancelled();
  }

  /** Hands the job back, or says the run was cancelled, or reports the failure and rethrows it for BullMQ. */
  private async endAfterError(error: unknown, token: string | undefined): Promise<void> {
    if (this.signal.reason === HANDED_BACK) {
      await this.handBack(token);
      throw new WaitingError();
    }
    // Cancelled runs were already reported by whoever cancelled them.
    if (error instanceof RunCancelledError || this.signal.aborted) {
      this.log.info({ durationMs: this.elapsedMs() }, "agent run cancelled");
      return;
    }
    await this.fail(error);
    throw error;
  }

  /** Reports the attempt failed, and whether BullMQ will run another. */
  private async fail(error: unknown): Promise<void> {
    const attemptsAllowed = this.job.opts.attempts ?? 1;
    const willRetry = !(error instanceof UnrecoverableError) && this.job.attemptsMade + 1 < attemptsAllowed;
    this.log.warn({ willRetry, durationMs: this.elapsedMs(), err: error }, "agent run failed");
    await this.publish({
      type: "agent:failed",
      error: errorMessage(error),
      failedAt: new Date().toISOString(),
      willRetry,
    });
  }

  /** Reports the run completed and starts the next agent of its chain. */
  private async complete(): Promise<void> {
    const [nextAgent, ...rest] = this.job.data.chain;
    const next = nextAgent ? { nextAgent } : {};
    const completed = await this.publish({ type: "agent:completed", completedAt: new Date().toISOString(), ...next });
    this.log.debug({ durationMs: this.elapsedMs(), ...next }, "agent run completed");
    if (!completed || !nextAgent) return;
    const { chainId, chainName, input } = this.job.data;
    await this.deps.runs.start(this.run.tenantId, nextAgent, {
      ...(chainId ? { chainId, ...(chainName ? { chainName } : {}) } : {}),
      chain: rest,
      input,
    });
  }

  /**
   * Returns a job whose process is stopping to the queue, so another worker (or this one,
   * restarted) runs it at once instead of after the stalled-job check. The attempt shows as
   * failed and retrying meanwhile; the hand-back uses no retry from the job's allowance.
   */
  private async handBack(token: string | undefined): Promise<void> {
    this.log.info("shutting down: handing the run back to the queue");
    await this.deps.bus.publish({
      ...attemptFields(this.run, this.attempt),
      type: "agent:failed",
      error: "Pulse stopped while this attempt ran; it goes back to the queue",
      failedAt: new Date().toISOString(),
      willRetry: true,
    });
    await this.job.moveToWait(token);
  }

  /** What the agent's `run` gets. */
  private context(): AgentContext {
    const { tenantId } = this.run;
    return {
      tenantId,
      runId: this.run.id,
      agentRole: this.run.agentRole,
      attempt: this.attempt,
      input: this.job.data.input,
      signal: this.signal,
      progress: (percent, message, phase) => this.reports.track(() => this.progress(percent, message, phase)),
      step: (name, fn) => this.reports.track(() => this.step(name, fn)),
      output: (chunk) => this.reports.track(() => this.output(chunk)),
      log: (level, message) => this.reports.track(() => this.logLine(level, message)),
      contextFile: {
        markGenerating: () => this.deps.context.markGenerating(tenantId),
        complete: (content: string) => this.deps.context.complete(tenantId, content),
      },
    };
  }

  private async progress(percent: number, message: string, phase: RunPhase = "running"): Promise<void> {
    this.throwIfCancelled();
    if (typeof percent !== "number" || Number.isNaN(percent)) {
      throw new TypeError(`ctx.progress: percent must be a number from 0 to 100, not ${String(percent)}`);
    }
    const progress = Math.min(100, Math.max(0, percent));
    await this.publish({
      type: "agent:progress",
      progress,
      message: fitText(message, TEXT_LIMITS.progressMessage),
      phase,
    });
  }

  private async step<T>(stepName: string, fn: () => Promise<T> | T): Promise<T> {
    this.throwIfCancelled();
    if (typeof stepName !== "string" || stepName.length === 0)
      throw new TypeError("ctx.step: a step needs a name people can read");
    const step = {
      stepId: `${this.run.id}:${this.attempt}:${randomUUID().slice(0, 8)}`,
      name: fitText(stepName, TEXT_LIMITS.stepName),
    };
    await this.publish({ type: "agent:step", ...step, status: "started" });
    try {
      const result = await fn();
      this.throwIfCancelled();
      await this.publish({ type: "agent:step", ...step, status: "completed" });
      return result;
    } catch (error) {
      if (!(error instanceof RunCancelledError)) {
        await this.publish({ type: "agent:step", ...step, status: "failed", error: errorMessage(error) });
      }
      throw error;
    }
  }

  private async output(chunk: string): Promise<void> {
    this.throwIfCancelled();
    for (const piece of textPieces(chunk, TEXT_LIMITS.outputChunk))
      await this.publish({ type: "agent:output", chunk: piece });
  }

  private async logLine(level: LogLevel, message: string): Promise<void> {
    if (message.length > 0)
      await this.publish({ type: "agent:log", level, message: fitText(message, TEXT_LIMITS.logMessage) });
  }

  /** Publishes one of this attempt's events, after every earlier one. */
  private publish(event: DistributiveOmit<AgentEventInput, keyof ReturnType<typeof attemptFields>>) {
    return this.reports.publish({ ...attemptFields(this.run, this.attempt), ...event } as AgentEventInput);
  }

  private throwIfCancelled(): void {
    if (this.signal.aborted) throw new RunCancelledError();
  }

  private elapsedMs(): number {
    return Date.now() - this.startedAt;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
