import type {
  BenchResult,
  FirstEventResult,
  IdleResult,
  ReconnectStormResult,
  ScenarioResult,
  StepResult,
  PhaseCpu,
} from "./bench-result";
import type { LatencySummary } from "./delivery-ledger";
import { SMOKE_PLAN } from "./bench-plan";
import { summarise } from "./report";
import { summariseRepetitions } from "./repetitions";
import type { Design } from "./workload";

/** Results as a run would write them, for the unit tests of the statistics and the docs: only what they read varies. */

/** Subscribers per tenant in every fixture step. */
export const FIXTURE_SUBSCRIBERS = 5;
const SUBSCRIBERS = FIXTURE_SUBSCRIBERS;

export function fixtureStep(design: Design, rate: number, passed: boolean, p99 = 10): StepResult {
  const events = rate * 3;
  const expected = events * SUBSCRIBERS;
  return {
    scenario: "narrow",
    step: 0,
    design,
    offeredEventsPerSecond: rate,
    offeredDeliveriesPerSecond: rate * SUBSCRIBERS,
    events,
    expected,
    delivered: expected,
    superseded: 0,
    missing: 0,
    duplicates: 0,
    foreign: 0,
    resyncs: 0,
    misordered: 0,
    closed: 0,
    publisher: { published: events, dropped: 0, failed: 0, maxLagMs: 1, errors: [], cpuUs: 0 },
    latency: { count: expected, p50: p99 / 4, p90: p99 / 2, p99, p999: p99, max: p99, mean: p99 / 4 },
    // Steps and logs (a fifth of the events) twice as slow, as when a database write comes first.
    storedLatency: {
      count: expected / 5,
      p50: p99 / 2,
      p90: p99,
      p99: p99 * 2,
      p999: p99 * 2,
      max: p99 * 2,
      mean: p99 / 2,
    },
    // Progress (the other four fifths) a little faster than all events together.
    progressLatency: {
      count: (expected * 4) / 5,
      p50: p99 / 4,
      p90: p99 / 2,
      p99: p99 * 0.75,
      p999: p99,
      max: p99,
      mean: p99 / 4,
    },
    achievedDeliveriesPerSecond: rate * SUBSCRIBERS,
    serverCpuUsPerDelivery: 10,
    serverCpuCores: 0.5,
    clientCpuUsPerDelivery: 10,
    redisCpuCores: 0.1,
    machineBusy: 0.5,
    postgresCpuCores: 0,
    otherCpuCores: 0,
    stolenCpuCores: 0,
    serverRssMiB: 100,
    passed,
    ...(passed ? {} : { failure: "p99 over the bound" }),
  };
}

/**
 * One repetition of "narrow": each design passes up to its maximum (events/s) and has a p99 at
 * each fraction; a design given `soakPassed` soaks too (as in a scenario's last repetition).
 */
export function fixtureRepetition(
  repetition: number,
  designs: Partial<Record<Design, { max: number; soakPassed?: boolean; p99AtLoads?: number[] }>>,
): ScenarioResult {
  const entries = Object.entries(designs) as [Design, { max: number; soakPassed?: boolean; p99AtLoads?: number[] }][];
  return {
    name: "narrow",
    description: "100 tenants",
    tenants: 100,
    subscribersPerTenant: SUBSCRIBERS,
    runsPerTenant: 2,
    officialClients: 0,
    repetition,
    order: entries.map(([d]) => d),
    connect: [],
    steps: entries.flatMap(([d, { max }]) => [
      fixtureStep(d, max / 2, true),
      fixtureStep(d, max, true),
      fixtureStep(d, max * 1.3, false),
    ]),
    soaks: entries.flatMap(([d, { max, soakPassed }]) =>
      soakPassed === undefined ? [] : [fixtureStep(d, max, soakPassed)],
    ),
    atLoads: entries.flatMap(([d, { p99AtLoads = [] }]) =>
      p99AtLoads.map((p99, i) => ({ ...fixtureStep(d, 100, true, p99), fraction: [0.25, 0.5, 0.75][i]! })),
    ),
    unsaturated: [],
  };
}

