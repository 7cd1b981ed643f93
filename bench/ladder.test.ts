import { describe, expect, test } from "vitest";
import type { ScenarioPlan } from "./bench-plan";
import { afterFailure, ladderStarts, maximumOf, medianMaximum, soakRates } from "./ladder";
import { fixtureRepetition } from "./result-fixtures";

const plan: ScenarioPlan = {
  name: "narrow",
  description: "fixture",
  tenants: 100,
  subscribersPerTenant: 5,
  runsPerTenant: 2,
  officialClients: 0,
  eventRates: [100, 130, 169, 219.7, 285.6, 371.3, 482.7, 627.5],
};

describe("ladder", () => {
  test("a repetition's maximum is its highest passed step; the median is over the repetitions that have one", () => {
    const runs = [400, 300, 500].map((max, r) => fixtureRepetition(r, { pulse: { max }, "socket-io": { max: 200 } }));
    expect(maximumOf(runs[0]!, "pulse")).toBe(400);
    expect(maximumOf(runs[0]!, "ws-floor")).toBeNull();
    expect(medianMaximum(runs, "pulse")).toBe(400);
    expect(medianMaximum(runs.slice(0, 2), "pulse")).toBe(350);
    expect(medianMaximum(runs, "ws-floor")).toBeNull();
  });

  test("the first repetition climbs from the bottom; later ones start reclimbSteps below the last maximum", () => {
    expect(ladderStarts(plan, 3, undefined).size).toBe(0);
    const before = fixtureRepetition(0, { pulse: { max: 482.7 }, "socket-io": { max: 300 }, sse: { max: 120 } });
    const starts = ladderStarts(plan, 3, before);
    // 482.7 is step 6: start at step 3. 300 lies between steps 4 and 5: three below step 4.
    expect(starts.get("pulse")).toBe(3);
    expect(starts.get("socket-io")).toBe(1);
    // Never below the bottom; a design without a maximum starts at the bottom.
    expect(starts.get("sse")).toBe(0);
    expect(starts.has("ws-floor")).toBe(false);
  });

  test("a design failing the first step it reclimbed steps down one by one; elsewhere a failure refines once, or stops", () => {
    const rates = plan.eventRates;
    expect(afterFailure(rates, 3, 3, true)).toEqual({ next: "step-down", indices: [2, 1, 0] });
    expect(afterFailure(rates, 3, 3, false)).toEqual({ next: "step-down", indices: [2, 1, 0] });
    // Past its first step, or failing the very bottom, there is nothing below to step to.
    expect(afterFailure(rates, 5, 3, true)).toEqual({ next: "refine", rate: 325.6 });
    expect(afterFailure(rates, 5, 3, false)).toEqual({ next: "stop" });
    expect(afterFailure(rates, 0, 0, true)).toEqual({ next: "stop" });
  });

  test("a maximum reads the offered events/s or, asked, the offered deliveries/s", () => {
    const run = fixtureRepetition(0, { pulse: { max: 400 } });
    const step = run.steps.find((s) => s.design === "pulse" && s.offeredEventsPerSecond === 400)!;
    expect(maximumOf(run, "pulse", "offeredDeliveriesPerSecond")).toBe(step.offeredDeliveriesPerSecond);
  });

  test("a soak that fails goes on a ladder step lower, at most stepsDown times", () => {
    expect(soakRates(plan.eventRates, 400, 2)).toEqual([400, 371.3, 285.6]);
    expect(soakRates(plan.eventRates, 371.3, 2)).toEqual([371.3, 285.6, 219.7]);
    expect(soakRates(plan.eventRates, 120, 2)).toEqual([120, 100]);
    expect(soakRates(plan.eventRates, 400, 0)).toEqual([400]);
  });
});
