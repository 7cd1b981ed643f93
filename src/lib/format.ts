import type { RunView } from "./trpc/types";

/** "42 s", "3 min 5 s", "1 h 2 min": short, readable durations. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min${s % 60 ? ` ${s % 60} s` : ""}`;
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ""}`;
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/**
 * A run's latest word: its phase and message while it runs; once it (or its attempt, when
 * it waits for a retry) has ended, its last message as what it was ("running · Reading
 * filings" under a "cancelled" badge would contradict the badge).
 */
export function runMessage(run: Pick<RunView, "status" | "phase" | "message" | "willRetry">): string {
  // A run waiting for its retry is queued again, with the failed attempt's last word.
  const going = run.status === "active" || (run.status === "queued" && !run.willRetry);
  if (going) return `${run.phase ? `${run.phase} · ` : ""}${run.message ?? ""}`;
  return run.message ? `Last message: ${run.message}` : "";
}

export type StepStatus = RunView["steps"][number]["status"] | "interrupted";

/**
 * A step as the pages show it. One still "started" when its attempt is over (the run
 * ended, is between attempts, or a later attempt began) will never finish: it was
 * interrupted, by a cancel or by the worker's end, and is not shown as running.
 */
export function stepStatus(
  step: Pick<RunView["steps"][number], "status" | "attempt">,
  run: Pick<RunView, "status" | "attempt">,
): StepStatus {
  if (step.status !== "started") return step.status;
  return run.status === "active" && step.attempt === run.attempt ? "started" : "interrupted";
}

/** Stands where a run's output begins once the run no longer keeps its first `count` characters. */
export function droppedOutputNotice(count: number): string {
  return `[… ${count} earlier characters dropped]`;
}
