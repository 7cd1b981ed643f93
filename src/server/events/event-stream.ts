import { isRedisUnavailable, type RedisClient } from "../redis";
import { CoalescedReads } from "./coalesced-reads";
import { rememberEncoding } from "./event-encoding";
import { compareStreamIds, STREAM_ORIGIN, type PulseEvent, type RunPhase } from "./schema";

/** One entry of a tenant's stream, decoded once however many subscribers receive it. */
export interface StreamEntry {
  id: string;
  event: PulseEvent;
  /** The first entry after the stream lost entries (a failover): a reader that reads past it resyncs. */
  afterLoss?: true;
}

export interface RetentionOptions {
  /** Entries younger than this are always kept. */
  maxAgeMs: number;
  /** At least this many newest entries are kept, whatever their age. */
  minEvents: number;
  /** Above this many entries the oldest go even if young: a memory bound per tenant. */
  maxEvents: number;
}

const PAYLOAD_FIELD = "e";
/** Set on the first entry after a loss (see `APPEND`), for readers that read it rather than hear its wake. */
const AFTER_LOSS_FIELD = "lost";

/**
 * Key layout of one tenant's events in Redis. The `{tenantId}` hash tag keeps a tenant's
 * keys in one cluster slot.
 */
export class TenantStreamKeys {
  constructor(private readonly prefix: string) {}

  events(tenantId: string): string {
    return `${this.prefix}:{${tenantId}}:events`;
  }

  /** The newest id ever trimmed away: a cursor below it has lost events and must resync. */
  trimmed(tenantId: string): string {
    return `${this.prefix}:{${tenantId}}:trimmed`;
  }

  /**
   * The tenant's sharded wake channel (in its slot, so the append script may SPUBLISH on it):
   * every append rings it with the tenant's id (and mostly the entry itself), and only the
   * processes following the tenant listen, so stream readers read only the streams with news
   * and receive only their own tenants'. The stream stays the record; a wake lost on the way
   * costs latency (until the next wake or the reader's rolling check), never an event.
   *
   * Pulse before per-tenant channels rang one global `${prefix}:wake`: during a rolling
   * upgrade an old reader hears no wake from a new appender and finds its entries by its
   * one-second sweep, and a new reader finds an old appender's entries by its rolling check
   * (see docs/DEPLOYMENT.md, "Running on several machines": upgrade workers first).
   *
   * @see https://redis.io/docs/latest/develop/interact/pubsub/#sharded-pubsub
   */
  wake(tenantId: string): string {
    return `${this.prefix}:{${tenantId}}:wake`;
  }

  /** The cluster node that appended last to the tenant's stream: another one appending shows a failover. */
  appender(tenantId: string): string {
    return `${this.prefix}:{${tenantId}}:appender`;
  }

  /**
   * The newest change counter (`seq`) appended for one run (or, with no run, for the tenant's
   * context file): a counted event appended below or beyond it shows a stream out of order.
   */
  counter(tenantId: string, runId?: string): string {
    return runId === undefined
      ? `${this.prefix}:{${tenantId}}:counter:context`
      : `${this.prefix}:{${tenantId}}:counter:run:${runId}`;
  }

  /** The first id of the stream as it exists now: newer ids that are not entries were never issued. */
  genesis(tenantId: string): string {
    return `${this.prefix}:{${tenantId}}:genesis`;
  }

  /** Running runs' latest progress (a hash by run id), which snapshots lay over the database's. */
  liveProgress(tenantId: string): string {
    return `${this.prefix}:{${tenantId}}:progress`;
  }

  /** The attempt of a run that is running now: only its progress is appended without asking the database. */
  liveAttempt(tenantId: string, runId: string): string {
    return `${this.prefix}:{${tenantId}}:live:${runId}`;
  }
}

