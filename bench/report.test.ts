import { describe, expect, it } from "vitest";
import { FULL_PLAN, SMOKE_PLAN } from "./bench-plan";
import type { BenchResult, ScenarioResult, StepResult } from "./bench-result";
import { benchmarkMarkdown, scenarioTable, summarise, summaryTables, targetsTable } from "./report";
import {
  FIXTURE_SUBSCRIBERS,
  fixtureIdle,
  fixturePhaseCpu,
  fixtureRepetition,
  fixtureResult,
  fixtureStep,
  fixtureStorm,
  fixtureWave,
} from "./result-fixtures";
import type { Design } from "./workload";

/** A narrow step's result with what the summary reads, at ladder position `index`. */
const step = (design: Design, index: number, rate: number, passed: boolean, p99 = 10): StepResult => ({
  ...fixtureStep(design, rate, passed, p99),
  step: index,
});

function scenario(steps: StepResult[], unsaturated: Design[] = []): ScenarioResult {
  return {
    name: "narrow",
    description: "",
    repetition: 0,
    order: [],
    soaks: [],
    atLoads: [],
    tenants: 100,
    subscribersPerTenant: FIXTURE_SUBSCRIBERS,
    runsPerTenant: 2,
    officialClients: 3,
    connect: [],
    steps,
    unsaturated,
  };
}

const designs: Design[] = ["pulse", "socket-io", "ws-floor"];
const target = (summary: ReturnType<typeof summarise>, name: string) =>
  summary.targets.find((t) => t.name === `narrow: ${name}`);

