import type {
  BenchResult,
  FirstEventResult,
  ReconnectStormResult,
  ScenarioResult,
  StepResult,
  PhaseCpu,
} from "./bench-result";
import { highestPassed, maximumOf } from "./ladder";
import {
  pairedRatios,
  ratiosOf,
  spreadOf,
  toMiB,
  unpairedFailures,
  verdictAtWorseEnd,
  worseEnd,
  type Direction,
  type Spread,
} from "./statistics";
import { largestIdleSize, table } from "./report";
import type { Design } from "./workload";

/**
 * The bench's headline: each figure over the repetitions of its scenario, as the median and
 * the min–max spread, and each target judged at the worse end of that spread.
 */
export interface RepeatedSummary {
  repetitions: number;
  spread: "min–max";
  scenarios: Record<string, RepeatedScenario>;
  /** Time to first event on subscribe, per design (ms); empty when the scenario did not run. */
  firstEvent: Partial<Record<Design, RepeatedFirstEvent>>;
  /** Reconnect storms, per number of missed events per tenant; empty when the scenario did not run. */
  reconnectStorm: { missedPerTenant: number; byDesign: Partial<Record<Design, RepeatedStorm>> }[];
  /** The long soak, when it ran: p99 window by window, and the server's memory growth. */
  longSoak: LongSoakSummary | null;
  targets: RepeatedTarget[];
}

export interface LongSoakSummary {
  scenario: string;
  design: Design;
  fraction: number;
  offeredDeliveriesPerSecond: number;
  windowS: number;
  /** Each window's p99 (ms), failed windows as Infinity. */
  p99ByWindow: number[];
  /** Last window's p99 ÷ first window's. */
  p99Drift: number;
  /** Windows in which every event reached every subscriber exactly once, p99 under the bound. */
  windowsPassed: number;
  /** Heap after full collections, and RSS, after the last window minus before the first (MiB). */
  heapGrowthMiB: number;
  rssGrowthMiB: number;
}

/** A design's storms of one size over the repetitions: each figure's median and spread. */
export interface RepeatedStorm {
  /** From the reconnect until the last client was back to live (ms); a storm that left a client behind counts as failed. */
  allLiveMs: Spread | null;
  backToLiveP99Ms: Spread | null;
  /** Events lost and duplicated, summed over the clients. */
  lost: Spread | null;
  duplicates: Spread | null;
  /** Reconnect attempts that failed and were tried again, summed over the clients. */
  retries: Spread | null;
  serverCpuMs: Spread | null;
  /** Database transactions (Pulse on PostgreSQL). */
  databaseTransactions: Spread | null;
  /** Where the machine's CPU went during the reconnects (null for runs before it was kept). */
  cpu: RepeatedPhaseCpu | null;
}

/** Each figure of the machine's CPU over a phase, as a spread over the repetitions. */
export type RepeatedPhaseCpu = Record<keyof PhaseCpu, Spread | null>;

/** A design's subscribe waves over the repetitions: each figure's median and spread (ms). */
export interface RepeatedFirstEvent {
  connectP99: Spread | null;
  subscribedP99: Spread | null;
  firstEventP50: Spread | null;
  firstEventP99: Spread | null;
  /** Where the machine's CPU went during the wave (null for runs before it was kept). */
  cpu: RepeatedPhaseCpu | null;
}

export interface RepeatedScenario {
  /** Per design: the highest offered deliveries/s it passed, one figure per repetition. */
  maxima: Partial<Record<Design, Spread | null>>;
  /** Per design: whether the soak at its median maximum passed (all delivered, p99 under the bound): 1 of 1, or 0 of 1. */
  soaks: Partial<Record<Design, { confirmed: number; soaked: number }>>;
  /**
   * Per design: the highest deliveries/s it held for a whole soak (its median maximum, or a
   * ladder step below it), null when no soak passed; one figure, from the last repetition.
   */
  sustained: Partial<Record<Design, number | null>>;
  /**
   * p99 (ms) per design at each fraction of the weaker design's maximum; `storedP99`, Pulse's
   * steps and logs alone (written to its database before they are appended), and
   * `progressP99`, its progress alone (appended at once); null for runs from before each was kept.
   * `events`: how many events the steps at that fraction published, every design's, so a reader
   * sees how many events each p99 rests on.
   */
  atLoads: {
    fraction: number;
    p99: Partial<Record<Design, Spread | null>>;
    storedP99: Spread | null;
    progressP99: Spread | null;
    events: Spread | null;
  }[];
}

