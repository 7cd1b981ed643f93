"use client";

import Link from "next/link";
import { formatDuration, runMessage } from "@/lib/format";
import type { RunView } from "@/lib/trpc/types";
import { useNow } from "@/lib/use-now";
import { ProgressBar } from "./progress-bar";
import { StatusBadge } from "./status-badge";

/** After this long without an event, a running run says when it last reported. */
const QUIET_AFTER_MS = 10_000;

export function displayStatus(run: RunView | undefined): string {
  if (!run) return "idle";
  return run.willRetry ? "retrying" : run.status;
}

export interface AgentPanelProps {
  role: string;
  title: string;
  run?: RunView;
  /** The Run click the server has not confirmed yet. */
  optimistic?: boolean;
  notice?: string | null;
  onRun(): void;
  onCancel(runId: string): void;
  onRetry(runId: string): void;
}

/**
 * One agent role: status, phase, progress with the live message, current step, elapsed
 * time, and its Run / Cancel / Retry actions.
 */
export function AgentPanel({ role, title, run, optimistic, notice, onRun, onCancel, onRetry }: AgentPanelProps) {
  const now = useNow();
  const status = optimistic ? "queued" : displayStatus(run);
  const busy = optimistic || run?.status === "queued" || run?.status === "active";
  const currentStep = run?.status === "active" ? run.steps.findLast((s) => s.status === "started") : undefined;
  const started = run?.startedAt ? Date.parse(run.startedAt) : null;
  const ended = run?.completedAt ?? (run?.status === "failed" ? run.failedAt : null) ?? run?.cancelledAt ?? null;
  const elapsed = started !== null ? (ended ? Date.parse(ended) : now) - started : null;
  const quietFor = run?.status === "active" ? now - Date.parse(run.updatedAt) : 0;
  const label = status === "retrying" && run ? `retrying (attempt ${run.attempt + 1})` : status;

  return (
    <section
      className="card flex flex-col gap-3"
      aria-labelledby={`agent-${role}-title`}
      data-testid={`agent-${role}`}
      data-status={status}
      data-confirmed={optimistic ? "false" : "true"}
      data-run-id={run?.id}
    >
      <div className="flex items-start justify-between gap-2">
        <h2 id={`agent-${role}-title`} className="font-semibold">
          {title}
        </h2>
        <StatusBadge status={status} label={label} />
      </div>
      <ProgressBar value={optimistic ? 0 : (run?.progress ?? 0)} label={`${title} progress`} />
      <p className="min-h-5 text-sm text-slate-600" aria-live="polite">
        {optimistic ? "Queued…" : run ? runMessage(run) : "Not run yet"}
      </p>
      <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 text-xs text-slate-500">
        {currentStep ? (
          <>
            <dt>Step</dt>
            <dd className="text-slate-700">{currentStep.name}</dd>
          </>
        ) : null}
        {elapsed !== null && !optimistic ? (
          <>
            <dt>{ended ? "Took" : "Elapsed"}</dt>
            <dd>{formatDuration(elapsed)}</dd>
          </>
        ) : null}
        {quietFor > QUIET_AFTER_MS ? (
          <>
            <dt>Last update</dt>
            <dd className="text-warn">{formatDuration(quietFor)} ago</dd>
          </>
        ) : null}
      </dl>
      {run?.error && (run.status === "failed" || run.willRetry) ? <p className="text-sm text-bad">{run.error}</p> : null}
      {notice ? (
        <p className="text-sm text-bad" role="alert">
          {notice}
        </p>
      ) : null}
      <div className="mt-auto flex flex-wrap items-center gap-2">
        {/* Enabled while running: the server is the judge, and answers "already running". */}
        <button type="button" className="btn" onClick={onRun} disabled={optimistic} aria-label={`Run ${title}`}>
          Run
        </button>
        {run && busy && !optimistic ? (
          <button type="button" className="btn-quiet" onClick={() => onCancel(run.id)}>
            Cancel
          </button>
        ) : null}
        {run && (run.status === "failed" || run.status === "cancelled") ? (
          <button type="button" className="btn-quiet" onClick={() => onRetry(run.id)}>
            Retry
          </button>
        ) : null}
        {run && !optimistic ? (
          <Link href={`/runs/${run.id}`} className="ml-auto text-sm text-accent hover:underline">
            Details
          </Link>
        ) : null}
      </div>
    </section>
  );
}
