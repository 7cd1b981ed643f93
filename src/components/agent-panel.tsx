"use client";

import Link from "next/link";
import { useRef } from "react";
import { formatDuration, quietNotice, runDuration, runMessage, statusAnnouncement } from "@/lib/format";
import type { RoleInfo, RunView } from "@/lib/trpc/types";
import { useNow } from "@/lib/use-now";
import { ProgressBar } from "./progress-bar";
import { INPUT_CONTROLS, RunInputForm, type RunInput } from "./run-input-form";
import { StatusAnnouncer } from "./status-announcer";
import { StatusBadge } from "./status-badge";

export function displayStatus(run: RunView | undefined): string {
  if (!run) return "idle";
  return run.willRetry ? "retrying" : run.status;
}

/** What a status badge says: a queued run of an outside agent waits for that agent to pick it up. */
export function statusLabel(run: RunView | undefined, external = false): string {
  const status = displayStatus(run);
  if (status === "retrying" && run) return `retrying (attempt ${run.attempt + 1})`;
  if (status === "queued" && external) return "waiting for the agent";
  return status;
}

export interface AgentPanelProps {
  role: string;
  title: string;
  /** Run by an agent outside Pulse, which picks its runs up itself. */
  external?: boolean;
  run?: RunView;
  /** The Run click the server has not confirmed yet. */
  optimistic?: boolean;
  notice?: string | null;
  /** The fields a run of the role can be given; with some, the panel offers a form beside Run. */
  inputFields?: RoleInfo["input"];
  /** Starts a run: with the role's default input, or with what the form was given. */
  onRun(input?: RunInput): void;
  onCancel(runId: string): void;
  onRetry(runId: string): void;
}

/**
 * One agent role: status, phase, progress with the live message, current step, elapsed
 * time, and its Run / Cancel / Retry actions.
 */
export function AgentPanel({
  role,
  title,
  external,
  run,
  optimistic,
  notice,
  inputFields = [],
  onRun,
  onCancel,
  onRetry,
}: AgentPanelProps) {
  const now = useNow();
  const status = optimistic ? "queued" : displayStatus(run);
  const busy = optimistic || run?.status === "queued" || run?.status === "active";
  const currentStep = run?.status === "active" ? run.steps.findLast((s) => s.status === "started") : undefined;
  // From being queued, every attempt counted; shown once the run started.
  const took = run?.startedAt ? runDuration(run, now) : null;
  const quiet = run ? quietNotice(run, now, external ? "agent" : "worker") : null;
  const label = optimistic ? "queued" : statusLabel(run, external);
  const form = useRef<HTMLDetailsElement>(null);
  // A role that cannot run without some field: Run opens the form instead of a certain refusal.
  const needsInput = inputFields.some((field) => field.required);
  const runClicked = () => {
    if (!needsInput || !form.current) return onRun();
    form.current.open = true;
    form.current.querySelector<HTMLElement>(INPUT_CONTROLS)?.focus();
  };

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
      <ProgressBar value={optimistic ? 0 : (run?.progress ?? 0)} label={`${title} progress`} status={status} />
      <StatusAnnouncer
        text={optimistic ? "" : statusAnnouncement(title, run, external)}
        testId={`agent-${role}-announcer`}
      />
      <p className="min-h-5 text-sm text-slate-600">
        {optimistic
          ? "Queued…"
          : run
            ? runMessage(run) || (external && run.status === "queued" ? "Waiting for the agent to pick the run up" : "")
            : "Not run yet"}
      </p>
      {quiet ? (
        <p className="text-sm text-warn" data-testid="quiet-notice">
          {quiet}
        </p>
      ) : null}
      <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 text-xs text-slate-500">
        {currentStep ? (
          <>
            <dt>Step</dt>
            <dd className="text-slate-700">{currentStep.name}</dd>
          </>
        ) : null}
        {took && !optimistic ? (
          <>
            <dt>{took.ended ? "Took" : "Elapsed"}</dt>
            <dd>{formatDuration(took.ms)}</dd>
          </>
        ) : null}
      </dl>
      {run?.error && (run.status === "failed" || run.willRetry) ? (
        <p className="text-sm text-bad">{run.error}</p>
      ) : null}
      {notice ? (
        <p className="text-sm text-bad" role="alert">
          {notice}
        </p>
      ) : null}
      {inputFields.length > 0 ? (
        <details ref={form} className="text-sm" data-testid={`agent-${role}-input`}>
          <summary className="min-h-6 cursor-pointer text-accent">Run with input…</summary>
          <RunInputForm title={title} fields={inputFields} disabled={optimistic} onRun={onRun} />
        </details>
      ) : null}
      <div className="mt-auto flex flex-wrap items-center gap-2">
        {/* Enabled while running: the server is the judge, and answers "already running". */}
        <button type="button" className="btn" onClick={runClicked} disabled={optimistic} aria-label={`Run ${title}`}>
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
          <Link
            href={`/runs/${run.id}`}
            className="ml-auto inline-flex min-h-6 min-w-6 items-center text-sm text-accent underline-offset-2 hover:underline"
          >
            Details
          </Link>
        ) : null}
      </div>
    </section>
  );
}
