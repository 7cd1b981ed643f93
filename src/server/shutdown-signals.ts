import type { Logger } from "./logger";

export interface ShutdownSignalsOptions {
  logger: Logger;
  /** Logged when a signal arrives: what stopping involves. */
  message: string;
  /** How long stopping may take before the process exits anyway, with code 1. */
  deadlineMs: number;
}

/**
 * SIGINT and SIGTERM handling for an entry point, installed before anything starts. A
 * process with no listener for a signal is killed on the spot, leaving its jobs unfinished
 * and its private redis-server running; with these listeners in place from the first line, a
 * signal that arrives while Pulse is still starting stops it as soon as it is up. A second
 * signal of the same kind kills the process, for when stopping hangs.
 */
export class ShutdownSignals {
  private close?: () => Promise<void>;
  private signal?: NodeJS.Signals;

  constructor(private readonly options: ShutdownSignalsOptions) {
    for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => this.received(signal));
  }

  /** A signal has arrived: whatever is still starting should stop rather than take on work. */
  get stopping(): boolean {
    return this.signal !== undefined;
  }

  /** Pulse is up and `close` stops it: now, if a signal came while it was starting. */
  started(close: () => Promise<void>): void {
    this.close = close;
    if (this.signal) void this.stop();
  }

  private received(signal: NodeJS.Signals): void {
    if (this.signal) return;
    this.signal = signal;
    const { logger, message, deadlineMs } = this.options;
    logger.info({ signal }, message);
    setTimeout(() => {
      logger.warn(`shutdown took longer than ${deadlineMs / 1000} s; exiting`);
      process.exit(1);
    }, deadlineMs).unref();
    if (this.close) void this.stop();
  }

  private async stop(): Promise<void> {
    try {
      await this.close!();
    } catch (error) {
      this.options.logger.error({ err: error }, "shutdown failed");
      process.exit(1);
    }
    process.exit(0);
  }
}
