import { build, type Histogram } from "hdr-histogram-js";
import { isProgressEvent, routeEvent } from "./workload";

export interface LatencySummary {
  count: number;
  /** Milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface DeliveryCounts {
  /** Deliveries every subscriber should have had in this step. */
  expected: number;
  /** Distinct events received by the subscribers they were for. */
  delivered: number;
  /**
   * Progress events a subscriber never got because a later progress event of the same run
   * reached it first: latest-wins coalescing, allowed (the run's state is the same).
   */
  superseded: number;
  /** Deliveries neither received nor superseded: events lost. */
  missing: number;
  duplicates: number;
  /** Events of another tenant: an isolation failure. */
  foreign: number;
  /** Events from outside the step (late arrivals from an earlier one). */
  outsideStep: number;
  /** Subscriptions that started again from a snapshot (Pulse's `resync`). */
  resyncs: number;
  /** Connections that closed during the step. */
  closed: number;
  /** Events an official client saw out of order (ids or a run's sequence going back). */
  misordered: number;
}

/** A step's counts so far, as the orchestrator polls them while it runs. */
export interface StepProgress extends DeliveryCounts {
  /** Deliveries later than the step's `lateAfterUs` (none when it set no bound). */
  late: number;
}

export interface StepSummary extends DeliveryCounts {
  latency: LatencySummary;
  /**
   * The latency of the step's steps and logs alone (a fifth of the events): Pulse writes
   * them to its database before it appends them, where progress goes straight to the stream,
   * so comparing this with `latency` says how much of Pulse's tail is that write.
   */
  storedLatency: LatencySummary;
  /**
   * The latency of the step's progress events alone (four fifths of the events), which every
   * design delivers without a database write first: its live path, beside `storedLatency`.
   */
  progressLatency: LatencySummary;
}

/** HDR histogram in microseconds, three significant digits, resized as needed. */
export function latencyHistogram(): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
  });
}

export function summarise(histogram: Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    count: histogram.totalCount,
    p50: ms(histogram.getValueAtPercentile(50)),
    p90: ms(histogram.getValueAtPercentile(90)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
    max: ms(histogram.maxValue),
    mean: ms(histogram.mean),
  };
}

/**
 * What every subscriber of a client process received during one step: each event at most
 * once per subscriber (a bitmap per connection), only its own tenant's, and the latency of
 * each first delivery from the event's intended send time.
 */
export class DeliveryLedger {
  private histogram = latencyHistogram();
  /** The same, for steps and logs only (see `StepSummary.storedLatency`). */
  private stored = latencyHistogram();
  /** The same, for progress only (see `StepSummary.progressLatency`). */
  private progressed = latencyHistogram();
  private seqStart = 0;
  private seqEnd = 0;
  private tenants = 1;
  private runsPerTenant = 1;
  private active = false;
  private seen: Uint8Array[] = [];
  /** Per connection and run of its tenant: the newest progress event delivered this step. */
  private lastProgress: Int32Array[] = [];
  private counts: DeliveryCounts = emptyCounts();
  private lateAfterUs = Infinity;
  private late = 0;

  /** `tenantOf[c]` is the tenant index connection c subscribed to. */
  constructor(private readonly tenantOf: readonly number[]) {}

  /**
   * Starts counting the events numbered [seqStart, seqEnd), routed to tenants and runs as
   * `routeEvent` does; deliveries later than `lateAfterUs` are also counted as late.
   */
  begin(seqStart: number, seqEnd: number, tenants: number, runsPerTenant: number, lateAfterUs = Infinity): void {
    this.seqStart = seqStart;
    this.tenants = tenants;
    this.runsPerTenant = runsPerTenant;
    this.lateAfterUs = lateAfterUs;
    this.late = 0;
    this.lastProgress = this.tenantOf.map(() => new Int32Array(runsPerTenant).fill(-1));
    this.histogram.reset();
    this.stored.reset();
    this.progressed.reset();
    this.counts = emptyCounts();
    const bytes = Math.ceil((seqEnd - seqStart) / 8);
    this.seen = this.tenantOf.map(() => new Uint8Array(bytes));
    this.endAt(seqEnd);
    this.active = true;
  }

