import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

export const FIGURES_DIR = path.resolve(import.meta.dirname, "../../../.data/security-figures");

/** One kind of attack: how often it was tried, and how often Pulse did not behave as expected. */
export interface AttackTally {
  attack: string;
  expected: string;
  attempts: number;
  failures: number;
  /** The first few unexpected outcomes, to show in a failing test's message. */
  examples: string[];
  /** A measurement worth publishing with the figures (e.g. heap growth). */
  observed?: string;
}

/**
 * The figures one test file saw, written to `.data/security-figures/` when it finishes;
 * `npm run test:security` copies the long run's into docs/SECURITY.md.
 */
export class AttackLog {
  private readonly tallies = new Map<string, AttackTally>();

  constructor(
    private readonly file: string,
    private readonly long: boolean,
  ) {}

  /** Counts one attempt of `attack`; `ok` is whether Pulse answered as `expected`. */
  attempt(attack: string, expected: string, ok: boolean, detail?: () => string): boolean {
    let tally = this.tallies.get(attack);
    if (!tally) {
      tally = { attack, expected, attempts: 0, failures: 0, examples: [] };
      this.tallies.set(attack, tally);
    }
    tally.attempts += 1;
    if (!ok) {
      tally.failures += 1;
      if (tally.examples.length < 5) tally.examples.push(detail?.() ?? "unexpected outcome");
    }
    return ok;
  }

  /** Records a measurement for an attack already tallied. */
  observe(attack: string, observed: string): void {
    const tally = this.tallies.get(attack);
    if (tally) tally.observed = observed;
  }

  get(attack: string): AttackTally | undefined {
    return this.tallies.get(attack);
  }

  /** Every attack with a failure, for `expect(...).toEqual([])`. */
  failures(): AttackTally[] {
    return [...this.tallies.values()].filter((t) => t.failures > 0);
  }

  async save(): Promise<void> {
    await mkdir(FIGURES_DIR, { recursive: true });
    const attacks = [...this.tallies.values()].map(({ examples: _examples, ...rest }) => rest);
    await writeFile(
      path.join(FIGURES_DIR, `${this.file}.json`),
      JSON.stringify({ file: this.file, long: this.long, finishedAt: new Date().toISOString(), attacks }, null, 2),
    );
  }
}
