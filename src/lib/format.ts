import type { RunView } from "./trpc/types";

/** "42 s", "3 min 5 s", "1 h 2 min": short, readable durations. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min${s % 60 ? ` ${s % 60} s` : ""}`;
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ""}`;
}

/**
 * A time of day in the browser's zone and locale, or, with `zone: "UTC"`, the same on every
 * machine: what the server renders and the browser's first render repeats (see `LocalTime`).
 */
export function formatTime(iso: string, zone?: "UTC"): string {
  const options = { hour: "2-digit", minute: "2-digit", second: "2-digit" } as const;
  if (zone === "UTC") return `${new Date(iso).toLocaleTimeString("en-GB", { ...options, timeZone: "UTC" })} UTC`;
  return new Date(iso).toLocaleTimeString(undefined, options);
}

/**
 * A date and time in the browser's zone and locale, or, with `zone: "UTC"`, the same on
 * every machine (see `formatTime`).
 */
export function formatDateTime(iso: string, zone?: "UTC"): string {
  const options = { dateStyle: "medium", timeStyle: "medium" } as const;
  if (zone === "UTC") return `${new Date(iso).toLocaleString("en-GB", { ...options, timeZone: "UTC" })} UTC`;
  return new Date(iso).toLocaleString(undefined, options);
}

/** "just now", "42 s ago", "2 min ago", "3 h ago", "5 d ago": how long before `now` a moment was. */
export function formatRelative(at: number, now: number): string {
  const s = Math.floor((now - at) / 1000);
  // A moment a little ahead (another machine's clock) is "just now", not "in 2 s".
  if (s < 10) return "just now";
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
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

/**
 * How long a run took, or has taken so far: from being queued to its end, every attempt and
 * the waits before and between them, as the run list, the panel and the run page all count
 * it. `ended` is false while it goes on (waiting for a retry included); null when it goes on
 * and there is no clock yet (the server's render).
 */
export function runDuration(
  run: Pick<RunView, "status" | "queuedAt" | "completedAt" | "failedAt" | "cancelledAt">,
  now: number | null,
): { ms: number; ended: boolean } | null {
  const end =
    run.status === "completed"
      ? run.completedAt
      : run.status === "failed"
        ? run.failedAt
        : run.status === "cancelled"
          ? run.cancelledAt
          : null;
  if (end) return { ms: Math.max(0, Date.parse(end) - Date.parse(run.queuedAt)), ended: true };
  return now === null ? null : { ms: Math.max(0, now - Date.parse(run.queuedAt)), ended: false };
}

/** Stands where a run's output begins once the run no longer keeps its first `count` characters. */
export function droppedOutputNotice(count: number): string {
  return `[… ${count} earlier characters dropped]`;
}

/** After this long without an event, an active run says its worker may have stopped. */
export const QUIET_AFTER_MS = 15_000;

/**
 * What to say of an active run that has reported nothing for a while: its worker (or
 * outside agent) may have died, long before the server gives the attempt up. Null while
 * it reports, once it is no longer active, and before the page knows the time.
 */
export function quietNotice(
  run: Pick<RunView, "status" | "updatedAt">,
  now: number | null,
  who = "worker",
): string | null {
  if (now === null || run.status !== "active") return null;
  const quiet = now - Date.parse(run.updatedAt);
  return quiet > QUIET_AFTER_MS ? `No update for ${formatDuration(quiet)} — the ${who} may have stopped` : null;
}

/**
 * A run's status as a screen reader should hear it, once when it changes: the status word,
 * and the error when it failed. Progress and output are left out, so they are not read out
 * as they stream.
 */
export function statusAnnouncement(
  title: string,
  run: Pick<RunView, "status" | "willRetry" | "error"> | undefined,
  external = false,
): string {
  if (!run) return "";
  if (run.willRetry) return `${title}: attempt failed, retrying${run.error ? `: ${run.error}` : ""}`;
  switch (run.status) {
    case "queued":
      return `${title} ${external ? "waiting for the agent" : "queued"}`;
    case "active":
      return `${title} running`;
    case "failed":
      return `${title} failed${run.error ? `: ${run.error}` : ""}`;
    default:
      return `${title} ${run.status}`;
  }
}

/** A browser tab's title: what is open, then the product. */
export const pageTitle = (name: string) => `${name} · Pulse`;

/** A run page's name for its tab: the agent and how the run stands ("Summarizer run (failed)"). */
export function runPageName(title: string, run: Pick<RunView, "status" | "willRetry">): string {
  return `${title} run (${run.willRetry ? "retrying" : run.status})`;
}

/**
 * What a run's steps card says while it has none: a running run may still record one, a
 * finished run says how it ended without any, never "yet".
 */
export function noStepsNotice(status: RunView["status"]): string {
  switch (status) {
    case "failed":
      return "This run failed before it recorded any step.";
    case "cancelled":
      return "This run was cancelled before it recorded any step.";
    case "completed":
      return "This run completed without recording any step.";
    default:
      return "No steps yet.";
  }
}

/** What a run's output card says while it is empty: "yet" only while the run may still write. */
export function noOutputNotice(status: RunView["status"]): string {
  return status === "queued" || status === "active" ? "Nothing yet." : "No output was written.";
}
