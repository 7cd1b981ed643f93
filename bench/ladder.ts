import type { ScenarioPlan } from "./bench-plan";
import type { ScenarioResult, StepResult } from "./bench-result";
import { median } from "./statistics";
import type { Design } from "./workload";

// Where the load ladders of a scenario's repetitions start, and what their maxima are.

/** What a step's rate is read as: events/s (what the ladder steps by) or deliveries/s (what the report compares). */
export type RateMeasure = "offeredEventsPerSecond" | "offeredDeliveriesPerSecond";

/** The highest offered rate among `design`'s passed steps (ladder steps or soaks), or null when none passed. */
export function highestPassed(steps: readonly StepResult[], design: Design, measure: RateMeasure): number | null {
  const passed = steps.filter((s) => s.design === design && s.passed).map((s) => s[measure]);
  return passed.length ? Math.max(...passed) : null;
}

/** This repetition's maximum of `design`: its highest passed ladder step. */
export function maximumOf(
  result: ScenarioResult,
  design: Design,
  measure: RateMeasure = "offeredEventsPerSecond",
): number | null {
  return highestPassed(result.steps, design, measure);
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

/** What a design does after failing a step of its ladder (in a run that stops at saturation). */
export type AfterFailure =
  /** It failed the first step it climbed, where the repetition before passed: the steps below, down to one that passes. */
  | { next: "step-down"; indices: number[] }
  /** Once, between the failed step and the one below it, for a finer maximum. */
  | { next: "refine"; rate: number }
  | { next: "stop" };

/**
 * The choice after `design` failed step `index` of `rates`, having started this repetition's
 * ladder at step `first`. Pure, so the step-down, which only a full run reaches, is tested.
 */
export function afterFailure(rates: readonly number[], index: number, first: number, refine: boolean): AfterFailure {
  if (index === first && index > 0)
    return { next: "step-down", indices: Array.from({ length: index }, (_, i) => index - 1 - i) };
  const previous = rates[index - 1];
  if (refine && previous !== undefined)
    return { next: "refine", rate: Math.round(Math.sqrt(previous * rates[index]!) * 10) / 10 };
  return { next: "stop" };
}

/**
 * The rates a design soaks at, in turn until one passes: its median maximum, then the
 * ladder's steps below it, at most `stepsDown` of them, highest first.
 */
export function soakRates(rates: readonly number[], max: number, stepsDown: number): number[] {
  const below = rates.filter((rate) => rate < max).reverse();
  return [max, ...below.slice(0, stepsDown)];
}
