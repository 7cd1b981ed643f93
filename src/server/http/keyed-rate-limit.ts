import { TokenBucket } from "../ws/token-bucket";

/** Keys tracked at once; the least recently added is forgotten beyond this, so memory stays bounded. */
const DEFAULT_MAX_KEYS = 10_000;

/**
 * One token bucket per key (a run, an address, a tenant), in this process's memory:
 * `perSecond` calls per second with bursts up to twice that. Behind a load balancer each
 * replica counts its own share.
 */
export class KeyedRateLimit {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    readonly perSecond: number,
    private readonly maxKeys = DEFAULT_MAX_KEYS,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Takes `cost` from the key's budget: 0 when it had enough, else the seconds (at least 1)
   * to wait, with nothing taken. A cost beyond the burst costs the whole burst, so it can pass once the budget is full.
   */
  take(key: string, cost = 1): number {
    const bucket = this.bucketFor(key);
    const due = Math.min(cost, this.perSecond * 2);
    if (bucket.take(due)) return 0;
    return Math.max(1, Math.ceil(bucket.waitMs(due) / 1000));
  }

  private bucketFor(key: string): TokenBucket {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = new TokenBucket(this.perSecond, this.perSecond * 2, this.now);
      this.buckets.set(key, bucket);
    }
    return bucket;
  }
}
