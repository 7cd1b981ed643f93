import { DESIGNS, type Design } from "./workload";
/**
 * How much load the bench offers, and for how long: the full run (`npm run bench`, see
 * docs/BENCHMARK.md for its duration) and the smoke run (`--smoke`, seconds, in `npm test`).
 */

export type ScenarioName = "wide" | "narrow";

export interface ScenarioPlan {
  name: ScenarioName;
  description: string;
  tenants: number;
  subscribersPerTenant: number;
  runsPerTenant: number;
  /** Subscribers (of the whole scenario) that use the official client library. */
  officialClients: number;
  /** Offered events per second, one step each, lowest first (deliveries = events × subscribers per tenant). */
  eventRates: number[];
}

/**
 * Time to first event on subscribe: each tenant publishes at a steady rate while the whole
 * wave of subscribers connects at once; each subscriber is timed to its first live event.
 */
export interface FirstEventPlan {
  tenants: number;
  subscribersPerTenant: number;
  runsPerTenant: number;
  /** Each tenant's events per second: a subscriber's first event waits up to one interval after it is subscribed. */
  eventsPerSecondPerTenant: number;
  /** How long the tenants publish at most; the wave starts `leadMs` in and must be live before the end. */
  publishMs: number;
  leadMs: number;
}

/**
 * A reconnect storm: every client of the scenario connected and live, all dropped by the
 * server at once (a deploy), events published while they are away, then all reconnecting.
 */
export interface ReconnectStormPlan {
  tenants: number;
  clientsPerTenant: number;
  /** Events each tenant publishes while its clients are away: one storm per figure, on the same clients. */
  missedPerTenant: number[];
  /** Events per second (all tenants) at which the missed events are published. */
  missedRate: number;
  /** Each tenant's events per second after the reconnect: a client is back to live at the first it receives. */
  liveEventsPerSecondPerTenant: number;
  /** A client not back to live by then counts as not live. */
  timeoutMs: number;
}

/**
 * Idle connections: each size's subscribers (spread over `tenants`) held by one server
 * process, for memory per connection and the server's CPU while nothing is published.
 */
export interface IdlePlan {
  tenants: number;
  /**
   * Subscribers per design, one measurement per size in this order, in the same server
   * process: RSS the allocator kept from an earlier size counts as already there, so the
   * size the memory target is judged at (the largest) goes first.
   */
  sizes: number[];
  officialClients: number;
  /** How long the server's CPU is read while the connections are idle. */
  quietMs: number;
}

export interface BenchPlan {
  mode: "full" | "smoke";
  /**
   * The designs measured unless `--only` names others. A full run measures those the
   * targets compare; SSE, Pulse's own fallback transport and in no target, runs when named
   * (\`--only=pulse,socket-io,sse,ws-floor\`), which keeps the run within its time. The smoke
   * run takes all four, so each one's mechanics are proven in \`npm test\`.
   */
  designs: readonly Design[];
  /** How long each load step publishes. */
  stepMs: number;
  /** A design's first, uncounted step in each scenario (JIT, pools, prepared queries). */
  warmupMs: number;
  /** How long after its last publish a step may take to deliver everything. */
  drainMs: number;
  /** A step passes only if its p99 stays under this (and everything was delivered). */
  p99BoundMs: number;
  /** Stop stepping a design once it fails a step (the full run); the smoke run runs every step. */
  stopAtSaturation: boolean;
  /**
   * When a design fails a step, first run it once between that step and the one before
   * (their geometric mean), so its maximum is known to ×1.14 rather than to the ladder's ×1.3.
   */
  refineSaturation: boolean;
  /**
   * How many times each scenario runs, designs interleaved within each and their order
   * rotated from one repetition to the next; the tables show the median and the spread.
   */
  repetitions: number;
  /**
   * How long each design publishes at its maximum to confirm it (`--soak-seconds` overrides):
   * once per scenario, in its last repetition, at the median of the repetitions' maxima.
   */
  soakMs: number;
  /**
   * A design whose soak at its median maximum fails soaks again at the ladder's steps below
   * it, at most this many, until one passes: the highest that passes is its sustained
   * maximum. Every design gets the same tries.
   */
  soakStepsDown: number;
  /**
   * Repetitions after the first start each design's ladder this many steps below its maximum
   * in the repetition before (and step down from there if it fails at once): the steps far
   * below a design's maximum tell nothing new, and skipping them is what lets five
   * repetitions fit in the run's time.
   */
  reclimbSteps: number;
  /**
   * The long soak (the "soak" scenario): `design` publishes at `fraction` of its median
   * maximum in `scenario`, as consecutive windows of `windowMs`, for p99 drift and memory
   * growth over time; it runs in the scenario's last repetition.
   */
  longSoak: { scenario: ScenarioName; design: "pulse"; fraction: number; windows: number; windowMs: number };
  /** Latency is compared at these fractions of the weaker design's maximum (Pulse vs Socket.IO). */
  comparisonFractions: number[];
  /**
   * Events a comparison step publishes at least: it lasts `stepMs`, or longer at a rate too
   * low to publish this many in that time (wide's 25% step is a few dozen events in 2 s, and
   * a p99 over them is their slowest one or two).
   */
  comparisonMinEvents: number;
  /**
   * A step that fails on timing alone (p99 over the bound, deliveries still missing after the
   * drain) while other work and the hypervisor together took at least `cores` is run again,
   * up to `reruns` times, before it counts: on a shared virtual machine, a neighbour's burst
   * would otherwise end a design's ladder at a random step. Set-aside attempts are reported.
   */
  disturbance: { cores: number; reruns: number };
  /** Load steps stop once a scenario has taken this long (the designs still stepping are reported as "at least"). */
  scenarioBudgetMs: number;
  scenarios: ScenarioPlan[];
  firstEvent: FirstEventPlan;
  reconnectStorm: ReconnectStormPlan;
  idle: IdlePlan;
  throughput: { tenants: number; runsPerTenant: number; warmupMs: number; durationMs: number };
  polling: { clients: number; intervalMs: number; windowMs: number };
  /** Connections a client process opens at once. */
  connectConcurrency: number;
}

