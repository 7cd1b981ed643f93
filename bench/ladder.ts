import type { ScenarioPlan } from "./bench-plan";
import type { ScenarioResult } from "./bench-result";
import { median } from "./statistics";
import type { Design } from "./workload";

// Where the load ladders of a scenario's repetitions start, and what their maxima are.

/** This repetition's maximum of `design`: its highest passed step's offered events/s. */
export function maximumOf(result: ScenarioResult, design: Design): number | null {
  const passed = result.steps.filter((s) => s.design === design && s.passed).map((s) => s.offeredEventsPerSecond);
  return passed.length ? Math.max(...passed) : null;
}

/** The median of `design`'s maxima over `runs`, or null when it passed no step in any. */
export function medianMaximum(runs: readonly ScenarioResult[], design: Design): number | null {
  const maxima = runs.map((r) => maximumOf(r, design)).filter((m): m is number => m !== null);
  return maxima.length ? Math.round(median(maxima) * 10) / 10 : null;
}

/**
 * Where each design's ladder starts in this repetition: the first step in the first
 * repetition, `reclimbSteps` below its maximum in the one before after that (the bottom
 * when it had none).
 */
export function ladderStarts(
  plan: ScenarioPlan,
  reclimbSteps: number,
  before: ScenarioResult | undefined,
): Map<Design, number> {
  const starts = new Map<Design, number>();
  if (!before) return starts;
  for (const design of before.order) {
    const max = maximumOf(before, design);
    if (max === null) continue;
    const below = plan.eventRates.findLastIndex((rate) => rate <= max);
    starts.set(design, Math.max(0, below - reclimbSteps));
  }
  return starts;
}
