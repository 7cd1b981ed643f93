import { describe, expect, it } from "vitest";
import { FULL_PLAN } from "./bench-plan";
import { disturbance, failureOf, type VerdictInput } from "./step-verdict";

/** A step of 1,000 deliveries that all arrived in time, with `change` applied. */
function step(change: { summary?: Partial<VerdictInput["summary"]>; outcome?: Partial<VerdictInput["outcome"]>; cpu?: Partial<VerdictInput["cpu"]> } = {}): VerdictInput {
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
      ...change.summary,
    },
    outcome: { published: 200, dropped: 0, failed: 0, errors: [], maxLagUs: 100, elapsedUs: 3_000_000, cpuUs: 1000, ...change.outcome },
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
    expect(failureOf(step({ summary: { ...late, missing: 7 } }), 250)).toEqual({ reason: "7 deliveries missing after the drain; p99 300 ms > 250 ms", timingOnly: true });
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
    expect(disturbance(step({ cpu: { otherCores: 0.02, stolenCores: 0.34 } }), FULL_PLAN)).toBe("others 0.02 cores, stolen 0.34 cores");
    expect(disturbance(step({ cpu: { otherCores: 0.6, stolenCores: 0 } }), FULL_PLAN)).toBe("others 0.60 cores, stolen 0.00 cores");
  });
});