export interface RepeatedTarget {
  name: string;
  spread: Spread | null;
  direction: Direction;
  target: number;
  /** Met at the worse end of the spread; null when there is no figure. */
  met: boolean | null;
  /** Why a verdict is withheld or qualified, e.g. a maximum its soak did not confirm. */
  note?: string;
}

type Repeated = Pick<BenchResult, "designs" | "scenarios" | "idle" | "firstEvent" | "reconnectStorm">;

/** Pulse's p99 rows for a part of its events, each shown when the run kept it. */
const PULSE_PART_ROWS = [
  ["pulse: progress only", "progressP99"],
  ["pulse: steps and logs only", "storedP99"],
] as const;

function byRepetition(result: Repeated, name: string): ScenarioResult[] {
  return result.scenarios.filter((s) => s.name === name).sort((a, b) => a.repetition - b.repetition);
}

const maximum = (scenario: ScenarioResult, design: Design) => maximumOf(scenario, design, "offeredDeliveriesPerSecond");

/**
 * A design's p99 at a comparison load, of all its events, of its steps and logs alone
 * (`storedLatency`) or of its progress alone (`progressLatency`); a step that failed (lost
 * events, p99 over the bound) counts as infinitely slow.
 */
function p99At(
  scenario: ScenarioResult,
  design: Design,
  fraction: number,
  of: "latency" | "storedLatency" | "progressLatency" = "latency",
): number | null {
  const step = scenario.atLoads.find((s) => s.design === design && s.fraction === fraction);
  const latency = step?.[of];
  if (!step || !latency) return null;
  return step.passed ? latency.p99 : Number.POSITIVE_INFINITY;
}

/** A design's soaks, in the order they ran: the first at its median maximum, the others steps below. */
const soaksOf = (runs: ScenarioResult[], design: Design): StepResult[] =>
  runs.flatMap((r) => r.soaks.filter((s) => s.design === design));

/** Whether the soak at the design's median maximum passed. */
function soakCount(runs: ScenarioResult[], design: Design): { confirmed: number; soaked: number } {
  const atMedian = soaksOf(runs, design).slice(0, 1);
  return { confirmed: atMedian.filter((s) => s.passed).length, soaked: atMedian.length };
}

/**
 * How long the scenario's soaks ran ("60 s"), read off the events and rate of one that ran
 * its whole length, as `--soak-seconds` set it.
 */
function soakSeconds(runs: ScenarioResult[]): string {
  const soak = runs.flatMap((r) => r.soaks).find((s) => s.stoppedAfterS === undefined);
  return soak ? `${Math.round(soak.events / soak.offeredEventsPerSecond)} s` : "no";
}

/** The highest deliveries/s a design's soaks passed at. */
const sustainedOf = (runs: ScenarioResult[], design: Design): number | null =>
  highestPassed(soaksOf(runs, design), design, "offeredDeliveriesPerSecond");

function target(
  name: string,
  spread: Spread | null,
  direction: Direction,
  goal: number,
  note?: string,
): RepeatedTarget {
  return {
    name,
    spread,
    direction,
    target: goal,
    met: verdictAtWorseEnd(spread, direction, goal),
    ...(note ? { note } : {}),
  };
}

/**
 * A target of Pulse against Socket.IO at most `goal`, each repetition's Pulse figure over
 * Socket.IO's, failures (Infinity) included: the note says in how many repetitions Socket.IO
 * failed alone (the ratio reads 0 there) or both did (no ratio).
 */
function failingPairTarget(
  name: string,
  pulse: readonly (number | null)[],
  socketIo: readonly (number | null)[],
  goal: number,
): RepeatedTarget {
  const { onlySecond, both } = unpairedFailures(pulse, socketIo);
  const of = pulse.filter((v) => v !== null).length;
  const notes = [
    ...(onlySecond ? [`Socket.IO alone failed in ${onlySecond} of ${of} repetitions (its ratio reads 0)`] : []),
    ...(both ? [`both failed in ${both} of ${of} repetitions (no ratio)`] : []),
  ];
  return target(name, pairedRatios(pulse, socketIo), "at most", goal, notes.join("; ") || undefined);
}

