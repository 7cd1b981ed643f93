/**
 * The statistics behind the bench's verdicts: every comparison is repeated, the tables show
 * the median and the spread (the minimum to the maximum of the repetitions, not an
 * interquartile range: with 5 repetitions the IQR would hide the two worst), and a target
 * counts as met only at the worse end of that spread.
 */

/** The median and the full range of a set of repetitions' figures. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many repetitions gave a figure (a design that failed to connect gives none). */
  n: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Median and min–max of the figures that exist (null, undefined and NaN do not); null when none does. */
export function spreadOf(values: readonly (number | null | undefined)[]): Spread | null {
  // Infinity stays: it stands for a failed figure (e.g. a p99 of a step that lost events) and must reach the worse end.
  const present = values.filter((v): v is number => typeof v === "number" && !Number.isNaN(v));
  if (present.length === 0) return null;
  return { median: median(present), min: Math.min(...present), max: Math.max(...present), n: present.length };
}

/**
 * Ratios of paired figures, repetition by repetition (a ÷ b of the same repetition, so a
 * disturbance that hit both designs in one repetition cancels out); null where a pair lacks one.
 */
export function ratiosOf(a: readonly (number | null)[], b: readonly (number | null)[]): (number | null)[] {
  return a.map((value, i) => (value !== null && b[i] ? value / b[i] : null));
}

/** `ratiosOf` as a spread. */
export function pairedRatios(a: readonly (number | null)[], b: readonly (number | null)[]): Spread | null {
  return spreadOf(ratiosOf(a, b));
}

/**
 * Where a pair had no ratio to speak of: the repetitions in which only the second design
 * failed (a finite ÷ Infinity, which `pairedRatios` counts as a ratio of 0) and those in which
 * both did (Infinity ÷ Infinity, left out). Each needs saying beside the spread: a 0 there is
 * no measurement, and a left-out repetition narrows it.
 */
export function unpairedFailures(
  a: readonly (number | null)[],
  b: readonly (number | null)[],
): { onlySecond: number; both: number } {
  let onlySecond = 0;
  let both = 0;
  a.forEach((value, i) => {
    const other = b[i];
    if (value === null || other === null || other === undefined || Number.isFinite(other)) return;
    if (Number.isFinite(value)) onlySecond++;
    else both++;
  });
  return { onlySecond, both };
}

export type Direction = "at least" | "at most";

/** The end of the spread that is worse for the target: the lowest ratio for "at least", the highest for "at most". */
export function worseEnd(spread: Spread, direction: Direction): number {
  return direction === "at least" ? spread.min : spread.max;
}

/** A target is met only when even the worse end of the spread meets it; no figure, no verdict. */
export function verdictAtWorseEnd(spread: Spread | null, direction: Direction, target: number): boolean | null {
  if (!spread) return null;
  const worse = worseEnd(spread, direction);
  return direction === "at least" ? worse >= target : worse <= target;
}

/**
 * The order designs run in at a repetition's step: rotated by the repetition and the step,
 * so no design always goes first (fresh) or last (after the others warmed the machine).
 */
export function interleavedOrder<T>(designs: readonly T[], repetition: number, step = 0): T[] {
  const n = designs.length;
  if (n === 0) return [];
  const k = (((repetition + step) % n) + n) % n;
  return [...designs.slice(k), ...designs.slice(0, k)];
}

/** The loads at which latency is compared: fractions of the weaker design's maximum, never its knee. */
export function comparisonLoads(maxima: readonly number[], fractions: readonly number[]): number[] {
  if (maxima.length === 0) return [];
  const weaker = Math.min(...maxima);
  return fractions.map((f) => Math.round(weaker * f * 10) / 10);
}

/**
 * How long a comparison step publishes at `rate` events/s: `stepMs`, or long enough for
 * `minEvents` events when that is longer (to the next 100 ms). A p99 over the few dozen
 * events a short step holds at a low rate is the slowest one or two of them, not a percentile.
 */
export function comparisonStepMs(rate: number, stepMs: number, minEvents: number): number {
  if (rate <= 0) return stepMs;
  return Math.max(stepMs, Math.ceil((minEvents / rate) * 10) * 100);
}

/** Bytes in MiB, to a tenth. */
export const toMiB = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;