/** ×`factor` per step from `first`, `steps` steps. */
function ladder(first: number, steps: number, factor = 1.3): number[] {
  return Array.from({ length: steps }, (_, i) => Math.round(first * factor ** i * 10) / 10);
}

export const FULL_PLAN: BenchPlan = {
  mode: "full",
  designs: ["pulse", "socket-io", "ws-floor"],
  stepMs: 2_000,
  warmupMs: 1_000,
  drainMs: 2_000,
  p99BoundMs: 250,
  stopAtSaturation: true,
  refineSaturation: true,
  repetitions: 5,
  soakMs: 60_000,
  soakStepsDown: 2,
  reclimbSteps: 3,
  longSoak: { scenario: "narrow", design: "pulse", fraction: 0.5, windows: 10, windowMs: 60_000 },
  comparisonFractions: [0.25, 0.5, 0.75],
  comparisonMinEvents: 200,
  // One try for every step, passing or failing: the repetitions carry the noise, and a
  // rerun only for failures would inflate every design's maximum.
  disturbance: { cores: 0.1, reruns: 0 },
  scenarioBudgetMs: 270_000,
  scenarios: [
    {
      name: "wide",
      description: "one tenant, every event to 1,000 subscribers",
      tenants: 1,
      subscribersPerTenant: 1_000,
      runsPerTenant: 8,
      officialClients: 3,
      eventRates: ladder(20, 16),
    },
    {
      name: "narrow",
      description: "100 tenants, each event to its tenant's 5 subscribers",
      tenants: 100,
      subscribersPerTenant: 5,
      runsPerTenant: 2,
      officialClients: 3,
      eventRates: ladder(500, 17),
    },
  ],
  firstEvent: {
    tenants: 100,
    subscribersPerTenant: 10,
    runsPerTenant: 2,
    eventsPerSecondPerTenant: 20,
    publishMs: 30_000,
    leadMs: 1_000,
  },
  reconnectStorm: {
    tenants: 100,
    clientsPerTenant: 100,
    missedPerTenant: [10, 100],
    missedRate: 2_000,
    liveEventsPerSecondPerTenant: 2,
    timeoutMs: 60_000,
  },
  idle: { tenants: 10, sizes: [50_000, 10_000], officialClients: 2, quietMs: 10_000 },
  throughput: { tenants: 8, runsPerTenant: 4, warmupMs: 2_000, durationMs: 5_000 },
  polling: { clients: 20, intervalMs: 2_000, windowMs: 12_000 },
  connectConcurrency: 200,
};

export const SMOKE_PLAN: BenchPlan = {
  mode: "smoke",
  designs: DESIGNS,
  stepMs: 300,
  warmupMs: 200,
  drainMs: 10_000,
  // The smoke run checks deliveries, not latency: a bound no loaded test machine reaches, so
  // every step passes on what it delivered and every path after it (the soaks at the maxima,
  // the comparison loads, Pulse's long soak) runs whatever else the machine is doing.
  p99BoundMs: 5_000,
  stopAtSaturation: false,
  refineSaturation: false,
  // Every path of the full run once, with tiny numbers: one repetition, one step per design
  // and scenario, a short soak, one comparison load. The statistics' code is unit-tested.
  repetitions: 1,
  soakMs: 200,
  soakStepsDown: 1,
  reclimbSteps: 3,
  longSoak: { scenario: "narrow", design: "pulse", fraction: 0.5, windows: 2, windowMs: 300 },
  comparisonFractions: [0.5],
  // More than wide's comparison step publishes in stepMs, so the smoke run lengthens it.
  comparisonMinEvents: 10,
  // The smoke run checks deliveries, not capacity: it reports what happened, once.
  disturbance: { cores: 0.1, reruns: 0 },
  scenarioBudgetMs: 60_000,
  scenarios: [
    {
      name: "wide",
      description: "one tenant, every event to 8 subscribers",
      tenants: 1,
      subscribersPerTenant: 8,
      runsPerTenant: 2,
      officialClients: 2,
      eventRates: [40],
    },
    {
      name: "narrow",
      description: "4 tenants, each event to its tenant's 2 subscribers",
      tenants: 4,
      subscribersPerTenant: 2,
      runsPerTenant: 1,
      officialClients: 2,
      eventRates: [80],
    },
  ],
  firstEvent: {
    tenants: 4,
    subscribersPerTenant: 8,
    runsPerTenant: 1,
    eventsPerSecondPerTenant: 20,
    publishMs: 20_000,
    leadMs: 300,
  },
  reconnectStorm: {
    tenants: 4,
    clientsPerTenant: 50,
    missedPerTenant: [10, 100],
    missedRate: 400,
    liveEventsPerSecondPerTenant: 10,
    timeoutMs: 20_000,
  },
  idle: { tenants: 2, sizes: [50], officialClients: 1, quietMs: 300 },
  throughput: { tenants: 2, runsPerTenant: 2, warmupMs: 300, durationMs: 500 },
  polling: { clients: 2, intervalMs: 500, windowMs: 1_000 },
  connectConcurrency: 50,
};
