import { latencyHistogram, summarise, type LatencySummary } from "./delivery-ledger";

/**
 * What a reconnect storm's clients received: the events published while they were away
 * (`[missedStart, liveStart)`, dealt to tenants by `seq % tenants`), each of which must
 * arrive once, and the live events published after they reconnected (from `liveStart`): a
 * client is back to live at the first of those it receives.
 */
export interface StormRange {
  missedStart: number;
  liveStart: number;
  tenants: number;
}

export interface StormCounts {
  connections: number;
  /** Clients that received a live event before the timeout. */
  live: number;
  /** Events published while away that a client never received, summed over clients. */
  lost: number;
  clientsWithLoss: number;
  /** Events a client received more than once (missed or live), summed over clients. */
  duplicates: number;
  clientsWithDuplicates: number;
  /** Events of another tenant. */
  foreign: number;
  /** From the reconnect to each client's first live event (ms). */
  backToLiveMs: LatencySummary;
}

export class StormLedger {
  private readonly seen: Set<number>[];
  private readonly liveAtUs: (number | undefined)[];
  private readonly duplicatesOf: number[];
  private foreign = 0;

  /** `tenantOf[c]` is the tenant index of client c; the reconnect started at `reconnectUs`. */
  constructor(
    private readonly tenantOf: readonly number[],
    private readonly range: StormRange,
    private readonly reconnectUs: number,
  ) {
    this.seen = tenantOf.map(() => new Set());
    this.liveAtUs = tenantOf.map(() => undefined);
    this.duplicatesOf = tenantOf.map(() => 0);
  }

  record(client: number, seq: number, receivedUs: number): void {
    if (seq < this.range.missedStart) return;
    if (seq % this.range.tenants !== this.tenantOf[client]) {
      this.foreign++;
      return;
    }
    const seen = this.seen[client]!;
    if (seen.has(seq)) this.duplicatesOf[client]! += 1;
    else seen.add(seq);
    if (seq >= this.range.liveStart) this.liveAtUs[client] ??= receivedUs;
  }

  /** Clients back to live so far. */
  get live(): number {
    return this.liveAtUs.filter((at) => at !== undefined).length;
  }

  /** Events of `[missedStart, liveStart)` that `client`'s tenant should have had. */
  private missedOf(client: number): number {
    const { missedStart, liveStart, tenants } = this.range;
    const tenant = this.tenantOf[client]!;
    const first = missedStart + ((((tenant - missedStart) % tenants) + tenants) % tenants);
    return first >= liveStart ? 0 : Math.ceil((liveStart - first) / tenants);
  }

  counts(): StormCounts {
    const histogram = latencyHistogram();
    let lost = 0;
    let clientsWithLoss = 0;
    this.tenantOf.forEach((_, client) => {
      let received = 0;
      for (const seq of this.seen[client]!) if (seq < this.range.liveStart) received++;
      const missing = this.missedOf(client) - received;
      lost += missing;
      if (missing > 0) clientsWithLoss++;
      const at = this.liveAtUs[client];
      if (at !== undefined) histogram.recordValue(Math.max(1, at - this.reconnectUs));
    });
    const duplicates = this.duplicatesOf.reduce((sum, d) => sum + d, 0);
    return {
      connections: this.tenantOf.length,
      live: this.live,
      lost,
      clientsWithLoss,
      duplicates,
      clientsWithDuplicates: this.duplicatesOf.filter((d) => d > 0).length,
      foreign: this.foreign,
      backToLiveMs: summarise(histogram),
    };
  }
}