function scenarioTargets(name: string, runs: ScenarioResult[], summary: RepeatedScenario): RepeatedTarget[] {
  const maxima = (d: Design) => runs.map((r) => maximum(r, d));
  const soak = summary.soaks.pulse;
  const unconfirmed = soak && soak.confirmed < soak.soaked ? "Pulse's soak at its median maximum failed" : undefined;
  const targets = [
    target(
      `${name}: max deliveries/s, Pulse ÷ Socket.IO`,
      pairedRatios(maxima("pulse"), maxima("socket-io")),
      "at least",
      1.3,
      unconfirmed,
    ),
    target(
      `${name}: max deliveries/s, Pulse ÷ floor`,
      pairedRatios(maxima("pulse"), maxima("ws-floor")),
      "at least",
      0.5,
      unconfirmed,
    ),
  ];
  if (unconfirmed) for (const t of targets) if (t.met) t.met = false;
  // What each design held for a whole soak: one figure per design, so a spread of one.
  const held = (d: Design) => [summary.sustained[d] ?? null];
  const soakS = soakSeconds(runs);
  targets.push(
    target(
      `${name}: sustained deliveries/s (${soakS} soak), Pulse ÷ Socket.IO`,
      pairedRatios(held("pulse"), held("socket-io")),
      "at least",
      1.3,
      "one soak per design, in the last repetition",
    ),
    target(
      `${name}: sustained deliveries/s (${soakS} soak), Pulse ÷ floor`,
      pairedRatios(held("pulse"), held("ws-floor")),
      "at least",
      0.5,
      "one soak per design, in the last repetition",
    ),
  );
  for (const { fraction } of summary.atLoads) {
    const p99 = (d: Design) => runs.map((r) => p99At(r, d, fraction));
    targets.push(
      failingPairTarget(
        `${name}: p99 at ${Math.round(fraction * 100)}% of the weaker maximum, Pulse ÷ Socket.IO`,
        p99("pulse"),
        p99("socket-io"),
        1,
      ),
    );
  }
  return targets;
}

function idleTargets(result: Repeated): RepeatedTarget[] {
  // Judged at the most connections measured; one figure per design unless idle runs repeat.
  const size = largestIdleSize(result.idle);
  const per = (design: Design, key: "heapPerConnection" | "rssPerConnection") =>
    result.idle.filter((i) => i.design === design && i.connections === size).map((i) => i[key]);
  const heap = ratiosOf(per("pulse", "heapPerConnection"), per("socket-io", "heapPerConnection"));
  const rss = ratiosOf(per("pulse", "rssPerConnection"), per("socket-io", "rssPerConnection"));
  // Each measurement's worse ratio of the two, so the row is met only when both kinds are.
  const both = heap.map((h, i) => {
    const r = rss[i];
    return h === null || r === null || r === undefined ? null : Math.max(h, r);
  });
  const at = size ? ` at ${size.toLocaleString("en-US")} connections` : "";
  return [
    target(`heap per idle connection${at}, Pulse ÷ Socket.IO`, spreadOf(heap), "at most", 0.7),
    target(`RSS per idle connection${at}, Pulse ÷ Socket.IO`, spreadOf(rss), "at most", 0.7),
    target(
      `memory per idle connection${at} (the worse of heap and RSS), Pulse ÷ Socket.IO`,
      spreadOf(both),
      "at most",
      0.7,
    ),
  ];
}

/**
 * One figure of a design's waves, repetition by repetition; a wave in which some subscriber
 * never got a live event counts as infinitely slow, so it reaches the worse end.
 */
function waveFigures(result: Repeated, design: Design, figure: (wave: FirstEventResult) => number): (number | null)[] {
  const waves = result.firstEvent ?? [];
  const repetitions = Math.max(0, ...waves.map((w) => w.repetition + 1));
  return Array.from({ length: repetitions }, (_, r) => {
    const wave = waves.find((w) => w.design === design && w.repetition === r);
    if (!wave) return null;
    return wave.failed > 0 ? Number.POSITIVE_INFINITY : figure(wave);
  });
}

/** A spread with each figure times `factor`. */
const scaled = (spread: Spread, factor: number): Spread => ({
  ...spread,
  median: spread.median * factor,
  min: spread.min * factor,
  max: spread.max * factor,
});

