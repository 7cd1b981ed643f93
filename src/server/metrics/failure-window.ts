/**
 * Whether something that reports failures and successes (a BullMQ worker) keeps failing:
 * at least `threshold` failures within `windowMs` and no success since the last of them. One
 * failure now and then (a job's transient error) is not enough; a worker whose Redis refuses
 * every command fails many times a second and is.
 */
export class FailureWindow {
  /** When the latest `threshold` failures happened, oldest first. */
  private readonly failures: number[] = [];
  private lastSuccess = -Infinity;
  private lastError = "";

  constructor(
    private readonly threshold = 5,
    private readonly windowMs = 10_000,
  ) {}

  failed(err: unknown, now = Date.now()): void {
    this.failures.push(now);
    if (this.failures.length > this.threshold) this.failures.shift();
    this.lastError = err instanceof Error ? err.message : String(err);
  }

  succeeded(now = Date.now()): void {
    this.lastSuccess = now;
  }

  /** Why it counts as failing, or null when it does not. */
  failing(now = Date.now()): string | null {
    const latest = this.failures.at(-1);
    if (latest === undefined || this.failures.length < this.threshold || this.lastSuccess >= latest) return null;
    if (now - this.failures[0]! > this.windowMs) return null;
    return `${this.threshold}+ errors in the last ${this.windowMs / 1000} s, the latest: ${this.lastError.slice(0, 200)}`;
  }
}
