import type { SqlClient } from "../sql";
import { isDatabaseUnavailable } from "../database-unavailable";
import {
  DEFAULT_RUN_OUTPUT_MAX_CHARS,
  projectRunActivity,
  type KeyedRunActivity,
  type RunActivityInput,
} from "./projection";

/** An event waiting for its batch, and the publish waiting for its answer. */
interface QueuedActivity extends KeyedRunActivity {
  resolve(seq: number | null): void;
  reject(error: unknown): void;
}

/**
 * Writes running attempts' steps, log lines and output to the database by group commit:
 * while one batch is in flight, new events queue, and when it returns, everything queued goes
 * as the next batch, one statement for all of them (`projectRunActivity`). No timer: alone,
 * an event costs one round trip as before; under load, batches grow instead of statements
 * (and their round trips and commits) multiplying.
 *
 * A batch holds at most one event per run, so each event gets the run's counter after its
 * own bump, and a run's events apply in the order they were written.
 */
export class RunActivityWriter {
  private queue: QueuedActivity[] = [];
  private writing = false;

  constructor(
    private readonly sql: SqlClient,
    /** How much of an attempt's output a run keeps (see `projectRunActivity`). */
    private readonly outputMaxChars = DEFAULT_RUN_OUTPUT_MAX_CHARS,
  ) {}

  /**
   * Applies an event with the next batch: resolves to its `seq`, or null when it no longer
   * applies. A batch that fails fails each of its events, for its publish to retry.
   */
  write(event: RunActivityInput, key: string): Promise<number | null> {
    return new Promise((resolve, reject) => {
      this.queue.push({ event, key, resolve, reject });
      if (this.writing) return;
      this.writing = true;
      // Events written in the same turn of the event loop (a burst of publishes) start out together.
      queueMicrotask(() => void this.drain());
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) await this.writeBatch(this.nextBatch());
    this.writing = false;
  }

  /** The oldest queued event of each run; a run's later events stay queued, in order. */
  private nextBatch(): QueuedActivity[] {
    const runs = new Set<string>();
    const batch: QueuedActivity[] = [];
    const later: QueuedActivity[] = [];
    for (const queued of this.queue) {
      if (runs.has(queued.event.runId)) {
        later.push(queued);
      } else {
        runs.add(queued.event.runId);
        batch.push(queued);
      }
    }
    this.queue = later;
    return batch;
  }

  private async writeBatch(batch: QueuedActivity[]): Promise<void> {
    try {
      const seqs = await projectRunActivity(this.sql, batch, this.outputMaxChars);
      batch.forEach((queued, i) => queued.resolve(seqs[i] ?? null));
    } catch (error) {
      if (batch.length > 1 && !isDatabaseUnavailable(error)) {
        // The database refused the statement for one event's sake (a NUL byte in a message),
        // so none of it was written: each event goes again alone and fails only for itself.
        for (const queued of batch) await this.writeBatch([queued]);
      } else {
        for (const queued of batch) queued.reject(error);
      }
    }
  }
}