describe("summarise", () => {
  it("takes a design's maximum from the step between its failure and its last pass, and compares latencies only at loads both ran", () => {
    const summary = summarise({
      designs,
      idle: [],
      scenarios: [
        scenario(
          [
            step("pulse", 0, 1000, true, 20),
            step("socket-io", 0, 1000, true, 10),
            step("ws-floor", 0, 1000, true, 5),
            step("pulse", 1, 1300, false),
            // Pulse's refinement: between 1,000 and 1,300.
            step("pulse", 0.5, 1140, true, 40),
            step("socket-io", 1, 1300, true, 12),
            step("ws-floor", 1, 1300, true, 6),
            step("socket-io", 2, 1690, false),
            step("socket-io", 1.5, 1482, false),
            step("ws-floor", 2, 1690, true, 7),
          ],
          ["ws-floor"],
        ),
      ],
    });
    expect(summary.maxSustainable.narrow).toEqual({
      pulse: { deliveriesPerSecond: 5700, atLeast: false },
      "socket-io": { deliveriesPerSecond: 6500, atLeast: false },
      "ws-floor": { deliveriesPerSecond: 8450, atLeast: true },
    });
    expect(target(summary, "max sustainable deliveries/s, Pulse ÷ Socket.IO")).toMatchObject({
      value: 0.88,
      met: false,
    });
    // The floor never failed, so 0.67 only bounds the ratio from above: whether it is ≥ 0.5 is not known.
    expect(target(summary, "max sustainable deliveries/s, Pulse ÷ floor")).toMatchObject({
      value: 0.67,
      bound: "atMost",
      met: null,
    });
    // Pulse's refined step has no Socket.IO twin: latencies are shown at the heaviest load all ran.
    expect(summary.equalLoad.narrow?.offeredDeliveriesPerSecond).toBe(5000);
    expect(summary.equalLoad.narrow?.byDesign.pulse?.p99).toBe(20);
    // The floor's own ratio beside it: its maximum never failed (≥ 8,450 ÷ 6,500).
    expect(target(summary, "max sustainable deliveries/s, Pulse ÷ Socket.IO")?.floor).toEqual({
      value: 1.3,
      bound: "atLeast",
    });
    expect(targetsTable(summary.targets).split("\n")[2]).toMatch(
      /Pulse ÷ Socket\.IO +0\.88 +≥ 1\.3 +NOT MET +≥ 1\.3 +Pulse 5\.7k\/s/,
    );
  });

  it("compares two designs' refined steps when both failed at the same step", () => {
    const summary = summarise({
      designs: ["pulse", "socket-io"],
      idle: [],
      scenarios: [
        scenario([
          step("pulse", 0, 1000, true, 20),
          step("socket-io", 0, 1000, true, 10),
          step("pulse", 1, 1300, false),
          step("pulse", 0.5, 1140, true, 30),
          step("socket-io", 1, 1300, false),
          step("socket-io", 0.5, 1140, true, 60),
        ]),
      ],
    });
    expect(summary.equalLoad.narrow?.offeredDeliveriesPerSecond).toBe(5700);
    expect(summary.equalLoad.narrow?.byDesign["socket-io"]?.p99).toBe(60);
    expect(target(summary, "max sustainable deliveries/s, Pulse ÷ Socket.IO")).toMatchObject({ value: 1, met: false });
    // No floor in this run: no figure of it.
    expect(target(summary, "max sustainable deliveries/s, Pulse ÷ Socket.IO")).not.toHaveProperty("floor");
  });

  it("judges p99 at each comparison load of the pass, as over repetitions, not at the heaviest load both passed", () => {
    const run = fixtureRepetition(0, {
      pulse: { max: 1_000, p99AtLoads: [4, 12, 30] },
      "socket-io": { max: 900, p99AtLoads: [5, 10, 30] },
    });
    run.atLoads.find((s) => s.design === "pulse" && s.fraction === 0.75)!.passed = false;
    const summary = summarise({ designs: ["pulse", "socket-io"], idle: [], scenarios: [run] });
    const p99 = summary.targets.filter((t) => t.name.includes("p99"));
    expect(p99.map((t) => [t.name, t.value, t.target, t.met])).toEqual([
      ["narrow: p99 at 25% of the weaker maximum, Pulse ÷ Socket.IO", 0.8, "≤ 1", true],
      ["narrow: p99 at 50% of the weaker maximum, Pulse ÷ Socket.IO", 1.2, "≤ 1", false],
      ["narrow: p99 at 75% of the weaker maximum, Pulse ÷ Socket.IO", null, "≤ 1", false],
    ]);
    expect(p99[2]!.detail).toBe("Pulse failed at 500 deliveries/s");
  });

  it("names each repetition's figures, and leaves the scenarios' targets to the judgement over repetitions", () => {
    const runs = [0, 1].map((r) =>
      fixtureRepetition(r, { pulse: { max: 1_000 + r * 100 }, "socket-io": { max: 900 } }),
    );
    const summary = summarise({ designs: ["pulse", "socket-io"], idle: [], scenarios: runs });
    expect(Object.keys(summary.maxSustainable)).toEqual(["narrow (repetition 1)", "narrow (repetition 2)"]);
    expect(summary.maxSustainable["narrow (repetition 2)"]?.pulse?.deliveriesPerSecond).toBe(
      1_100 * FIXTURE_SUBSCRIBERS,
    );
    const idle = [fixtureIdle("pulse", 500, 5_000), fixtureIdle("socket-io", 1_000, 10_000)];
    const tables = summaryTables({
      ...fixtureResult(runs, idle),
      summary: summarise({ designs, idle, scenarios: runs }),
    });
    expect(tables).toContain("narrow (repetition 2): max sustainable deliveries/s");
    expect(tables).not.toContain("Targets (ratios from this run)");
    expect(tables).not.toMatch(/narrow \(repetition \d\): max sustainable deliveries\/s, Pulse/);
    expect(tables).toMatch(/Targets of the idle run[\s\S]*heap per idle connection, Pulse ÷ Socket\.IO +0\.5/);
  });

  it("judges a ratio of maxima the ladder did not reach only where its bound settles the target", () => {
    const judged = (unsaturated: Design[], pulseFails: boolean, sioFails: boolean, floorFails: boolean) =>
      summarise({
        designs,
        idle: [],
        scenarios: [
          scenario(
            [
              step("pulse", 0, 1000, true),
              step("socket-io", 0, 1000, true),
              step("ws-floor", 0, 1000, true),
              step("pulse", 1, 1300, !pulseFails),
              step("socket-io", 1, 1300, !sioFails),
              step("ws-floor", 1, 1300, !floorFails),
            ],
            unsaturated,
          ),
        ],
      });
    const ratios = (summary: ReturnType<typeof summarise>) => ({
      sio: target(summary, "max sustainable deliveries/s, Pulse ÷ Socket.IO"),
      floor: target(summary, "max sustainable deliveries/s, Pulse ÷ floor"),
    });

    // Pulse never failed (≥ 6,500/s) while Socket.IO failed at 6,500: ≥ 1.3, met whatever Pulse's true maximum.
    const pulseAhead = ratios(judged(["pulse"], false, true, true));
    expect(pulseAhead.sio).toMatchObject({ value: 1.3, bound: "atLeast", met: true });
    // Against a floor that failed at the same step: ≥ 1.3, more than the 0.5 wanted.
    expect(pulseAhead.floor).toMatchObject({ value: 1.3, bound: "atLeast", met: true });

    // Pulse failed at 6,500 and the floor never did: ≤ 0.77, which may or may not be ≥ 0.5.
    const floorAhead = ratios(judged(["ws-floor"], true, true, false));
    expect(floorAhead.floor).toMatchObject({ value: 0.77, bound: "atMost", met: null });
    // Against Socket.IO, which failed with it: exactly 1, not met.
    expect(floorAhead.sio).toMatchObject({ value: 1, met: false });
    expect(floorAhead.sio).not.toHaveProperty("bound");

    // An upper bound below the target settles it: not met.
    const far = summarise({
      designs,
      idle: [],
      scenarios: [
        scenario(
          [step("pulse", 0, 1000, true), step("pulse", 1, 1300, false), step("ws-floor", 0, 3000, true)],
          ["ws-floor"],
        ),
      ],
    });
    expect(target(far, "max sustainable deliveries/s, Pulse ÷ floor")).toMatchObject({
      value: 0.33,
      bound: "atMost",
      met: false,
    });

    // The target is judged on the ratio itself, not on the two decimals it is shown with.
    const short = summarise({
      designs: ["pulse", "socket-io"],
      idle: [],
      scenarios: [
        scenario([
          step("pulse", 0, 1296, true),
          step("pulse", 1, 1690, false),
          step("socket-io", 0, 1000, true),
          step("socket-io", 1, 1300, false),
        ]),
      ],
    });
    expect(target(short, "max sustainable deliveries/s, Pulse ÷ Socket.IO")).toMatchObject({ value: 1.3, met: false });

    // Neither failed: nothing is known of their ratio.
    expect(ratios(judged(["pulse", "ws-floor"], false, true, false)).floor).toMatchObject({ value: null, met: null });
  });
});