/** Each of the phases' CPU figures as a spread over the repetitions that kept them; null when none did. */
function phaseCpu(phases: readonly { cpu?: PhaseCpu }[]): RepeatedPhaseCpu | null {
  const kept = phases.flatMap((phase) => (phase.cpu ? [phase.cpu] : []));
  if (kept.length === 0) return null;
  const of = (key: keyof PhaseCpu) => spreadOf(kept.map((cpu) => cpu[key]));
  return {
    seconds: of("seconds"),
    serverCores: of("serverCores"),
    postgresCores: of("postgresCores"),
    redisCores: of("redisCores"),
    restOfBenchCores: of("restOfBenchCores"),
    machineBusy: of("machineBusy"),
  };
}

/** The waves' figures per design, and the target: Pulse's first event p99 against Socket.IO's connect (its `connect` event: joined). */
function summariseFirstEvent(result: Repeated): {
  firstEvent: RepeatedSummary["firstEvent"];
  targets: RepeatedTarget[];
} {
  const firstEvent: RepeatedSummary["firstEvent"] = {};
  if (!result.firstEvent?.length) return { firstEvent, targets: [] };
  for (const design of result.designs) {
    firstEvent[design] = {
      connectP99: spreadOf(waveFigures(result, design, (w) => w.connectMs.p99)),
      subscribedP99: spreadOf(waveFigures(result, design, (w) => w.subscribedMs.p99)),
      firstEventP50: spreadOf(waveFigures(result, design, (w) => w.firstEventMs.p50)),
      firstEventP99: spreadOf(waveFigures(result, design, (w) => w.firstEventMs.p99)),
      cpu: phaseCpu((result.firstEvent ?? []).filter((w) => w.design === design)),
    };
  }
  return {
    firstEvent,
    targets: [
      failingPairTarget(
        "time to first event p99, Pulse ÷ Socket.IO's connect p99",
        waveFigures(result, "pulse", (w) => w.firstEventMs.p99),
        waveFigures(result, "socket-io", (w) => w.subscribedMs.p99),
        2,
      ),
    ],
  };
}

/** One figure of a design's storms of one size, repetition by repetition. */
function stormFigures(
  result: Repeated,
  design: Design,
  missedPerTenant: number,
  figure: (storm: ReconnectStormResult) => number | null,
): (number | null)[] {
  const storms = (result.reconnectStorm ?? []).filter((s) => s.missedPerTenant === missedPerTenant);
  const repetitions = Math.max(0, ...storms.map((s) => s.repetition + 1));
  return Array.from({ length: repetitions }, (_, r) => {
    const storm = storms.find((s) => s.design === design && s.repetition === r);
    return storm ? figure(storm) : null;
  });
}

/** The time until every client was back to live; infinite when one never was, or the storm failed. */
const allLive = (storm: ReconnectStormResult) =>
  storm.failed !== undefined || storm.live < storm.connections ? Number.POSITIVE_INFINITY : storm.backToLiveMs.max;

/** A figure of the storms that ran to their end: a failed storm's counts are not measurements. */
const measured =
  (figure: (storm: ReconnectStormResult) => number | null) =>
  (storm: ReconnectStormResult): number | null =>
    storm.failed === undefined ? figure(storm) : null;