/** What Redis knows about an id a client hands back, to tell a resumable cursor from a forged one. */
export interface CursorProbe {
  /** The id is an entry of the tenant's stream. */
  exists: boolean;
  /** The newest id trimmed away, if any. */
  trimmedThrough: string | null;
  /** The first id of the current stream, if it exists. */
  genesis: string | null;
  /**
   * On a cluster, when the node serving the stream has not appended to it since another one did
   * (a failover, before the next append finds it out): an id above the stream's newest entry
   * and not in the future may be one the old master issued and lost.
   */
  lostTailAbove?: string;
}

/** How far ahead of the serving node's clock a lost id may be (the old master's clock may have run ahead). */
const CLOCK_SKEW_MS = 60_000;

/**
 * What `probe` reads, in one step: whether the id is an entry, the trimmed and genesis
 * markers, whether the stream exists; on a cluster also the newest entry, whether the node
 * serving it is the one that appended last (see `APPEND`), and the node's clock.
 */
const PROBE = `
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1], 'COUNT', 1)
local result = {#found, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), redis.call('EXISTS', KEYS[1])}
if ARGV[2] == '1' then
  local appender = redis.call('GET', KEYS[4])
  if appender and appender ~= redis.call('CLUSTER', 'MYID') then
    local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
    result[5] = newest[1] and newest[1][1] or '0-0'
    result[6] = redis.call('TIME')[1]
  end
end
return result`;

/**
 * A stream that predates the genesis marker: its first ids are unknown, so every id since
 * the origin may have been the tenant's.
 */
export const UNKNOWN_GENESIS = "0-1";

/**
 * How an append treats the run's live-attempt marker: `check` appends only when the marker
 * names this attempt (the progress fast path), `arm` sets it (a run became active), `clear`
 * removes it (a run ended or will be retried).
 */
export type LiveAttemptGate =
  { mode: "check" | "arm"; runId: string; attempt: number; progress?: LiveProgress } | { mode: "clear"; runId: string };

/** A running run's latest progress, kept in Redis beside the stream so snapshots are never behind it. */
export interface LiveProgress {
  attempt: number;
  progress: number;
  phase: RunPhase;
  message: string;
}

/** Why a checked append was refused: no marker (Redis lost it, or the run is not running) or another attempt's marker. */
export type AppendRefusal = "unknown" | "stale";

/**
 * A counted event's change counter and whose it is (a run's, or with no run the context
 * file's): appended out of the counter's order, it is marked as the first after a loss.
 */
export interface AppendCounter {
  runId?: string;
  seq: number;
}

/** An append's entry id, the genesis it recorded and the live progress its `clear` removed; or why it was refused. */
export type AppendResult = { id: string; genesis: string | null; ended?: LiveProgress } | { refused: AppendRefusal };

/**
 * Entries up to this size ride on their wake (see `APPEND`); a larger one (a long output
 * chunk) rings with its id and the id before it alone, and is read from the stream.
 */
const MAX_WAKE_PAYLOAD_BYTES = 8_192;

/** How far back a resent append looks for itself: nothing else is appended while its slot cannot be served. */
const RETRY_LOOKBACK = 100;

/** A live-attempt marker outlives any sane run; a longer one falls back to the database check. */
const LIVE_ATTEMPT_TTL_SECONDS = 86_400;

/** A run's newest appended counter is kept this long after its last counted event; a quieter run forgoes the order check. */
const COUNTER_TTL_SECONDS = 86_400;

/**
 * XADD that also records the stream's first id when this append created the stream (or
 * marks a stream older than the marker), returning the genesis it recorded, if any; with a
 * live-attempt gate, it checks, sets or clears the run's marker in the same step, so the
 * marker and the stream's order never disagree. Then it rings the tenant's wake channel: with the
 * tenant's id, the entry's id and the id of the entry before it, and (below a size) the entry
 * itself, so a reader that has read up to that id can deliver it without reading the stream,
 * and one that delivered entries after that id knows the stream lost them. A `clear`
 * returns the live progress it removed: what clients saw last before the run's end. A counted
 * event keeps its run's counter in order (see `AppendCounter`); anything that shows the stream
 * lost or reordered entries marks this one as the first after a loss, so readers resync.
 */
