import type { RunView } from "@/lib/trpc/types";
import { ProgressBar } from "./progress-bar";
import { StatusBadge } from "./status-badge";

/** One agent role: its latest run's status, phase, progress with the live message, and current step. */
export function AgentPanel({ role, title, run }: { role: string; title: string; run?: RunView }) {
  const status = run ? (run.willRetry ? "queued" : run.status) : "idle";
  const currentStep = run?.steps.findLast((s) => s.status === "started");
  return (
    <section className="card stack" aria-label={title} data-testid={`agent-${role}`} data-status={status}>
      <div className="row" style={{ justifyContent: "space-between" }}>
        <h2>{title}</h2>
        <StatusBadge status={status} label={run?.willRetry ? `retrying (attempt ${run.attempt + 1})` : status} />
      </div>
      <ProgressBar value={run?.progress ?? 0} label={`${title} progress`} />
      <div className="muted" aria-live="polite">
        {run?.phase ? `${run.phase} · ` : ""}
        {run?.message ?? (run ? "" : "Not run yet")}
      </div>
      {currentStep && run?.status === "active" ? <div className="muted">Step: {currentStep.name}</div> : null}
      {run?.error && run.status !== "completed" ? <div className="error">{run.error}</div> : null}
    </section>
  );
}
