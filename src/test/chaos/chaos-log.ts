import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

export const CHAOS_FIGURES_DIR = path.resolve(import.meta.dirname, "../../../.data/chaos-figures");

/** `PULSE_LONG=1` selects the long run (`npm run test:chaos`); otherwise the short one inside `npm test`. */
export const LONG = process.env.PULSE_LONG === "1";

/** The figures of one scenario, as docs/RELIABILITY.md shows them. */
export interface ScenarioFigures {
  /** Number in issue #4's list. */
  number: number;
  scenario: string;
  /** Events published during the scenario (by the test and by workers). */
  events: number;
  clients: number;
  faults: number;
  /** What the faults were, in a few words. */
  faultKind: string;
  lost: number;
  duplicated: number;
  reordered: number;
  stuckRuns: number;
  resyncs: number;
  /** Longest time from a fault until every affected client received again (or the run ended, or memory settled). */
  recoveryMs: number | null;
  /** A measurement worth publishing beside the counts (heap growth, close times). */
  observed?: string;
}

/**
 * Collects one test file's scenario figures and writes them to `.data/chaos-figures/`;
 * `npm run test:chaos` turns the long run's into the table of docs/RELIABILITY.md.
 */
export class ChaosLog {
  private readonly scenarios: ScenarioFigures[] = [];
  private readonly file: string;
  /**
   * The scenarios that run a second time on the test Redis Cluster (vitest.config.ts,
   * `PULSE_TEST_REDIS=cluster`) keep their figures apart: a file and a row of their own.
   */
  private readonly onCluster = process.env.PULSE_TEST_REDIS === "cluster";

  constructor(file: string) {
    this.file = this.onCluster ? `${file}.on-cluster` : file;
  }

  record(figures: ScenarioFigures): void {
    this.scenarios.push(
      this.onCluster ? { ...figures, scenario: `${figures.scenario} (on a Redis Cluster)` } : figures,
    );
  }

  async save(): Promise<void> {
    if (this.scenarios.length === 0) return;
    await mkdir(CHAOS_FIGURES_DIR, { recursive: true });
    await writeFile(
      path.join(CHAOS_FIGURES_DIR, `${this.file}.json`),
      JSON.stringify(
        { file: this.file, long: LONG, finishedAt: new Date().toISOString(), scenarios: this.scenarios },
        null,
        2,
      ),
    );
  }
}

/** Sorted copy's value at quantile `q` (0..1); null for no values. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * What a scenario that runs Pulse in several processes adds to its name without PostgreSQL
 * (PGlite is one process's): the reason it was skipped, shown in the test output beside it.
 */
export function skippedWithoutPostgres(databaseUrl: string): string {
  return databaseUrl ? "" : " (skipped: needs PostgreSQL shared by processes; set DATABASE_URL, as CI does)";
}
