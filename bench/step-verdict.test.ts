import { describe, expect, it } from "vitest";
import { FULL_PLAN } from "./bench-plan";

/** The rerun mechanism as a plan may still use it; the full run itself gives every step one try. */
const RERUN_PLAN = { ...FULL_PLAN, disturbance: { cores: 0.1, reruns: 2 } };
import { cannotPass, disturbance, failureOf, judgeStep, type VerdictInput } from "./step-verdict";

/** A step of 1,000 deliveries that all arrived in time, with `change` applied. */
function step(
  change: {
    summary?: Partial<VerdictInput["summary"]>;
    outcome?: Partial<VerdictInput["outcome"]>;
    cpu?: Partial<VerdictInput["cpu"]>;
  } = {},
): VerdictInput {
  return {
    summary: {
      expected: 1000,
      delivered: 1000,
      superseded: 0,
      missing: 0,
      duplicates: 0,
      foreign: 0,
      outsideStep: 0,
      resyncs: 0,
      closed: 0,
      misordered: 0,
      latency: { count: 1000, p50: 2, p90: 5, p99: 10, p999: 12, max: 15, mean: 3 },
      storedLatency: { count: 200, p50: 3, p90: 6, p99: 11, p999: 12, max: 15, mean: 4 },
      progressLatency: { count: 800, p50: 2, p90: 5, p99: 9, p999: 12, max: 15, mean: 3 },
      ...change.summary,
    },
    outcome: {
      published: 200,
      dropped: 0,
      failed: 0,
      errors: [],
      maxLagUs: 100,
      elapsedUs: 3_000_000,
      cpuUs: 1000,
      ...change.outcome,
    },
    cpu: { benchCores: 1.5, postgresCores: 0.1, otherCores: 0.01, stolenCores: 0, machineBusy: 0.8, ...change.cpu },
  };
}
const late = { latency: { count: 1000, p50: 90, p90: 200, p99: 300, p999: 320, max: 330, mean: 100 } };

describe("failureOf", () => {
  it("passes a step that delivered everything in time", () => {
    expect(failureOf(step(), 250)).toBeUndefined();
  });

  it("calls a step that was only late, or still missing deliveries after the drain, a timing failure", () => {
    expect(failureOf(step({ summary: late }), 250)).toEqual({ reason: "p99 300 ms > 250 ms", timingOnly: true });
    expect(failureOf(step({ summary: { ...late, missing: 7 } }), 250)).toEqual({
      reason: "7 deliveries missing after the drain; p99 300 ms > 250 ms",
      timingOnly: true,
    });
  });

  it("never calls a wrong delivery or a failed publish a timing failure, late or not", () => {
    for (const wrong of [{ duplicates: 1 }, { foreign: 1 }, { misordered: 1 }, { resyncs: 1 }, { closed: 1 }]) {
      expect(failureOf(step({ summary: { ...late, ...wrong } }), 250)?.timingOnly).toBe(false);
    }
    expect(failureOf(step({ summary: late, outcome: { failed: 2, errors: ["ECONNRESET"] } }), 250)).toEqual({
      reason: "2 publishes failed (ECONNRESET); p99 300 ms > 250 ms",
      timingOnly: false,
    });
    expect(failureOf(step({ outcome: { dropped: 3 } }), 250)?.timingOnly).toBe(false);
  });
});

describe("disturbance", () => {
  it("names what other processes and the hypervisor took once together they reach the plan's cores", () => {
    expect(FULL_PLAN.disturbance.cores).toBe(0.1);
    expect(disturbance(step({ cpu: { otherCores: 0.02, stolenCores: 0.05 } }), FULL_PLAN)).toBeUndefined();
    expect(disturbance(step({ cpu: { otherCores: 0.02, stolenCores: 0.34 } }), FULL_PLAN)).toBe(
      "others 0.02 cores, stolen 0.34 cores",
    );
    expect(disturbance(step({ cpu: { otherCores: 0.6, stolenCores: 0 } }), FULL_PLAN)).toBe(
      "others 0.60 cores, stolen 0.00 cores",
    );
  });
});

