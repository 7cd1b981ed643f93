import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { backgroundLoad, BenchHarness, machineInfo, redisCpuSeconds, revision } from "./bench-harness";
import { log, sleep } from "./bench-log";
import { parseArgs, REPO_ROOT, sizedPlan } from "./bench-options";
import type { DatabaseActivity } from "./bench-database";
import {
  FULL_PLAN,
  SMOKE_PLAN,
  type FirstEventPlan,
  type IdlePlan,
  type ReconnectStormPlan,
  type ScenarioPlan,
} from "./bench-plan";
import type {
  BenchResult,
  FirstEventResult,
  IdleResult,
  ReconnectStormResult,
  ScenarioResult,
  StepCounts,
  StepResult,
  PhaseCpu,
} from "./bench-result";
import type { DeliveryCounts, StepProgress, StepSummary } from "./delivery-ledger";
import { openFileLimit, type BenchProcess } from "./ipc";
import type { StormOutcome } from "./reconnect-storm";
import type { ServerStats } from "./servers/server-stats";
import { cpuShares, sampleCpu, type CpuShares } from "./machine-cpu";
import type { LoadStep, StepOutcome, ThroughputRun } from "./open-loop";
import type { PollingCost } from "./polling-cost";
import { writeBenchDocs } from "./bench-docs";
import { repeatedTables, summariseRepetitions } from "./repetitions";
import { scenarioTable, summarise, summaryTables } from "./report";
import { comparisonLoads, comparisonStepMs, interleavedOrder, toMiB } from "./statistics";
import { afterFailure, ladderStarts, maximumOf, medianMaximum, soakRates } from "./ladder";
import { cannotPass, disturbance, judgeStep } from "./step-verdict";
import { nowUs, type BenchTenant, type Design, type SocketIoAdapter } from "./workload";

/**
 * `npm run bench`: Pulse against Socket.IO (fed by `@socket.io/redis-emitter` unless
 * `--socket-io-publish` says otherwise) and a batching `ws` server (the floor), the same
 * workload, one machine, one Redis, interleaved; SSE over Redis pub/sub too when `--only`
 * names it: the scenarios, their load steps and the report. Flags in `bench-options.ts`; the
 * processes in `bench-harness.ts`.
 */

// ---------------------------------------------------------------------------------------
// Scenarios.

async function drain(clients: BenchProcess, design: Design, deadlineMs: number): Promise<DeliveryCounts> {
  for (;;) {
    const progress = await clients.request<DeliveryCounts>("progress", { design });
    if (progress.missing <= 0 || Date.now() >= deadlineMs) return progress;
    await sleep(40);
  }
}

interface MeasuredStep {
  summary: StepSummary & { cpuUs: number };
  outcome: StepOutcome;
  serverCpuUs: number;
  serverRss: number;
  redisCpuS: number;
  cpu: CpuShares;
  elapsedS: number;
  /** Set when the step was stopped once it could no longer pass (see `stopOnceFailed`). */
  stoppedEarly?: EarlyStop & { sent: number };
}

/** Why a long step stopped early: more of its deliveries were late than its p99 allows (`cannotPass`). */
interface EarlyStop {
  afterS: number;
  /** Deliveries later than the p99 bound when it stopped, and all the step would have made. */
  late: number;
  planned: number;
}

/** How often a long step's deliveries are looked at while it runs. */
const WATCH_MS = 1_000;

/**
 * Ends `design`'s step once it `cannotPass`: the seconds left would only confirm its
 * failure. Polls the clients until `stepping` settles.
 */
async function stopOnceFailed(
  bench: BenchHarness,
  design: Design,
  boundMs: number,
  stepping: Promise<StepOutcome>,
): Promise<EarlyStop | undefined> {
  const { clients } = bench.kit(design);
  let settled = false;
  void stepping.finally(() => (settled = true)).catch(() => undefined);
  const startedMs = Date.now();
  while (!settled) {
    await sleep(WATCH_MS);
    if (settled) return undefined;
    const { late, expected } = await clients.request<StepProgress>("progress", { design });
    if (cannotPass({ late, expected })) {
      await bench.endStep(design);
      log(`  ${design}: ${late} of ${expected} deliveries later than ${boundMs} ms: soak stopped, it cannot pass`);
      return { afterS: (Date.now() - startedMs) / 1000, late, planned: expected };
    }
  }
  return undefined;
}

/** What a design's server, Redis and the machine used since a meter started. */
interface MeteredCpu {
  /** The server's stats when read: its CPU and RSS. */
  server: ServerStats;
  serverCpuUs: number;
  redisCpuS: number;
  /** The machine's CPU by group over the seconds it was read for. */
  cpu: CpuShares;
}

/**
 * Starts reading CPU for a step or a wave: the server's own clock, Redis's, and every process
 * on the machine (`sampleCpu`). `read` takes the seconds to share the machine's CPU over, so a
 * step can stop its clock before the clients' counts are fetched.
 */
async function startCpuMeter(
  bench: BenchHarness,
  design: Design,
): Promise<{ elapsedS(): number; read(seconds: number): Promise<MeteredCpu> }> {
  const { server } = bench.kit(design);
  const serverBefore = await server.stats();
  const redisBefore = await redisCpuSeconds(bench.redis);
  const cpuBefore = sampleCpu();
  const startedUs = nowUs();
  return {
    elapsedS: () => (nowUs() - startedUs) / 1e6,
    async read(seconds) {
      const serverAfter = await server.stats();
      const cpuAfter = sampleCpu();
      const redisAfter = await redisCpuSeconds(bench.redis);
      return {
        server: serverAfter,
        serverCpuUs: serverAfter.cpuUs - serverBefore.cpuUs,
        redisCpuS: redisAfter - redisBefore,
        cpu: cpuShares(cpuBefore, cpuAfter, seconds),
      };
    },
  };
}