const APPEND = `
local function idBelow(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end
local function raiseLostMarker(id)
  local marked = redis.call('GET', KEYS[5])
  if not marked or idBelow(marked, id) then redis.call('SET', KEYS[5], id) end
end
local mode = ARGV[2]
if mode == 'check' then
  local live = redis.call('GET', KEYS[3])
  if not live then return {false, false, 'unknown'} end
  if live ~= ARGV[3] then return {false, false, 'stale'} end
end
local created = redis.call('EXISTS', KEYS[1]) == 0
local previous = '0-0'
if not created then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if last[1] then previous = last[1][1] end
end
-- Sent again after an error that may have come after the append (a connection lost mid-reply):
-- an entry with the very same payload (it holds the event's time and counter) is this one.
if ARGV[10] == '1' and not created then
  for _, entry in ipairs(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ${RETRY_LOOKBACK})) do
    if entry[2][2] == ARGV[1] then return {entry[1], false, false, false} end
  end
end
-- This publisher was acknowledged an entry newer than the stream's newest: the stream lost its
-- tail (a failover to a replica that never received it).
local lostTail = not created and ARGV[8] ~= '' and idBelow(previous, ARGV[8])
-- A counted event against the newest counter appended for its run (or context file). At or
-- below it, the event was overtaken: two processes publishing one run (a lost attempt's report
-- and the next attempt, a cancel and a step) were counted in one order and appended in the
-- other. Beyond the next, the stream never got one: a process died between counting an event in
-- the database and appending it. Either way subscribers resync from the database, which holds
-- every counted event, rather than see the counter skip or go back; an overtaken event moves
-- no marker (the newer one already did).
local counted = tonumber(ARGV[11])
local overtaken = false
if counted and not created then
  local newest = tonumber(redis.call('GET', KEYS[7]))
  if newest then
    overtaken = counted <= newest
    lostTail = lostTail or overtaken or counted > newest + 1
  end
end
-- On a cluster, the node that appended last: another one now is a failover (or the slot moved),
-- which may have lost entries no publisher here knows of (another process's, or an unanswered
-- append's).
if ARGV[9] == '1' then
  local node = redis.call('CLUSTER', 'MYID')
  local last = redis.call('GET', KEYS[6])
  if last ~= node then
    redis.call('SET', KEYS[6], node)
    lostTail = lostTail or (last ~= false and not created)
  end
end
local id
if lostTail then
  id = redis.call('XADD', KEYS[1], '*', '${PAYLOAD_FIELD}', ARGV[1], '${AFTER_LOSS_FIELD}', '1')
else
  id = redis.call('XADD', KEYS[1], '*', '${PAYLOAD_FIELD}', ARGV[1])
end
-- Every cursor before this entry resyncs: one holding a lost entry holds progress the database may
-- not, and one at the entry before it, even in the same millisecond, missed what was lost. Its wake
-- says it follows the origin (and the entry is marked, for readers that read it), so readers
-- resync their subscribers too.
if lostTail then
  raiseLostMarker(id)
  previous = '0-0'
end
local genesis = false
if created then
  genesis = id
elseif redis.call('EXISTS', KEYS[2]) == 0 then
  genesis = '${UNKNOWN_GENESIS}'
end
if genesis then redis.call('SET', KEYS[2], genesis) end
if counted and not overtaken then redis.call('SET', KEYS[7], counted, 'EX', ${COUNTER_TTL_SECONDS}) end
if overtaken then mode = 'none' end
local ended = false
if mode == 'arm' then
  redis.call('SET', KEYS[3], ARGV[3], 'EX', ${LIVE_ATTEMPT_TTL_SECONDS})
elseif mode == 'clear' then
  redis.call('DEL', KEYS[3])
  ended = redis.call('HGET', KEYS[4], ARGV[5])
  redis.call('HDEL', KEYS[4], ARGV[5])
end
if ARGV[4] ~= '' then
  -- Refreshed when a run starts or first reports: the hash lasts a marker's lifetime past that.
  if redis.call('HSET', KEYS[4], ARGV[5], ARGV[4]) == 1 or mode == 'arm' then
    redis.call('EXPIRE', KEYS[4], ${LIVE_ATTEMPT_TTL_SECONDS})
  end
elseif mode == 'arm' then
  redis.call('HDEL', KEYS[4], ARGV[5])
end
-- SPUBLISH from a script needs Redis 7 and a channel in the script's slot (the tenant's hash tag).
if #ARGV[1] <= ${MAX_WAKE_PAYLOAD_BYTES} then
  redis.call('SPUBLISH', ARGV[6], ARGV[7] .. '\\n' .. previous .. '\\n' .. id .. '\\n' .. ARGV[1])
else
  redis.call('SPUBLISH', ARGV[6], ARGV[7] .. '\\n' .. previous .. '\\n' .. id)
end
return {id, genesis, false, ended}`;

