import type { Worker } from "bullmq";
import type { Logger } from "../logger";
import { FailureWindow } from "../metrics/failure-window";

export interface WorkerBackoffOptions {
  /** The first pause (default 1 s); each pause that ends in more errors doubles it. */
  minPauseMs?: number;
  /** The longest pause (default 30 s). */
  maxPauseMs?: number;
}

/**
 * Backs a BullMQ worker off while Redis refuses its commands. BullMQ retries a refused fetch
 * (CROSSSLOT, a script error, an incompatible server) at once, thousands of times a second,
 * and only waits between retries when the connection is down; a worker that keeps failing
 * (see `FailureWindow`) is paused instead, for a growing while, then tried again. Its last
 * error is the reason `/healthz` reports meanwhile.
 */
export class WorkerBackoff {
  private readonly window = new FailureWindow();
  private readonly minPauseMs: number;
  private readonly maxPauseMs: number;
  private pauseMs: number;
  private pausedUntil = 0;
  private pausedFor = "";
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Paused at least once since the last success. */
  private backingOff = false;

  constructor(
    private readonly role: string,
    private readonly worker: Pick<Worker, "on" | "pause" | "resume" | "isPaused">,
    private readonly logger: Logger,
    options: WorkerBackoffOptions = {},
  ) {
    this.minPauseMs = options.minPauseMs ?? 1_000;
    this.maxPauseMs = options.maxPauseMs ?? 30_000;
    this.pauseMs = this.minPauseMs;
    worker.on("error", (err) => this.failed(err));
    // Anything the worker does that needs Redis counts as Redis accepting its commands.
    for (const event of ["active", "completed", "failed", "drained"] as const) worker.on(event, () => this.succeeded());
  }

  /** Why the worker is not working now (paused after repeated errors, or failing), or null. */
  reason(now = Date.now()): string | null {
    if (now < this.pausedUntil)
      return `worker ${this.role} is paused for ${Math.ceil((this.pausedUntil - now) / 1000)} s after repeated errors: ${this.pausedFor}`;
    const failing = this.window.failing(now);
    return failing ? `worker ${this.role} keeps failing: ${failing}` : null;
  }

  private failed(err: unknown): void {
    this.window.failed(err);
    const failing = this.window.failing();
    if (!failing || this.timer || this.stopped) return;
    this.pausedFor = err instanceof Error ? err.message.slice(0, 200) : String(err).slice(0, 200);
    this.pausedUntil = Date.now() + this.pauseMs;
    // One line when the refusals begin; the longer pauses that follow show in `/healthz`.
    if (!this.backingOff)
      this.logger.warn(
        { agentRole: this.role, reason: this.pausedFor },
        `worker ${this.role}: Redis keeps refusing its commands; pausing it, for ${this.pauseMs / 1000} s and longer while it lasts`,
      );
    this.backingOff = true;
    // Without waiting for running jobs: they finish (or fail) by themselves.
    void this.worker.pause(true).catch(() => {});
    this.timer = setTimeout(() => this.resume(), this.pauseMs);
    this.pauseMs = Math.min(this.pauseMs * 2, this.maxPauseMs);
  }

  private resume(): void {
    this.timer = undefined;
    this.pausedUntil = 0;
    if (this.stopped) return;
    void this.worker.resume().catch(() => {});
  }

  private succeeded(): void {
    this.window.succeeded();
    if (this.timer || !this.backingOff) return;
    this.backingOff = false;
    this.pauseMs = this.minPauseMs;
    this.logger.info({ agentRole: this.role }, `worker ${this.role}: Redis accepts its commands again`);
  }

  /** Stops pausing and resuming (the worker is closing). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