/**
 * One measured step. With `stopWhenFailed` (the soaks), a step that has failed beyond doubt
 * stops there (`stopOnceFailed`), and its clients then expect only the events it sent.
 */
async function measureStep(
  bench: BenchHarness,
  design: Design,
  step: LoadStep,
  stopWhenFailed = false,
): Promise<MeasuredStep> {
  const { clients } = bench.kit(design);
  const boundMs = bench.plan.p99BoundMs;
  await clients.request("begin", {
    design,
    seqStart: step.seqStart,
    seqEnd: step.seqStart + step.count,
    tenants: step.tenants,
    runsPerTenant: step.runsPerTenant,
    lateAfterMs: boundMs,
  });
  const meter = await startCpuMeter(bench, design);
  const stepping = bench.step(design, step, (step.count / step.rate) * 1000 + 30_000);
  const stop = stopWhenFailed ? await stopOnceFailed(bench, design, boundMs, stepping) : undefined;
  const outcome = await stepping;
  // The open loop sends events in order: those it answered for are the ones it sent.
  const stoppedEarly = stop && { ...stop, sent: outcome.published + outcome.dropped + outcome.failed };
  if (stoppedEarly) await clients.request("end-at", { design, seqEnd: step.seqStart + stoppedEarly.sent });
  await drain(clients, design, Date.now() + bench.plan.drainMs);
  const elapsedS = meter.elapsedS();
  const summary = await clients.request<StepSummary & { cpuUs: number }>("end", { design });
  const used = await meter.read(elapsedS);
  return {
    summary,
    outcome,
    serverCpuUs: used.serverCpuUs,
    serverRss: used.server.rss,
    redisCpuS: used.redisCpuS,
    cpu: used.cpu,
    elapsedS,
    ...(stoppedEarly ? { stoppedEarly } : {}),
  };
}

/** Numbers a scenario's events: each step starts on a multiple of the tenant count, after the previous one. */
function seqNumbering(tenants: number): (count: number) => number {
  let next = 0;
  return (count) => {
    const start = Math.ceil(next / tenants) * tenants;
    next = start + count;
    return start;
  };
}

/** A scenario's running state in one repetition: its result, its event numbering, and the designs still stepping. */
interface ScenarioRun {
  bench: BenchHarness;
  plan: ScenarioPlan;
  result: ScenarioResult;
  stepOf: (rate: number, ms: number) => LoadStep;
}

/**
 * Runs one load step of `design` at `rate` for `ms` (a ladder step's by default) and records
 * it in `into`; resolves to whether it passed. Every step gets the same number of tries,
 * passing or failing (`plan.disturbance.reruns`, 0 in the full run: the repetitions carry
 * the noise). With `stopWhenFailed`, it ends as soon as it can no longer pass (`stopOnceFailed`).
 */
async function runStep(
  run: ScenarioRun,
  design: Design,
  rate: number,
  index: number,
  into: StepResult[],
  { ms = run.bench.plan.stepMs, stopWhenFailed = false }: { ms?: number; stopWhenFailed?: boolean } = {},
): Promise<StepResult> {
  const { bench, plan } = run;
  const {
    measured: m,
    failed,
    disturbedRuns,
  } = await judgeStep(
    async () => {
      // Each attempt sends events of its own, numbered after the last attempt's.
      const step = run.stepOf(rate, ms);
      return { ...(await measureStep(bench, design, step, stopWhenFailed)), step };
    },
    bench.plan,
    async (reason, disturbed) => {
      log(
        `  ${String(rate).padStart(6)} ev/s ${design.padEnd(9)} failed while disturbed (${disturbed}): ${reason}; again`,
      );
      await bench.settle(design);
    },
  );
  const stop = m.stoppedEarly;
  const failure =
    failed && stop
      ? `stopped after ${Math.round(stop.afterS)} s, ${stop.late} of its ${stop.planned} deliveries later than ${bench.plan.p99BoundMs} ms: ${failed.reason}`
      : failed?.reason;
  const disturbed = disturbance(m, bench.plan);
  // The clients' counts as they are; late arrivals from an earlier step are not this step's.
  const { outsideStep: _late, latency, storedLatency, progressLatency, cpuUs: clientCpuUs, ...counts } = m.summary;
  const { delivered } = counts;
  const stepResult: StepResult = {
    scenario: plan.name,
    step: index,
    design,
    offeredEventsPerSecond: rate,
    offeredDeliveriesPerSecond: rate * plan.subscribersPerTenant,
    events: stop ? stop.sent : m.step.count,
    ...counts,
    publisher: {
      published: m.outcome.published,
      dropped: m.outcome.dropped,
      failed: m.outcome.failed,
      maxLagMs: m.outcome.maxLagUs / 1000,
      errors: m.outcome.errors,
      cpuUs: m.outcome.cpuUs,
    },
    latency,
    storedLatency,
    progressLatency,
    achievedDeliveriesPerSecond: delivered / m.elapsedS,
    serverCpuUsPerDelivery: delivered > 0 ? m.serverCpuUs / delivered : 0,
    serverCpuCores: m.serverCpuUs / 1e6 / m.elapsedS,
    clientCpuUsPerDelivery: delivered > 0 ? clientCpuUs / delivered : 0,
    redisCpuCores: m.redisCpuS / m.elapsedS,
    machineBusy: m.cpu.machineBusy,
    postgresCpuCores: m.cpu.postgresCores,
    otherCpuCores: m.cpu.otherCores,
    stolenCpuCores: m.cpu.stolenCores,
    ...(disturbedRuns.length ? { disturbedRuns } : {}),
    ...(stop ? { stoppedAfterS: Math.round(stop.afterS * 10) / 10 } : {}),
    serverRssMiB: Math.round(m.serverRss / 1024 / 1024),
    passed: failure === undefined,
    ...(failure ? { failure } : {}),
  };
  into.push(stepResult);
  log(
    `  ${String(rate).padStart(6)} ev/s ${design.padEnd(9)} p50 ${latency.p50} ms, p99 ${latency.p99} ms (progress ${progressLatency.p99} ms, steps and logs ${storedLatency.p99} ms), ` +
      `${delivered}/${counts.expected} delivered, ${stepResult.serverCpuUsPerDelivery.toFixed(1)} µs/delivery, machine ${Math.round(m.cpu.machineBusy * 100)}%${disturbed ? ` (${disturbed})` : ""}${failure ? `  FAIL: ${failure}` : ""}`,
  );
  return stepResult;
}

