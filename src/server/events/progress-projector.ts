import { isDatabaseUnavailable } from "../database-unavailable";
import type { Logger } from "../logger";
import type { SqlClient } from "../sql";
import { projectProgress } from "./projection";
import type { ProgressInput } from "./schema";

export interface ProgressProjectorOptions {
  /** How often pending progress is written; a run's progress is at most this stale in the database. */
  flushIntervalMs: number;
}

/**
 * Writes progress to the database off the publisher's path: the latest report of each run
 * wins, and at most one write per run per interval reaches the database, however fast an
 * agent reports. While the database is unreachable, the latest reports wait and are
 * written when it answers again; a newer report simply replaces an older one.
 */
export class ProgressProjector {
  private pending = new Map<string, ProgressInput>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private failures = 0;

  constructor(
    private readonly sql: SqlClient,
    private readonly logger: Logger,
    private readonly options: ProgressProjectorOptions,
  ) {}

  /** Reports waiting to be written. */
  get backlog(): number {
    return this.pending.size;
  }

  /** Queues a run's latest progress. */
  record(event: ProgressInput): void {
    this.pending.set(`${event.tenantId}\u0000${event.runId}`, event);
    this.timer ??= setTimeout(() => void this.flush(), this.options.flushIntervalMs);
  }

  /** Writes everything pending now (one write at a time; a second call waits for the first). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing) await this.flushing;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = this.write(batch).finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  /**
   * Writes a batch in one statement. While the database is unreachable, the batch waits for
   * the next round (what no newer report replaced). A statement the database refuses for
   * one report's sake writes nothing, so each report goes again alone: the others are
   * written, and a report refused alone is dropped (it would be refused again) and logged;
   * the run's next report, or its end, brings the database up to date.
   */
  private async write(batch: Map<string, ProgressInput>): Promise<void> {
    try {
      await projectProgress(this.sql, [...batch.values()]);
      this.failures = 0;
    } catch (error) {
      if (!isDatabaseUnavailable(error)) {
        if (batch.size > 1) {
          for (const [key, event] of batch) await this.write(new Map([[key, event]]));
        } else {
          for (const event of batch.values())
            this.logger.error(
              { err: error, tenantId: event.tenantId, runId: event.runId },
              "the database refused a run's progress; this report is dropped",
            );
        }
        return;
      }
      for (const [key, event] of batch) if (!this.pending.has(key)) this.pending.set(key, event);
      this.failures += 1;
      if (this.failures === 1 || this.failures % 50 === 0)
        this.logger.warn(
          { err: error, runs: batch.size, failures: this.failures },
          "progress write failed; will retry",
        );
      this.timer ??= setTimeout(
        () => void this.flush(),
        Math.min(this.options.flushIntervalMs * 2 ** this.failures, 5_000),
      );
    }
  }

  /** Writes what is pending (one last try) and stops the timer. */
  async close(): Promise<void> {
    await this.flush();
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
