import type { RepeatedSummary } from "./repetitions";
import type { BenchPlan, ScenarioName, ScenarioPlan } from "./bench-plan";
import type { DeliveryCounts, LatencySummary } from "./delivery-ledger";
import type { DatabaseActivity } from "./bench-database";
import type { FirstEventOutcome } from "./first-event";
import type { StormOutcome } from "./reconnect-storm";
import type { ThroughputOutcome } from "./open-loop";
import type { PollingCost } from "./polling-cost";
import type { Design, SocketIoAdapter, SocketIoPublish } from "./workload";

/** The JSON `npm run bench` writes (`.data/bench/latest.json`): every figure of one run. */
export interface BenchResult {
  version: 1;
  mode: BenchPlan["mode"];
  startedAt: string;
  durationS: number;
  /** The commit measured (with "+ changes" when the work tree differed from it), if git knows. */
  revision: string;
  machine: MachineInfo;
  designs: Design[];
  plan: BenchPlan;
  /** How Pulse's events were published: from a worker process over PostgreSQL, or inside the server on PGlite. */
  pulsePublisher: "worker process (PostgreSQL)" | "in the server process (PGlite: no PostgreSQL reachable)";
  /** How the Socket.IO design's events reached its server (`--socket-io-publish`). */
  socketIoPublish: SocketIoPublish;
  scenarios: ScenarioResult[];
  /** Time to first event on subscribe: one wave per design and repetition (absent from runs before it existed). */
  firstEvent?: FirstEventResult[];
  /** Reconnect storms: one per design, repetition and number of missed events (absent from runs before they existed). */
  reconnectStorm?: ReconnectStormResult[];
  /** The adapter Socket.IO's storms ran on (absent from runs whose storms ran on the Redis adapter). */
  socketIoStormAdapter?: SocketIoAdapter;
  idle: IdleResult[];
  publishThroughput: (ThroughputOutcome & { chains: number }) | null;
  polling: PollingCost | null;
  /** Detail of single steps (the last repetition wins where names repeat); the headline is `repeated`. */
  summary: BenchSummary;
  /** The headline: medians and spreads over the repetitions, targets at the worse end. */
  repeated: RepeatedSummary;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  os: string;
  redis: string;
  database: string;
  /** Share of the machine other work kept busy just before the bench started (0–1). */
  backgroundBusy: number;
}

export interface ConnectResult {
  design: Design;
  connections: number;
  ready: number;
  failed: number;
  errors: string[];
  connectMs: number;
}

/** One design's load step: what its subscribers received (the ledger's counts, late arrivals aside) and what it cost. */
export interface StepResult extends Omit<DeliveryCounts, "outsideStep"> {
  scenario: ScenarioName;
  /** The step's place in the ladder; k − 0.5 for the step between k − 1 and k that narrows a design's maximum. */
  step: number;
  design: Design;
  offeredEventsPerSecond: number;
  offeredDeliveriesPerSecond: number;
  events: number;
  publisher: { published: number; dropped: number; failed: number; maxLagMs: number; errors: string[]; cpuUs: number };
  latency: LatencySummary;
  /** Steps' and logs' latency alone (see `StepSummary.storedLatency`); absent in runs before it was kept. */
  storedLatency?: LatencySummary;
  /** Progress events' latency alone (see `StepSummary.progressLatency`); absent in runs before it was kept. */
  progressLatency?: LatencySummary;
  /** Deliveries per second over the step, from its first intended send to its last delivery. */
  achievedDeliveriesPerSecond: number;
  /** Server CPU (user + system) per delivery over the step, idle work included (µs). */
  serverCpuUsPerDelivery: number;
  /** Share of one core the server used during the step. */
  serverCpuCores: number;
  clientCpuUsPerDelivery: number;
  redisCpuCores: number;
  /** Both cores' busy share during the step (1 = the whole machine). */
  machineBusy: number;
  /** PostgreSQL's processes during the step (Pulse's database writes), in cores. */
  postgresCpuCores: number;
  /** Processes that are not the bench's nor PostgreSQL's: other work competing for the machine, in cores. */
  otherCpuCores: number;
  /** Time the hypervisor gave to other guests during the step, in cores. */
  stolenCpuCores: number;
  /** Attempts of this step run before this one and set aside: they failed while the machine was disturbed. */
  disturbedRuns?: DisturbedRun[];
  /**
   * A soak stopped this many seconds in, once more than 1% of its planned deliveries were
   * later than the p99 bound (it could no longer pass); `events` counts what it sent.
   */
  stoppedAfterS?: number;
  serverRssMiB: number;
  passed: boolean;
  /** Why the step failed, when it did. */
  failure?: string;
}

/** An attempt set aside: what disturbed it, and why it failed. */
export interface DisturbedRun {
  otherCpuCores: number;
  stolenCpuCores: number;
  failure: string;
}