/** Connects each design (in this repetition's order) and warms it up; resolves to the designs ready to step. */
async function connectDesigns(run: ScenarioRun): Promise<Set<Design>> {
  const { bench, plan, result } = run;
  const active = new Set<Design>();
  for (const design of result.order) {
    const tenants = await bench.tenants(design, {
      tenants: plan.tenants,
      connectionsPerTenant: plan.subscribersPerTenant,
      runsPerTenant: plan.runsPerTenant,
    });
    await bench.target(design, tenants);
    const connect = await bench.connect(design, tenants, plan.officialClients);
    result.connect.push(connect);
    log(
      `  ${design}: ${connect.ready}/${connect.connections} subscribed in ${connect.connectMs} ms${connect.failed ? ` (${connect.failed} failed: ${connect.errors[0]})` : ""}`,
    );
    if (connect.failed > 0) continue;
    // A warm-up at the first rate (JIT, connection pools, prepared queries), not counted.
    const warm = await measureStep(bench, design, run.stepOf(plan.eventRates[0]!, bench.plan.warmupMs));
    if (warm.summary.missing > 0) log(`  ${design}: warm-up missed ${warm.summary.missing} deliveries`);
    active.add(design);
  }
  return active;
}

/**
 * The load ladder, designs interleaved at each step (their order rotated by step and
 * repetition). Each design starts at its own step (`startAt`, see `reclimbSteps`). A design
 * that fails stops stepping (full run) but stays connected, idle, for the soak and the
 * comparison loads.
 */
async function climbLadder(
  run: ScenarioRun,
  active: Set<Design>,
  started: number,
  startAt: ReadonlyMap<Design, number>,
): Promise<void> {
  const { bench, plan, result } = run;
  for (const [index, rate] of plan.eventRates.entries()) {
    if (active.size === 0) break;
    if (Date.now() - started > bench.plan.scenarioBudgetMs) {
      log(`  time budget of ${bench.plan.scenarioBudgetMs / 1000} s reached: stopping the ladder`);
      break;
    }
    const stepping = result.order.filter((d) => active.has(d) && (startAt.get(d) ?? 0) <= index);
    // `result.order` is already this repetition's rotation; each step rotates it further.
    for (const design of interleavedOrder(stepping, index)) {
      const { passed } = await runStep(run, design, rate, index, result.steps);
      if (passed || !bench.plan.stopAtSaturation) continue;
      await bench.settle(design);
      const after = afterFailure(plan.eventRates, index, startAt.get(design) ?? 0, bench.plan.refineSaturation);
      // Failed the first step, where the repetition before passed: its maximum is lower this time.
      if (after.next === "step-down") await stepDown(run, design, after.indices);
      // Failed higher up: one step between this and the one below narrows the maximum.
      else if (after.next === "refine") {
        await runStep(run, design, after.rate, index - 0.5, result.steps);
        await bench.settle(design);
      }
      active.delete(design);
    }
  }
  result.unsaturated = [...active];
}

/** A design that failed its first step: the steps below it, one by one, until one passes. */
async function stepDown(run: ScenarioRun, design: Design, indices: readonly number[]): Promise<void> {
  for (const index of indices) {
    const { passed } = await runStep(run, design, run.plan.eventRates[index]!, index, run.result.steps);
    await run.bench.settle(design);
    if (passed) return;
  }
}

/**
 * Each design publishes at the median of its repetitions' maxima for the soak's duration:
 * the maximum stands only if this passes too. One that fails soaks again a ladder step
 * lower, at most `soakStepsDown` times, so the run also finds the load each design sustains.
 * Once per scenario, in its last repetition.
 */
async function soakAtMaxima(run: ScenarioRun, runs: readonly ScenarioResult[], soakMs: number): Promise<void> {
  const { bench, plan, result } = run;
  for (const design of result.order) {
    const max = medianMaximum(runs, design);
    if (max === null) continue;
    for (const [i, rate] of soakRates(plan.eventRates, max, bench.plan.soakStepsDown).entries()) {
      await bench.settle(design);
      log(
        `  soak: ${design} at ${rate} ev/s (${i === 0 ? "its median maximum" : `${i} step(s) below it`}) for ${soakMs / 1000} s`,
      );
      const { passed } = await runStep(run, design, rate, -1, result.soaks, { ms: soakMs, stopWhenFailed: true });
      if (passed) break;
    }
  }
}

/**
 * The long soak: one design at a fraction of its median maximum, window after window, with
 * its heap (after full collections) and RSS before the first window and after the last.
 */