/** The storms' figures per size and design, and the targets: Pulse back to live no later than Socket.IO, with nothing lost. */
function summariseStorms(result: Repeated): Pick<RepeatedSummary, "reconnectStorm" | "targets"> {
  const sizes = [...new Set((result.reconnectStorm ?? []).map((s) => s.missedPerTenant))].sort((a, b) => a - b);
  const targets: RepeatedTarget[] = [];
  const reconnectStorm = sizes.map((missedPerTenant) => {
    const figures = (design: Design, figure: (storm: ReconnectStormResult) => number | null) =>
      stormFigures(result, design, missedPerTenant, figure);
    const measuredSpread = (design: Design, figure: (storm: ReconnectStormResult) => number | null) =>
      spreadOf(figures(design, measured(figure)));
    const byDesign: Partial<Record<Design, RepeatedStorm>> = {};
    for (const design of result.designs) {
      if (!(result.reconnectStorm ?? []).some((s) => s.design === design)) continue;
      byDesign[design] = {
        allLiveMs: spreadOf(figures(design, allLive)),
        backToLiveP99Ms: measuredSpread(design, (s) => s.backToLiveMs.p99),
        lost: measuredSpread(design, (s) => s.lost),
        duplicates: measuredSpread(design, (s) => s.duplicates),
        retries: measuredSpread(design, (s) => s.retries),
        serverCpuMs: measuredSpread(design, (s) => s.serverCpuMs),
        databaseTransactions: measuredSpread(design, (s) => s.database?.transactions ?? null),
        cpu: phaseCpu(
          (result.reconnectStorm ?? []).filter((s) => s.design === design && s.missedPerTenant === missedPerTenant),
        ),
      };
    }
    const storm = `reconnect storm, ${missedPerTenant} missed`;
    targets.push(
      failingPairTarget(
        `${storm}: time until all live, Pulse ÷ Socket.IO`,
        figures("pulse", allLive),
        figures("socket-io", allLive),
        1,
      ),
      target(
        `${storm}: events Pulse lost or duplicated`,
        measuredSpread("pulse", (s) => s.lost + s.duplicates),
        "at most",
        0,
      ),
    );
    return { missedPerTenant, byDesign };
  });
  return { reconnectStorm, targets };
}

function summariseLongSoak(result: Repeated): LongSoakSummary | null {
  const run = result.scenarios.find((s) => s.longSoak);
  const soak = run?.longSoak;
  if (!run || !soak || soak.windows.length === 0) return null;
  const p99ByWindow = soak.windows.map((w) => (w.passed ? w.latency.p99 : Number.POSITIVE_INFINITY));
  return {
    scenario: run.name,
    design: soak.design,
    fraction: soak.fraction,
    offeredDeliveriesPerSecond: soak.offeredDeliveriesPerSecond,
    windowS: soak.windowMs / 1000,
    p99ByWindow,
    p99Drift: p99ByWindow.at(-1)! / p99ByWindow[0]!,
    windowsPassed: soak.windows.filter((w) => w.passed).length,
    heapGrowthMiB: toMiB(soak.heapAfter - soak.heapBefore),
    rssGrowthMiB: toMiB(soak.rssAfter - soak.rssBefore),
  };
}

export function summariseRepetitions(result: Repeated): RepeatedSummary {
  const names = [...new Set(result.scenarios.map((s) => s.name))];
  const scenarios: Record<string, RepeatedScenario> = {};
  const targets: RepeatedTarget[] = [];
  let repetitions = 0;
  for (const name of names) {
    const runs = byRepetition(result, name);
    repetitions = Math.max(repetitions, runs.length);
    const fractions = [...new Set(runs.flatMap((r) => r.atLoads.map((s) => s.fraction)))].sort((a, b) => a - b);
    const summary: RepeatedScenario = {
      maxima: Object.fromEntries(result.designs.map((d) => [d, spreadOf(runs.map((r) => maximum(r, d)))])),
      soaks: Object.fromEntries(result.designs.map((d) => [d, soakCount(runs, d)])),
      sustained: Object.fromEntries(result.designs.map((d) => [d, sustainedOf(runs, d)])),
      atLoads: fractions.map((fraction) => ({
        fraction,
        p99: Object.fromEntries(result.designs.map((d) => [d, spreadOf(runs.map((r) => p99At(r, d, fraction)))])),
        storedP99: spreadOf(runs.map((r) => p99At(r, "pulse", fraction, "storedLatency"))),
        progressP99: spreadOf(runs.map((r) => p99At(r, "pulse", fraction, "progressLatency"))),
        events: spreadOf(runs.flatMap((r) => r.atLoads.filter((l) => l.fraction === fraction).map((l) => l.events))),
      })),
    };
    scenarios[name] = summary;
    targets.push(...scenarioTargets(name, runs, summary));
  }
  const firstEvent = summariseFirstEvent(result);
  const storms = summariseStorms(result);
  targets.push(...firstEvent.targets, ...storms.targets, ...idleTargets(result));
  return {
    repetitions,
    spread: "min–max",
    scenarios,
    firstEvent: firstEvent.firstEvent,
    reconnectStorm: storms.reconnectStorm,
    longSoak: summariseLongSoak(result),
    targets,
  };
}

