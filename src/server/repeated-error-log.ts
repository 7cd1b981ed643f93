import type { Logger } from "./logger";

export interface RepeatedErrorLogOptions {
  /** How long repeats are counted before one line reports them (default 10 s). */
  intervalMs?: number;
  /** The level of every line it writes (default "error"). */
  level?: "error" | "warn" | "info" | "debug";
  /** Distinct errors counted at once; beyond, new ones share one count (default 100). */
  maxKinds?: number;
}

interface Repeats {
  err: unknown;
  bindings: Record<string, unknown>;
  message: string;
  count: number;
}

/** The errors BullMQ and ioredis repeat differ only in their command's arguments, so those stay out of the key. */
function signature(err: unknown): string {
  if (!(err instanceof Error)) return String(err).slice(0, 200);
  const command = (err as { command?: { name?: unknown } }).command?.name;
  const code = (err as { code?: unknown }).code;
  return `${err.name}|${String(code ?? "")}|${String(command ?? "")}|${err.message.slice(0, 200)}`;
}

const OVERFLOW = "(other errors)";

/**
 * Logs an error the first time it happens, then counts its repeats and writes one line per
 * interval while it keeps happening ("repeated N times in the last 10 s"), so a failure that
 * recurs thousands of times a second (a worker whose Redis refuses every command) costs a
 * line every few seconds instead of flooding the log. An error is "the same" when its
 * message, bindings and error name, code, command and message match.
 */
export class RepeatedErrorLog {
  private readonly repeats = new Map<string, Repeats>();
  private readonly intervalMs: number;
  private readonly level: NonNullable<RepeatedErrorLogOptions["level"]>;
  private readonly maxKinds: number;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly logger: Logger,
    options: RepeatedErrorLogOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 10_000;
    this.level = options.level ?? "error";
    this.maxKinds = options.maxKinds ?? 100;
  }

  /** Logs `err` with `message` now, or counts it if the same error was logged in this interval. */
  report(err: unknown, message: string, bindings: Record<string, unknown> = {}): void {
    const key = `${message}|${JSON.stringify(bindings)}|${signature(err)}`;
    const known = this.repeats.get(key) ?? (this.repeats.size >= this.maxKinds ? this.overflow(err) : undefined);
    if (known) {
      known.count += 1;
      known.err = err;
      return;
    }
    this.repeats.set(key, { err, bindings, message, count: 0 });
    this.logger[this.level]({ ...bindings, err }, message);
    this.timer ??= setInterval(() => this.flush(), this.intervalMs).unref();
  }

  /** The one count that errors beyond `maxKinds` share, so many distinct errors cannot grow the map or the log. */
  private overflow(err: unknown): Repeats {
    let entry = this.repeats.get(OVERFLOW);
    if (!entry) {
      entry = { err, bindings: {}, message: OVERFLOW, count: 0 };
      this.repeats.set(OVERFLOW, entry);
    }
    return entry;
  }

  /**
   * Writes one line per error that repeated since the last flush, and forgets the ones that
   * did not (so their next occurrence is logged at once).
   */
  flush(): void {
    const interval = this.intervalMs >= 1000 ? `${this.intervalMs / 1000} s` : `${this.intervalMs} ms`;
    for (const [key, entry] of this.repeats) {
      if (entry.count === 0) {
        this.repeats.delete(key);
        continue;
      }
      this.logger[this.level](
        { ...entry.bindings, err: entry.err, repeated: entry.count },
        `${entry.message} (repeated ${entry.count} times in the last ${interval})`,
      );
      entry.count = 0;
    }
    if (this.repeats.size === 0) this.stop();
  }

  /** Reports what is still counted and stops the interval's timer. */
  close(): void {
    this.flush();
    this.stop();
    this.repeats.clear();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