async function longSoak(run: ScenarioRun, runs: readonly ScenarioResult[]): Promise<void> {
  const { bench, result } = run;
  const { design, fraction, windows, windowMs } = bench.plan.longSoak;
  const max = medianMaximum(runs, design);
  if (max === null || !result.order.includes(design)) return;
  const rate = Math.round(max * fraction * 10) / 10;
  const server = bench.server(design);
  await bench.settle(design);
  log(
    `  long soak: ${design} at ${rate} ev/s (${fraction * 100}% of its median maximum), ${windows} × ${windowMs / 1000} s`,
  );
  const before = await server.stats(true);
  const steps: StepResult[] = [];
  for (let window = 0; window < windows; window++) await runStep(run, design, rate, window, steps, { ms: windowMs });
  const after = await server.stats(true);
  result.longSoak = {
    design,
    fraction,
    offeredEventsPerSecond: rate,
    offeredDeliveriesPerSecond: rate * run.plan.subscribersPerTenant,
    windowMs,
    windows: steps,
    heapBefore: before.heapUsed,
    heapAfter: after.heapUsed,
    rssBefore: before.rss,
    rssAfter: after.rss,
  };
  log(
    `  long soak: heap ${toMiB(before.heapUsed)} → ${toMiB(after.heapUsed)} MiB, RSS ${toMiB(before.rss)} → ${toMiB(after.rss)} MiB`,
  );
}

/**
 * Pulse and Socket.IO at 25%, 50% and 75% of the weaker of their maxima in this repetition
 * (every design at fractions of the weakest maximum when either is missing), each step long
 * enough for the plan's `comparisonMinEvents`.
 */
async function compareAtLoads(run: ScenarioRun): Promise<void> {
  const { bench, result } = run;
  const maxima = new Map(result.order.map((d) => [d, maximumOf(result, d)] as const));
  const paired = (["pulse", "socket-io"] as const).every((d) => maxima.get(d));
  const compared = result.order.filter((d) => maxima.get(d) && (!paired || d === "pulse" || d === "socket-io"));
  const loads = comparisonLoads(
    compared.map((d) => maxima.get(d)!),
    bench.plan.comparisonFractions,
  );
  for (const [i, rate] of loads.entries()) {
    if (rate <= 0) continue;
    for (const design of interleavedOrder(compared, i)) {
      await bench.settle(design);
      const ms = comparisonStepMs(rate, bench.plan.stepMs, bench.plan.comparisonMinEvents);
      const step = await runStep(run, design, rate, i, [], { ms });
      result.atLoads.push({ ...step, fraction: bench.plan.comparisonFractions[i]! });
    }
  }
}

/**
 * One repetition of a load scenario. `earlier` holds its repetitions before this one; the
 * last repetition (`last`) also soaks each design at its median maximum and runs the long soak.
 */
async function runScenario(
  bench: BenchHarness,
  plan: ScenarioPlan,
  repetition: number,
  earlier: readonly ScenarioResult[],
  last: { soakMs: number; longSoak: boolean } | null,
): Promise<ScenarioResult> {
  const started = Date.now();
  log(`\nscenario ${plan.name} (repetition ${repetition + 1}): ${plan.description}`);
  const { eventRates: _rates, ...described } = plan;
  const result: ScenarioResult = {
    ...described,
    repetition,
    order: interleavedOrder(bench.designs, repetition),
    connect: [],
    steps: [],
    soaks: [],
    atLoads: [],
    unsaturated: [],
  };
  const takeSeq = seqNumbering(plan.tenants);
  const stepOf = (rate: number, ms: number): LoadStep => {
    const count = Math.max(plan.tenants, Math.round((rate * ms) / 1000));
    return { rate, count, seqStart: takeSeq(count), tenants: plan.tenants, runsPerTenant: plan.runsPerTenant };
  };
  const run: ScenarioRun = { bench, plan, result, stepOf };
  try {
    const active = await connectDesigns(run);
    const connected = new Set(active);
    for (const design of active) await bench.profile(design, "start", plan.name);
    await climbLadder(run, active, started, ladderStarts(plan, bench.plan.reclimbSteps, earlier.at(-1)));
    for (const design of bench.designs) {
      for (const file of await bench.profile(design, "stop", plan.name))
        log(`  CPU profile: ${path.relative(REPO_ROOT, file)}`);
    }
    result.order = result.order.filter((d) => connected.has(d));
    if (last) {
      await soakAtMaxima(run, [...earlier, result], last.soakMs);
      if (last.longSoak) await longSoak(run, [...earlier, result]);
    }
    await compareAtLoads(run);
  } finally {
    await Promise.all(bench.designs.map((design) => bench.disconnect(design)));
    await bench.flush();
  }
  return result;
}

/** A phase's CPU (a wave, a storm's reconnects) in cores' worth over its `seconds`. */
function phaseCpuOf(used: MeteredCpu, seconds: number): PhaseCpu {
  const serverCores = used.serverCpuUs / 1e6 / seconds;
  const redisCores = used.redisCpuS / seconds;
  return {
    seconds,
    serverCores,
    postgresCores: used.cpu.postgresCores,
    redisCores,
    // Redis and the server are the bench's own children too.
    restOfBenchCores: Math.max(0, used.cpu.benchCores - serverCores - redisCores),
    machineBusy: used.cpu.machineBusy,
  };
}

/**
 * Time to first event on subscribe, designs in this repetition's order: each design's
 * tenants publish at a steady rate, and once they are, the whole wave subscribes at once;
 * the publishing ends when every subscriber is live (or the wave timed out).
 */
