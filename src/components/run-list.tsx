"use client";

import Link from "next/link";
import { useState } from "react";
import { formatDuration, quietNotice, runDuration, runMessage } from "@/lib/format";
import type { RunView } from "@/lib/trpc/types";
import { useNow } from "@/lib/use-now";
import { displayStatus, statusLabel } from "./agent-panel";
import { CopyId } from "./copy-id";
import { RelativeTime } from "./local-time";
import { StatusBadge } from "./status-badge";

const FILTERS = [
  { key: "all", label: "All", match: () => true },
  { key: "running", label: "Running", match: (r: RunView) => r.status === "queued" || r.status === "active" },
  { key: "completed", label: "Completed", match: (r: RunView) => r.status === "completed" },
  { key: "failed", label: "Failed", match: (r: RunView) => r.status === "failed" },
  { key: "cancelled", label: "Cancelled", match: (r: RunView) => r.status === "cancelled" },
] as const;

/** Recent runs, newest first, filtered by status; live because the caller merges the feed in. */
export function RunList({
  runs,
  titles,
  externalRoles = [],
}: {
  runs: RunView[];
  titles: Record<string, string>;
  externalRoles?: string[];
}) {
  const now = useNow();
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
              className="min-h-6 rounded-full border border-slate-300 px-3 py-1 text-xs aria-pressed:border-accent aria-pressed:bg-accent aria-pressed:text-white"
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
          {shown.map((run) => (
            <RunRow
              key={run.id}
              run={run}
              title={titles[run.agentRole] ?? run.agentRole}
              external={externalRoles.includes(run.agentRole)}
              now={now}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

/**
 * One run in a list: its agent (a link to the run), status, when it was queued, how long it
 * took and which attempt it is on. `detailed` adds its id with a copy button and its last
 * word (message, or error when it failed): what the runs page's search matches.
 */
export function RunRow({
  run,
  title,
  external,
  now,
  detailed = false,
}: {
  run: RunView;
  title: string;
  external: boolean;
  now: number | null;
  detailed?: boolean;
}) {
  const quiet = quietNotice(run, now, external ? "agent" : "worker");
  // Only a run that ended has a duration here: queued → end, every attempt counted.
  const took = runDuration(run, null);
  const word = run.status === "failed" && run.error ? run.error : runMessage(run);
  return (
    <li
      className="flex flex-wrap items-center gap-x-3 gap-y-1 py-2 text-sm"
      data-testid="run-row"
      data-run-id={run.id}
      data-status={displayStatus(run)}
    >
      <Link
        href={`/runs/${run.id}`}
        className="inline-flex min-h-6 items-center font-medium text-accent underline-offset-2 hover:underline"
      >
        {title}
      </Link>
      <StatusBadge status={displayStatus(run)} label={statusLabel(run, external)} />
      <RelativeTime iso={run.queuedAt} className="text-slate-500" />
      {took ? (
        <span className="text-slate-500" data-testid="run-took">
          {formatDuration(took.ms)}
        </span>
      ) : null}
      {run.attempt > 1 ? <span className="text-xs text-slate-500">attempt {run.attempt}</span> : null}
      {detailed ? <CopyId id={run.id} /> : null}
      {detailed && word ? (
        <span className="w-full truncate text-xs text-slate-600" data-testid="run-word">
          {word}
        </span>
      ) : null}
      {quiet ? (
        <span className="w-full text-xs text-warn" data-testid="quiet-notice">
          {quiet}
        </span>
      ) : null}
    </li>
  );
}