describe("scenarioTable", () => {
  it("lists a step's attempts set aside because they failed while the machine was disturbed", () => {
    const rerun = {
      ...step("pulse", 0, 1000, true),
      stolenCpuCores: 0.02,
      disturbedRuns: [{ otherCpuCores: 0.01, stolenCpuCores: 0.34, failure: "p99 412 ms > 250 ms" }],
    };
    const rows = scenarioTable(scenario([rerun, step("socket-io", 0, 1000, true)])).split("\n");
    expect(rows[0]).toContain("stolen cores");
    expect(rows.find((r) => r.includes("pulse"))).toMatch(
      /pass \(after 1 disturbed attempt set aside: others 0\.01, stolen 0\.34 cores: p99 412 ms > 250 ms\)$/,
    );
    expect(rows.find((r) => r.includes("socket-io"))).toMatch(/pass *$/);
  });
});

describe("benchmarkMarkdown", () => {
  const runs = [fixtureRepetition(0, { pulse: { max: 1_000 }, "socket-io": { max: 900 }, "ws-floor": { max: 2_000 } })];
  const waves = [
    { ...fixtureWave("pulse", 0, { subscribed: 300, firstEvent: 400 }), openingMs: 118.8 },
    { ...fixtureWave("socket-io", 0, { subscribed: 200, firstEvent: 250 }), openingMs: 127.2 },
  ];

  it("says how long the client took to start the subscribe waves, which every design's figures include", () => {
    const markdown = benchmarkMarkdown(fixtureResult(runs, [], waves));
    expect(markdown).toContain("each wave's `openingMs`: 118.8–127.2 ms in this run");
  });

  it("describes each scenario, and the machine's noise during it, once over all its repetitions", () => {
    const repetitions = [0, 1, 2].map((repetition) =>
      fixtureRepetition(repetition, { pulse: { max: 1_000 }, "socket-io": { max: 900 } }),
    );
    repetitions[2]!.steps[0]!.stolenCpuCores = 0.3;
    const markdown = benchmarkMarkdown(fixtureResult(repetitions));
    expect(markdown.match(/^- \*\*narrow\*\*: /gm)).toHaveLength(1);
    expect(markdown.match(/narrow: other processes/g)).toHaveLength(1);
    expect(markdown).toContain("stolen 0.02 on average (at most 0.3)");
  });

  it("says so where a run did not record it", () => {
    const markdown = benchmarkMarkdown(
      fixtureResult(
        runs,
        [],
        waves.map(({ openingMs: _, ...wave }) => wave),
      ),
    );
    expect(markdown).toContain("each wave's `openingMs`: not recorded by runs before 2026-12-06");
    expect(markdown).toContain("This run did not record where the machine's CPU went during each wave");
    expect(markdown).toContain("This run did not record where the machine's CPU went during the reconnects");
  });

  it("says what the storm's CPU table holds when the run kept it", () => {
    const storms = [
      { ...fixtureStorm("pulse", 0, { allLiveMs: 9_000 }), cpu: fixturePhaseCpu(9, 0.7) },
      fixtureStorm("socket-io", 0, { allLiveMs: 20_000 }),
    ];
    const markdown = benchmarkMarkdown(fixtureResult(runs, [], waves, storms));
    expect(markdown.replace(/\s+/g, " ")).toContain(
      "The machine's CPU over the same time is split by process as for the waves",
    );
    expect(markdown).not.toContain("did not record where the machine's CPU went during the reconnects");
  });

  it("says what the wave's CPU table holds when the run kept it", () => {
    const cpu = fixturePhaseCpu(2, 0.7);
    const markdown = benchmarkMarkdown(fixtureResult(runs, [], [{ ...waves[0]!, cpu }, waves[1]!]));
    expect(markdown.replace(/\s+/g, " ")).toContain(
      "is split by process: the server, PostgreSQL, Redis, and the rest of the bench",
    );
    expect(markdown).not.toContain("did not record where the machine's CPU went during each wave");
  });

  it("says how long its equal-load steps lasted, and that an older run's ran a step whatever their rate", () => {
    const markdown = (plan: BenchResult["plan"]) => benchmarkMarkdown({ ...fixtureResult(runs), plan });
    const flat = (text: string) => text.replace(/\s+/g, " ");
    expect(flat(markdown(SMOKE_PLAN))).toContain(
      "Each of these steps publishes for 0.3 s, or until it has published 10 events at a rate too low for that many in 0.3 s",
    );
    const { comparisonMinEvents: _, ...older } = SMOKE_PLAN;
    expect(flat(markdown(older as BenchResult["plan"]))).toContain(
      `In this run each of these steps published for 0.3 s whatever its rate, so at a low rate a p99 is of a few dozen events, their slowest one or two (later runs publish at least ${FULL_PLAN.comparisonMinEvents})`,
    );
  });
});