async function runFirstEvent(
  bench: BenchHarness,
  plan: FirstEventPlan,
  repetition: number,
): Promise<FirstEventResult[]> {
  const results: FirstEventResult[] = [];
  const rate = plan.eventsPerSecondPerTenant * plan.tenants;
  const count = Math.round((rate * plan.publishMs) / 1000);
  for (const design of interleavedOrder(bench.designs, repetition)) {
    const tenants = await bench.tenants(design, {
      tenants: plan.tenants,
      connectionsPerTenant: plan.subscribersPerTenant,
      runsPerTenant: plan.runsPerTenant,
    });
    await bench.target(design, tenants);
    const step = { rate, count, seqStart: 0, tenants: plan.tenants, runsPerTenant: plan.runsPerTenant };
    const publishing = bench.step(design, step, plan.publishMs + 30_000);
    try {
      await sleep(plan.leadMs);
      await bench.profile(design, "start", "first-event");
      const meter = await startCpuMeter(bench, design);
      const wave = await bench.firstEvents(design, tenants, plan.publishMs - plan.leadMs);
      const seconds = meter.elapsedS();
      const cpu = phaseCpuOf(await meter.read(seconds), seconds);
      for (const file of await bench.profile(design, "stop", "first-event"))
        log(`  CPU profile of the wave: ${path.relative(REPO_ROOT, file)}`);
      await bench.endStep(design);
      const published = await publishing;
      results.push({
        design,
        repetition,
        eventsPerSecondPerTenant: plan.eventsPerSecondPerTenant,
        publisher: stepCounts(published),
        ...wave,
        cpu,
      });
      log(
        `  ${design.padEnd(9)} ${wave.live}/${wave.connections} live; first event p50 ${wave.firstEventMs.p50} ms, p99 ${wave.firstEventMs.p99} ms; ` +
          `subscribed p99 ${wave.subscribedMs.p99} ms; connect p99 ${wave.connectMs.p99} ms (the client started them in ${wave.openingMs} ms)${wave.failed ? ` (${wave.failed} failed: ${wave.errors[0]})` : ""}; ` +
          `over ${cpu.seconds.toFixed(1)} s, server ${cpu.serverCores.toFixed(2)} cores, PostgreSQL ${cpu.postgresCores.toFixed(2)}, Redis ${cpu.redisCores.toFixed(2)}, publisher and clients ${cpu.restOfBenchCores.toFixed(2)}`,
      );
    } finally {
      await publishing.catch(() => undefined);
      await bench.flush();
    }
  }
  return results;
}

/**
 * How each design's storm clients resume after a drop. Socket.IO's storms run on an adapter
 * that keeps sessions (`--socket-io-storm`), so its connection-state recovery applies; the
 * other scenarios keep the Redis adapter, its cheapest.
 */
function stormResume(design: Design, socketIoStorm: SocketIoAdapter): string | undefined {
  if (design === "pulse")
    return "resubscribes with the last tracked id (wsLink's lastEventId): the server replays what it missed";
  if (design !== "socket-io") return undefined;
  const setup = socketIoStorm === "memory" ? "one node on the in-memory adapter" : "@socket.io/redis-streams-adapter";
  return `socket.io-client's resume (its pid and last offset) on ${setup} with connection-state recovery: the server restores the session's rooms and replays the packets it missed`;
}

/** Connects a storm client per token of `tenants` and makes each live (it has had an event); false, logged, when some are not. */
async function stormClientsReady(
  bench: BenchHarness,
  plan: ReconnectStormPlan,
  design: Design,
  tenants: BenchTenant[],
  takeSeq: (count: number) => number,
): Promise<boolean> {
  const connected = await bench.stormConnect(design, tenants);
  if (connected.failed > 0) {
    log(`  ${design}: ${connected.failed} storm clients failed to connect (${connected.errors[0]}); no storm`);
    return false;
  }
  const notLive = await bench.stormLive(design, plan.tenants, takeSeq(plan.tenants));
  if (notLive > 0) log(`  ${design}: ${notLive} storm clients had no event before the drop; no storm`);
  return notLive === 0;
}

/** A storm that could not be measured to its end (see `ReconnectStormResult.failed`): no client counts as back. */
function failedStorm(
  design: Design,
  repetition: number,
  resume: string,
  missedPerTenant: number,
  tenants: BenchTenant[],
  reason: string,
): ReconnectStormResult {
  const connections = tenants.reduce((sum, t) => sum + t.tokens.length, 0);
  const none = { published: 0, dropped: 0, failed: 0 };
  return {
    design,
    repetition,
    resume,
    missedPerTenant,
    failed: reason,
    connections,
    live: 0,
    reconnected: 0,
    lost: 0,
    clientsWithLoss: 0,
    duplicates: 0,
    clientsWithDuplicates: 0,
    foreign: 0,
    backToLiveMs: { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 },
    retries: 0,
    recovered: null,
    errors: [reason],
    dropped: 0,
    stillOpen: 0,
    serverCpuMs: 0,
    redisCpuMs: 0,
    database: null,
    publisher: { missed: none, live: none },
  };
}

/** The publisher's counts of a step, as a storm records them. */
function stepCounts({ published, dropped, failed }: StepOutcome): StepCounts {
  return { published, dropped, failed };
}

/**
 * One storm on connected, live clients: the server drops them all, each tenant gets
 * `missedPerTenant` events while they are away, then they all reconnect while the tenants
 * go on publishing; measured until every client is back to live (or the timeout).
 */
