import type { RedisClient } from "../../server/redis";
import { parseEntries, TenantStreamKeys, type StreamEntry } from "../../server/events/event-stream";
import {
  readAgentSnapshot,
  readContextSnapshot,
  readRunSnapshot,
  toRunView,
  type RunView,
  type SnapshotSource,
} from "../../server/events/snapshot";
import { compareStreamIds, STREAM_ORIGIN } from "../../shared/stream-id";
import { keptOutput } from "../harness";
import { feedAccepts, idHash, type RecorderClient } from "./recorder-client";

/** Every entry a tenant's stream holds now, oldest first, read a page at a time. */
export async function readTenantStream(redis: RedisClient, prefix: string, tenantId: string): Promise<StreamEntry[]> {
  const key = new TenantStreamKeys(prefix).events(tenantId);
  const entries: StreamEntry[] = [];
  let start = "-";
  for (;;) {
    const page = parseEntries((await redis.xrange(key, start, "+", "COUNT", 5_000)) as [string, string[]][]);
    entries.push(...page);
    if (page.length < 5_000) return entries;
    start = `(${page.at(-1)!.id}`;
  }
}

/** What comparing one recorder with the stream found. */
export interface StreamAudit {
  /** Entries the subscription should have delivered and did not. */
  lost: number;
  /** Deliveries the stream does not explain. */
  extra: number;
  /** Segments that began before `verifiableFrom` (their entries are gone from the stream), not checked. */
  unverifiable: number;
  /** Segments whose counts agree but whose ids do not. */
  mismatched: number;
}

/**
 * Compares what a recorder received with the stream, segment by segment: after each
 * snapshot or resync (or the id it resumed from), the subscription must deliver exactly the
 * stream's entries that its filter accepts, up to the next resync (which excuses what came
 * between: the client was told to replace its state) or, for the last segment, to the end.
 * Entries at or before `verifiableFrom` may have left the stream (retention, a Redis that
 * lost its data), so segments starting before it cannot be checked.
 */
export function auditAgainstStream(
  recorder: RecorderClient,
  entries: readonly StreamEntry[],
  verifiableFrom: string | null = null,
  generations: readonly string[] = [],
): StreamAudit {
  const audit: StreamAudit = { lost: 0, extra: 0, unverifiable: 0, mismatched: 0 };
  const accepted = entries.filter((e) => feedAccepts(recorder.feed, e.event));
  recorder.segments.forEach((segment, index) => {
    if (verifiableFrom !== null && compareStreamIds(segment.startId, verifiableFrom) < 0) {
      audit.unverifiable += 1;
      return;
    }
    const last = index === recorder.segments.length - 1;
    const end = last ? null : (segment.lastId ?? segment.startId);
    const after = segmentStart(recorder, index, generations);
    let count = 0;
    let checksum = 0;
    for (const entry of accepted) {
      if (compareStreamIds(entry.id, after) <= 0) continue;
      if (end !== null && compareStreamIds(entry.id, end) > 0) break;
      count += 1;
      checksum = (checksum + idHash(entry.id)) >>> 0;
    }
    if (count > segment.count) audit.lost += count - segment.count;
    else if (count < segment.count) audit.extra += segment.count - count;
    else if (checksum !== segment.checksum) audit.mismatched += 1;
  });
  return audit;
}

/**
 * The id a segment's deliveries start after. A resync to the origin ("0-0") after a lost
 * stream means "the new stream from its first entry", not every entry any earlier stream
 * held: it starts just before the first stream generation that began after the previous
 * segment, when the tap saw one.
 */
function segmentStart(recorder: RecorderClient, index: number, generations: readonly string[]): string {
  const segment = recorder.segments[index]!;
  const previous = recorder.segments[index - 1];
  if (segment.startId !== STREAM_ORIGIN || !previous) return segment.startId;
  const previousEnd = previous.lastId ?? previous.startId;
  const next = generations.find((genesis) => compareStreamIds(genesis, previousEnd) > 0);
  return next ? previousStreamId(next) : segment.startId;
}

/** The largest id below `id`: an exclusive start that lets `id` itself through. */
function previousStreamId(id: string): string {
  const [ms = "0", seq = "0"] = id.split("-");
  return seq === "0" ? `${BigInt(ms) - 1n}-18446744073709551615` : `${ms}-${BigInt(seq) - 1n}`;
}

/** The parts of a run a dashboard shows, to compare a client's copy with the database's. */
function visible(run: RunView, withOutput: boolean) {
  return {
    status: run.status,
    attempt: run.attempt,
    seq: run.seq,
    willRetry: run.willRetry,
    error: run.error,
    nextAgent: run.nextAgent,
    phase: run.phase,
    progress: run.progress,
    message: run.message,
    steps: [...run.steps].sort((a, b) => a.id.localeCompare(b.id)).map((s) => `${s.id}:${s.status}:${s.attempt}`),
    ...(withOutput ? { output: run.output ?? "" } : {}),
  };
}

/**
 * Differences between a recorder's final state (built with the browser's reducers) and the
 * database: every run the client holds must look as the database has it, and every run a
 * fresh snapshot would show must be there. Empty when they agree.
 */