  /**
   * The step ends before `seqEnd` after all (its publisher was stopped early): events from
   * `seqEnd` on were never sent, so no subscriber expects them.
   */
  endAt(seqEnd: number): void {
    this.seqEnd = seqEnd;
    const perTenant = new Array<number>(this.tenants).fill(0);
    for (let seq = this.seqStart; seq < seqEnd; seq++) perTenant[seq % this.tenants]! += 1;
    this.counts.expected = this.tenantOf.reduce((sum, tenant) => sum + (perTenant[tenant] ?? 0), 0);
  }

  record(connection: number, seq: number, intendedUs: number, receivedUs: number): void {
    if (!this.active || seq < this.seqStart || seq >= this.seqEnd) {
      this.counts.outsideStep++;
      return;
    }
    if (seq % this.tenants !== this.tenantOf[connection]) {
      this.counts.foreign++;
      return;
    }
    const offset = seq - this.seqStart;
    const bitmap = this.seen[connection]!;
    const mask = 1 << (offset & 7);
    if (bitmap[offset >> 3]! & mask) {
      this.counts.duplicates++;
      return;
    }
    bitmap[offset >> 3]! |= mask;
    this.counts.delivered++;
    const latencyUs = Math.max(1, receivedUs - intendedUs);
    this.histogram.recordValue(latencyUs);
    if (latencyUs > this.lateAfterUs) this.late++;
    if (isProgressEvent(seq)) {
      this.progressed.recordValue(latencyUs);
      this.progressDelivered(connection, seq, bitmap);
    } else {
      this.stored.recordValue(latencyUs);
    }
  }

  /** Counts the run's earlier progress events this subscriber skipped as superseded by `seq`. */
  private progressDelivered(connection: number, seq: number, bitmap: Uint8Array): void {
    const { run } = routeEvent(seq, this.tenants, this.runsPerTenant);
    const last = this.lastProgress[connection]!;
    const previous = last[run]!;
    if (seq <= previous) return;
    last[run] = seq;
    // The run's events are `stride` apart; look back to the previous delivered progress event.
    const stride = this.tenants * this.runsPerTenant;
    const from = previous >= 0 ? previous + stride : this.firstOfRun(seq, stride);
    for (let earlier = from; earlier < seq; earlier += stride) {
      const offset = earlier - this.seqStart;
      if (isProgressEvent(earlier) && !(bitmap[offset >> 3]! & (1 << (offset & 7)))) this.counts.superseded++;
    }
  }

  /** The first event of `seq`'s run in this step. */
  private firstOfRun(seq: number, stride: number): number {
    const steps = Math.floor((seq - this.seqStart) / stride);
    return seq - steps * stride;
  }

  resynced(): void {
    this.counts.resyncs++;
  }

  misordered(): void {
    this.counts.misordered++;
  }

  connectionClosed(): void {
    if (this.active) this.counts.closed++;
  }

  progress(): StepProgress {
    return { ...this.countsNow(), late: this.late };
  }

  private countsNow(): DeliveryCounts {
    return { ...this.counts, missing: this.counts.expected - this.counts.delivered - this.counts.superseded };
  }

  end(): StepSummary {
    const summary = {
      ...this.countsNow(),
      latency: summarise(this.histogram),
      storedLatency: summarise(this.stored),
      progressLatency: summarise(this.progressed),
    };
    this.active = false;
    this.seen = [];
    return summary;
  }
}

function emptyCounts(): DeliveryCounts {
  return {
    expected: 0,
    delivered: 0,
    superseded: 0,
    missing: 0,
    duplicates: 0,
    foreign: 0,
    outsideStep: 0,
    resyncs: 0,
    closed: 0,
    misordered: 0,
  };
}