/** The tenant a wake message (see `APPEND`) rang for. */
export function wakeTenant(message: string): string {
  const end = message.indexOf("\n");
  return end < 0 ? message : message.slice(0, end);
}

/** What a wake message (see `APPEND`) carries besides its tenant. */
export interface WakeCarried {
  /** The id of the entry before this one when it was appended. */
  previousId: string;
  id: string;
  /** The entry, decoded only when asked for (when it follows what the reader has); null when it was too large to carry. */
  entry(): StreamEntry | null;
}

/**
 * What a wake message carries besides its tenant; null for one with the tenant alone (how
 * older versions rang for an entry too large to carry: a rolling upgrade may still send it).
 */
export function wakeCarried(message: string): WakeCarried | null {
  const tenantEnd = message.indexOf("\n");
  if (tenantEnd < 0) return null;
  const previousEnd = message.indexOf("\n", tenantEnd + 1);
  if (previousEnd < 0) return null;
  const idEnd = message.indexOf("\n", previousEnd + 1);
  const id = idEnd < 0 ? message.slice(previousEnd + 1) : message.slice(previousEnd + 1, idEnd);
  return new CarriedWake(message.slice(tenantEnd + 1, previousEnd), id, message, idEnd);
}

/**
 * A wake's ids, and its entry read from the message only when asked for. A class rather than
 * an object with a closure: every event's wake makes one, and a closure per wake also cost
 * naming it (tsx keeps functions' names by setting each one's as it is made).
 */
class CarriedWake implements WakeCarried {
  constructor(
    readonly previousId: string,
    readonly id: string,
    private readonly message: string,
    /** Where the id ends and the entry begins; -1 when the wake carries none. */
    private readonly idEnd: number,
  ) {}

  entry(): StreamEntry | null {
    return this.idEnd < 0 ? null : decodeEntry(this.id, this.message.slice(this.idEnd + 1));
  }
}

/** An entry from its stored JSON, which is kept as the event's encoding (see `rememberEncoding`): it is never serialised again. */
function decodeEntry(id: string, payload: string): StreamEntry {
  const event = JSON.parse(payload) as PulseEvent;
  rememberEncoding(event, payload);
  return { id, event };
}

export function parseEntries(raw: [string, string[]][]): StreamEntry[] {
  const entries: StreamEntry[] = [];
  for (const [id, fields] of raw) {
    const index = fields.indexOf(PAYLOAD_FIELD);
    const payload = index >= 0 ? fields[index + 1] : undefined;
    // Entries were validated when published; the stream holds nothing else.
    if (payload === undefined) continue;
    const entry = decodeEntry(id, payload);
    if (fields.includes(AFTER_LOSS_FIELD)) entry.afterLoss = true;
    entries.push(entry);
  }
  return entries;
}

const U64_MAX = 18_446_744_073_709_551_615n;

/** True when both parts of an id fit Redis's 64-bit fields; a bigger one would be a Redis error, not an answer. */
export function fitsStreamId(id: string): boolean {
  const [ms, seq, extra] = id.split("-");
  if (ms === undefined || seq === undefined || extra !== undefined || !/^\d+$/.test(ms) || !/^\d+$/.test(seq))
    return false;
  return BigInt(ms) <= U64_MAX && BigInt(seq) < U64_MAX;
}