async function stormOnce(
  bench: BenchHarness,
  plan: ReconnectStormPlan,
  design: Design,
  missedPerTenant: number,
  takeSeq: (count: number) => number,
): Promise<Omit<ReconnectStormResult, "design" | "repetition" | "resume">> {
  const { dropped, stillOpen } = await bench.dropConnections(design);
  const count = missedPerTenant * plan.tenants;
  const missedStart = takeSeq(count);
  const shape = { tenants: plan.tenants, runsPerTenant: 1 };
  const missed = await bench.step(design, { ...shape, rate: plan.missedRate, count, seqStart: missedStart }, 120_000);
  const liveRate = plan.liveEventsPerSecondPerTenant * plan.tenants;
  const liveCount = Math.ceil((liveRate * plan.timeoutMs) / 1000);
  const liveStart = takeSeq(liveCount);
  const databaseBefore = design === "pulse" ? await bench.database.activity() : null;
  const meter = await startCpuMeter(bench, design);
  const live = bench.step(
    design,
    { ...shape, rate: liveRate, count: liveCount, seqStart: liveStart },
    plan.timeoutMs + 30_000,
  );
  live.catch(() => undefined);
  let outcome: StormOutcome;
  let used: MeteredCpu;
  let seconds: number;
  try {
    await bench.profile(design, "start", `storm-${missedPerTenant}`);
    outcome = await bench.stormReconnect(design, { missedStart, liveStart, tenants: plan.tenants }, plan.timeoutMs);
    // Read before the profile stops, as a wave's: writing the profile out is the server's work, not the storm's.
    seconds = meter.elapsedS();
    used = await meter.read(seconds);
    for (const file of await bench.profile(design, "stop", `storm-${missedPerTenant}`))
      log(`  CPU profile of the reconnects: ${path.relative(REPO_ROOT, file)}`);
  } finally {
    await bench.endStep(design);
  }
  const liveCounts = stepCounts(await live);
  const databaseAfter = design === "pulse" ? await bench.database.activity() : null;
  return {
    ...outcome,
    missedPerTenant,
    dropped,
    stillOpen,
    serverCpuMs: Math.round(used.serverCpuUs / 1000),
    redisCpuMs: Math.round(used.redisCpuS * 1000),
    cpu: phaseCpuOf(used, seconds),
    database: databaseBefore && databaseAfter ? activityBetween(databaseBefore, databaseAfter) : null,
    publisher: { missed: stepCounts(missed), live: liveCounts },
  };
}

function activityBetween(before: DatabaseActivity, after: DatabaseActivity): DatabaseActivity {
  return {
    transactions: after.transactions - before.transactions,
    tuplesReturned: after.tuplesReturned - before.tuplesReturned,
    blocksRead: after.blocksRead - before.blocksRead,
    blocksHit: after.blocksHit - before.blocksHit,
  };
}

/**
 * Reconnect storms, designs with a way to resume in this repetition's order: each design's
 * clients connect once and live through one storm per number of missed events.
 */
async function runReconnectStorm(
  bench: BenchHarness,
  plan: ReconnectStormPlan,
  repetition: number,
): Promise<ReconnectStormResult[]> {
  const results: ReconnectStormResult[] = [];
  const stormAdapter = bench.args.socketIoStorm;
  const designs = interleavedOrder(bench.designs, repetition).filter((d) => stormResume(d, stormAdapter));
  // Socket.IO goes back to the Redis adapter for the scenarios after.
  await bench.useSocketIoAdapter(stormAdapter);
  for (const design of designs) {
    const tenants = await bench.tenants(design, {
      tenants: plan.tenants,
      connectionsPerTenant: plan.clientsPerTenant,
      runsPerTenant: 1,
    });
    await bench.target(design, tenants);
    try {
      const takeSeq = seqNumbering(plan.tenants);
      let ready = false;
      for (const missedPerTenant of plan.missedPerTenant) {
        // Clients a storm left without a connection start the next one afresh, connected and
        // live: the next drop needs them connected, and a Socket.IO client coming back after
        // two storms would ask its server for everything since the first.
        if (!ready && !(await stormClientsReady(bench, plan, design, tenants, takeSeq))) break;
        const resume = stormResume(design, stormAdapter)!;
        let storm: Awaited<ReturnType<typeof stormOnce>>;
        try {
          storm = await stormOnce(bench, plan, design, missedPerTenant, takeSeq);
        } catch (error) {
          // A server that stopped answering (or exited) fails its storm, not the run: the
          // storm is recorded failed, and a new server serves what comes after. Its clients
          // and tenants went with the old one: this design's storms of this repetition end.
          const reason = error instanceof Error ? error.message : String(error);
          log(`  ${design.padEnd(9)} ${missedPerTenant} missed each: storm FAILED (${reason}); replacing the server`);
          results.push(failedStorm(design, repetition, resume, missedPerTenant, tenants, reason));
          await bench.endStep(design).catch(() => undefined);
          await bench.replaceServer(design);
          break;
        }
        ready = storm.reconnected === storm.connections;
        results.push({ design, repetition, resume, ...storm });
        log(
          `  ${design.padEnd(9)} ${missedPerTenant} missed each: ${storm.live}/${storm.connections} back to live, p99 ${storm.backToLiveMs.p99} ms, max ${storm.backToLiveMs.max} ms; ` +
            `lost ${storm.lost} (${storm.clientsWithLoss} clients), duplicated ${storm.duplicates}, ${storm.retries} retries${storm.recovered === null ? "" : `, ${storm.recovered} sessions recovered`}; server CPU ${storm.serverCpuMs} ms` +
            `${storm.database ? `; database ${storm.database.transactions} transactions, ${storm.database.tuplesReturned} rows read` : ""}`,
        );
      }
    } finally {
      await bench.stormClose(design);
      await bench.flush();
    }
  }
  await bench.useSocketIoAdapter("redis");
  return results;
}

/**
 * `size` idle subscribers of one design: heap (after full collections) and RSS before and
 * after they connect, the server's CPU while they stay idle, then one event per tenant.
 */