/** One design's subscribe wave of one repetition: only the p99s (and whether every subscriber went live) vary. */
export function fixtureWave(
  design: Design,
  repetition: number,
  p99: { subscribed: number; firstEvent: number },
  failed = 0,
): FirstEventResult {
  const times = (p: number): LatencySummary => ({
    count: 100,
    p50: p / 2,
    p90: p,
    p99: p,
    p999: p,
    max: p,
    mean: p / 2,
  });
  return {
    design,
    repetition,
    eventsPerSecondPerTenant: 20,
    publisher: { published: 2_000, dropped: 0, failed: 0 },
    connections: 100,
    live: 100 - failed,
    failed,
    errors: failed ? ["no live event within 11000 ms"] : [],
    connectMs: times(5),
    subscribedMs: times(p99.subscribed),
    firstEventMs: times(p99.firstEvent),
  };
}

/** One design's storm of one size and repetition: only the times, losses and duplicates vary. */
/** A phase's CPU (a wave, a storm's reconnects): the server's cores as given, the rest fixed. */
export function fixturePhaseCpu(seconds: number, serverCores: number): PhaseCpu {
  return { seconds, serverCores, postgresCores: 0.2, redisCores: 0.1, restOfBenchCores: 0.5, machineBusy: 0.9 };
}

export function fixtureStorm(
  design: Design,
  repetition: number,
  figures: { allLiveMs: number; lost?: number; duplicates?: number; notLive?: number; missedPerTenant?: number },
): ReconnectStormResult {
  const { allLiveMs, lost = 0, duplicates = 0, notLive = 0, missedPerTenant = 10 } = figures;
  const times: LatencySummary = {
    count: 200 - notLive,
    p50: allLiveMs / 2,
    p90: allLiveMs,
    p99: allLiveMs,
    p999: allLiveMs,
    max: allLiveMs,
    mean: allLiveMs / 2,
  };
  const steps = { published: 40, dropped: 0, failed: 0 };
  return {
    design,
    repetition,
    missedPerTenant,
    resume: "",
    recovered: design === "socket-io" ? 200 - notLive : null,
    connections: 200,
    live: 200 - notLive,
    lost,
    clientsWithLoss: lost > 0 ? 1 : 0,
    duplicates,
    clientsWithDuplicates: duplicates > 0 ? 1 : 0,
    foreign: 0,
    backToLiveMs: times,
    reconnected: 200,
    retries: 0,
    errors: [],
    dropped: 200,
    stillOpen: 0,
    serverCpuMs: 500,
    redisCpuMs: 30,
    database: design === "pulse" ? { transactions: 400, tuplesReturned: 500, blocksRead: 0, blocksHit: 1_000 } : null,
    publisher: { missed: steps, live: steps },
  };
}

export function fixtureIdle(
  design: Design,
  heapPerConnection: number,
  rssPerConnection: number,
  connections = 100,
): IdleResult {
  return {
    design,
    connections,
    ready: connections,
    failed: 0,
    connectMs: 50,
    serverConnections: connections,
    heapBefore: 0,
    heapAfter: heapPerConnection * connections,
    rssBefore: 0,
    rssAfter: rssPerConnection * connections,
    heapPerConnection,
    rssPerConnection,
    quietCpuCores: 0.01,
    broadcast: { expected: connections, delivered: connections, missing: 0, duplicates: 0, p99Ms: 5 },
    errors: [],
  };
}

export function fixtureResult(
  scenarios: ScenarioResult[],
  idle: IdleResult[] = [],
  firstEvent: FirstEventResult[] = [],
  reconnectStorm: ReconnectStormResult[] = [],
): BenchResult {
  const designs: Design[] = ["pulse", "socket-io", "ws-floor"];
  const partial = { designs, scenarios, idle, firstEvent, reconnectStorm };
  return {
    version: 1,
    mode: "smoke",
    startedAt: "2026-12-05T01:00:00.000Z",
    durationS: 42,
    revision: "abc1234",
    machine: {
      cpu: "test",
      cores: 2,
      memoryGiB: 4,
      node: "v22",
      os: "linux",
      redis: "7",
      database: "PostgreSQL",
      backgroundBusy: 0,
    } as BenchResult["machine"],
    designs,
    plan: SMOKE_PLAN,
    pulsePublisher: "worker process (PostgreSQL)",
    socketIoPublish: "emitter",
    socketIoStormAdapter: "redis-streams",
    scenarios,
    firstEvent,
    reconnectStorm,
    idle,
    publishThroughput: null,
    polling: null,
    summary: summarise(partial),
    repeated: summariseRepetitions(partial),
  };
}
