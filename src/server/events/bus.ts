import { randomUUID } from "node:crypto";
import type { PrismaClient } from "../../generated/prisma/client";
import { whileDatabaseReturns } from "../database-unavailable";
import type { Logger } from "../logger";
import type { SqlClient } from "../sql";
import type { AppendCounter, LiveAttemptGate, LiveProgress, TenantEventStream } from "./event-stream";
import { ProgressProjector } from "./progress-projector";
import {
  appliedSeq,
  isAttemptLive,
  isRunActivity,
  isRunEnd,
  projectEvent,
  projectReachedProgress,
  type RunEndInput,
} from "./projection";
import { RunActivityWriter } from "./run-activity-writer";
import {
  eventInputSchema,
  type CountedEventInput,
  type EventInput,
  type ProgressInput,
  type PulseEvent,
} from "./schema";

export interface PublishedEvent {
  /** The Redis stream entry id: the id every subscriber sees for this event. */
  id: string;
  event: PulseEvent;
}

export interface EventBusOptions {
  db: PrismaClient;
  /** The same database, for the statements of the hot path (batched activity, progress flushes). */
  sql: SqlClient;
  stream: TenantEventStream;
  logger: Logger;
  /** How long a publish waits for an unreachable database before it fails (default 30 s). */
  databaseWaitMs?: number;
  /**
   * How long an event already in the database waits for Redis to serve its tenant's stream
   * again before its publish fails (default 120 s): a cluster failover outlasting the client's
   * own retries (~30 s) must not leave the event out of the stream, a hole in its run's `seq`.
   */
  streamWaitMs?: number;
  /** How often runs' latest progress is written to the database (default 250 ms). */
  progressFlushMs?: number;
  /** How much of an attempt's output a run keeps (default `DEFAULT_RUN_OUTPUT_MAX_CHARS`). */
  outputMaxChars?: number;
  /** Told about every event appended, for metrics. */
  onPublished?: (event: PulseEvent) => void;
}

/**
 * The one way an event enters Pulse, from an in-process agent, an external agent's HTTP
 * report, or BullMQ's stalled-job handling: validate it, apply it to the database (the
 * ground truth), then append it to the tenant's stream (the ordered, replayable log).
 *
 * Progress, by far the most frequent event, takes a faster path: it is appended at once
 * when Redis's live-attempt marker says its attempt is the one running, and written to the
 * database a moment later, latest-wins (`ProgressProjector`). So progress keeps flowing
 * while the database is slow or away, and a stale worker's progress is still never
 * delivered. Every other event waits for the database (up to `databaseWaitMs`), so a
 * dashboard never shows a state the database does not hold. Steps, log lines and output,
 * the next most frequent, are written by group commit: concurrent publishes share one
 * statement per batch (`RunActivityWriter`).
 */
export class EventBus {
  readonly stream: TenantEventStream;
  private readonly progress: ProgressProjector;
  private readonly activity: RunActivityWriter;
  private readonly databaseWaitMs: number;
  private readonly streamWaitMs: number;

  constructor(private readonly options: EventBusOptions) {
    this.stream = options.stream;
    this.databaseWaitMs = options.databaseWaitMs ?? 30_000;
    this.streamWaitMs = options.streamWaitMs ?? 120_000;
    this.progress = new ProgressProjector(options.sql, options.logger, {
      flushIntervalMs: options.progressFlushMs ?? 250,
    });
    this.activity = new RunActivityWriter(options.sql, options.outputMaxChars);
  }

  /** Runs whose latest progress is waiting to be written to the database. */
  get progressBacklog(): number {
    return this.progress.backlog;
  }

  /**
   * Publishes an event. Resolves to null when the event no longer applies to the run's
   * state (see `projectEvent`): a report from an attempt that is no longer running, a
   * second end of the same attempt. Such an event is neither stored nor delivered.
   */
  async publish(input: EventInput): Promise<PublishedEvent | null> {
    const parsed = eventInputSchema.parse(input);
    return parsed.type === "agent:progress" ? this.publishProgress(parsed) : this.publishCounted(parsed);
  }

  /** Writes pending progress to the database; call before closing it. */
  async close(): Promise<void> {
    await this.progress.close();
  }