async function runIdle(bench: BenchHarness, plan: IdlePlan, size: number, design: Design): Promise<IdleResult> {
  const server = bench.server(design);
  const tenants = await bench.tenants(design, {
    tenants: plan.tenants,
    connectionsPerTenant: Math.ceil(size / plan.tenants),
    runsPerTenant: 1,
  });
  await bench.target(design, tenants);
  const snapshot = async (when: string) => {
    if (!bench.args.heap) return;
    const file = path.join(REPO_ROOT, ".data/bench/profile", `idle-${design}-${when}.heapsnapshot`);
    await server.process.request("heap-snapshot", { file }, 300_000);
    log(`  heap snapshot: ${path.relative(REPO_ROOT, file)}`);
  };
  await snapshot("before");
  const before = await server.stats(true);
  try {
    await bench.profile(design, "start", `idle-${size}`);
    const connect = await bench.connect(design, tenants, plan.officialClients);
    for (const file of await bench.profile(design, "stop", `idle-${size}`))
      log(`  CPU profile of the connects: ${path.relative(REPO_ROOT, file)}`);
    await snapshot("after");
    const after = await server.stats(true);
    const ready = connect.ready;
    await sleep(plan.quietMs);
    const quiet = await server.stats();
    const m = await measureStep(bench, design, {
      rate: 200,
      count: plan.tenants,
      seqStart: 0,
      tenants: plan.tenants,
      runsPerTenant: 1,
    });
    const result: IdleResult = {
      design,
      connections: connect.connections,
      ready,
      failed: connect.failed,
      connectMs: connect.connectMs,
      serverConnections: after.connections,
      heapBefore: before.heapUsed,
      heapAfter: after.heapUsed,
      rssBefore: before.rss,
      rssAfter: after.rss,
      heapPerConnection: ready > 0 ? (after.heapUsed - before.heapUsed) / ready : 0,
      rssPerConnection: ready > 0 ? (after.rss - before.rss) / ready : 0,
      quietCpuCores: (quiet.cpuUs - after.cpuUs) / 1000 / plan.quietMs,
      broadcast: {
        expected: m.summary.expected,
        delivered: m.summary.delivered,
        missing: m.summary.missing,
        duplicates: m.summary.duplicates,
        p99Ms: m.summary.latency.p99,
      },
      errors: connect.errors,
    };
    log(
      `  ${design}: ${ready}/${connect.connections} subscribed in ${result.connectMs} ms; heap ${Math.round(result.heapPerConnection)} B/connection, ` +
        `RSS ${Math.round(result.rssPerConnection)} B/connection; idle CPU ${result.quietCpuCores!.toFixed(3)} cores; one event per tenant reached ${m.summary.delivered}/${m.summary.expected}`,
    );
    return result;
  } finally {
    await bench.disconnect(design);
    await bench.flush();
  }
}

/**
 * The idle plan with each size capped to what one process may hold open (a server holds
 * every connection; so does the clients' process), less room for its other sockets.
 */
function withinOpenFiles(plan: IdlePlan): IdlePlan {
  const limit = openFileLimit();
  const room = Math.floor((limit - 2_000) / 1_000) * 1_000;
  const sizes = [...new Set(plan.sizes.map((size) => Math.min(size, room)))].filter((size) => size > 0);
  if (sizes.some((size, i) => size !== plan.sizes[i]))
    log(
      `\nidle: this machine lets each process hold ${limit} open files: ${plan.sizes.join(", ")} connections asked, ${sizes.join(", ")} measured`,
    );
  return { ...plan, sizes };
}

async function measureThroughput(bench: BenchHarness): Promise<BenchResult["publishThroughput"]> {
  const plan = bench.plan.throughput;
  const tenants = await bench.tenants("pulse", {
    tenants: plan.tenants,
    connectionsPerTenant: 0,
    runsPerTenant: plan.runsPerTenant,
  });
  await bench.target("pulse", tenants);
  const run = (durationMs: number, seqStart: number): ThroughputRun => ({
    durationMs,
    tenants: plan.tenants,
    runsPerTenant: plan.runsPerTenant,
    seqStart,
  });
  // Warm up first (JIT, the database pool, Prisma's compiled queries), then measure.
  await bench.throughput("pulse", run(plan.warmupMs, 0));
  const outcome = await bench.throughput("pulse", run(plan.durationMs, 1_000_000));
  await bench.flush();
  log(
    `\npublish throughput: ${Math.round(outcome.eventsPerSecond)} events/s from one Pulse worker process (${plan.tenants * plan.runsPerTenant} runs, ${outcome.cpuUsPerEvent.toFixed(1)} µs CPU/event, ${outcome.failed} failed)`,
  );
  return { ...outcome, chains: plan.tenants * plan.runsPerTenant };
}