/** A scenario as it was planned (its ladder aside: the steps say what ran) and what it gave. */
export interface ScenarioResult extends Omit<ScenarioPlan, "eventRates"> {
  connect: ConnectResult[];
  /** Which repetition of the scenario this is (0-based), and the order its designs connected and stepped in first. */
  repetition: number;
  order: Design[];
  steps: StepResult[];
  /**
   * In the scenario's last repetition, each design at the median of its repetitions' maxima
   * for the soak's duration: the median maximum stands if this passes too (empty in the others).
   */
  soaks: StepResult[];
  /** The long soak, in the last repetition of the scenario the plan names. */
  longSoak?: LongSoakResult;
  /** Every design at fractions (`fraction`) of the weaker of Pulse's and Socket.IO's maxima of this repetition. */
  atLoads: (StepResult & { fraction: number })[];
  /** Designs still passing when the ladder or the time budget ran out: their maximum is at least their last step. */
  unsaturated: Design[];
}

/** A design publishing at a fraction of its median maximum for a long time, window after window. */
export interface LongSoakResult {
  design: Design;
  fraction: number;
  offeredEventsPerSecond: number;
  offeredDeliveriesPerSecond: number;
  windowMs: number;
  /** One step per window, back to back (publishing pauses only while a window's counts are read). */
  windows: StepResult[];
  /** The server's heap (after full collections) and RSS before the first window and after the last (bytes). */
  heapBefore: number;
  heapAfter: number;
  rssBefore: number;
  rssAfter: number;
}

/** One design's wave of subscribers opened at once to publishing tenants, each timed to its first live event. */
export interface FirstEventResult extends FirstEventOutcome {
  design: Design;
  repetition: number;
  /** Each tenant's events per second during the wave: a first event waits up to one interval after subscribing. */
  eventsPerSecondPerTenant: number;
  publisher: StepCounts;
  /**
   * Where the machine's CPU went while the wave subscribed, from asking the clients for it
   * until they report it done (every subscriber live, their connections closed); absent from
   * runs before it was kept.
   */
  cpu?: PhaseCpu;
}

/**
 * The machine's CPU over a phase of the run (a first-event wave, a storm's reconnects), in
 * cores' worth: on a machine every design shares, what the server gets is what the rest
 * leaves it.
 */
export interface PhaseCpu {
  seconds: number;
  serverCores: number;
  postgresCores: number;
  redisCores: number;
  /** The bench's other processes: the publisher (Pulse's worker), the clients and the orchestrator. */
  restOfBenchCores: number;
  /** Share of the whole machine that was busy (0–1). */
  machineBusy: number;
}

/** One design's clients dropped at once, `missedPerTenant` events published to each tenant meanwhile, then all reconnecting. */
export interface ReconnectStormResult extends StormOutcome {
  design: Design;
  repetition: number;
  /**
   * Why the storm could not be measured to its end (its server stopped answering, or exited):
   * it counts as not all live, and gives no other figure. Absent from storms that ran.
   */
  failed?: string;
  missedPerTenant: number;
  /** How the design's clients resume after the drop. */
  resume: string;
  /** Connections the server destroyed, and those the clients still saw open 10 s later. */
  dropped: number;
  stillOpen: number;
  /** From the reconnect until every client was back to live (or the timeout): the server's and Redis's CPU (ms). */
  serverCpuMs: number;
  redisCpuMs: number;
  /** The machine's CPU by process over the same time (absent from runs before it was kept, and from failed storms). */
  cpu?: PhaseCpu;
  /** The database's work over the same time (Pulse on PostgreSQL only; the others have none during a storm). */
  database: DatabaseActivity | null;
  publisher: { missed: StepCounts; live: StepCounts };
}

/** What a publisher step answered. */
export interface StepCounts {
  published: number;
  dropped: number;
  failed: number;
}

export interface IdleResult {
  design: Design;
  connections: number;
  ready: number;
  failed: number;
  connectMs: number;
  serverConnections: number;
  heapBefore: number;
  heapAfter: number;
  rssBefore: number;
  rssAfter: number;
  heapPerConnection: number;
  rssPerConnection: number;
  /** The server's CPU while the connections were idle (heartbeats, timers), in cores (absent from runs before it existed). */
  quietCpuCores?: number;
  /** One event per tenant after every subscriber was in place: did each reach all its tenant's subscribers? */
  broadcast: { expected: number; delivered: number; missing: number; duplicates: number; p99Ms: number };
  errors: string[];
}

export interface TargetCheck {
  name: string;
  /** The measured value (a ratio, or a count). */
  value: number | null;
  /** Set when `value` only bounds the figure (a maximum the load ladder never reached); `met` is then null unless the bound settles it. */
  bound?: "atLeast" | "atMost";
  target: string;
  met: boolean | null;
  detail: string;
  /**
   * For a target comparing Pulse with Socket.IO: the same ratio with the floor (plain ws, the
   * least work any design can do) in Pulse's place, from the same run. A target the floor
   * itself misses asks for more than this machine gives any design.
   */
  floor?: { value: number | null; bound?: "atLeast" | "atMost" };
}

export interface BenchSummary {
  /** Per scenario and design: the highest offered deliveries/s that passed, and whether it only bounds the maximum from below. */
  maxSustainable: Record<string, Partial<Record<Design, { deliveriesPerSecond: number; atLeast: boolean } | null>>>;
  /** Per scenario: the highest step every design passed, where latencies are compared. */
  equalLoad: Record<
    string,
    {
      offeredDeliveriesPerSecond: number;
      byDesign: Partial<Record<Design, LatencySummary & { serverCpuUsPerDelivery: number }>>;
    } | null
  >;
  targets: TargetCheck[];
}