/** "median (min–max)", the form every repeated figure takes in the tables. */
export function fmtSpread(spread: Spread | null | undefined, digits = 2, unit = ""): string {
  if (!spread) return "–";
  const f = (v: number) => (Number.isFinite(v) ? `${Math.round(v * 10 ** digits) / 10 ** digits}${unit}` : "failed");
  return spread.n === 1 ? f(spread.median) : `${f(spread.median)} (${f(spread.min)}–${f(spread.max)})`;
}

/**
 * The worse end as the tables print it, to two decimals rounded away from the target (down
 * for "at least", up for "at most"), so a figure just short of it never reads as reaching it
 * (26,511 ÷ 20,394 prints 1.29, not 1.3, against "≥ 1.3"); a failed figure (Infinity, which
 * JSON keeps as null) reads "failed".
 */
export function worseEndText(t: RepeatedTarget): string {
  if (!t.spread) return "–";
  const worse: number | null = worseEnd(t.spread, t.direction);
  if (typeof worse !== "number" || !Number.isFinite(worse)) return "failed";
  // The epsilon keeps a product like 1.23 × 100 = 123.00000000000001 from rounding a step further.
  const hundredths = t.direction === "at least" ? Math.floor(worse * 100 + 1e-9) : Math.ceil(worse * 100 - 1e-9);
  return String(hundredths / 100);
}

/**
 * A phase's CPU by process (a wave, a storm's reconnects), for the designs that kept it: the
 * server's, PostgreSQL's, Redis's and the rest of the bench's cores, and the machine's busy share.
 */
function phaseCpuTable(
  title: string,
  secondsLabel: string,
  byDesign: [Design, RepeatedPhaseCpu | null][],
  markdown: boolean,
): string | null {
  const kept = byDesign.flatMap(([d, cpu]) => (cpu ? [[d, cpu] as const] : []));
  if (kept.length === 0) return null;
  const rows: (string | number)[][] = [
    ["design", secondsLabel, "server", "PostgreSQL", "Redis", "publisher and clients", "machine busy"],
    ...kept.map(([d, c]) => [
      d,
      fmtSpread(c.seconds, 1),
      ...[c.serverCores, c.postgresCores, c.redisCores, c.restOfBenchCores].map((s) => fmtSpread(s, 2)),
      fmtSpread(c.machineBusy ? scaled(c.machineBusy, 100) : null, 0, "%"),
    ]),
  ];
  return `${markdown ? "### " : "== "}${title}, cores, median (min–max)\n\n${table(rows, markdown)}`;
}

