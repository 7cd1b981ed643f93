"use client";

import { useState } from "react";
import { formatDuration } from "@/lib/format";
import { trpc } from "@/lib/trpc/client";
import type { RouterOutputs } from "@/lib/trpc/types";

type RoleHistory = RouterOutputs["agent"]["history"][number];

export const HISTORY_DAYS = 14;

/**
 * Each role's last two weeks, from the database (`agent.history`): runs per day as small bars,
 * how many of the finished runs completed, and the median duration (queued → completed). Days
 * are the reader's own, so it is read in the browser only: the server renders "Loading".
 */
export function RunHistory({ titles }: { titles: Record<string, string> }) {
  // The reader's offset from UTC now; a day of daylight-saving change may be an hour off.
  const [utcOffsetMinutes] = useState(() => -new Date().getTimezoneOffset());
  const history = trpc.agent.history.useQuery({ days: HISTORY_DAYS, utcOffsetMinutes }, { staleTime: 30_000 });
  return (
    <section className="card" aria-labelledby="run-history" data-testid="run-history">
      <h2 id="run-history" className="mb-2 font-semibold">
        Last {HISTORY_DAYS} days per agent
      </h2>
      {history.data === undefined ? (
        <p className="text-sm text-slate-500">{history.error ? "History could not be loaded." : "Loading history…"}</p>
      ) : history.data.length === 0 ? (
        <p className="text-sm text-slate-500">No runs in the last {HISTORY_DAYS} days.</p>
      ) : (
        // Focusable so the keyboard can scroll it where the table is wider than a phone.
        <div className="overflow-x-auto" tabIndex={0} role="region" aria-label="Run history per agent">
          <table className="w-full text-left text-sm">
            <thead className="text-xs text-slate-600">
              <tr>
                <th scope="col" className="py-1 pr-3 font-medium">
                  Agent
                </th>
                <th scope="col" className="py-1 pr-3 font-medium">
                  Runs per day
                </th>
                <th scope="col" className="py-1 pr-3 text-right font-medium">
                  Runs
                </th>
                <th scope="col" className="py-1 pr-3 text-right font-medium">
                  Succeeded
                </th>
                <th scope="col" className="py-1 text-right font-medium">
                  Median time
                </th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {history.data.map((role) => (
                <HistoryRow key={role.role} role={role} title={titles[role.role] ?? role.role} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function HistoryRow({ role, title }: { role: RoleHistory; title: string }) {
  const finished = role.completed + role.failed + role.cancelled;
  return (
    <tr data-testid={`history-${role.role}`}>
      <th scope="row" className="py-1 pr-3 font-medium">
        {title}
      </th>
      <td className="py-1 pr-3">
        <DayBars perDay={role.perDay} />
      </td>
      <td className="py-1 pr-3 text-right tabular-nums" data-testid="history-runs">
        {role.runs}
      </td>
      <td
        className="py-1 pr-3 text-right tabular-nums"
        data-testid="history-success"
        title={`${role.completed} of ${finished} finished runs completed`}
      >
        {role.successRate === null ? "–" : `${Math.round(role.successRate * 100)}%`}
      </td>
      <td className="py-1 text-right tabular-nums" data-testid="history-median">
        {role.medianMs === null ? "–" : formatDuration(role.medianMs)}
      </td>
    </tr>
  );
}

/** One bar per day, oldest first; read out as the days that had runs. */
function DayBars({ perDay }: { perDay: RoleHistory["perDay"] }) {
  const most = Math.max(1, ...perDay.map((d) => d.runs));
  const busy = perDay.filter((d) => d.runs > 0).map((d) => `${d.day}: ${d.runs}`);
  return (
    <span
      role="img"
      aria-label={busy.length ? `Runs per day: ${busy.join(", ")}` : "No runs"}
      className="flex h-6 items-end gap-px"
      data-testid="history-bars"
    >
      {perDay.map((d) => (
        <span
          key={d.day}
          className={d.runs ? "w-1.5 bg-accent" : "w-1.5 bg-slate-200"}
          style={{ height: d.runs ? `${Math.max(12, (d.runs / most) * 100)}%` : "2px" }}
          data-runs={d.runs}
        />
      ))}
    </span>
  );
}
