import { describe, expect, test } from "vitest";
import {
  fixtureIdle,
  fixturePhaseCpu,
  fixtureRepetition,
  fixtureResult,
  fixtureStep,
  fixtureStorm,
  fixtureWave,
} from "./result-fixtures";
import { repeatedTables, summariseRepetitions, worseEndText } from "./repetitions";
import type { Design } from "./workload";

const byName = (result: ReturnType<typeof summariseRepetitions>, name: string) =>
  result.targets.find((t) => t.name === name)!;

describe("summariseRepetitions", () => {
  // Pulse ÷ Socket.IO per repetition: 1.5, 1.4, 1.2, 1.6, 1.5 (median 1.5, worse end 1.2).
  const ratios = [1.5, 1.4, 1.2, 1.6, 1.5];
  const runs = ratios.map((ratio, r) =>
    fixtureRepetition(r, {
      pulse: { max: 1_000 * ratio, p99AtLoads: [10, 20, 30 + r] },
      "socket-io": { max: 1_000, p99AtLoads: [20, 20, 31] },
      "ws-floor": { max: 2_000 },
    }),
  );

  test("maxima are the median and min–max of each repetition's highest passed step", () => {
    const summary = summariseRepetitions(fixtureResult(runs));
    expect(summary.repetitions).toBe(5);
    // Deliveries/s: events/s × 5 subscribers.
    expect(summary.scenarios.narrow!.maxima.pulse).toEqual({ median: 7_500, min: 6_000, max: 8_000, n: 5 });
  });

  test("a median over the target is NOT met when one repetition falls under it", () => {
    const target = byName(summariseRepetitions(fixtureResult(runs)), "narrow: max deliveries/s, Pulse ÷ Socket.IO");
    expect(target.spread).toMatchObject({ median: 1.5, min: 1.2, max: 1.6 });
    expect(target.met).toBe(false);
  });

  test("p99 is compared repetition by repetition at each fraction, judged at the highest ratio", () => {
    const summary = summariseRepetitions(fixtureResult(runs));
    expect(summary.scenarios.narrow!.atLoads.map((l) => l.fraction)).toEqual([0.25, 0.5, 0.75]);
    expect(byName(summary, "narrow: p99 at 25% of the weaker maximum, Pulse ÷ Socket.IO").met).toBe(true);
    expect(byName(summary, "narrow: p99 at 50% of the weaker maximum, Pulse ÷ Socket.IO").met).toBe(true);
    // 30+r against 31: the last two repetitions are slower (34 ÷ 31).
    expect(byName(summary, "narrow: p99 at 75% of the weaker maximum, Pulse ÷ Socket.IO").met).toBe(false);
  });

  test("Pulse's steps and logs have a p99 row of their own at each comparison load", () => {
    const summary = summariseRepetitions(fixtureResult(runs));
    // Pulse's p99 at 75% is 30+r; its steps and logs are twice as slow in the fixtures.
    expect(summary.scenarios.narrow!.atLoads[2]!.storedP99).toEqual({ median: 64, min: 60, max: 68, n: 5 });
    const tables = repeatedTables(summary, ["pulse", "socket-io", "ws-floor"]);
    expect(tables).toMatch(/pulse: steps and logs only +20 \(20–20\) +40 \(40–40\) +64 \(60–68\)/);
  });

  test("each comparison load says how many events its p99s rest on, every design's steps together", () => {
    const result = fixtureResult(runs);
    // Every fixture step publishes 300 events; one of Socket.IO's at 25% published 40.
    result.scenarios[3]!.atLoads.find((s) => s.design === "socket-io" && s.fraction === 0.25)!.events = 40;
    const summary = summariseRepetitions(result);
    expect(summary.scenarios.narrow!.atLoads[0]!.events).toEqual({ median: 300, min: 40, max: 300, n: 10 });
    expect(summary.scenarios.narrow!.atLoads[1]!.events).toEqual({ median: 300, min: 300, max: 300, n: 10 });
    expect(repeatedTables(summary, ["pulse", "socket-io"])).toMatch(
      /events a step +300 \(40–300\) +300 \(300–300\) +300 \(300–300\)/,
    );
  });

  test("so has its progress, which it appends without writing it to its database first", () => {
    const summary = summariseRepetitions(fixtureResult(runs));
    // Three quarters of Pulse's p99 (30+r) at 75% in the fixtures.
    expect(summary.scenarios.narrow!.atLoads[2]!.progressP99).toEqual({ median: 24, min: 22.5, max: 25.5, n: 5 });
    expect(repeatedTables(summary, ["pulse", "socket-io"])).toMatch(
      /pulse: progress only +7\.5 \(7\.5–7\.5\) +15 \(15–15\) +24 \(22\.5–25\.5\)/,
    );
    // A run from before progress was kept apart has no such row.
    const older = fixtureResult(runs);
    for (const scenario of older.scenarios) for (const step of scenario.atLoads) delete step.progressLatency;
    expect(summariseRepetitions(older).scenarios.narrow!.atLoads[2]!.progressP99).toBeNull();
    expect(repeatedTables(summariseRepetitions(older), ["pulse", "socket-io"])).not.toMatch(/progress only/);
  });

  test("a median maximum its soak did not confirm keeps the throughput target from being met", () => {
    // The soak runs once, in the last repetition, at the median maximum.
    const soakedLast = [0, 1].map((r) =>
      fixtureRepetition(r, {
        pulse: { max: 2_000, ...(r === 1 ? { soakPassed: false } : {}) },
        "socket-io": { max: 1_000, ...(r === 1 ? { soakPassed: true } : {}) },
        "ws-floor": { max: 1_000 },
      }),
    );
    const summary = summariseRepetitions(fixtureResult(soakedLast));
    expect(summary.scenarios.narrow!.soaks.pulse).toEqual({ confirmed: 0, soaked: 1 });
    expect(summary.scenarios.narrow!.soaks["socket-io"]).toEqual({ confirmed: 1, soaked: 1 });
    const target = byName(summary, "narrow: max deliveries/s, Pulse ÷ Socket.IO");
    expect(target.spread?.min).toBe(2);
    expect(target.met).toBe(false);
    expect(target.note).toContain("median maximum failed");
  });

  test("a design whose soak at its median maximum failed is held to what a soak a step lower sustained", () => {
    const soakedLast = [0, 1].map((r) =>
      fixtureRepetition(r, {
        pulse: { max: 2_000, ...(r === 1 ? { soakPassed: false } : {}) },
        "socket-io": { max: 1_000, ...(r === 1 ? { soakPassed: true } : {}) },
        "ws-floor": { max: 4_000, ...(r === 1 ? { soakPassed: false } : {}) },
      }),
    );
    // Pulse held the step below its maximum; the floor held neither of its two.
    soakedLast[1]!.soaks.push(fixtureStep("pulse", 1_500, true), fixtureStep("ws-floor", 3_000, false));
    const summary = summariseRepetitions(fixtureResult(soakedLast));
    const narrow = summary.scenarios.narrow!;
    expect(narrow.soaks.pulse).toEqual({ confirmed: 0, soaked: 1 });
    expect(narrow.sustained.pulse).toBe(fixtureStep("pulse", 1_500, true).offeredDeliveriesPerSecond);
    expect(narrow.sustained["socket-io"]).toBe(fixtureStep("socket-io", 1_000, true).offeredDeliveriesPerSecond);
    expect(narrow.sustained["ws-floor"]).toBeNull();
    const held = byName(summary, "narrow: sustained deliveries/s (3 s soak), Pulse ÷ Socket.IO");
    expect(held.spread).toMatchObject({ median: 1.5, min: 1.5, max: 1.5 });
    expect(held.met).toBe(true);
    expect(byName(summary, "narrow: sustained deliveries/s (3 s soak), Pulse ÷ floor").met).toBeNull();
    expect(repeatedTables(summary, ["pulse", "socket-io", "ws-floor"])).toContain("none held");
  });

  test("a comparison Socket.IO alone failed reads 0, and its note says so", () => {
    const withFailure = structuredClone(fixtureResult(runs));
    const failing = withFailure.scenarios[1]!.atLoads.find((s) => s.design === "socket-io" && s.fraction === 0.5)!;
    failing.passed = false;
    const target = byName(
      summariseRepetitions(withFailure),
      "narrow: p99 at 50% of the weaker maximum, Pulse ÷ Socket.IO",
    );
    expect(target.spread).toMatchObject({ min: 0, n: 5 });
    expect(target.note).toBe("Socket.IO alone failed in 1 of 5 repetitions (its ratio reads 0)");
    expect(byName(summariseRepetitions(fixtureResult(runs)), target.name).note).toBeUndefined();
  });

  test("a failed figure's worse end reads failed, also once JSON has turned its Infinity into null", () => {
    const failed = {
      ...byName(
        summariseRepetitions(fixtureResult(runs)),
        "narrow: p99 at 75% of the weaker maximum, Pulse ÷ Socket.IO",
      ),
    };
    failed.spread = { ...failed.spread!, max: Number.POSITIVE_INFINITY };
    expect(worseEndText(failed)).toBe("failed");
    const fromJson = JSON.parse(JSON.stringify(failed)) as typeof failed;
    expect(fromJson.spread!.max).toBeNull();
    expect(worseEndText(fromJson)).toBe("failed");
    expect(worseEndText({ ...failed, spread: { ...failed.spread!, max: 1.234 } })).toBe("1.24");
  });

  test("a worse end is rounded away from its target, so one just short of it never prints as reaching it", () => {
    const sustained = { name: "sustained", direction: "at least", target: 1.3, met: false } as const;
    const spread = (v: number) => ({ median: v, min: v, max: v, n: 1 });
    expect(worseEndText({ ...sustained, spread: spread(26_511 / 20_394) })).toBe("1.29");
    expect(worseEndText({ ...sustained, spread: spread(1.3), met: true })).toBe("1.3");
    const p99 = { name: "p99", direction: "at most", target: 1, met: false } as const;
    expect(worseEndText({ ...p99, spread: spread(1.0004) })).toBe("1.01");
    expect(worseEndText({ ...p99, spread: spread(1.23), met: false })).toBe("1.23");
  });

  test("idle memory is met only when heap and RSS per connection both are, judged at the most connections", () => {
    const result = fixtureResult(runs, [
      fixtureIdle("pulse", 5_000, 15_000, 50_000),
      fixtureIdle("socket-io", 10_000, 14_000, 50_000),
      // At the smaller size Pulse would meet both; the target is not judged there.
      fixtureIdle("pulse", 5_000, 5_000, 10_000),
      fixtureIdle("socket-io", 10_000, 14_000, 10_000),
    ]);
    const summary = summariseRepetitions(result);
    const at = " at 50,000 connections";
    expect(byName(summary, `heap per idle connection${at}, Pulse ÷ Socket.IO`).met).toBe(true);
    expect(byName(summary, `RSS per idle connection${at}, Pulse ÷ Socket.IO`).spread).toMatchObject({ n: 1 });
    expect(byName(summary, `RSS per idle connection${at}, Pulse ÷ Socket.IO`).met).toBe(false);
    // The memory row's figure is each measurement's worse ratio: RSS's 15,000 ÷ 14,000 here.
    const memory = byName(summary, `memory per idle connection${at} (the worse of heap and RSS), Pulse ÷ Socket.IO`);
    expect(memory.spread).toEqual({ median: 15_000 / 14_000, min: 15_000 / 14_000, max: 15_000 / 14_000, n: 1 });
    expect(memory.met).toBe(false);
  });

  test("time to first event is Pulse's first event p99 over Socket.IO's subscribed p99, repetition by repetition, judged at the highest", () => {
    // Pulse ÷ Socket.IO: 150 ÷ 100, 190 ÷ 100, 250 ÷ 100.
    const waves = [150, 190, 250].flatMap((pulse, r) => [
      fixtureWave("pulse", r, { subscribed: pulse - 20, firstEvent: pulse }),
      fixtureWave("socket-io", r, { subscribed: 100, firstEvent: 120 }),
    ]);
    const summary = summariseRepetitions(fixtureResult(runs, [], waves));
    expect(summary.firstEvent.pulse!.firstEventP99).toEqual({ median: 190, min: 150, max: 250, n: 3 });
    expect(summary.firstEvent["socket-io"]!.subscribedP99).toMatchObject({ median: 100, n: 3 });
    // The floor ran no wave here: no figure rather than a zero.
    expect(summary.firstEvent["ws-floor"]!.firstEventP99).toBeNull();
    const target = byName(summary, "time to first event p99, Pulse ÷ Socket.IO's connect p99");
    expect(target.spread).toMatchObject({ median: 1.9, min: 1.5, max: 2.5 });
    expect(target.met).toBe(false);
  });

  test("a wave in which a subscriber never went live counts as infinitely slow, and fails the target", () => {
    const waves = [0, 1].flatMap((r) => [
      fixtureWave("pulse", r, { subscribed: 80, firstEvent: 100 }, r === 1 ? 3 : 0),
      fixtureWave("socket-io", r, { subscribed: 100, firstEvent: 120 }),
    ]);
    const summary = summariseRepetitions(fixtureResult(runs, [], waves));
    expect(summary.firstEvent.pulse!.firstEventP99).toMatchObject({ min: 100, max: Number.POSITIVE_INFINITY });
    expect(byName(summary, "time to first event p99, Pulse ÷ Socket.IO's connect p99").met).toBe(false);
    expect(repeatedTables(summary, ["pulse", "socket-io"])).toMatch(/pulse\s.*failed \(100–failed\)/);
  });

  test("where the machine's CPU went during the waves has a table of its own, for runs that kept it", () => {
    const cpu = (server: number) => fixturePhaseCpu(2, server);
    const waves = [0.6, 0.7, 0.8].flatMap((server, r) => [
      { ...fixtureWave("pulse", r, { subscribed: 200, firstEvent: 210 }), cpu: cpu(server) },
      { ...fixtureWave("socket-io", r, { subscribed: 100, firstEvent: 120 }), cpu: cpu(0.9) },
    ]);
    const summary = summariseRepetitions(fixtureResult(runs, [], waves));
    expect(summary.firstEvent.pulse!.cpu!.serverCores).toEqual({ median: 0.7, min: 0.6, max: 0.8, n: 3 });
    expect(summary.firstEvent["ws-floor"]!.cpu).toBeNull();
    const tables = repeatedTables(summary, ["pulse", "socket-io"]);
    expect(tables).toContain("the machine's CPU during the wave");
    expect(tables).toMatch(
      /pulse +2 \(2–2\) +0\.7 \(0\.6–0\.8\) +0\.2 \(0\.2–0\.2\) +0\.1 \(0\.1–0\.1\) +0\.5 \(0\.5–0\.5\) +90% \(90%–90%\)/,
    );
    // Waves of a run from before it was kept: the wave table, no CPU table.
    const older = summariseRepetitions(
      fixtureResult(
        runs,
        [],
        waves.map(({ cpu: _, ...wave }) => wave),
      ),
    );
    expect(older.firstEvent.pulse!.cpu).toBeNull();
    expect(repeatedTables(older, ["pulse", "socket-io"])).not.toContain("the machine's CPU during the wave");
  });

  test("without waves there is neither a first-event table nor its target", () => {
    const summary = summariseRepetitions(fixtureResult(runs));
    expect(summary.firstEvent).toEqual({});
    expect(summary.targets.map((t) => t.name)).not.toContain(
      "time to first event p99, Pulse ÷ Socket.IO's connect p99",
    );
    expect(repeatedTables(summary, ["pulse"])).not.toContain("time to first event");
  });

  test("a storm's time until all live is compared repetition by repetition; Pulse must lose and duplicate nothing in any", () => {
    // Pulse ÷ Socket.IO: 800 ÷ 1000, 900 ÷ 1000, 1100 ÷ 1000; Pulse duplicates one event in the last.
    const storms = [800, 900, 1_100].flatMap((pulse, r) => [
      fixtureStorm("pulse", r, { allLiveMs: pulse, duplicates: r === 2 ? 1 : 0 }),
      fixtureStorm("socket-io", r, { allLiveMs: 1_000, lost: 2_000 }),
    ]);
    const summary = summariseRepetitions(fixtureResult(runs, [], [], storms));
    expect(summary.reconnectStorm.map((s) => s.missedPerTenant)).toEqual([10]);
    const { byDesign } = summary.reconnectStorm[0]!;
    expect(byDesign.pulse!.allLiveMs).toEqual({ median: 900, min: 800, max: 1_100, n: 3 });
    expect(byDesign["socket-io"]!.lost).toMatchObject({ median: 2_000 });
    expect(byDesign["socket-io"]!.databaseTransactions).toBeNull();
    // The floor has no way to resume: no storm, no row.
    expect(byDesign["ws-floor"]).toBeUndefined();
    const time = byName(summary, "reconnect storm, 10 missed: time until all live, Pulse ÷ Socket.IO");
    expect(time.spread).toMatchObject({ median: 0.9, min: 0.8, max: 1.1 });
    expect(time.met).toBe(false);
    const lost = byName(summary, "reconnect storm, 10 missed: events Pulse lost or duplicated");
    expect(lost.spread).toMatchObject({ median: 0, max: 1 });
    expect(lost.met).toBe(false);
  });

  test("a storm that left a client not live counts as failed, and each size of storm is judged on its own", () => {
    const storms = [
      fixtureStorm("pulse", 0, { allLiveMs: 500 }),
      fixtureStorm("socket-io", 0, { allLiveMs: 700 }),
      fixtureStorm("pulse", 0, { allLiveMs: 900, notLive: 2, missedPerTenant: 100 }),
      fixtureStorm("socket-io", 0, { allLiveMs: 700, missedPerTenant: 100 }),
    ];
    const summary = summariseRepetitions(fixtureResult(runs, [], [], storms));
    expect(byName(summary, "reconnect storm, 10 missed: time until all live, Pulse ÷ Socket.IO").met).toBe(true);
    expect(byName(summary, "reconnect storm, 10 missed: events Pulse lost or duplicated").met).toBe(true);
    expect(byName(summary, "reconnect storm, 100 missed: time until all live, Pulse ÷ Socket.IO").met).toBe(false);
    const text = repeatedTables(summary, ["pulse", "socket-io"]);
    expect(text).toContain("reconnect storm, 100 events missed per tenant");
    expect(text).toMatch(/pulse\s+failed\s/);
  });

  test("a storm whose server stopped answering counts as not all live, and gives no other figure", () => {
    const failed = (design: Design, repetition: number) => ({
      ...fixtureStorm(design, repetition, { allLiveMs: 0, lost: 5 }),
      failed: `${design} server: no answer to "stats" within 60000 ms`,
    });
    const storms = [
      fixtureStorm("pulse", 0, { allLiveMs: 500 }),
      fixtureStorm("socket-io", 0, { allLiveMs: 700, lost: 3 }),
      fixtureStorm("pulse", 1, { allLiveMs: 600 }),
      failed("socket-io", 1),
      failed("pulse", 2),
      fixtureStorm("socket-io", 2, { allLiveMs: 800, lost: 1 }),
    ];
    const summary = summariseRepetitions(fixtureResult(runs, [], [], storms));
    const { byDesign } = summary.reconnectStorm[0]!;
    expect(byDesign.pulse!.allLiveMs).toMatchObject({ median: 600, max: Number.POSITIVE_INFINITY, n: 3 });
    // Its zeros are no measurement: the figures are the storms that ran.
    expect(byDesign["socket-io"]!.lost).toMatchObject({ median: 2, min: 1, max: 3, n: 2 });
    expect(byDesign.pulse!.serverCpuMs).toMatchObject({ n: 2 });
    const time = byName(summary, "reconnect storm, 10 missed: time until all live, Pulse ÷ Socket.IO");
    expect(time.met).toBe(false);
    expect(repeatedTables(summary, ["pulse", "socket-io"])).toMatch(/pulse\s+600 \(500–failed\)/);
  });

  test("where the machine's CPU went during a storm's reconnects has a table per storm size, for storms that kept it", () => {
    const cpu = (server: number) => fixturePhaseCpu(9, server);
    const storms = [0.5, 0.6, 0.7].flatMap((server, r) => [
      { ...fixtureStorm("pulse", r, { allLiveMs: 9_000 }), cpu: cpu(server) },
      // A failed storm records no CPU (`failedStorm` gives none): the spread is of the others.
      r === 1
        ? { ...fixtureStorm("socket-io", r, { allLiveMs: 0 }), failed: "no answer" }
        : { ...fixtureStorm("socket-io", r, { allLiveMs: 20_000 }), cpu: cpu(0.9) },
      { ...fixtureStorm("pulse", r, { allLiveMs: 12_000, missedPerTenant: 100 }), cpu: cpu(server + 0.2) },
    ]);
    const summary = summariseRepetitions(fixtureResult(runs, [], [], storms));
    const [ten, hundred] = summary.reconnectStorm;
    expect(ten!.byDesign.pulse!.cpu!.serverCores).toEqual({ median: 0.6, min: 0.5, max: 0.7, n: 3 });
    expect(ten!.byDesign["socket-io"]!.cpu!.serverCores).toEqual({ median: 0.9, min: 0.9, max: 0.9, n: 2 });
    expect(hundred!.byDesign.pulse!.cpu!.serverCores).toMatchObject({ median: 0.8, n: 3 });
    expect(hundred!.byDesign["socket-io"]!.cpu).toBeNull();
    const tables = repeatedTables(summary, ["pulse", "socket-io"]);
    expect(tables).toContain("reconnect storm, 10 missed: the machine's CPU during the reconnects");
    expect(tables).toMatch(
      /pulse +9 \(9–9\) +0\.6 \(0\.5–0\.7\) +0\.2 \(0\.2–0\.2\) +0\.1 \(0\.1–0\.1\) +0\.5 \(0\.5–0\.5\) +90% \(90%–90%\)/,
    );
    expect(tables).toContain("reconnect storm, 100 missed: the machine's CPU during the reconnects");
    // Storms of a run from before it was kept: the storm tables, no CPU table.
    const older = summariseRepetitions(
      fixtureResult(
        runs,
        [],
        [],
        storms.map(({ cpu: _, ...storm }) => storm),
      ),
    );
    expect(older.reconnectStorm[0]!.byDesign.pulse!.cpu).toBeNull();
    expect(repeatedTables(older, ["pulse", "socket-io"])).not.toContain("during the reconnects");
  });

  test("the tables print the median with its spread and the worse end", () => {
    const text = repeatedTables(summariseRepetitions(fixtureResult(runs)), ["pulse", "socket-io"]);
    expect(text).toContain("7500 (6000–8000)");
    expect(text).toMatch(
      /narrow: max deliveries\/s, Pulse ÷ Socket\.IO\s+1\.5 \(1\.2–1\.6\)\s+1\.2\s+≥ 1\.3\s+NOT MET/,
    );
  });
});