  private async publishCounted(event: CountedEventInput): Promise<PublishedEvent | null> {
    const reached =
      event.type === "agent:failed" || event.type === "agent:cancelled" || event.type === "agent:completed"
        ? (await this.stream.readLiveProgress(event.tenantId, [event.runId])).get(event.runId)
        : undefined;
    // A retry after a dropped connection first asks whether the lost attempt committed.
    const key = randomUUID();
    let tried = false;
    const seq = await whileDatabaseReturns(async () => {
      if (tried) {
        const applied = await appliedSeq(this.options.db, event, key);
        if (applied !== null) return applied;
      }
      tried = true;
      return isRunActivity(event)
        ? this.activity.write(event, key)
        : projectEvent(this.options.db, event, key, reached);
    }, this.databaseWaitMs);
    if (seq === null) return null;
    const counter = { seq, ...("runId" in event ? { runId: event.runId } : {}) };
    const appended = await this.append(
      { ...event, seq, at: new Date().toISOString() } as PulseEvent,
      liveAttemptGate(event),
      this.streamWaitMs,
      counter,
    );
    // Only a `check` gate refuses, and counted events never check.
    if (typeof appended === "string") throw new Error(`append refused a ${event.type} event (${appended})`);
    const { ended, ...published } = appended;
    if (ended && isRunEnd(event) && ended.attempt === event.attempt && !sameProgress(ended, reached, event.type))
      await this.settleReachedProgress(event, ended);
    return published;
  }

  /**
   * The attempt reported progress between its end's read of Redis and its end's append
   * (another process ended it: a stalled job, a cancel): clients saw that progress before the
   * end, so the database takes it too. A failure leaves the older progress, and is logged.
   */
  private async settleReachedProgress(event: RunEndInput, reached: LiveProgress): Promise<void> {
    try {
      await whileDatabaseReturns(() => projectReachedProgress(this.options.db, event, reached), this.databaseWaitMs);
    } catch (error) {
      this.options.logger.warn(
        { err: error, tenantId: event.tenantId, runId: event.runId },
        "the progress a run ended with was not written",
      );
    }
  }

  private async publishProgress(event: ProgressInput): Promise<PublishedEvent | null> {
    const stamped = { ...event, seq: 0, at: new Date().toISOString() } as PulseEvent;
    const progress = { attempt: event.attempt, progress: event.progress, phase: event.phase, message: event.message };
    const gate = { mode: "check", runId: event.runId, attempt: event.attempt, progress } as const;
    let published: PublishedEvent | "unknown" | "stale" | null = await this.append(stamped, gate);
    if (published === "unknown") {
      // No marker: the run is not running, or Redis lost its keys (a restart without
      // persistence). The database decides, and a live attempt gets its marker back.
      const live = await whileDatabaseReturns(() => isAttemptLive(this.options.db, event), this.databaseWaitMs);
      published = live ? await this.append(stamped, { ...gate, mode: "arm" }) : null;
    }
    if (published === null || published === "unknown" || published === "stale") return null;
    this.progress.record(event);
    return published;
  }

  /** Appends; `ended` is the run's live progress that a `clear` gate removed. */
  private async append(
    event: PulseEvent,
    gate: LiveAttemptGate | undefined,
    retryForMs = 0,
    counter?: AppendCounter,
  ): Promise<(PublishedEvent & { ended?: LiveProgress }) | "unknown" | "stale"> {
    const options = counter ? { retryForMs, counter } : { retryForMs };
    const appended = await this.stream.append(event.tenantId, JSON.stringify(event), gate, options);
    if ("refused" in appended) return appended.refused;
    // The first id a tenant's stream ever had outlives the stream (a Redis restart without
    // persistence), so a resuming client can be told "resync" rather than "not found".
    if (appended.genesis) {
      const genesis = appended.genesis;
      await whileDatabaseReturns(
        () =>
          this.options.db.tenant.updateMany({
            where: { id: event.tenantId, firstEventId: null },
            data: { firstEventId: genesis },
          }),
        this.databaseWaitMs,
      );
    }
    this.options.onPublished?.(event);
    return { id: appended.id, event, ...(appended.ended ? { ended: appended.ended } : {}) };
  }
}

/** Whether the database already holds `ended` as the run's reached progress (a completed run keeps only its message). */
function sameProgress(ended: LiveProgress, reached: LiveProgress | undefined, type: RunEndInput["type"]): boolean {
  if (!reached || reached.attempt !== ended.attempt || reached.message !== ended.message) return false;
  return (
    type === "agent:completed" ||
    (Math.round(reached.progress) === Math.round(ended.progress) && reached.phase === ended.phase)
  );
}

/** Which counted events move the run's live-attempt marker: a start arms it, an end clears it. */
function liveAttemptGate(event: CountedEventInput): LiveAttemptGate | undefined {
  switch (event.type) {
    case "agent:active":
      return { mode: "arm", runId: event.runId, attempt: event.attempt };
    case "agent:completed":
    case "agent:failed":
    case "agent:cancelled":
      return { mode: "clear", runId: event.runId };
    default:
      return undefined;
  }
}
