import { describe, expect, test } from "vitest";
import {
  comparisonLoads,
  comparisonStepMs,
  interleavedOrder,
  median,
  pairedRatios,
  unpairedFailures,
  spreadOf,
  verdictAtWorseEnd,
  worseEnd,
} from "./statistics";

describe("median and spread", () => {
  test("the median of an odd count is the middle figure, of an even count the mean of the two middle ones", () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  test("the spread is min–max of the figures present; missing repetitions are counted out, not as zero", () => {
    expect(spreadOf([10, null, 30, 20, undefined])).toEqual({ median: 20, min: 10, max: 30, n: 3 });
    expect(spreadOf([null])).toBeNull();
  });

  test("ratios pair repetitions: a ÷ b of the same repetition, skipping one where either is missing", () => {
    expect(pairedRatios([10, 20, 30, null], [10, 10, 0, 5])).toEqual({ median: 1.5, min: 1, max: 2, n: 2 });
  });

  test("a pair where only the second failed, or both did, is counted apart: its ratio is 0 or none", () => {
    const failed = Number.POSITIVE_INFINITY;
    const a = [10, 10, failed, failed, null, 10];
    const b = [20, failed, failed, 5, failed, null];
    expect(unpairedFailures(a, b)).toEqual({ onlySecond: 1, both: 1 });
    expect(pairedRatios(a, b)).toEqual({ median: 0.5, min: 0, max: failed, n: 3 });
  });
});

describe("verdicts at the worse end of the spread", () => {
  const spread = { median: 1.4, min: 1.2, max: 1.6, n: 5 };

  test("an 'at least' target is judged on the lowest repetition: a median over the target is not enough", () => {
    expect(worseEnd(spread, "at least")).toBe(1.2);
    expect(verdictAtWorseEnd(spread, "at least", 1.3)).toBe(false);
    expect(verdictAtWorseEnd(spread, "at least", 1.2)).toBe(true);
  });

  test("an 'at most' target is judged on the highest repetition", () => {
    expect(worseEnd(spread, "at most")).toBe(1.6);
    expect(verdictAtWorseEnd(spread, "at most", 1.5)).toBe(false);
    expect(verdictAtWorseEnd(spread, "at most", 1.6)).toBe(true);
  });

  test("no figure gives no verdict rather than a pass", () => {
    expect(verdictAtWorseEnd(null, "at least", 1)).toBeNull();
  });
});

describe("interleaving", () => {
  test("each repetition starts with a different design, and over as many repetitions as designs each goes first once", () => {
    const designs = ["pulse", "socket-io", "sse", "ws-floor"];
    const firsts = [0, 1, 2, 3].map((r) => interleavedOrder(designs, r)[0]);
    expect(new Set(firsts)).toEqual(new Set(designs));
    expect(interleavedOrder(designs, 1)).toEqual(["socket-io", "sse", "ws-floor", "pulse"]);
    // Steps rotate within a repetition too.
    expect(interleavedOrder(designs, 1, 2)).toEqual(["ws-floor", "pulse", "socket-io", "sse"]);
  });

  test("every order holds every design exactly once", () => {
    for (let r = 0; r < 7; r++) expect([...interleavedOrder(["a", "b", "c"], r)].sort()).toEqual(["a", "b", "c"]);
  });
});

test("latency is compared at fractions of the weaker design's maximum", () => {
  expect(comparisonLoads([4_000, 1_000], [0.25, 0.5, 0.75])).toEqual([250, 500, 750]);
  expect(comparisonLoads([], [0.5])).toEqual([]);
});

test("a comparison step lasts long enough for its least number of events, never less than a step", () => {
  // Wide's 25% step in a run of 2026-12-06: 16.3 events/s, 33 events in 2 s.
  expect(comparisonStepMs(16.3, 2_000, 200)).toBe(12_300);
  expect(Math.round((16.3 * comparisonStepMs(16.3, 2_000, 200)) / 1_000)).toBeGreaterThanOrEqual(200);
  // Narrow's steps publish thousands of events in 2 s: they keep the step's length.
  expect(comparisonStepMs(1_723.2, 2_000, 200)).toBe(2_000);
  expect(comparisonStepMs(100, 2_000, 200)).toBe(2_000);
  expect(comparisonStepMs(16.3, 2_000, 0)).toBe(2_000);
  expect(comparisonStepMs(0, 2_000, 200)).toBe(2_000);
});