export async function auditState(
  recorder: RecorderClient,
  source: SnapshotSource,
  tenantId: string,
): Promise<string[]> {
  const { db } = source;
  const differences: string[] = [];
  const feed = recorder.feed;
  if (feed.kind === "context") {
    const { context } = await readContextSnapshot(db, tenantId);
    const mine = recorder.contextState.context;
    const a = context && { status: context.status, version: context.version, seq: context.seq };
    const b = mine && { status: mine.status, version: mine.version, seq: mine.seq };
    if (JSON.stringify(a) !== JSON.stringify(b))
      differences.push(`context: database ${JSON.stringify(a)}, client ${JSON.stringify(b)}`);
    return differences;
  }
  const withOutput = feed.runId !== undefined;
  const snapshot = feed.runId
    ? ((await readRunSnapshot(source, tenantId, feed.runId)) ?? { runs: [] })
    : await readAgentSnapshot(source, tenantId, feed.agentRole ? { agentRole: feed.agentRole } : {});
  const mine = recorder.agentState.runs;
  for (const run of snapshot.runs)
    if (!mine[run.id]) differences.push(`run ${run.id} (${run.status}) missing from the client`);
  const rows = await db.agentRun.findMany({
    where: { tenantId, id: { in: Object.keys(mine) } },
    include: { steps: { orderBy: { startedAt: "asc" } }, outputChunks: { orderBy: { start: "asc" } } },
  });
  // The whole stored output: the audited runs write far less than a view's window.
  const stored = (r: (typeof rows)[number]) => {
    const output = keptOutput(r);
    const start = r.outputLength - output.length;
    return { text: output, start, end: r.outputLength, dropped: start };
  };
  const byId = new Map(rows.map((r) => [r.id, toRunView(r, withOutput ? stored(r) : undefined)]));
  for (const run of Object.values(mine)) {
    const truth = byId.get(run.id);
    if (!truth) {
      differences.push(`run ${run.id} is not in the database`);
      continue;
    }
    const a = JSON.stringify(visible(truth, withOutput));
    const b = JSON.stringify(visible(run, withOutput));
    if (a !== b) differences.push(`run ${run.id}: database ${a.slice(0, 400)}, client ${b.slice(0, 400)}`);
  }
  return differences;
}

/**
 * Keeps every entry a tenant's stream ever held, polling it faster than retention or a
 * Redis restart can take entries away, so clients can be audited entry by entry against
 * events the stream no longer has.
 */
export class StreamTap {
  private readonly seen = new Map<string, StreamEntry[]>();
  private readonly cursors = new Map<string, string>();
  private readonly firstIds = new Map<string, string[]>();
  private readonly ids = new Map<string, Set<string>>();
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly tenantIds: readonly string[],
    private readonly intervalMs = 25,
  ) {}

  start(): this {
    const tick = () => {
      this.polling = this.poll()
        .catch(() => {})
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.intervalMs);
        });
    };
    this.timer = setTimeout(tick, 0);
    return this;
  }

  /** Polls now, after any poll in flight: the tap then holds everything the streams hold. */
  async pollNow(): Promise<void> {
    await this.polling;
    await this.poll();
  }

  /** Polls once more (catching what is there now), then stops. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.polling;
    await this.poll();
  }

  entries(tenantId: string): StreamEntry[] {
    return this.seen.get(tenantId) ?? [];
  }

  /** The first id of every stream the tenant had while tapped (a Redis that lost its data starts a new one). */
  generations(tenantId: string): string[] {
    return this.firstIds.get(tenantId) ?? [];
  }

  private async poll(): Promise<void> {
    const keys = new TenantStreamKeys(this.prefix);
    for (const tenantId of this.tenantIds) {
      const list = this.seen.get(tenantId) ?? [];
      this.seen.set(tenantId, list);
      const genesis = await this.redis.get(keys.genesis(tenantId));
      const firstIds = this.firstIds.get(tenantId) ?? [];
      if (genesis !== null && !firstIds.includes(genesis))
        this.firstIds.set(tenantId, [...firstIds, genesis].sort(compareStreamIds));
      for (;;) {
        const after = this.cursors.get(tenantId);
        const raw = (await this.redis.xrange(
          keys.events(tenantId),
          after ? `(${after}` : "-",
          "+",
          "COUNT",
          1_000,
        )) as [string, string[]][];
        const page = parseEntries(raw);
        // A stream that restarted below the cursor (Redis lost it) shows up as ids the cursor already passed: none are skipped, as new ids are later in time.
        // Two polls at once (`pollNow` beside the timer's) read the same page: each entry is kept once.
        const known = this.ids.get(tenantId) ?? new Set<string>();
        this.ids.set(tenantId, known);
        for (const entry of page) {
          if (known.has(entry.id)) continue;
          known.add(entry.id);
          list.push(entry);
        }
        if (page.length > 0) this.cursors.set(tenantId, page.at(-1)!.id);
        if (page.length < 1_000) break;
      }
    }
  }
}
