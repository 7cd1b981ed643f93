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
 * How many batches may be in flight at once, by default. With one, every event that comes
 * while a batch is in flight waits out that batch's round trip, and all of a slow one (a
 * commit behind a progress flush's row locks, a busy core); a second lets other runs'
 * events go at once. Measured along a narrow ladder here, an event's wait for the batches
 * ahead of it at the 99th percentile went from 3–31 ms to 0.2–22 ms. More would add
 * statements for little: with two, an event waits only while both are in flight.
 */
const DEFAULT_ACTIVITY_BATCHES_IN_FLIGHT = 2;

/**
 * Writes running attempts' steps, log lines and output to the database by group commit:
 * events that come while the batches in flight are at their limit queue, and when one
 * returns, everything queued goes as the next batch, one statement for all of them
 * (`projectRunActivity`). No timer: alone, an event costs one round trip; under load,
 * batches grow instead of statements (and their round trips and commits) multiplying.
 *
 * A batch holds at most one event per run, and a run's next event waits until the batch
 * holding its last one has returned, so each event gets the run's counter after its own
 * bump, a run's events apply in the order they were written, and two batches in flight
 * never touch the same run's row.
 */
export class RunActivityWriter {
  private queue: QueuedActivity[] = [];
  /** Runs with an event in a batch in flight. */
  private readonly writingRuns = new Set<string>();
  private inFlight = 0;
  private startScheduled = false;

  constructor(
    private readonly sql: SqlClient,
    /** How much of an attempt's output a run keeps (see `projectRunActivity`). */
    private readonly outputMaxChars = DEFAULT_RUN_OUTPUT_MAX_CHARS,
    /** How many batches may be in flight at once (see `DEFAULT_ACTIVITY_BATCHES_IN_FLIGHT`). */
    private readonly maxInFlight = DEFAULT_ACTIVITY_BATCHES_IN_FLIGHT,
  ) {}

  /**
   * Applies an event with the next batch: resolves to its `seq`, or null when it no longer
   * applies. A batch that fails fails each of its events, for its publish to retry.
   */
  write(event: RunActivityInput, key: string): Promise<number | null> {
    return new Promise((resolve, reject) => {
      this.queue.push({ event, key, resolve, reject });
      this.scheduleStart();
    });
  }

  /** Starts a batch once this turn's writes are queued: events written in one turn (a burst of publishes) start out together. */
  private scheduleStart(): void {
    if (this.startScheduled || this.inFlight >= this.maxInFlight) return;
    this.startScheduled = true;
    queueMicrotask(() => {
      this.startScheduled = false;
      this.start();
    });
  }

  private start(): void {
    if (this.inFlight >= this.maxInFlight) return;
    const batch = this.nextBatch();
    if (batch.length === 0) return;
    this.inFlight += 1;
    for (const queued of batch) this.writingRuns.add(queued.event.runId);
    void this.writeBatch(batch).finally(() => {
      for (const queued of batch) this.writingRuns.delete(queued.event.runId);
      this.inFlight -= 1;
      // What queued while it was in flight goes now, as one batch.
      this.start();
    });
  }

  /** The oldest queued event of each run not being written; a run's later events stay queued, in order. */
  private nextBatch(): QueuedActivity[] {
    const runs = new Set<string>(this.writingRuns);
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