/** The id right after `id`: XRANGE's exclusive start without relying on the `(` syntax. */
export function nextStreamId(id: string): string {
  const [ms = "0", seq = "0"] = id.split("-");
  return `${ms}-${BigInt(seq) + 1n}`;
}

/**
 * Appends to, reads and trims tenants' Redis streams. The stream entry id is the event id
 * subscribers see; it only grows within a tenant.
 *
 * @see https://redis.io/docs/latest/develop/data-types/streams/
 */
export class TenantEventStream {
  /**
   * What this process keeps of the tenants it appended to most recently (at most
   * `rememberedTenants`, least recently appended forgotten first; a Map iterates in insertion
   * order): the newest id it was acknowledged (a stream found older lost its tail), and when it
   * last trimmed the stream and the appends since. Forgetting a quiet tenant only forgoes the
   * lost-tail check for it (a cluster failover is found by the node check anyway, see `APPEND`)
   * and trims it at its next append, as on a process's first.
   */
  private readonly recent = new Map<string, { appended: string; trimmedAt: number; appends: number }>();
  private readonly rememberedTenants: number;
  /** Pages being read, shared by the callers asking for one at the same time (see `readAfter`). */
  private readonly pages = new CoalescedReads<StreamEntry[]>();

  private readonly redis: RedisClient & {
    pulseAppend(...args: (string | number)[]): Promise<unknown>;
    pulseProbe(...args: string[]): Promise<unknown>;
  };
  /** Appends then watch for a failover (see `APPEND`): only a cluster names its nodes. */
  private readonly onCluster: boolean;

  constructor(
    redis: RedisClient,
    readonly keys: TenantStreamKeys,
    private readonly retention: RetentionOptions,
    options: { rememberedTenants?: number } = {},
  ) {
    this.rememberedTenants = options.rememberedTenants ?? 10_000;
    // EVALSHA with a fallback to EVAL: the script travels once per connection, not per event.
    if (!("pulseAppend" in redis)) redis.defineCommand("pulseAppend", { numberOfKeys: 7, lua: APPEND });
    if (!("pulseProbe" in redis)) redis.defineCommand("pulseProbe", { numberOfKeys: 4, lua: PROBE });
    this.redis = redis as typeof this.redis;
    this.onCluster = redis.isCluster;
  }