describe("judgeStep", () => {
  const stolen = { cpu: { stolenCores: 0.5 } };
  /** Measures the given steps in turn, and records what happened between attempts. */
  function attempts(...steps: VerdictInput[]) {
    const events: string[] = [];
    let next = 0;
    return {
      events,
      measure: async () => {
        events.push(`measure ${next + 1}`);
        return steps[next++]!;
      },
      beforeRerun: async (failure: string, disturbed: string) =>
        void events.push(`set aside: ${failure} (${disturbed})`),
    };
  }

  it("measures a passing step once", async () => {
    const run = attempts(step());
    expect(await judgeStep(run.measure, RERUN_PLAN, run.beforeRerun)).toEqual({ measured: step(), disturbedRuns: [] });
    expect(run.events).toEqual(["measure 1"]);
  });

  it("runs a step that was late while disturbed again, and keeps the attempt that passed", async () => {
    const run = attempts(step({ summary: late, ...stolen }), step());
    const verdict = await judgeStep(run.measure, RERUN_PLAN, run.beforeRerun);
    expect(verdict.failed).toBeUndefined();
    expect(verdict.disturbedRuns).toEqual([
      { otherCpuCores: 0.01, stolenCpuCores: 0.5, failure: "p99 300 ms > 250 ms" },
    ]);
    expect(run.events).toEqual([
      "measure 1",
      "set aside: p99 300 ms > 250 ms (others 0.01 cores, stolen 0.50 cores)",
      "measure 2",
    ]);
  });

  it("in the full run, every step gets one try, passing or failing: reruns only for failures would inflate maxima", () => {
    expect(FULL_PLAN.disturbance.reruns).toBe(0);
  });

  it("stops after the plan's reruns, failing with the last attempt", async () => {
    const lateAgain = step({ summary: { ...late, latency: { ...late.latency, p99: 400 } }, ...stolen });
    const run = attempts(step({ summary: late, ...stolen }), step({ summary: late, ...stolen }), lateAgain, step());
    const verdict = await judgeStep(run.measure, RERUN_PLAN, run.beforeRerun);
    expect(RERUN_PLAN.disturbance.reruns).toBe(2);
    expect(verdict.measured).toBe(lateAgain);
    expect(verdict.failed).toEqual({ reason: "p99 400 ms > 250 ms", timingOnly: true });
    expect(verdict.disturbedRuns).toHaveLength(2);
    expect(run.events.filter((e) => e.startsWith("measure"))).toEqual(["measure 1", "measure 2", "measure 3"]);
  });

  it("lets a failure stand at once when the machine was quiet, when the delivery was wrong, or in a plan without reruns", async () => {
    for (const [first, plan] of [
      [step({ summary: late }), RERUN_PLAN],
      [step({ summary: { ...late, duplicates: 1 }, ...stolen }), RERUN_PLAN],
      [step({ summary: late, ...stolen }), { ...RERUN_PLAN, disturbance: { ...RERUN_PLAN.disturbance, reruns: 0 } }],
    ] as const) {
      const run = attempts(first, step());
      const verdict = await judgeStep(run.measure, plan, run.beforeRerun);
      expect(verdict.failed).toBeDefined();
      expect(verdict.disturbedRuns).toEqual([]);
      expect(run.events).toEqual(["measure 1"]);
    }
  });
});

describe("cannotPass", () => {
  it("only once more than 1% of the step's planned deliveries are late, when its p99 must end above the bound", () => {
    expect(cannotPass({ late: 0, expected: 1_000 })).toBe(false);
    expect(cannotPass({ late: 10, expected: 1_000 })).toBe(false);
    expect(cannotPass({ late: 11, expected: 1_000 })).toBe(true);
  });
});