/** The repeated figures as tables: maxima with their soaks, p99 at the comparison loads, and the targets. */
export function repeatedTables(summary: RepeatedSummary, designs: readonly Design[], markdown = false): string {
  const parts: string[] = [];
  for (const [name, s] of Object.entries(summary.scenarios)) {
    const maxima: (string | number)[][] = [
      ["design", "max deliveries/s, median (min–max)", "soak at the median confirmed", "sustained deliveries/s (soak)"],
    ];
    for (const d of designs) {
      const soak = s.soaks[d];
      const sustained = s.sustained[d];
      maxima.push([
        d,
        fmtSpread(s.maxima[d], 0),
        soak ? `${soak.confirmed}/${soak.soaked}` : "–",
        sustained ? Math.round(sustained) : soak?.soaked ? "none held" : "–",
      ]);
    }
    parts.push(
      `${markdown ? "### " : "== "}${name}: maxima over ${summary.repetitions} repetitions\n\n${table(maxima, markdown)}`,
    );
    const header = ["design", ...s.atLoads.map((l) => `p99 ms at ${Math.round(l.fraction * 100)}%, median (min–max)`)];
    const p99: (string | number)[][] = [
      header,
      ...designs.map((d) => [d, ...s.atLoads.map((l) => fmtSpread(l.p99[d], 1))]),
    ];
    for (const [label, of] of PULSE_PART_ROWS)
      if (designs.includes("pulse") && s.atLoads.some((l) => l[of]))
        p99.push([label, ...s.atLoads.map((l) => fmtSpread(l[of], 1))]);
    p99.push(["events a step", ...s.atLoads.map((l) => fmtSpread(l.events, 0))]);
    if (s.atLoads.length)
      parts.push(
        `${markdown ? "### " : "== "}${name}: p99 at fractions of the weaker maximum\n\n${table(p99, markdown)}`,
      );
  }
  const waves = designs.filter((d) => summary.firstEvent?.[d]);
  if (waves.length) {
    const rows: (string | number)[][] = [
      ["design", "connect p99 ms", "subscribed p99 ms", "first event p50 ms", "first event p99 ms"],
      ...waves.map((d) => {
        const f = summary.firstEvent[d]!;
        return [d, ...[f.connectP99, f.subscribedP99, f.firstEventP50, f.firstEventP99].map((s) => fmtSpread(s, 1))];
      }),
    ];
    parts.push(
      `${markdown ? "### " : "== "}time to first event on subscribe, median (min–max)\n\n${table(rows, markdown)}`,
    );
    const cpu = phaseCpuTable(
      "time to first event: the machine's CPU during the wave",
      "wave s",
      waves.map((d) => [d, summary.firstEvent[d]!.cpu]),
      markdown,
    );
    if (cpu) parts.push(cpu);
  }
  for (const { missedPerTenant, byDesign } of summary.reconnectStorm ?? []) {
    const rows: (string | number)[][] = [
      [
        "design",
        "all live ms",
        "back to live p99 ms",
        "lost",
        "duplicated",
        "retries",
        "server CPU ms",
        "database transactions",
      ],
      ...designs.flatMap((d) => {
        const f = byDesign[d];
        if (!f) return [];
        const figures = [
          f.allLiveMs,
          f.backToLiveP99Ms,
          f.lost,
          f.duplicates,
          f.retries,
          f.serverCpuMs,
          f.databaseTransactions,
        ];
        return [[d, ...figures.map((s) => fmtSpread(s, 0))]];
      }),
    ];
    parts.push(
      `${markdown ? "### " : "== "}reconnect storm, ${missedPerTenant} events missed per tenant, median (min–max)\n\n${table(rows, markdown)}`,
    );
    const cpu = phaseCpuTable(
      `reconnect storm, ${missedPerTenant} missed: the machine's CPU during the reconnects`,
      "reconnects s",
      designs.map((d) => [d, byDesign[d]?.cpu ?? null]),
      markdown,
    );
    if (cpu) parts.push(cpu);
  }
  const soak = summary.longSoak;
  if (soak) {
    const windows: (string | number)[][] = [
      ["window", ...soak.p99ByWindow.map((_, i) => `${i + 1}`)],
      ["p99 ms", ...soak.p99ByWindow.map((p) => (Number.isFinite(p) ? Math.round(p * 10) / 10 : "failed"))],
    ];
    parts.push(
      `${markdown ? "### " : "== "}long soak: ${soak.design} in ${soak.scenario} at ${Math.round(soak.fraction * 100)}% of its median maximum ` +
        `(${Math.round(soak.offeredDeliveriesPerSecond)} deliveries/s), ${soak.p99ByWindow.length} windows of ${soak.windowS} s\n\n` +
        `${table(windows, markdown)}\n\n` +
        `${soak.windowsPassed} of ${soak.p99ByWindow.length} windows delivered everything exactly once under the p99 bound; ` +
        `p99 drift (last ÷ first window) ${Number.isFinite(soak.p99Drift) ? soak.p99Drift.toFixed(2) : "–"}; ` +
        `server heap after full collections ${soak.heapGrowthMiB >= 0 ? "+" : ""}${soak.heapGrowthMiB} MiB, RSS ${soak.rssGrowthMiB >= 0 ? "+" : ""}${soak.rssGrowthMiB} MiB from before the first window to after the last.`,
    );
  }
  const rows: (string | number)[][] = [["target", "median (min–max)", "worse end", "wanted", "status", "note"]];
  for (const t of summary.targets) {
    const status = t.met === true ? "met" : t.met === false ? "NOT MET" : "n/a";
    rows.push([
      t.name,
      fmtSpread(t.spread),
      worseEndText(t),
      `${t.direction === "at least" ? "≥" : "≤"} ${t.target}`,
      status,
      t.note ?? "",
    ]);
  }
  parts.push(`${markdown ? "### " : "== "}targets, judged at the worse end of the spread\n\n${table(rows, markdown)}`);
  return parts.join("\n\n");
}