  /**
   * Appends an event; `genesis` is the stream's first id when this append recorded it (a
   * new stream), `ended` the run's live progress a `clear` gate removed. With a `check` gate
   * the append may be refused instead (see `AppendRefusal`). With `retryForMs`, an append
   * Redis could not serve (a cluster failover longer than the client waits) is sent again until
   * it is, for that long; sent again, it finds its own entry if the first one landed after all.
   */
  async append(
    tenantId: string,
    payload: string,
    gate?: LiveAttemptGate,
    options: { retryForMs?: number; counter?: AppendCounter } = {},
  ): Promise<AppendResult> {
    const { retryForMs = 0, counter } = options;
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.appendOnce(tenantId, payload, gate, attempt > 0, counter);
      } catch (error) {
        const waited = Date.now() - started;
        if (!isRedisUnavailable(error) || waited >= retryForMs) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 1_000, retryForMs - waited)));
      }
    }
  }

  private async appendOnce(
    tenantId: string,
    payload: string,
    gate: LiveAttemptGate | undefined,
    resent: boolean,
    counter: AppendCounter | undefined,
  ): Promise<AppendResult> {
    const progress = gate && gate.mode !== "clear" && gate.progress ? JSON.stringify(gate.progress) : "";
    const [id, genesis, refused, ended] = (await this.redis.pulseAppend(
      this.keys.events(tenantId),
      this.keys.genesis(tenantId),
      gate ? this.keys.liveAttempt(tenantId, gate.runId) : this.keys.genesis(tenantId),
      this.keys.liveProgress(tenantId),
      this.keys.trimmed(tenantId),
      this.keys.appender(tenantId),
      counter ? this.keys.counter(tenantId, counter.runId) : this.keys.genesis(tenantId),
      payload,
      gate?.mode ?? "none",
      gate && gate.mode !== "clear" ? String(gate.attempt) : "",
      progress,
      gate?.runId ?? "",
      this.keys.wake(tenantId),
      tenantId,
      this.recent.get(tenantId)?.appended ?? "",
      this.onCluster ? "1" : "",
      resent ? "1" : "",
      counter ? String(counter.seq) : "",
    )) as [string | null, string | null, AppendRefusal | null, string | null];
    if (refused) return { refused };
    if (!id) throw new Error("XADD returned no id");
    const memory = this.remember(tenantId);
    if (compareStreamIds(id, memory.appended) > 0) memory.appended = id;
    this.trimSoon(tenantId, memory);
    return { id, genesis: genesis ?? null, ...(ended ? { ended: JSON.parse(ended) as LiveProgress } : {}) };
  }

  /** The tenant's record, made its most recent, the least recent forgotten beyond the bound. */
  private remember(tenantId: string): { appended: string; trimmedAt: number; appends: number } {
    const memory = this.recent.get(tenantId) ?? { appended: STREAM_ORIGIN, trimmedAt: 0, appends: 0 };
    this.recent.delete(tenantId);
    if (this.recent.size >= this.rememberedTenants) this.recent.delete(this.recent.keys().next().value!);
    this.recent.set(tenantId, memory);
    return memory;
  }

  /** The latest progress of those of `runIds` (default: all the tenant's) that are running, as Redis holds it. */
  async readLiveProgress(tenantId: string, runIds?: readonly string[]): Promise<Map<string, LiveProgress>> {
    const live = new Map<string, LiveProgress>();
    const key = this.keys.liveProgress(tenantId);
    if (!runIds) {
      for (const [runId, value] of Object.entries(await this.redis.hgetall(key)))
        live.set(runId, JSON.parse(value) as LiveProgress);
      return live;
    }
    if (runIds.length === 0) return live;
    const values = await this.redis.hmget(key, ...runIds);
    values.forEach((value, i) => {
      if (value) live.set(runIds[i]!, JSON.parse(value) as LiveProgress);
    });
    return live;
  }

  /** Whether `id` is an entry of the tenant's stream, with the markers that explain it if not. */
  async probe(tenantId: string, id: string): Promise<CursorProbe> {
    const [found, trimmed, genesis, streamExists, newest, seconds] = (await this.redis.pulseProbe(
      this.keys.events(tenantId),
      this.keys.trimmed(tenantId),
      this.keys.genesis(tenantId),
      this.keys.appender(tenantId),
      id,
      this.onCluster ? "1" : "",
    )) as [number, string | null, string | null, number, string?, string?];
    const probe: CursorProbe = {
      exists: found > 0,
      trimmedThrough: trimmed,
      // A stream written before the marker existed has none until its next append.
      genesis: genesis ?? (streamExists ? UNKNOWN_GENESIS : null),
    };
    if (
      newest !== undefined &&
      seconds !== undefined &&
      Number(id.split("-")[0]) <= Number(seconds) * 1000 + CLOCK_SKEW_MS
    )
      probe.lostTailAbove = newest;
    return probe;
  }

  /**
   * Entries after `afterId` (exclusive), oldest first, at most `count`, read after the call
   * began. Callers asking for the same page at the same time share one read and its parsed
   * entries (which they must not change): a tenant's dashboards reconnecting together after a
   * deploy resume from the same id, and would otherwise each read and parse the same stretch.
   */
  readAfter(tenantId: string, afterId: string, count: number): Promise<StreamEntry[]> {
    return this.pages.read(`${tenantId}\n${afterId}\n${count}`, async () => {
      const raw = (await this.redis.xrange(this.keys.events(tenantId), nextStreamId(afterId), "+", "COUNT", count)) as [
        string,
        string[],
      ][];
      return parseEntries(raw);
    });
  }

  /** Id of the newest entry, or the origin when the tenant has none. */
  async lastId(tenantId: string): Promise<string> {
    const raw = (await this.redis.xrevrange(this.keys.events(tenantId), "+", "-", "COUNT", 1)) as [string, string[]][];
    return raw[0]?.[0] ?? STREAM_ORIGIN;
  }

  /** True when events after `cursor` may have been trimmed away, so replaying would skip some. */
  async isBehindRetention(tenantId: string, cursor: string): Promise<boolean> {
    const trimmed = await this.redis.get(this.keys.trimmed(tenantId));
    return trimmed !== null && compareStreamIds(cursor, trimmed) < 0;
  }

  /** Runs a retention pass for a tenant now and then, off the publisher's path. */
  private trimSoon(tenantId: string, memory: { trimmedAt: number; appends: number }): void {
    memory.appends += 1;
    const now = Date.now();
    if (now - memory.trimmedAt < 60_000 && memory.appends < 1_000) return;
    memory.trimmedAt = now;
    memory.appends = 0;
    this.trim(tenantId, now).catch(() => {
      // A failed pass is retried by the next one; retention is a bound, not a deadline.
      memory.trimmedAt = 0;
    });
  }

  /**
   * Drops entries that are both older than the age limit and outside the newest
   * `minEvents`, and anything beyond `maxEvents`. The trimmed marker is raised before the
   * entries go, so a reader never sees a gap it cannot detect.
   */
  async trim(tenantId: string, now = Date.now()): Promise<number> {
    const key = this.keys.events(tenantId);
    const length = await this.redis.xlen(key);
    const overMax = Math.max(0, length - this.retention.maxEvents);
    const overMin = Math.max(0, length - this.retention.minEvents);
    if (overMin === 0) return 0;
    const cutoff = `${Math.max(0, now - this.retention.maxAgeMs)}-0`;
    const [oldest] = (await this.redis.xrange(key, "-", "+", "COUNT", 1)) as [string, string[]][];
    if (!oldest) return 0;
    // Entries older than the cutoff, but never more than would break the minimum count.
    const aged =
      overMin > 0 && compareStreamIds(oldest[0], cutoff) < 0
        ? ((await this.redis.xrange(key, "-", `(${cutoff}`, "COUNT", overMin)) as [string, string[]][]).length
        : 0;
    const drop = Math.max(aged, overMax);
    if (drop === 0) return 0;
    const last = (await this.redis.xrange(key, "-", "+", "COUNT", drop)) as [string, string[]][];
    const lastDropped = last.at(-1)?.[0];
    if (!lastDropped) return 0;
    await this.raiseTrimmedMarker(tenantId, lastDropped);
    return this.redis.xtrim(key, "MINID", nextStreamId(lastDropped));
  }

  /**
   * Records that the stream lost entries up to `id` without trimming them (a Redis Cluster
   * failover loses the appends its master acknowledged but had not yet replicated): a
   * cursor at or before it then resyncs instead of replaying past the hole.
   */
  async markLostThrough(tenantId: string, id: string): Promise<void> {
    await this.raiseTrimmedMarker(tenantId, id);
  }

  private async raiseTrimmedMarker(tenantId: string, id: string): Promise<void> {
    // Only ever moves forward, even with several publishers trimming at once.
    await this.redis.eval(
      `local cur = redis.call('GET', KEYS[1])
       if cur then
         local cm, cs = string.match(cur, '(%d+)-(%d+)')
         local nm, ns = string.match(ARGV[1], '(%d+)-(%d+)')
         if tonumber(cm) > tonumber(nm) or (cm == nm and tonumber(cs) >= tonumber(ns)) then return 0 end
       end
       redis.call('SET', KEYS[1], ARGV[1])
       return 1`,
      1,
      this.keys.trimmed(tenantId),
      id,
    );
  }
}
