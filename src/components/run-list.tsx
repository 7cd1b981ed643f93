"use client";

import Link from "next/link";
import { useState } from "react";
import { formatDuration, formatTime } from "@/lib/format";
import type { RunView } from "@/lib/trpc/types";
import { displayStatus } from "./agent-panel";
import { StatusBadge } from "./status-badge";

const FILTERS = [
  { key: "all", label: "All", match: () => true },
  { key: "running", label: "Running", match: (r: RunView) => r.status === "queued" || r.status === "active" },
  { key: "completed", label: "Completed", match: (r: RunView) => r.status === "completed" },
  { key: "failed", label: "Failed", match: (r: RunView) => r.status === "failed" },
  { key: "cancelled", label: "Cancelled", match: (r: RunView) => r.status === "cancelled" },
] as const;

/** Recent runs, newest first, filtered by status; live because the caller merges the feed in. */
export function RunList({ runs, titles }: { runs: RunView[]; titles: Record<string, string> }) {
  const [filter, setFilter] = useState<(typeof FILTERS)[number]["key"]>("all");
  const match = FILTERS.find((f) => f.key === filter)!.match;
  const shown = runs.filter(match);
  return (
    <section className="card" aria-labelledby="recent-runs">
      <div className="mb-3 flex flex-wrap items-center justify-between gap-2">
        <h2 id="recent-runs" className="font-semibold">
          Recent runs
        </h2>
        <div role="group" aria-label="Filter by status" className="flex flex-wrap gap-1">
          {FILTERS.map((f) => (
            <button
              key={f.key}
              type="button"
              aria-pressed={filter === f.key}
              onClick={() => setFilter(f.key)}
              className="rounded-full border border-slate-300 px-2.5 py-0.5 text-xs aria-pressed:border-accent aria-pressed:bg-accent aria-pressed:text-white"
            >
              {f.label}
            </button>
          ))}
        </div>
      </div>
      {shown.length === 0 ? (
        <p className="text-sm text-slate-500">No runs here yet.</p>
      ) : (
        <ul className="divide-y divide-slate-100" data-testid="run-list">
          {shown.map((run) => {
            const end = run.completedAt ?? run.failedAt ?? run.cancelledAt;
            return (
              <li key={run.id} className="flex flex-wrap items-center gap-x-3 gap-y-1 py-2 text-sm">
                <Link href={`/runs/${run.id}`} className="font-medium text-accent hover:underline">
                  {titles[run.agentRole] ?? run.agentRole}
                </Link>
                <StatusBadge status={displayStatus(run)} />
                <span className="text-slate-500">{formatTime(run.queuedAt)}</span>
                {run.startedAt && end && run.status !== "queued" ? <span className="text-slate-500">{formatDuration(Date.parse(end) - Date.parse(run.startedAt))}</span> : null}
                {run.attempt > 1 ? <span className="text-xs text-slate-500">attempt {run.attempt}</span> : null}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
