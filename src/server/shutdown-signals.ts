import type { Logger } from "./logger";

export interface ShutdownSignalsOptions {
  logger: Logger;
  /** Logged when a signal arrives: what stopping involves. */
  message: string;
  /** How long stopping may take before the process exits anyway, with code 1. */
  deadlineMs: number;
  /**
   * Repeats of a signal within this long of the first are the same request: a terminal's
   * Ctrl-C reaches every process of the foreground group, and npm forwards the one it got to
   * its child, so one key press can arrive twice.
   */
  repeatWindowMs?: number;
}

/** How `close` is asked to stop. */
export interface StopRequest {
  /** Aborted when a second signal asks to stop at once: hand running work back instead of waiting for it. */
  urgent: AbortSignal;
}

/**
 * SIGINT and SIGTERM handling for an entry point, installed before anything starts. A
 * process with no listener for a signal is killed on the spot, leaving its jobs unfinished;
 * with these listeners in place from the first line, a signal that arrives while Pulse is
 * still starting stops it as soon as it is up. The first signal drains; a second one (not
 * the echo of the first) makes the drain urgent, and the deadline ends a drain that hangs.
 */
export class ShutdownSignals {
  private close?: (request: StopRequest) => Promise<void>;
  private firstAt?: number;
  private readonly urgency = new AbortController();
  private readonly repeatWindowMs: number;

  constructor(private readonly options: ShutdownSignalsOptions) {
    this.repeatWindowMs = options.repeatWindowMs ?? 1_000;
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => this.received(signal));
  }

  /** A signal has arrived: whatever is still starting should stop rather than take on work. */
  get stopping(): boolean {
    return this.firstAt !== undefined;
  }

  /** Pulse is up and `close` stops it: now, if a signal came while it was starting. */
  started(close: (request: StopRequest) => Promise<void>): void {
    this.close = close;
    if (this.stopping) void this.stop();
  }

  private received(signal: NodeJS.Signals): void {
    const { logger, message } = this.options;
    if (this.firstAt === undefined) {
      this.firstAt = Date.now();
      logger.info({ signal }, `${message} (a second Ctrl-C stops at once)`);
      if (this.close) void this.stop();
      return;
    }
    if (Date.now() - this.firstAt < this.repeatWindowMs || this.urgency.signal.aborted) return;
    logger.warn({ signal }, "second signal: handing running jobs back to the queue and stopping now");
    this.urgency.abort();
  }

  /** Stops what started; the deadline counts from here, since starting up may take long on a busy machine. */
  private async stop(): Promise<void> {
    const { logger, deadlineMs } = this.options;
    setTimeout(() => {
      logger.warn(`shutdown took longer than ${deadlineMs / 1000} s; exiting`);
      process.exit(1);
    }, deadlineMs).unref();
    try {
      await this.close!({ urgent: this.urgency.signal });
    } catch (error) {
      this.options.logger.error({ err: error }, "shutdown failed");
      process.exit(1);
    }
    process.exit(0);
  }
}
