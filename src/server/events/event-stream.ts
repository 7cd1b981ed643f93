import type { Redis } from "ioredis";
import { compareStreamIds, STREAM_ORIGIN, type PulseEvent } from "./schema";

/** One entry of a tenant's stream, decoded once however many subscribers receive it. */
export interface StreamEntry {
  id: string;
  event: PulseEvent;
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

  /** The first id of the stream as it exists now: newer ids that are not entries were never issued. */
  genesis(tenantId: string): string {
    return `${this.prefix}:{${tenantId}}:genesis`;
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
}

/**
 * A stream that predates the genesis marker: its first ids are unknown, so every id since
 * the origin may have been the tenant's.
 */
export const UNKNOWN_GENESIS = "0-1";

/**
 * XADD that also records the stream's first id when this append created the stream (or
 * marks a stream older than the marker), returning the genesis it recorded, if any.
 */
const APPEND = `
local created = redis.call('EXISTS', KEYS[1]) == 0
local id = redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[2])
local genesis = false
if created then
  genesis = id
elseif redis.call('EXISTS', KEYS[2]) == 0 then
  genesis = ARGV[3]
end
if genesis then redis.call('SET', KEYS[2], genesis) end
return {id, genesis}`;

export function parseEntries(raw: [string, string[]][]): StreamEntry[] {
  const entries: StreamEntry[] = [];
  for (const [id, fields] of raw) {
    const index = fields.indexOf(PAYLOAD_FIELD);
    const payload = index >= 0 ? fields[index + 1] : undefined;
    // Entries were validated when published; the stream holds nothing else.
    if (payload !== undefined) entries.push({ id, event: JSON.parse(payload) as PulseEvent });
  }
  return entries;
}

const U64_MAX = 18_446_744_073_709_551_615n;

/** True when both parts of an id fit Redis's 64-bit fields; a bigger one would be a Redis error, not an answer. */
export function fitsStreamId(id: string): boolean {
  const [ms, seq, extra] = id.split("-");
  if (ms === undefined || seq === undefined || extra !== undefined || !/^\d+$/.test(ms) || !/^\d+$/.test(seq)) return false;
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
  private readonly lastTrim = new Map<string, { at: number; appends: number }>();

  constructor(
    private readonly redis: Redis,
    readonly keys: TenantStreamKeys,
    private readonly retention: RetentionOptions,
  ) {}

  /** Appends an event; `genesis` is the stream's first id when this append recorded it (a new stream). */
  async append(tenantId: string, payload: string): Promise<{ id: string; genesis: string | null }> {
    const [id, genesis] = (await this.redis.eval(
      APPEND,
      2,
      this.keys.events(tenantId),
      this.keys.genesis(tenantId),
      PAYLOAD_FIELD,
      payload,
      UNKNOWN_GENESIS,
    )) as [string | null, string | null];
    if (!id) throw new Error("XADD returned no id");
    this.trimSoon(tenantId);
    return { id, genesis: genesis ?? null };
  }

  /** Whether `id` is an entry of the tenant's stream, with the markers that explain it if not. */
  async probe(tenantId: string, id: string): Promise<CursorProbe> {
    const results = await this.redis
      .multi()
      .xrange(this.keys.events(tenantId), id, id, "COUNT", 1)
      .get(this.keys.trimmed(tenantId))
      .get(this.keys.genesis(tenantId))
      .exists(this.keys.events(tenantId))
      .exec();
    if (!results) throw new Error("stream probe was aborted");
    for (const [error] of results) if (error) throw error;
    const [entries, trimmed, genesis, streamExists] = results.map(([, value]) => value) as [[string, string[]][], string | null, string | null, number];
    // A stream written before the marker existed has none until its next append.
    return { exists: entries.length > 0, trimmedThrough: trimmed, genesis: genesis ?? (streamExists ? UNKNOWN_GENESIS : null) };
  }

  /** Entries after `afterId` (exclusive), oldest first, at most `count`. */
  async readAfter(tenantId: string, afterId: string, count: number): Promise<StreamEntry[]> {
    const raw = (await this.redis.xrange(
      this.keys.events(tenantId),
      nextStreamId(afterId),
      "+",
      "COUNT",
      count,
    )) as [string, string[]][];
    return parseEntries(raw);
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
  private trimSoon(tenantId: string): void {
    const state = this.lastTrim.get(tenantId) ?? { at: 0, appends: 0 };
    state.appends += 1;
    this.lastTrim.set(tenantId, state);
    const now = Date.now();
    if (now - state.at < 60_000 && state.appends < 1_000) return;
    state.at = now;
    state.appends = 0;
    this.trim(tenantId, now).catch(() => {
      // A failed pass is retried by the next one; retention is a bound, not a deadline.
      state.at = 0;
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
    const aged = overMin > 0 && compareStreamIds(oldest[0], cutoff) < 0
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
