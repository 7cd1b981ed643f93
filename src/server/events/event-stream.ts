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
}

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

  async append(tenantId: string, payload: string): Promise<string> {
    const id = await this.redis.xadd(this.keys.events(tenantId), "*", PAYLOAD_FIELD, payload);
    if (id === null) throw new Error("XADD returned no id");
    this.trimSoon(tenantId);
    return id;
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