async function measurePolling(bench: BenchHarness): Promise<PollingCost> {
  const plan = bench.plan.polling;
  const tenants = await bench.tenants("pulse", { tenants: 1, connectionsPerTenant: plan.clients, runsPerTenant: 1 });
  const cost = await bench.kit("pulse").clients.request<PollingCost>(
    "polling",
    {
      baseUrl: bench.server("pulse").baseUrl,
      tokens: tenants[0]!.tokens,
      intervalMs: plan.intervalMs,
      windowMs: plan.windowMs,
    },
    plan.windowMs + 60_000,
  );
  log(
    `polling fallback: ${cost.requestsPerMinutePerClient.toFixed(1)} requests and ${Math.round(cost.bytesPerMinutePerClient)} B per minute per idle client; ` +
      `healthy socket: 0 requests, ${Math.round(cost.socketBytesPerMinutePerClient)} B per minute (keep-alive)`,
  );
  return cost;
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  const plan = sizedPlan(args.smoke ? SMOKE_PLAN : FULL_PLAN, args);
  const designs = args.only ?? [...plan.designs];
  const startedAt = new Date();
  // Read before anything runs, as the processes start from the code as it is now: read at
  // the end, an edit made while a full run goes on (most of an hour) named the run after it.
  const measured = revision();
  const bench = new BenchHarness(plan, designs, args);
  const stopOnSignal = () => {
    log("bench: interrupted; stopping every process");
    void bench.close().finally(() => process.exit(130));
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  try {
    log(`bench (${plan.mode}): ${designs.join(", ")}`);
    const background = await backgroundLoad(args.smoke ? 500 : 2_000);
    await bench.start();
    const machine = await machineInfo(bench.redis, bench.database, background);
    log(
      `machine: ${machine.cpu}, ${machine.cores} cores; ${machine.database}; Redis ${machine.redis}; busy ${Math.round(machine.backgroundBusy * 100)}% before the bench started`,
    );
    if (machine.backgroundBusy > 0.15)
      log(
        "bench: WARNING: other work keeps this machine busy; figures will be lower and noisier than on a quiet machine",
      );
    const extras = designs.includes("pulse") && !args.profile && !args.heap;
    const publishThroughput = extras ? await measureThroughput(bench) : null;
    const polling = extras ? await measurePolling(bench) : null;
    const scenarios: ScenarioResult[] = [];
    const repetitions = args.repetitions ?? plan.repetitions;
    const soakMs = args.soakSeconds !== null ? args.soakSeconds * 1000 : plan.soakMs;
    const selected = (name: string) => !args.scenarios || args.scenarios.includes(name);
    const firstEvent: FirstEventResult[] = [];
    const reconnectStorm: ReconnectStormResult[] = [];
    for (let repetition = 0; repetition < repetitions; repetition++) {
      for (const scenario of plan.scenarios) {
        if (!selected(scenario.name)) continue;
        const earlier = scenarios.filter((s) => s.name === scenario.name);
        const last =
          repetition === repetitions - 1
            ? { soakMs, longSoak: plan.longSoak.scenario === scenario.name && selected("soak") && !args.profile }
            : null;
        scenarios.push(await runScenario(bench, scenario, repetition, earlier, last));
      }
      // With --profile, the wave runs only when named: its profile covers the subscribes.
      if (selected("first-event") && (!args.profile || args.scenarios?.includes("first-event"))) {
        log(
          `\nfirst event (repetition ${repetition + 1}): ${plan.firstEvent.tenants * plan.firstEvent.subscribersPerTenant} subscribers at once per design`,
        );
        firstEvent.push(...(await runFirstEvent(bench, plan.firstEvent, repetition)));
      }
      // With --profile, the storm runs only when named: its profile covers the reconnects.
      if (selected("reconnect-storm") && (!args.profile || args.scenarios?.includes("reconnect-storm"))) {
        const storm = plan.reconnectStorm;
        log(
          `\nreconnect storm (repetition ${repetition + 1}): ${storm.tenants * storm.clientsPerTenant} clients per design`,
        );
        reconnectStorm.push(...(await runReconnectStorm(bench, storm, repetition)));
      }
    }
    const idle: IdleResult[] = [];
    // With --profile, idle runs only when named: its profile covers the connections' set-up.
    if (args.heap || (selected("idle") && (!args.profile || args.scenarios?.includes("idle")))) {
      const idlePlan = args.heap ? { ...plan.idle, sizes: [1_000] } : withinOpenFiles(plan.idle);
      for (const [i, size] of idlePlan.sizes.entries()) {
        log(`\nidle: ${size} subscribers per design`);
        for (const design of interleavedOrder(designs, i)) idle.push(await runIdle(bench, idlePlan, size, design));
      }
    }

    const partial = { designs, scenarios, firstEvent, reconnectStorm, idle };
    const result: BenchResult = {
      version: 1,
      mode: plan.mode,
      startedAt: startedAt.toISOString(),
      durationS: (Date.now() - startedAt.getTime()) / 1000,
      revision: measured,
      machine,
      designs,
      plan,
      pulsePublisher: bench.pulseInServer
        ? "in the server process (PGlite: no PostgreSQL reachable)"
        : "worker process (PostgreSQL)",
      socketIoPublish: args.socketIoPublish,
      socketIoStormAdapter: args.socketIoStorm,
      scenarios,
      firstEvent,
      reconnectStorm,
      idle,
      publishThroughput,
      polling,
      summary: summarise(partial),
      repeated: summariseRepetitions(partial),
    };
    await mkdir(path.dirname(args.out), { recursive: true });
    await writeFile(args.out, `${JSON.stringify(result, null, 2)}\n`);
    const print = (text: string) => process.stdout.write(`${text}\n`);
    for (const scenario of scenarios) {
      print(`\n== ${scenario.name}: ${scenario.description} ==`);
      print(scenarioTable(scenario));
    }
    print(summaryTables(result));
    print(`\n${repeatedTables(result.repeated, designs)}`);
    log(`\nJSON: ${path.relative(REPO_ROOT, args.out)}`);
    if (args.docs) {
      // Every full run's JSON is kept beside the docs it generates, named by date and commit.
      const kept = path.join(
        REPO_ROOT,
        "docs/bench",
        `${result.startedAt.slice(0, 10)}-${result.revision ?? "unknown"}.json`,
      );
      await mkdir(path.dirname(kept), { recursive: true });
      await writeFile(kept, `${JSON.stringify(result, null, 2)}\n`);
      log(`docs: ${(await writeBenchDocs(kept)).join(", ")}`);
    }
    log(`bench finished in ${Math.round(result.durationS)} s`);
    return 0;
  } finally {
    await bench.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error("bench failed:", error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
